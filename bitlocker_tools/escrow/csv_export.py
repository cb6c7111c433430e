"""CSV (and tab-separated) key exports: AD scripts, Entra/Intune scripts, CrowdStrike's
``BitLockerKeys.csv``, MBAM/ConfigMgr queries, the legacy Azure portal, the dissect.target
keychain, the Microsoft account page pasted with its header.

The columns are whatever the admin named them, so nothing here knows a layout: the header is
found (it need not be the first line: PowerShell 5.1 writes ``#TYPE ...`` first, a pasted page
has text above its table, sqlcmd a line of dashes below), its columns are given roles by
:mod:`.columns`, the source is named by its columns, and each row is read by :mod:`.rows`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from . import vocabulary as v
from .columns import ColumnMap, compact, identify_source, map_columns
from .record import EscrowProblem, EscrowRecord, Found, Locator
from .rows import read_row
from .text import find_keys, normalise
from .text import lines as split_lines

DELIMITERS = (",", ";", "\t", "|")
GENERIC = "csv"  # the source_type of a CSV no signature names
HEADER_SEARCH = 50  # lines searched for the header
_MAX_FIELD = 16 * 1024 * 1024


@dataclass(frozen=True)
class Header:
    index: int  # 0-based line of the header; -1 when there is none (the keychain)
    delimiter: str
    cmap: ColumnMap
    source_type: str


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def find_header(text: str) -> Header | None:
    """The header of a CSV or TSV export, if ``text`` is one."""
    all_lines = split_lines(text)
    for index, line in enumerate(all_lines[:HEADER_SEARCH]):
        if not line.strip() or line.startswith("#TYPE"):
            continue
        best: tuple[int, str, ColumnMap] | None = None
        for delimiter in DELIMITERS:
            if delimiter not in line:
                continue
            cmap = map_columns(_split(line, delimiter))
            if cmap.usable() and (best is None or len(cmap.roles) > best[0]):
                best = (len(cmap.roles), delimiter, cmap)
        if best is not None:
            _, delimiter, cmap = best
            return Header(index, delimiter, cmap, identify_source(cmap.names, GENERIC))
        if index == 0 or not any(x.strip() for x in all_lines[:index]):
            cells = _split(line, ",")
            if (len(cells) == len(v.KEYCHAIN_HEADER) and compact(cells[0]) in v.KEYCHAIN_PROVIDERS):
                return Header(-1, ",", map_columns(list(v.KEYCHAIN_HEADER)), "keychain_csv")
    return None


def detect(text: str) -> bool:
    return find_header(text) is not None


def _is_decoration(cells: list[str], width: int) -> bool:
    """sqlcmd's dashes under the header, its "(3 rows affected)", a pasted page's stray text."""
    stripped = [c.strip() for c in cells]
    if all(set(c) <= {"-"} for c in stripped) and any(stripped):
        return True
    return width > 1 and len(cells) == 1 and not find_keys(normalise(cells[0]))


def read(text: str, file: str) -> Iterator[Found]:
    """The rows' records and problems. A CSV that no signature names, whose key column has a
    common name ("Password": a password manager's export) and that holds no key at all gives
    nothing: it is not an escrow export, and its rows are not problems."""
    header = find_header(text)
    found = list(_rows(text, file))
    if header is not None and header.source_type == GENERIC and header.cmap.generic_key() and \
            not any(isinstance(f, EscrowRecord) for f in found):
        return
    yield from found


def _rows(text: str, file: str) -> Iterator[Found]:
    header = find_header(text)
    if header is None:
        return
    all_lines = split_lines(text)
    body = all_lines[header.index + 1:]
    csv.field_size_limit(_MAX_FIELD)
    reader = csv.reader((line + "\n" for line in body), delimiter=header.delimiter)
    width = len(header.cmap.names)
    row = 0
    while True:
        start = header.index + 2 + reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row += 1
            yield EscrowProblem(Locator(file, row=row, line=start), f"unreadable CSV row: {exc}")
            continue
        row += 1
        if not cells or _is_decoration(cells, width):
            continue
        records, problems = read_row(header.cmap, cells, Locator(file, row=row, line=start), header.source_type)
        yield from records
        yield from problems
