"""PowerShell's own formatting, as captured from a console or with ``Out-File``:

* **Format-List** (``(Get-BitLockerVolume C:).KeyProtector``, ``... | fl``, DSInternals with
  ``| fl``): blocks of ``Property : value`` separated by blank lines. A block without a key
  (``ComputerName``, ``MountPoint``, ``VolumeType`` of ``Get-BitLockerVolume | fl``) gives its
  computer and volume type to the protector blocks after it.
* **Format-Table** (DSInternals' default view): a header, a line of dashes that fixes the
  columns, then rows cut at those columns.

Property names are the same in every language, so the columns are read by name through
:mod:`.columns`, and the rows by :mod:`.rows` like a CSV's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import vocabulary as v
from .columns import identify_source, map_columns
from .record import EscrowRecord, Found, Locator
from .rows import read_row
from .text import lines, normalise

_PROPERTY = re.compile(r"^([A-Za-z][\w.-]*)\s*:(?:\s(.*))?$")
_DASHES = re.compile(r"^\s*-+(?:\s+-+)*\s*$")
#: Format-List pads every name to the longest, so at least one space stands before the colon
#: (the VBScript's ``name: value`` has none: :mod:`.ad_text`).
_FL_KEY = re.compile(r"^(?:RecoveryPassword|msFVE-RecoveryPassword)\s+:", re.MULTILINE | re.IGNORECASE)
_FL_ID = re.compile(r"^(?:KeyProtectorId|RecoveryGuid|msFVE-RecoveryGuid|Name|DistinguishedName)\s+:",
                    re.MULTILINE | re.IGNORECASE)
#: Properties of a volume block handed on to the protector blocks after it.
_CONTEXT_ROLES = (v.COMPUTER, v.VOLUME_TYPE)
TRUNCATED = ("\u2026", "...")


def detect_list(text: str) -> bool:
    head = text[:65536]
    return bool(_FL_KEY.search(head) and _FL_ID.search(head))


def _tables(norm: list[str]) -> list[tuple[int, list[tuple[int, int]]]]:
    """(header line index, column spans) of every Format-Table header."""
    out = []
    for i in range(1, len(norm)):
        if _DASHES.match(norm[i]) and norm[i - 1].strip():
            spans = [m.span() for m in re.finditer(r"-+", norm[i])]
            starts = [s for s, _ in spans]
            out.append((i - 1, [(s, starts[j + 1] if j + 1 < len(starts) else 10 ** 6) for j, s in enumerate(starts)]))
    return out


def _cut(line: str, spans: list[tuple[int, int]]) -> list[str]:
    return [line[a:b].strip() for a, b in spans]


def detect_table(text: str) -> bool:
    norm = lines(normalise(text[:65536]))
    return any(map_columns(_cut(norm[h], spans)).has(v.KEY) for h, spans in _tables(norm))


def read_table(text: str, file: str) -> Iterator[Found]:
    """Every table's rows. Tables no signature names, with a key column of a common name
    ("Key", "Password"), that hold no key give nothing: another command's output."""
    found = list(_read_table(text, file))
    norm = lines(normalise(text))
    maps = [map_columns(_cut(norm[h], spans)) for h, spans in _tables(norm)]
    generic = all(m.generic_key() and identify_source(m.names, "") == "" for m in maps if m.has(v.KEY))
    if generic and not any(isinstance(f, EscrowRecord) for f in found):
        return
    yield from found


def _read_table(text: str, file: str) -> Iterator[Found]:
    norm = lines(normalise(text))
    for h, spans in _tables(norm):
        names = _cut(norm[h], spans)
        cmap = map_columns(names)
        if not cmap.has(v.KEY):
            continue
        source = identify_source(names, "powershell_table")
        for i in range(h + 2, len(norm)):
            line = norm[i]
            if not line.strip() or _DASHES.match(line) or (i + 1 < len(norm) and _DASHES.match(norm[i + 1])):
                break
            cells = _cut(line, spans)
            records, problems = read_row(cmap, cells, Locator(file, line=i + 1), source)
            for r in records:
                if any(c.endswith(TRUNCATED) for c in cells):
                    r.notes.append("Format-Table cut a value short: export with Format-List or Export-Csv")
            yield from records
            yield from problems


def _blocks(norm: list[str]) -> Iterator[list[tuple[int, str, str]]]:
    block: list[tuple[int, str, str]] = []
    for number, line in enumerate(norm, 1):
        if not line.strip():
            if block:
                yield block
            block = []
            continue
        m = _PROPERTY.match(line)
        if m:
            if any(name.lower() == m.group(1).lower() for _, name, _ in block):  # the next object, no blank line
                yield block
                block = []
            block.append((number, m.group(1), (m.group(2) or "").strip()))
        elif block and line[:1].isspace():  # a long value wrapped onto the next line
            n, name, value = block[-1]
            block[-1] = (n, name, value + line.strip())
    if block:
        yield block


def read_list(text: str, file: str) -> Iterator[Found]:
    context: dict[str, tuple[str, str]] = {}
    for block in _blocks(lines(normalise(text))):
        names = [name for _, name, _ in block]
        values = [value for _, _, value in block]
        cmap = map_columns(names)
        if not cmap.has(v.KEY):
            for role in _CONTEXT_ROLES:
                for i in cmap.roles.get(role, []):
                    if values[i]:
                        context[role] = (names[i], values[i])
                        break
            continue
        for role, (name, value) in context.items():
            if not cmap.has(role):
                names.append(name)
                values.append(value)
        cmap = map_columns(names)
        key_line = block[cmap.roles[v.KEY][0]][0]
        records, problems = read_row(cmap, values, Locator(file, line=key_line),
                                     identify_source(names, "powershell_list"))
        yield from records
        yield from problems
