"""``manage-bde -protectors -get`` (and ``-add``) output, captured at the scene or by IT.

The output is localised ("Numerical Password" / "Numerisches Kennwort") and indented
differently by build (4/6/8 spaces on older builds, 4/8/12 on 24H2), so it is read by shape:
an indented ``<label>: {GUID}`` line opens a protector, and a line that is nothing but a key,
indented below it before the protector ends, is that protector's recovery password. Windows 11
24H2 adds "Backup type:" after the password; the value under the first label that follows the
key is kept as ``backup_type``. The ``Volume C: [label]`` line is kept as a note (the label
and drive letter are what the volume's FVE description names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .record import Found, Locator, normalise_key_id
from .text import find_keys, key_record, lines, normalise

_ID_LINE = re.compile(r"^([ \t]+)[^\s:{][^:{]*:[ \t]*\{([0-9A-Fa-f-]{36})\}[ \t]*$")
_LABEL = re.compile(r"^[ \t]+[^\s:][^:]*:[ \t]*$")
_VOLUME = re.compile(r"^\S+[ \t]+([A-Za-z]:|\\\\\?\\Volume\{[0-9A-Fa-f-]{36}\}\\?)[ \t]+\[(.*)\][ \t]*$")
LOOKAHEAD = 3  # lines from the ID to its key, for recognising the output


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _key_alone(line: str) -> bool:
    keys = find_keys(line)
    return len(keys) == 1 and line.strip() == line[keys[0].start:keys[0].end].strip()


def detect(text: str) -> bool:
    norm = lines(normalise(text[:65536]))
    for i, line in enumerate(norm):
        if _ID_LINE.match(line) and any(_key_alone(x) for x in norm[i + 1:i + 1 + LOOKAHEAD]):
            return True
    return False


def read(text: str, file: str) -> Iterator[Found]:
    norm = lines(normalise(text))
    volume: str | None = None
    for i, line in enumerate(norm):
        v = _VOLUME.match(line)
        if v:
            volume = f"volume {v.group(1)} [{v.group(2)}]"
            continue
        m = _ID_LINE.match(line)
        if not m:
            continue
        depth = len(m.group(1).expandtabs())
        key_at, backup = None, None
        j = i + 1
        while j < len(norm) and norm[j].strip() and _indent(norm[j].expandtabs()) >= depth and not _ID_LINE.match(norm[j]):
            if key_at is None and _key_alone(norm[j]):
                key_at = j
            elif key_at is not None and backup is None and _LABEL.match(norm[j]) and j + 1 < len(norm) \
                    and _indent(norm[j + 1].expandtabs()) > _indent(norm[j].expandtabs()) and norm[j + 1].strip():
                backup = norm[j + 1].strip()
            j += 1
        if key_at is None:
            continue
        key = find_keys(norm[key_at])[0]
        record = key_record(key, "manage_bde", Locator(file, line=key_at + 1), key_id=normalise_key_id(m.group(2)),
                            backup_type=backup)
        if volume:
            record.notes.append(volume)
        yield record
