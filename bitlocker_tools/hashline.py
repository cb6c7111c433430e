"""``$bitlocker$`` hash lines: a password or recovery-password protector as John the Ripper and
hashcat take it, so that a password search can run without the evidence.

A line holds only what the search needs and nothing secret: the protector's stretch salt, the
AES-CCM nonce and tag of its VMK blob, and the encrypted VMK. Eight fields follow the tag
``$bitlocker$``, separated by ``$``; numbers are decimal, bytes lowercase hex::

    $bitlocker$1$16$<salt>$1048576$12$<nonce>$60$<mac><encrypted VMK>

======  ===========================  ==========================================================
field   example                      meaning
======  ===========================  ==========================================================
1       ``1``                        hash type: 0 user password, 1 user password with the MAC
                                     check, 2 recovery password, 3 recovery password with the
                                     MAC check
2       ``16``                       salt length in bytes (always 16)
3       32 hex digits                the salt of the protector's STRETCH KEY property
4       ``1048576``                  stretch rounds: 0x100000 on every volume (the count is not
                                     stored on disk; John accepts fewer, hashcat exactly this)
5       ``12``                       nonce length in bytes (always 12)
6       24 hex digits                the nonce of the protector's AES-CCM property (FILETIME,
                                     then a counter, little-endian)
7       ``60``                       length in bytes of field 8: tag + encrypted VMK
8       120 hex digits               the 16-byte CCM tag (MAC), then the 44-byte encrypted VMK
                                     KEY entry, in that order, as the metadata stores them
======  ===========================  ==========================================================

The candidate's key is the stretch (:mod:`.crypto.kdf`, 0x100000 rounds of SHA-256 with the
salt) of SHA-256(SHA-256(UTF-16LE(password))) for types 0/1, or of SHA-256(key16) for types 2/3
(key16: the eight groups of the 48 digits, each divided by 11, as little-endian u16). It opens the
line when AES-256-CCM with that key, the nonce and the tag authenticates the encrypted VMK. Types
0 and 2 tell a cracker it may accept a key on the plaintext's first bytes alone (a KEY entry of
0x2c bytes, version 1, method 0x200x) and skip the tag; :func:`key_opens` always checks the tag,
so a line whose MAC field was zeroed cannot be confirmed here.

Where this comes from (read, not copied): John the Ripper jumbo, ``src/bitlocker2john.c`` (which
writes the lines: fixed 0x100000 rounds, 16-byte salt, 12-byte nonce, 16-byte MAC and 44-byte
VMK), ``src/bitlocker_common.h`` and ``src/bitlocker_variable_code.h`` (the four hash types, what
``valid()`` accepts: salt length 16, nonce length 12, rounds at most 0x100000, data at most 256
bytes), ``src/bitlocker_fmt_plug.c`` (the CPU format: user passwords only), and hashcat's
``src/modules/module_22100.c`` (mode 22100: types 0 and 1 only, rounds exactly 1048576, data
exactly 60 bytes; passwords of 4 characters or more).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from .crypto import kdf
from .crypto.ccm import NONCE_SIZE, TAG_SIZE, unwrap
from .errors import AuthenticationError, BadInputError
from .format.constants import STRETCH_ROUNDS, ProtectorType, ValueType
from .metadata import AesCcmValue, MetadataBlock, Protector, StretchKeyValue
from .recovery_password import RecoveryPassword
from .recovery_password import parse as parse_recovery_password

if TYPE_CHECKING:
    from ._core import Core

TAG = "$bitlocker$"
SALT_SIZE = 16
#: The encrypted VMK KEY entry Windows writes: 8-byte entry header, 4-byte method, 32-byte key.
VMK_BLOB_SIZE = 44
#: The longest field 8 John's ``valid()`` accepts.
JOHN_MAX_DATA = 256


class HashType(enum.IntEnum):
    """Field 1, as John's ``bitlocker_common.h`` numbers it."""

    PASSWORD = 0
    PASSWORD_MAC = 1
    RECOVERY_PASSWORD = 2
    RECOVERY_PASSWORD_MAC = 3

    @property
    def protector_type(self) -> ProtectorType:
        return ProtectorType.PASSWORD if self < 2 else ProtectorType.RECOVERY_PASSWORD

    @property
    def mac_check(self) -> bool:
        return self % 2 == 1


