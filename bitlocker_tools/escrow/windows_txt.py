"""The recovery-key file Windows saves: ``BitLocker Recovery Key <ID>.TXT``.

Windows writes it as UTF-16LE with a BOM and CRLF, the values TAB-indented (Windows 8+), or
with "Recovery key identification: <16 characters>" and "Full recovery key identification:
<GUID>" (Windows 7); users re-save it as UTF-8. Its words are translated ("Bezeichner:",
"Wiederherstellungsschlüssel:"), so it is recognised by shape alone: one key, alone on its
line, and before it an identifier that ends its line (a whole GUID, else Windows 7's 16
characters). The file name's ID is a
hint only; it is used when the file has none, and a disagreement is noted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .record import Found, Locator
from .text import FoundId, FoundKey, find_ids, find_keys, key_record, lines, name_hint, normalise

MAX_CHARS = 16 * 1024  # the real file is about 700 characters


def _scan(text: str) -> tuple[list[tuple[int, FoundKey]], list[tuple[int, FoundId]]]:
    """The keys, and the identifiers that end their line (alone, or after a label)."""
    keys: list[tuple[int, FoundKey]] = []
    ids: list[tuple[int, FoundId]] = []
    for number, line in enumerate(lines(normalise(text)), 1):
        keys += [(number, k) for k in find_keys(line)]
        ids += [(number, f) for f in find_ids(line)
                if (f.full or len(f.key_id) == 16) and not line[f.end:].strip()]
    return keys, ids


def _alone(line: str, key: FoundKey) -> bool:
    return not line[:key.start].strip() and not line[key.end:].strip()


def detect(text: str, file: str = "") -> bool:
    if len(text) > MAX_CHARS:
        return False
    keys, ids = _scan(text)
    if len(keys) != 1 or not _alone(lines(normalise(text))[keys[0][0] - 1], keys[0][1]):
        return False
    key_line = keys[0][0]
    return any(n <= key_line for n, _ in ids) or name_hint(os.path.basename(file)) is not None


def read(text: str, file: str) -> Iterator[Found]:
    keys, ids = _scan(text)
    if not keys:
        return
    key_line, key = keys[0]
    before = [f for n, f in ids if n <= key_line]
    full = [f for f in before if f.full]
    short = [f for f in before if not f.full]
    notes: list[str] = []
    key_id = full[0].key_id if full else short[0].key_id if short else None
    if short and full and not full[0].key_id.startswith(short[0].key_id):
        notes.append(f"the 16-character identification {short[0].key_id} is not the start of "
                     f"the full one {key_id}")
    elif short:
        notes.append("Windows 7 layout (16-character recovery key identification)")
    hint = name_hint(os.path.basename(file))
    if key_id is None and hint is not None:
        key_id = hint
        notes.append("identifier taken from the file name")
    elif hint is not None and key_id is not None and not key_id.startswith(hint) and not hint.startswith(key_id):
        notes.append(f"the file name names identifier {hint}, the file {key_id}")
    record = key_record(key, "windows_txt", Locator(file, line=key_line), key_id=key_id)
    record.notes = notes
    yield record
