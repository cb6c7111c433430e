"""Exceptions, each carrying the CLI exit code it maps to.

The CLI promises: 0 ok, 1 wrong key or nothing found, 2 usage, 3 bad or unsupported input.
Raising the right class is how library code keeps that promise without knowing about the CLI.
"""

from __future__ import annotations


class BitLockerError(Exception):
    """Base class; ``str(err)`` is the one line shown to the user."""

    exit_code = 3


class BadInputError(BitLockerError):
    """Evidence or metadata that cannot be read or parsed (truncated, corrupt, unsupported)."""

    exit_code = 3


class UnsupportedError(BadInputError):
    """A valid variant this version cannot handle (e.g. a TPM-only protector)."""


class CredentialFormatError(BitLockerError):
    """A credential that is malformed before any crypto (e.g. a bad recovery-password group)."""

    exit_code = 2


class WrongKeyError(BitLockerError):
    """The credential is well formed but opens no protector of this volume."""

    exit_code = 1


class NotFoundError(BitLockerError):
    """Nothing to work on: no BitLocker volume, or the chosen partition does not exist."""

    exit_code = 1


class UsageError(BitLockerError):
    """The command line does not say what to do (e.g. several volumes and no --volume)."""

    exit_code = 2