class Tool(str, enum.Enum):
    """Who will read the lines (``hash --format``)."""

    JOHN = "john"
    HASHCAT = "hashcat"


#: hashcat's mode 22100 parses only these types (its kernel hashes the UTF-16LE password).
HASHCAT_TYPES = frozenset({HashType.PASSWORD, HashType.PASSWORD_MAC})


@dataclass(frozen=True)
class HashLine:
    """One parsed ``$bitlocker$`` line."""

    hash_type: HashType
    salt: bytes
    nonce: bytes
    mac: bytes
    encrypted_vmk: bytes
    rounds: int = STRETCH_ROUNDS

    @property
    def protector_type(self) -> ProtectorType:
        return self.hash_type.protector_type

    def __str__(self) -> str:
        data = self.mac + self.encrypted_vmk
        return (f"{TAG}{int(self.hash_type)}${len(self.salt)}${self.salt.hex()}${self.rounds}"
                f"${len(self.nonce)}${self.nonce.hex()}${len(data)}${data.hex()}")


_NUMBER = re.compile(r"[0-9]{1,10}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def parse(text: str) -> HashLine:
    """Parse a line (surrounding whitespace and a ``login:`` prefix, as John's hash files carry,
    are ignored). Raises :class:`BadInputError` naming the field that is wrong; accepts what John's
    ``valid()`` accepts."""
    text = text.strip()
    start = text.find(TAG)
    if start < 0 or (start > 0 and text[start - 1] != ":"):
        raise BadInputError(f"not a $bitlocker$ hash line: {text[:40]!r}")
    fields = text[start + len(TAG):].split("$")
    if len(fields) != 8:
        raise BadInputError(f"$bitlocker$ line: expected 8 fields after the tag, got {len(fields)}")
    names = ("hash type", "salt length", "salt", "rounds", "nonce length", "nonce", "data length", "data")
    for i, (name, value) in enumerate(zip(names, fields)):
        if not (_HEX if i in (2, 5, 7) else _NUMBER).fullmatch(value):
            raise BadInputError(f"$bitlocker$ line: field {i + 1} ({name}) is not "
                                f"{'hex bytes' if i in (2, 5, 7) else 'a decimal number'}: {value[:40]!r}")
    kind, salt_len, salt, rounds, nonce_len, nonce, data_len, data = fields
    if int(kind) not in {t.value for t in HashType}:
        raise BadInputError(f"$bitlocker$ line: unknown hash type {kind} (0-3)")
    checks = [
        (int(salt_len) == SALT_SIZE, f"salt length {salt_len}, not {SALT_SIZE}"),
        (len(salt) == 2 * SALT_SIZE, f"the salt has {len(salt) // 2} bytes, not {SALT_SIZE}"),
        (1 <= int(rounds) <= STRETCH_ROUNDS, f"rounds {rounds}, not 1 to {STRETCH_ROUNDS}"),
        (int(nonce_len) == NONCE_SIZE, f"nonce length {nonce_len}, not {NONCE_SIZE}"),
        (len(nonce) == 2 * NONCE_SIZE, f"the nonce has {len(nonce) // 2} bytes, not {NONCE_SIZE}"),
        (TAG_SIZE < int(data_len) <= JOHN_MAX_DATA, f"data length {data_len}, not {TAG_SIZE + 1} to {JOHN_MAX_DATA}"),
        (len(data) == 2 * int(data_len), f"the data has {len(data) // 2} bytes, its length field says {data_len}"),
    ]
    for ok, problem in checks:
        if not ok:
            raise BadInputError(f"$bitlocker$ line: {problem}")
    raw = bytes.fromhex(data)
    return HashLine(HashType(int(kind)), bytes.fromhex(salt), bytes.fromhex(nonce), raw[:TAG_SIZE], raw[TAG_SIZE:],
                    int(rounds))


# --- checking a candidate --------------------------------------------------------------------------


def initial_key(line: HashLine, candidate: str | RecoveryPassword) -> bytes:
    """What the stretch starts from for this candidate. A recovery-password line takes the 48
    digits (a malformed one raises :class:`.errors.CredentialFormatError` naming the group)."""
    if line.protector_type == ProtectorType.RECOVERY_PASSWORD:
        rp = candidate if isinstance(candidate, RecoveryPassword) else parse_recovery_password(candidate)
        return kdf.recovery_initial(rp.key16)
    if isinstance(candidate, RecoveryPassword):
        candidate = str(candidate)
    return kdf.password_initial(candidate)


def stretch(line: HashLine, initials: list[bytes], core: Core | None = None) -> list[bytes]:
    """The stretched keys of many candidates against the line's salt, on all cores."""
    return kdf.stretch_batch(initials, line.salt, core, rounds=line.rounds) if initials else []


def key_opens(line: HashLine, key: bytes, core: Core | None = None) -> bool:
    """Does this stretched key authenticate the line's VMK blob (the CCM tag verifies)?"""
    try:
        unwrap(key, line.nonce, line.mac, line.encrypted_vmk, core)
    except AuthenticationError:
        return False
    return True


def opens(line: HashLine, candidate: str | RecoveryPassword, core: Core | None = None) -> bool:
    """Does the password (types 0/1) or recovery password (types 2/3) open the line?"""
    return key_opens(line, stretch(line, [initial_key(line, candidate)], core)[0], core)


def first_opening(line: HashLine, candidates: Iterable[str | RecoveryPassword],
                  core: Core | None = None) -> str | RecoveryPassword | None:
    """The first candidate that opens the line, stretched in one batch on all cores; None if none."""
    candidates = list(candidates)
    keys = stretch(line, [initial_key(line, c) for c in candidates], core)
    return next((c for c, k in zip(candidates, keys) if key_opens(line, k, core)), None)


# --- lines from a volume's protectors --------------------------------------------------------------

_TYPES = {
    ProtectorType.PASSWORD: HashType.PASSWORD_MAC,
    ProtectorType.RECOVERY_PASSWORD: HashType.RECOVERY_PASSWORD_MAC,
}
#: The protector kinds a line can be made of.
EXPORTABLE = tuple(_TYPES)


@dataclass(frozen=True)
class ProtectorLine:
    protector: Protector
    line: HashLine


@dataclass(frozen=True)
class LeftOut:
    protector: Protector
    reason: str


@dataclass
class Export:
    """The lines of one volume for one tool, and the exportable protectors left out, with why."""

    tool: Tool
    lines: list[ProtectorLine] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)


