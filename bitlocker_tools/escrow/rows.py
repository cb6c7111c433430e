"""One row of a table (or one JSON object, or one Format-List block) as key records.

Every tabular source ends here, so the rules are the same everywhere: the key column is
searched leniently (a cell may hold several keys, joined by a script that expected one), the
identifier comes from the Key ID column, else from AD's ``Name`` (``<time>{<GUID>}``), else from
the recovery object's DN; keys and identifiers are paired in order only when their numbers
agree. A cell that holds a placeholder ("N/A", "Device not found") or PowerShell's type name
(``System.Byte[]``) instead of a value is a problem or a note, never a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import vocabulary as v
from .columns import ColumnMap, compact
from .directory import dn_facts, recovery_names
from .record import FVEK, RECOVERY_PASSWORD, EscrowProblem, EscrowRecord, Locator, normalise_volume_type
from .text import cell_ids, find_keys, key_record, normalise
from .times import parse_time


@dataclass
class _Cells:
    cmap: ColumnMap
    values: list[str]

    def all(self, role: str) -> list[tuple[str, str]]:
        return [(self.cmap.names[i], self.values[i].strip()) for i in self.cmap.roles.get(role, [])
                if i < len(self.values) and self.values[i].strip()]

    def first(self, role: str) -> tuple[str, str] | None:
        for name, value in self.all(role):
            if not is_type_name(value):
                return name, value
        return None


def is_type_name(value: str) -> bool:
    return value.strip().startswith(v.TYPE_NAMES)


def is_placeholder(value: str) -> bool:
    return compact(value) in v.PLACEHOLDERS or value.strip().lower() in v.PLACEHOLDERS


def read_row(cmap: ColumnMap, values: list[str], locator: Locator, source_type: str
             ) -> tuple[list[EscrowRecord], list[EscrowProblem]]:
    """The records (and problems) of one row; a blank row gives neither."""
    cells = _Cells(cmap, values)
    if not any(x.strip() for x in values):
        return [], []
    computer, notes = _computer(cells)

    key_type = cells.first(v.KEY_TYPE)
    kind = RECOVERY_PASSWORD
    if key_type is not None:
        kt = compact(key_type[1])
        if kt in v.NOT_ESCROW_KEY_TYPES:
            return [], [EscrowProblem(locator, f"{key_type[0]} {key_type[1]!r}: {v.NOT_ESCROW_KEY_TYPES[kt]}")]
        if kt in v.RAW_KEY_TYPES:
            kind = FVEK
        elif kt not in v.RECOVERY_KEY_TYPES:
            return [], []  # a TPM, password or external-key protector: no key in the row

    key_cell = next(iter(cells.all(v.KEY)), None)
    who = f" (computer {computer})" if computer else ""
    if key_cell is None:
        elsewhere = next((cmap.names[i] if i < len(cmap.names) else f"field {i + 1}" for i, x in enumerate(values)
                          if find_keys(normalise(x))), None)
        hint = f"; a key stands under {elsewhere} (a quote or separator out of place?)" if elsewhere else ""
        return [], [EscrowProblem(locator, f"no key in this row{who}{hint}")]
    column, value = key_cell
    if kind == FVEK:
        return _raw_key(cells, column, value, locator, source_type, computer, notes)
    keys = find_keys(normalise(value))
    if not keys:
        if is_type_name(value):
            why = (f"{column} holds {value.strip()!r}: PowerShell wrote the type's name instead of the keys "
                   "(several values in one property); export them joined")
        elif is_placeholder(value) or not any(c.isdigit() for c in value):
            why = f"{column} holds {value.strip()!r}, not a key"
        else:
            why = f"{column} holds {value.strip()!r}: no 48-digit key in it"
        return [], [EscrowProblem(locator, why + who)]

    ids, times = _identifiers(cells, len(keys), notes)
    date_cell = cells.first(v.DATE)
    created: datetime | None = None
    if date_cell is not None and not any(times):
        created, note = parse_time(date_cell[1])
        if note:
            notes.append(f"{date_cell[0]}: {note}")
        if created is not None and len(keys) > 1:
            notes.append(f"one {date_cell[0]} for {len(keys)} keys")
    device = cells.first(v.DEVICE_ID)
    device_ids = cell_ids(device[1]) if device else []
    volume_type = cells.first(v.VOLUME_TYPE)
    volume_guid = next((g for _, val in cells.all(v.VOLUME_GUID) if not is_type_name(val)
                        for g in cell_ids(val) if len(g) == 36), None)
    backup = cells.first(v.BACKUP)

    records = []
    for i, key in enumerate(keys):
        record = key_record(
            key, source_type, locator, key_id=ids[i], computer_name=computer,
            device_id=device_ids[0] if device_ids and len(device_ids[0]) == 36 else None,
            volume_type=normalise_volume_type(volume_type[1]) if volume_type and not is_placeholder(volume_type[1]) else None,
            volume_guid=volume_guid, created_at=times[i] or created,
            backup_type=backup[1] if backup and not is_placeholder(backup[1]) else None,
        )
        record.notes = list(notes) + ([f"key {i + 1} of {len(keys)} in this row"] if len(keys) > 1 else [])
        records.append(record)
    return records, []


def _computer(cells: _Cells) -> tuple[str | None, list[str]]:
    """The computer's name: its own column, else a ``Name`` that is not AD's recovery CN, else
    the parent CN of a DN. A placeholder is a note."""
    notes: list[str] = []
    found = cells.first(v.COMPUTER)
    if found is not None and is_placeholder(found[1]):
        notes.append(f"{found[0]} holds {found[1]!r}")
        found = None
    if found is None:
        name = cells.first(v.AD_NAME)
        if name is not None and not recovery_names(name[1]) and not is_placeholder(name[1]):
            found = name
    if found is not None:
        return found[1].rstrip("$").strip() or None, notes
    dn = cells.first(v.DN)
    return (dn_facts(dn[1]).computer if dn else None), notes


def _identifiers(cells: _Cells, count: int, notes: list[str]) -> tuple[list[str | None], list[datetime | None]]:
    """A Key ID (and AD's creation time, where the name gives one) for each of ``count`` keys."""
    times: list[datetime | None] = [None] * count
    names = []
    ad_name = cells.first(v.AD_NAME)
    if ad_name is not None:
        names = recovery_names(ad_name[1])
    dn = cells.first(v.DN)
    if not names and dn is not None:
        facts = dn_facts(dn[1])
        names = [facts.recovery] if facts.recovery else []
    if len(names) == count:
        times = [n.created_at for n in names]

    candidates: list[list[str]] = []
    binary = []
    for column, value in cells.all(v.KEY_ID):
        if is_type_name(value):
            binary.append(column)
            continue
        found = cell_ids(value)
        if found:
            candidates.append(found)
    if names:
        candidates.append([n.key_id for n in names])
    for found in candidates:  # the first list with one whole GUID per key, else the first that fits
        if len(found) == count and all(len(f) == 36 for f in found):
            return list(found), times
    for found in candidates:
        if len(found) == count:
            return list(found), times
    if candidates:
        notes.append(f"{count} keys and {len(candidates[0])} identifiers in this row: not paired")
    elif binary:
        notes.append(f"{', '.join(binary)} exported as {'System.Byte[]'!r} (binary, not converted): no identifier")
    return [None] * count, times


def _raw_key(cells: _Cells, column: str, value: str, locator: Locator, source_type: str,
             computer: str | None, notes: list[str]) -> tuple[list[EscrowRecord], list[EscrowProblem]]:
    """A keychain's raw key: the FVEK in hex, under the protector GUID of the volume it opens."""
    text = value.strip().replace(":", "").replace(" ", "")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        return [], [EscrowProblem(locator, f"{column}: a raw key must be hex")]
    if len(secret) not in (16, 32, 64):
        return [], [EscrowProblem(locator, f"{column}: a raw key (FVEK) of {len(secret)} bytes; 16, 32 or 64 expected")]
    ident = cells.first(v.KEY_ID)
    ids = cell_ids(ident[1]) if ident else []
    record = EscrowRecord(FVEK, source_type, locator, key_id=ids[0] if ids else None, secret=secret,
                          computer_name=computer, notes=notes)
    return [record], []
