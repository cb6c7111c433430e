"""LDIF exports of ``msFVE-RecoveryInformation`` objects (``ldifde -f``, OpenLDAP ``ldapsearch``).

RFC 2849: a line starting with a space continues the previous one (ldifde folds at 80
columns, ldapsearch at 76); ``attr:: <base64>`` is a binary or non-ASCII value, ``dn::`` too.
``msFVE-RecoveryGuid`` is the 16-byte GUID in Windows' mixed-endian order; scripts that
convert it themselves often write it big-endian, which the object's own CN (``<time>{<GUID>}``)
exposes, so the two are compared. A recovery object without its password is a problem: the
attribute is confidential, and an account without the right sees the object without it.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from .directory import dn_facts, split_dn
from .record import EscrowProblem, Found, Locator, guid_from_mixed_endian
from .text import find_keys, key_record, normalise
from .text import lines as split_lines
from .times import parse_time

_ATTRIBUTE = re.compile(r"^([A-Za-z][\w.-]*)(?:;[\w;-]+)?(:<|::?)\s?(.*)$")
_DN_LINE = re.compile(r"^dn::?\s", re.MULTILINE | re.IGNORECASE)
_ANY_ATTRIBUTE = re.compile(r"^[A-Za-z][\w;-]*::?\s", re.MULTILINE)

PASSWORD = "msfve-recoverypassword"
GUID = "msfve-recoveryguid"
VOLUME_GUID = "msfve-volumeguid"
CLASS = "objectclass"
RECOVERY_CLASS = "msfve-recoveryinformation"


@dataclass
class _Value:
    text: str | None  # the value as text (base64 decoded as UTF-8 where it is text)
    raw: bytes | None  # the value's bytes (base64 values)
    line: int


@dataclass
class _Entry:
    dn: str
    line: int
    attributes: dict[str, list[_Value]] = field(default_factory=dict)

    def first(self, name: str) -> _Value | None:
        values = self.attributes.get(name)
        return values[0] if values else None


def detect(text: str) -> bool:
    head = text[:65536]
    return bool(_DN_LINE.search(head)) and len(_ANY_ATTRIBUTE.findall(head)) >= 2


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, unfolded line), comments dropped."""
    current: list[str] | None = None
    start = 0
    for number, line in enumerate(split_lines(text), 1):
        if line.startswith(" ") and current is not None:
            current.append(line[1:])
            continue
        if current is not None:
            yield start, "".join(current)
        current, start = [line], number
    if current is not None:
        yield start, "".join(current)


def _entries(text: str, file: str) -> Iterator[_Entry | EscrowProblem]:
    entry: _Entry | None = None
    for number, line in _logical_lines(text):
        if not line.strip():
            if entry is not None:
                yield entry
            entry = None
            continue
        if line.startswith("#"):
            continue
        m = _ATTRIBUTE.match(line)
        if not m:
            yield EscrowProblem(Locator(file, line=number), f"not an LDIF line: {line[:60]!r}")
            continue
        name, sep, value = m.group(1).lower(), m.group(2), m.group(3)
        raw = None
        if sep == "::":
            try:
                raw = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                yield EscrowProblem(Locator(file, line=number, dn=entry.dn if entry else None),
                                    f"{m.group(1)}: bad base64 value")
                continue
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                value = None
        elif sep == ":<":
            value = None  # a URL reference: the value is not in the file
        if name == "dn":
            if entry is not None:
                yield entry
            entry = _Entry(value or "", number)
            continue
        if entry is None:
            continue  # "version: 1", ldapsearch's "search:"/"result:" trailer
        entry.attributes.setdefault(name, []).append(_Value(value, raw, number))
    if entry is not None:
        yield entry


def read(text: str, file: str) -> Iterator[Found]:
    for item in _entries(text, file):
        if isinstance(item, EscrowProblem):
            yield item
        else:
            yield from _entry_records(item, file)


def _is_recovery_object(entry: _Entry) -> bool:
    classes = {(v.text or "").lower() for v in entry.attributes.get(CLASS, [])}
    return RECOVERY_CLASS in classes or dn_facts(entry.dn).recovery is not None


def _entry_records(entry: _Entry, file: str) -> Iterator[Found]:
    passwords = entry.attributes.get(PASSWORD, [])
    if not passwords:
        if _is_recovery_object(entry):
            yield EscrowProblem(Locator(file, dn=entry.dn, line=entry.line),
                                "recovery object without msFVE-RecoveryPassword (the attribute is confidential: "
                                "the exporting account may not read it)")
        return
    facts = dn_facts(entry.dn)
    notes: list[str] = []
    key_id = _key_id(entry, facts.recovery.key_id if facts.recovery else None, notes)
    computer = facts.computer
    if facts.deleted:
        notes.append("a deleted object (tombstone)")
        parent = entry.first("lastknownparent")
        if parent is not None and parent.text:
            rdns = split_dn(parent.text)
            computer = rdns[0][1] if rdns and rdns[0][0] == "CN" else None
    created = None
    when = entry.first("whencreated")
    if when is not None and when.text:
        created, note = parse_time(when.text)
        if note:
            notes.append(f"whenCreated: {note}")
    if created is None and facts.recovery is not None:
        created = facts.recovery.created_at
    volume = entry.first(VOLUME_GUID)
    volume_guid = _guid(volume) if volume is not None else None
    if entry.first("msfve-keypackage") is not None:
        notes.append("a key package (msFVE-KeyPackage) is escrowed too")
    for value in passwords:
        locator = Locator(file, dn=entry.dn, line=value.line)
        keys = find_keys(normalise(value.text or ""))
        if not keys:
            yield EscrowProblem(locator, f"msFVE-RecoveryPassword holds {(value.text or '')[:60]!r}, not a key")
            continue
        for key in keys:
            record = key_record(key, "ad_ldif", locator, key_id=key_id, computer_name=computer,
                                volume_guid=volume_guid, created_at=created)
            record.notes = list(notes)
            yield record


def _guid(value: _Value) -> str | None:
    if value.raw is not None and len(value.raw) == 16:
        return guid_from_mixed_endian(value.raw)
    if value.text:
        try:
            return str(uuid.UUID(value.text.strip().strip("{}")))
        except ValueError:
            return None
    return None


def _key_id(entry: _Entry, from_cn: str | None, notes: list[str]) -> str | None:
    """The Key ID: msFVE-RecoveryGuid, checked against the CN's GUID."""
    value = entry.first(GUID)
    if value is None:
        return from_cn
    stored = _guid(value)
    if stored is None:
        notes.append("msFVE-RecoveryGuid is not a 16-byte GUID")
        return from_cn
    if from_cn is None or stored == from_cn:
        return stored
    if value.raw is not None and len(value.raw) == 16 and str(uuid.UUID(bytes=value.raw)) == from_cn:
        notes.append("msFVE-RecoveryGuid was written big-endian (a conversion bug); the CN's GUID is used")
        return from_cn
    notes.append(f"msFVE-RecoveryGuid {stored} differs from the CN's {from_cn}")
    return stored