def protector_line(p: Protector, mac_check: bool = True) -> HashLine:
    """The line of a password or recovery-password protector. Raises BadInputError when the
    protector is another kind or lacks its stretch salt or VMK blob."""
    if p.type not in _TYPES:
        raise BadInputError(f"protector {p.guid} is a {p.type.value} protector: no password hash to export")
    stretch_key = p.entry.child(ValueType.STRETCH_KEY)
    blob = p.entry.child(ValueType.AES_CCM)
    if stretch_key is None or not isinstance(stretch_key.value, StretchKeyValue):
        raise BadInputError(f"{p.type.value} protector {p.guid} has no stretch salt")
    if blob is None or not isinstance(blob.value, AesCcmValue):
        raise BadInputError(f"{p.type.value} protector {p.guid} has no AES-CCM VMK blob")
    v = blob.value
    if not v.data or len(v.data) + TAG_SIZE > JOHN_MAX_DATA:
        raise BadInputError(f"{p.type.value} protector {p.guid}: a {len(v.data)}-byte VMK blob fits no $bitlocker$ line")
    kind = _TYPES[p.type]
    return HashLine(kind if mac_check else HashType(kind - 1), stretch_key.value.salt, v.nonce, v.mac, v.data)


def export(md: MetadataBlock, tool: Tool | str = Tool.JOHN) -> Export:
    """One line (with the MAC check) per password and recovery-password protector, in metadata
    order; for hashcat only the password ones, since mode 22100 takes no recovery password."""
    tool = Tool(tool)
    out = Export(tool)
    for p in md.protectors:
        if p.type not in _TYPES:
            continue
        try:
            line = protector_line(p)
        except BadInputError as exc:
            out.left_out.append(LeftOut(p, str(exc)))
            continue
        if tool == Tool.HASHCAT and line.hash_type not in HASHCAT_TYPES:
            out.left_out.append(LeftOut(p, "hashcat's mode 22100 takes user-password hashes only"))
        elif tool == Tool.HASHCAT and len(line.encrypted_vmk) != VMK_BLOB_SIZE:
            out.left_out.append(LeftOut(p, f"hashcat's mode 22100 takes a {VMK_BLOB_SIZE}-byte VMK blob only"))
        else:
            out.lines.append(ProtectorLine(p, line))
    return out
