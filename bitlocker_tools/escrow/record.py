"""The one record every escrow importer yields: a candidate key, where it came from, and what
the source says about it.

Escrow is messy: the same key appears in several exports, keys are mistyped or copied from
documentation, identifiers come in five spellings (see :func:`normalise_key_id`). A record
therefore keeps the key exactly as recognised (or, when malformed, the text and which groups fail
their check), the identifier in one spelling, and its provenance precisely enough for an
examiner to find the line again: the file, and a line, row, LDIF ``dn`` or JSON path.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

from ..recovery_password import RecoveryPassword
from ..secret import masked_repr

#: What a record holds.
RECOVERY_PASSWORD = "recovery_password"  # the 48 digits (Microsoft's "recovery password")
STARTUP_KEY = "startup_key"  # a .BEK file's 32-byte external key ("recovery key" / "startup key")
FVEK = "fvek"  # a full volume encryption key (memory forensics, dislocker key files)
VMK = "vmk"  # a volume master key
KINDS = (RECOVERY_PASSWORD, STARTUP_KEY, FVEK, VMK)

_GUID = re.compile(r"^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$")
_GUID_32 = re.compile(r"^\{?([0-9a-f]{32})\}?$")  # MBAM's "32-digit Key ID"
#: The shape a GUID prefix must follow, character by character ("h" a hex digit).
_GUID_TEMPLATE = "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh"


@dataclass(frozen=True)
class Locator:
    """Where in its source a record was found. ``file`` is the path as given (``-`` for stdin).
    Text formats set ``line``; CSV sets ``row`` and the ``line`` the row starts on; LDIF sets
    ``dn`` and the ``line`` of the password attribute; JSON sets ``json_path`` (and ``line``, where
    the document starts, only when a file holds several concatenated documents)."""

    file: str
    line: int | None = None  # 1-based line of text formats (the line holding the key)
    row: int | None = None  # 1-based data row of CSV (the header is row 0)
    dn: str | None = None  # LDIF entry
    json_path: str | None = None  # e.g. "$.value[3].key"

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in (("file", self.file), ("line", self.line), ("row", self.row), ("dn", self.dn),
                                  ("json_path", self.json_path)) if v is not None}

    def __str__(self) -> str:
        parts = [f"row {self.row}" if self.row is not None else "", f"dn {self.dn}" if self.dn else "",
                 self.json_path or "", f"line {self.line}" if self.line is not None else ""]
        where = ", ".join(p for p in parts if p)
        return f"{self.file}:{where}" if where else self.file


@masked_repr("recovery_password", "secret", "raw")
@dataclass
class EscrowRecord:
    """One candidate key from one place in one source.

    ``recovery_password`` is set for a well-formed 48-digit key; a malformed one keeps its text in
    ``raw`` and the 1-based numbers of the failing groups in ``bad_groups`` (a group of the wrong
    length counts as failing), so that it can be reported, and later repaired by a search.
    ``secret`` holds the bytes of a startup key, FVEK or VMK. ``key_id`` is a full protector GUID
    or a prefix of one (8 hex digits on the recovery screen and the Microsoft account page, 16
    characters in Windows 7's file), lowercase, without braces; None where the source has none.
    ``defect`` says in one line why a malformed key is malformed (it also covers what
    ``bad_groups`` cannot: 7 or 9 groups, 47 digits). ``backup_type`` is where the source says a
    copy of the key was kept (manage-bde's "Backup type", CrowdStrike's "Directory").
    ``encryption_method`` is the method an FVEK file names (its label, e.g. ``AES-XTS-128``).
    """

    kind: str
    source_type: str  # the importer that read it, e.g. "windows_txt", "ad_ldif", "graph_json"
    locator: Locator
    key_id: str | None = None
    recovery_password: RecoveryPassword | None = None
    secret: bytes | None = None
    raw: str | None = None
    bad_groups: list[int] = field(default_factory=list)
    volume_guid: str | None = None
    computer_name: str | None = None
    device_id: str | None = None
    volume_type: str | None = None  # "operating_system", "fixed_data", "removable_data" or as given
    created_at: datetime | None = None  # when the source says the key was made or escrowed (UTC)
    notes: list[str] = field(default_factory=list)  # what the importer noticed (placeholders, ...)
    defect: str | None = None  # why the key is malformed, e.g. "group 3 fails the check"
    backup_type: str | None = None  # "Printed", "Entra", "ActiveDirectory", ... as the source says
    encryption_method: str | None = None  # an FVEK file's method label

    @property
    def well_formed(self) -> bool:
        return self.recovery_password is not None or self.secret is not None

    @property
    def full_key_id(self) -> bool:
        """The identifier is a whole GUID (not a prefix)."""
        return self.key_id is not None and len(self.key_id) == 36

    def value_text(self) -> str:
        """The key as text (for duplicate and conflict detection; never printed unmasked)."""
        if self.recovery_password is not None:
            return str(self.recovery_password)
        if self.secret is not None:
            return self.secret.hex()
        return self.raw or ""


def normalise_key_id(text: str | None) -> str | None:
    """A protector GUID (or a prefix of one) in one spelling: lowercase, no braces. Accepts the
    spellings of the TXT file, manage-bde, Graph and the recovery screen, MBAM's 32 digits
    without dashes, and any prefix of at least 8 hex digits that keeps the GUID's dashes (the
    screen's 8, Windows 7's 16, a file name's 23); None for anything that is not one."""
    if not text:
        return None
    t = text.strip().lower()
    m = _GUID.match(t)
    if m:
        return m.group(1)
    m = _GUID_32.match(t)
    if m:
        h = m.group(1)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    t = t.strip("{}")
    if not 8 <= len(t) < len(_GUID_TEMPLATE) or t.endswith("-"):
        return None
    for ch, want in zip(t, _GUID_TEMPLATE):
        if (want == "-") != (ch == "-") or (want == "h" and ch not in "0123456789abcdef"):
            return None
    return t


def guid_from_mixed_endian(raw: bytes) -> str:
    """The text of a GUID stored as AD's ``msFVE-RecoveryGuid`` octets (mixed-endian)."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


VOLUME_TYPES = {
    "1": "operating_system", "operatingsystemvolume": "operating_system", "osv": "operating_system",
    "os": "operating_system", "operating system drive": "operating_system",
    "2": "fixed_data", "fixeddatavolume": "fixed_data", "fdv": "fixed_data", "fixed data drive": "fixed_data",
    "3": "removable_data", "removabledatavolume": "removable_data", "rdv": "removable_data",
    "removable data drive": "removable_data",
    # Get-BitLockerVolume's VolumeType, the legacy Azure portal's driveType, and spellings without spaces
    "operatingsystem": "operating_system", "operatingsystemdrive": "operating_system", "osdrive": "operating_system",
    "osvolume": "operating_system", "systemdrive": "operating_system",
    "fixed": "fixed_data", "fixeddata": "fixed_data", "fixeddatadrive": "fixed_data",
    "removable": "removable_data", "removabledata": "removable_data", "removabledatadrive": "removable_data",
}


def normalise_volume_type(value: object) -> str | None:
    """Graph's ``volumeType`` as string, integer or enum name (and the portals' words) in one
    spelling; anything else is kept as given (Get-BitLockerVolume's ``Data`` does not say fixed
    or removable, Graph's ``4`` is ``unknownFutureValue``)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text:
        return None
    compact = re.sub(r"[^0-9a-z]", "", text.lower())
    return VOLUME_TYPES.get(text.lower()) or VOLUME_TYPES.get(compact) or text


#: Digits that may be (part of) a key: a run of six, and what follows it in groups.
_KEY_DIGITS = re.compile(r"\d{6}(?:[\s\u2010-\u2015.-]*\d+)*")


def mask_key_digits(text: str) -> str:
    """``text`` with every run of digits that could be part of a key starred out: problem
    messages quote the line they could not read, and that line may hold a key."""
    return _KEY_DIGITS.sub(lambda m: re.sub(r"\d", "*", m.group()), text)


@dataclass(frozen=True)
class EscrowProblem:
    """A part of a source that could not be read as a key record (listed, never fatal). The
    message never carries key digits (:func:`mask_key_digits`), whoever wrote it."""

    locator: Locator
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", mask_key_digits(self.message))


#: What an importer yields: a record, or a problem with a part of its source.
Found = Union[EscrowRecord, EscrowProblem]
