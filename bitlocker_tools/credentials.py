"""Credentials as the examiner supplies them, read without putting secrets in argv.

Every credential option takes the secret itself, ``-`` (read from standard input), or ``@PATH``
(read from a file). Recovery and user passwords also come from ``BITLOCKER_RECOVERY_PASSWORD`` and
``BITLOCKER_PASSWORD``, but only when the command line gives no credential at all: a variable
left over in the shell must not change what an explicit option means. A recovery-password file
may be Windows' own "BitLocker Recovery Key <ID>.TXT" (UTF-16LE with a BOM): the 48 digits are
found in its text.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInputError, CredentialFormatError
from .keyfiles import StartupKey, is_fvek_file, parse_bek, parse_fvek_file
from .recovery_password import RecoveryPassword
from .recovery_password import parse as parse_recovery_password
from .secret import ENV_PASSWORD, ENV_RECOVERY_PASSWORD, masked_repr

_RECOVERY_IN_TEXT = re.compile(r"(?<!\d)\d{6}(?:[- ]\d{6}){7}(?!\d)|(?<!\d)\d{48}(?!\d)")


@masked_repr("recovery_passwords", "passwords", "startup_keys", "vmk", "fvek")
@dataclass
class Credentials:
    recovery_passwords: list[RecoveryPassword] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    startup_keys: list[StartupKey] = field(default_factory=list)
    clear_key: bool = False
    vmk: bytes | None = None
    fvek: bytes | None = None

    def is_empty(self) -> bool:
        return not (self.recovery_passwords or self.passwords or self.startup_keys or self.clear_key
                    or self.vmk or self.fvek)


def decode_text(raw: bytes) -> str:
    """Text from a file that PowerShell or Notepad may have written as UTF-16."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")  # an odd length or a lone surrogate is damage, not a crash
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace")
    if len(raw) > 1 and raw[1:2] == b"\0":
        return raw.decode("utf-16-le", "replace")
    return raw.decode("utf-8", "replace")


def read_secret(value: str, what: str) -> bytes:
    """Resolve ``-`` (stdin) and ``@PATH`` (file) to raw bytes; anything else is the value itself."""
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        if not value[1:]:
            raise CredentialFormatError(f"{what}: '@' must be followed by a file name")
        path = Path(value[1:])
        try:
            return path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"{what} file {path}: {exc.strerror}") from None
    # argv that is not UTF-8 arrives with its bytes as lone surrogates: give the bytes back
    return value.encode("utf-8", "surrogateescape")


def recovery_passwords_from(value: str) -> list[RecoveryPassword]:
    """One or more recovery passwords: a literal, or every one found in a file or stdin."""
    if value not in ("-",) and not value.startswith("@"):
        return [parse_recovery_password(value)]
    text = decode_text(read_secret(value, "recovery password"))
    found = _RECOVERY_IN_TEXT.findall(text)
    if not found:
        stripped = text.strip()
        # A lone malformed key: let the parser say what is wrong with it.
        return [parse_recovery_password(stripped)]
    return [parse_recovery_password(f) for f in dict.fromkeys(found)]


def password_from(value: str) -> str:
    if value not in ("-",) and not value.startswith("@"):
        return value
    text = decode_text(read_secret(value, "password"))
    return text.rstrip("\r\n")


def startup_key_from(value: str) -> StartupKey:
    if value == "-":
        return parse_bek(sys.stdin.buffer.read(), "BEK from stdin")
    path = value[1:] if value.startswith("@") else value
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the .BEK file: {exc.strerror}") from None
    return parse_bek(raw, path)


def key_bytes_from(value: str, what: str) -> bytes:
    """A VMK or FVEK: hex text (``FVEK`` or ``FVEK:TWEAK``), or a binary key file.

    Binary files are taken as raw key bytes, or in the FVEK-file layout of dislocker and the
    memory-forensics plugins (u16 method followed by the key, 34 or 66 bytes).
    """
    raw = read_secret(value, what)
    text = raw.decode("ascii", "replace").strip().replace(":", "").replace(" ", "")
    if text and all(c in "0123456789abcdefABCDEF" for c in text):
        if len(text) % 2:
            raise CredentialFormatError(f"{what}: odd number of hex digits")
        return bytes.fromhex(text)
    if value.startswith("@") or value == "-":
        return parse_fvek_file(raw)[1] if is_fvek_file(raw) else raw
    raise CredentialFormatError(f"{what}: expected hex digits")


def collect(
    recovery_password: list[str] | None = None,
    password: list[str] | None = None,
    bek: list[str] | None = None,
    clear_key: bool = False,
    vmk: str | None = None,
    fvek: str | None = None,
    use_env: bool = True,
) -> Credentials:
    """Build Credentials from CLI-style option values (and the environment)."""
    creds = Credentials(clear_key=clear_key)
    for value in recovery_password or []:
        creds.recovery_passwords += recovery_passwords_from(value)
    for value in password or []:
        creds.passwords.append(password_from(value))
    for value in bek or []:
        creds.startup_keys.append(startup_key_from(value))
    if vmk:
        creds.vmk = key_bytes_from(vmk, "VMK")
        if len(creds.vmk) != 32:
            raise CredentialFormatError(f"VMK: expected 32 bytes, got {len(creds.vmk)}")
    if fvek:
        creds.fvek = key_bytes_from(fvek, "FVEK")
    if use_env and creds.is_empty():
        if os.environ.get(ENV_RECOVERY_PASSWORD):
            try:
                creds.recovery_passwords.append(parse_recovery_password(os.environ[ENV_RECOVERY_PASSWORD]))
            except CredentialFormatError as exc:
                raise CredentialFormatError(f"{ENV_RECOVERY_PASSWORD}: {exc}") from None
        if os.environ.get(ENV_PASSWORD):
            creds.passwords.append(os.environ[ENV_PASSWORD])
    return creds


__all__ = ["Credentials", "StartupKey", "collect", "parse_bek"]  # the last two live in keyfiles
