"""Any other text: e-mails, tickets, notes, provider responses, transcripts, a cluster's
``{GUID}:<48 digits>`` property, a localised tool's output.

Every 48-digit key (and every malformed one) is taken, and paired with an identifier by
proximity: on the same line the nearest one (before the key, else after it); otherwise the
last whole GUID or Windows 7 prefix within :data:`LOOKBACK` lines above. An identifier pairs
with one key only, so a list of keys under one heading does not give them all its GUID, and
identifiers above the one taken are dropped (they belong to something else). An
8-hex-digit Key ID counts only on the key's own line (elsewhere it is as likely a hex number).
Labelled hex VMKs and FVEKs are read too (:mod:`.hex_keys`).
"""

from __future__ import annotations

from collections.abc import Iterator

from . import hex_keys
from .record import Found, Locator
from .text import FoundId, find_ids, find_keys, key_record, lines, normalise

LOOKBACK = 3  # lines above a key searched for its identifier
SOURCE = "text"


def read(text: str, file: str) -> Iterator[Found]:
    norm = lines(normalise(text))
    recent: list[tuple[int, FoundId]] = []  # unpaired whole GUIDs and 16-character prefixes above
    for number, line in enumerate(norm, 1):
        recent = [(n, f) for n, f in recent if number - n <= LOOKBACK]
        keys = find_keys(line)
        ids = [f for f in find_ids(line) if not any(f.start < k.end and f.end > k.start for k in keys)]
        used: set[int] = set()
        for index, key in enumerate(keys):
            limit_before = keys[index - 1].end if index else 0
            limit_after = keys[index + 1].start if index + 1 < len(keys) else len(line)
            before = [i for i, f in enumerate(ids) if i not in used and limit_before <= f.start and f.end <= key.start]
            after = [i for i, f in enumerate(ids) if i not in used and key.end <= f.start and f.end <= limit_after]
            key_id = None
            if before or after:
                pick = before[-1] if before else after[0]
                used.add(pick)
                key_id = ids[pick].key_id
            elif recent:
                key_id = recent[-1][1].key_id
                recent = []  # what stood above the identifier belongs to something else
            record = key_record(key, SOURCE, Locator(file, line=number), key_id=key_id)
            if key_id is not None:
                record.notes.append("identifier paired by proximity")
            yield record
        recent += [(number, f) for i, f in enumerate(ids) if i not in used and (f.full or len(f.key_id) == 16)]
    yield from hex_keys.read_lines(norm, file)
