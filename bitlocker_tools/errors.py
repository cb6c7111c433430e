"""Exceptions, each carrying the CLI exit code it maps to.

The CLI promises: 0 ok, 1 wrong key or nothing found, 2 usage, 3 bad or unsupported input.
Raising the right class is how library code keeps that promise without knowing about the CLI.
Each class also derives from the builtin exception that fits (as dissect's do), so a caller that
knows nothing of this package can still catch a malformed key as ``ValueError`` or a missing
image as ``FileNotFoundError``.
"""

from __future__ import annotations


class BitLockerError(Exception):
    """Base class; ``str(err)`` is the one line shown to the user."""

    exit_code = 3


class BadInputError(BitLockerError, ValueError):
    """Evidence or metadata that cannot be read or parsed (truncated, corrupt, unsupported)."""

    exit_code = 3


class SourceNotFoundError(BadInputError, FileNotFoundError):
    """The evidence named does not exist (still bad input, exit 3, for the CLI)."""


class UnsupportedError(BadInputError):
    """A valid variant this version cannot handle (e.g. a volume whose protectors all need the TPM)."""


class CredentialFormatError(BitLockerError, ValueError):
    """A credential that is malformed before any crypto (e.g. a bad recovery-password group)."""

    exit_code = 2


class WrongKeyError(BitLockerError, ValueError):
    """The credential is well formed but opens no protector of this volume."""

    exit_code = 1


class NotFoundError(BitLockerError, LookupError):
    """Nothing to work on: no BitLocker volume, or the chosen partition does not exist."""

    exit_code = 1


class UsageError(BitLockerError, ValueError):
    """The command line does not say what to do (e.g. several volumes and no --volume)."""

    exit_code = 2


class InterruptedWork(BitLockerError):
    """Ctrl-C or SIGTERM stopped long work part way; the message says what was kept (a search's
    state file, a partial output) and how to continue. Exit code 130, the shell's for SIGINT."""

    exit_code = 130


class AuthenticationError(ValueError):
    """An AES-CCM tag did not verify: a wrong key, or a damaged blob. Internal: the protector
    code turns it into :class:`WrongKeyError` or :class:`BadInputError`, whichever it means."""


def describe_parse_error(exc: Exception) -> str:
    """One line for a structure that failed to parse: construct reports the field path and the
    problem on two lines ("Error in path (parsing) -> signature" / "parsing expected ...")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) >= 2 and lines[0].startswith("Error in path"):
        field = lines[0].split("->")[-1].strip()
        return f"field {field}: {' '.join(lines[1:])}"
    return " ".join(lines) or type(exc).__name__
