"""Active Directory keys as text that is neither CSV nor LDIF.

* Microsoft's old ``Get-BitLockerRecoveryInfo.vbs``: ``name: <time>{<GUID>}``,
  ``msFVE-RecoveryGuid: {<GUID>}``, ``msFVE-RecoveryPassword: <key>`` per object (LDAP
  attribute names, never translated). A DN seen on a line of its own names the computer of the
  objects after it.
* DSInternals' ``ToString()`` of a recovery object (``Get-ADDBBitLockerRecoveryInformation``
  piped to ``Out-String`` or written with ``"$_"``): ``Recovery ID: <guid>, Key: <pw>, Date: <dt>``.

DSInternals' table and list views are PowerShell formatting (:mod:`.powershell`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .directory import computer_from_dn, recovery_name
from .record import EscrowProblem, Found, Locator, normalise_key_id
from .text import find_guids, find_keys, key_record, lines, normalise
from .times import parse_time

_VBS_ATTRIBUTE = re.compile(r"^\s*(name|msFVE-RecoveryGuid|msFVE-RecoveryPassword|msFVE-VolumeGuid)\s*:\s?(.*)$",
                            re.IGNORECASE)
_VBS_DETECT = re.compile(r"^\s*msFVE-RecoveryPassword:(?!:)", re.IGNORECASE | re.MULTILINE)
_DN = re.compile(r"\b(CN=[^\r\n]*?,(?:OU|CN|DC)=[^\r\n]*)")
_TOSTRING = re.compile(r"Recovery ID:\s*\{?([0-9A-Fa-f-]{36})\}?\s*,\s*Key:\s*(.*?)\s*,\s*Date:\s*(.*?)\s*$")
_TOSTRING_DETECT = re.compile(r"Recovery ID:\s*\{?[0-9A-Fa-f]{8}-")


def detect(text: str) -> bool:
    head = text[:65536]
    return bool(_VBS_DETECT.search(head) or _TOSTRING_DETECT.search(head))


def read(text: str, file: str) -> Iterator[Found]:
    norm = lines(normalise(text))
    if any(_TOSTRING_DETECT.search(line) for line in norm[:2000]):
        yield from _tostring(norm, file)
    else:
        yield from _vbscript(norm, file)


def _tostring(norm: list[str], file: str) -> Iterator[Found]:
    for number, line in enumerate(norm, 1):
        m = _TOSTRING.search(line)
        if not m:
            continue
        locator = Locator(file, line=number)
        keys = find_keys(m.group(2))
        if not keys:
            yield EscrowProblem(locator, f"Key: {m.group(2)[:60]!r} is not a key")
            continue
        created, note = parse_time(m.group(3))
        record = key_record(keys[0], "dsinternals", locator, key_id=normalise_key_id(m.group(1)), created_at=created)
        if note:
            record.notes.append(f"Date: {note}")
        yield record


def _vbscript(norm: list[str], file: str) -> Iterator[Found]:
    computer: str | None = None
    entry: dict[str, tuple[int, str]] = {}

    def flush() -> Iterator[Found]:
        if "msfve-recoverypassword" not in entry:
            return
        number, value = entry["msfve-recoverypassword"]
        locator = Locator(file, line=number)
        keys = find_keys(value)
        if not keys:
            yield EscrowProblem(locator, f"msFVE-RecoveryPassword: {value[:60]!r} is not a key")
            return
        name = recovery_name(entry["name"][1]) if "name" in entry else None
        guids = find_guids(entry["msfve-recoveryguid"][1]) if "msfve-recoveryguid" in entry else []
        volume = find_guids(entry["msfve-volumeguid"][1]) if "msfve-volumeguid" in entry else []
        key_id = guids[0].key_id if guids else name.key_id if name else None
        yield key_record(keys[0], "ad_vbscript", locator, key_id=key_id, computer_name=computer,
                         created_at=name.created_at if name else None,
                         volume_guid=volume[0].key_id if volume else None)

    for number, line in enumerate(norm, 1):
        m = _VBS_ATTRIBUTE.match(line)
        if m:
            attribute = m.group(1).lower()
            if attribute == "name" or attribute in entry:
                yield from flush()
                entry = {}
            entry[attribute] = (number, m.group(2).strip())
            continue
        dn = _DN.search(line)
        if dn:
            yield from flush()
            entry = {}
            computer = computer_from_dn(dn.group(1))
    yield from flush()
