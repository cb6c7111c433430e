"""The Microsoft account's "BitLocker recovery keys" page (aka.ms/myrecoverykey): device name,
Key ID (8 hex digits), recovery key, drive, key upload date, for every key the account ever
uploaded. It has no export button: examiners copy the table from the browser (tab-separated
text) or save the page (HTML).

A saved page's tables are read by their header cells through :mod:`.columns`; a pasted table
with its English header is a TSV and read by :mod:`.csv_export`. Without a header that the
vocabulary knows (the page is localised), each row is read by the shape of its cells: the one
holding a key, the one that is a Key ID, a drive word (OSV, FDV, "Operating system drive"), a
date, and the device name as the first cell left over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

from .columns import identify_source, map_columns
from .record import VOLUME_TYPES, Found, Locator, normalise_volume_type
from .rows import read_row
from .text import cell_ids, find_keys, lines, normalise
from .times import parse_time

#: The names a row read by shape is given, one per role (English, as the vocabulary knows them).
SHAPE_NAMES = ("Device name", "Key ID", "Recovery key", "Drive", "Key upload date")
_HTML = re.compile(r"<(?:!doctype\s+html|html|table)\b", re.IGNORECASE)


def shape_row(cells: list[str]) -> list[str] | None:
    """A header-less row's cells in :data:`SHAPE_NAMES` order, or None when it holds no key and
    Key ID."""
    norm = [normalise(c).strip() for c in cells]
    key = next((i for i, c in enumerate(norm) if find_keys(c)), None)
    if key is None:
        return None
    ident = next((i for i, c in enumerate(norm) if i != key and cell_ids(c)), None)
    if ident is None:
        return None
    rest = [i for i in range(len(norm)) if i not in (key, ident) and norm[i]]
    drive = next((i for i in rest if normalise_volume_type(norm[i]) in VOLUME_TYPES.values()), None)
    rest = [i for i in rest if i != drive]
    date = next((i for i in rest if parse_time(norm[i])[0] is not None), None)
    rest = [i for i in rest if i != date]
    device = rest[0] if rest else None
    return [norm[i] if i is not None else "" for i in (device, ident, key, drive, date)]


def detect_text(text: str) -> bool:
    return any("\t" in line and shape_row(line.split("\t")) for line in lines(text[:65536]))


def read_text(text: str, file: str) -> Iterator[Found]:
    cmap = map_columns(list(SHAPE_NAMES))
    for number, line in enumerate(lines(text), 1):
        if "\t" not in line:
            continue
        cells = shape_row(line.split("\t"))
        if cells is None:
            continue
        records, problems = read_row(cmap, cells, Locator(file, line=number), "msa_text")
        yield from records
        yield from problems


# --- the saved page --------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Every table's rows: (line of the <tr>, cells, whether they were <th>)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[tuple[int, list[str], bool]]] = []
        self._stack: list[list[tuple[int, list[str], bool]]] = []
        self._row: tuple[int, list[str], bool] | None = None
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._finish_row()
            self._row = (self.getpos()[0], [], False)
        elif tag in ("td", "th") and self._row is not None:
            self._finish_cell()
            self._cell = []
            if tag == "th":
                self._row = (self._row[0], self._row[1], True)
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th"):
            self._finish_cell()
        elif tag == "tr":
            self._finish_row()
        elif tag == "table" and self._stack:
            self._finish_row()
            self.tables.append(self._stack.pop())

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._skip:
            self._cell.append(data)

    def _finish_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row[1].append(" ".join("".join(self._cell).split()))
        self._cell = None

    def _finish_row(self) -> None:
        self._finish_cell()
        if self._row is not None and self._stack:
            self._stack[-1].append(self._row)
        self._row = None


def detect_html(text: str) -> bool:
    return bool(_HTML.search(text[:65536]))


def read_html(text: str, file: str) -> Iterator[Found]:
    parser = _Tables()
    parser.feed(text)
    parser.close()
    for table in parser.tables:
        if not table:
            continue
        header_at = next((i for i, (_, cells, th) in enumerate(table) if th or map_columns(cells).usable()), -1)
        cmap = map_columns(table[header_at][1]) if header_at >= 0 else None
        if cmap is not None and cmap.usable():
            source = identify_source(cmap.names, "html_table").replace("msa_text", "msa_html")
            for row, (line, cells, _) in enumerate(table[header_at + 1:], 1):
                records, problems = read_row(cmap, cells, Locator(file, row=row, line=line), source)
                yield from records
                yield from problems
            continue
        shape = map_columns(list(SHAPE_NAMES))
        for row, (line, cells, _) in enumerate(table, 1):
            ordered = shape_row(cells)
            if ordered is not None:
                records, problems = read_row(shape, ordered, Locator(file, row=row, line=line), "msa_html")
                yield from records
                yield from problems
