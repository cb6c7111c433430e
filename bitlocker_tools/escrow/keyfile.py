"""Binary key files: the ``.BEK`` startup/recovery key and the FVEK file.

A ``.BEK`` names its protector in its EXTERNAL KEY entry; that GUID, not the file name (files
get renamed, ``key.bek``), is the record's ``key_id``. Its header has a GUID field of its own:
in the files Windows 11 writes it names the volume, so when it differs from the protector's it
is kept as ``volume_guid`` (the matcher can then find the volume even without the protector).
The FVEK file (dislocker's ``-k``, MemProcFS's ``.fvek``) is the u16 method and the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..errors import BadInputError
from ..format.constants import EncryptionMethod
from ..format.keyfiles import BekHeader
from ..format.types import filetime_to_datetime
from ..keyfiles import BEK_HEADER_SIZE, is_fvek_file, parse_bek, parse_fvek_file
from ..metadata import ExternalKeyValue, parse_entries
from .record import FVEK, STARTUP_KEY, EscrowProblem, EscrowRecord, Found, Locator

BEK_EXTENSIONS = (".bek",)
FVEK_EXTENSIONS = (".fvek",)


def is_bek(raw: bytes) -> bool:
    """The shape of a BEK header: version 1, a 48-byte header, sizes that agree."""
    if len(raw) < BEK_HEADER_SIZE + 8:
        return False
    size, version, header_size, size_copy = (int.from_bytes(raw[i:i + 4], "little") for i in range(0, 16, 4))
    return version == 1 and header_size == BEK_HEADER_SIZE and size == size_copy and BEK_HEADER_SIZE < size <= 1 << 16


def is_key_file(raw: bytes, file: str) -> bool:
    """A binary key file, by content; by name only for the ``.BEK`` that is broken (it is still
    one, and says why it cannot be used)."""
    ext = os.path.splitext(file)[1].lower()
    return is_bek(raw) or is_fvek_file(raw) or ext in BEK_EXTENSIONS


def read(raw: bytes, file: str) -> Iterator[Found]:
    if is_fvek_file(raw) and not is_bek(raw):
        method, key = parse_fvek_file(raw)
        yield EscrowRecord(FVEK, "fvek_file", Locator(file), secret=key, encryption_method=EncryptionMethod(method).label)
        return
    try:
        startup = parse_bek(raw, file)
    except BadInputError as exc:
        message = str(exc)
        yield EscrowProblem(Locator(file), message[len(file) + 2:] if message.startswith(f"{file}: ") else message)
        return
    header = BekHeader.parse(raw[:BEK_HEADER_SIZE])
    created = None
    for entry in parse_entries(raw, BEK_HEADER_SIZE, min(len(raw), header.size)):
        if isinstance(entry.value, ExternalKeyValue) and entry.value.guid == startup.guid:
            created = entry.value.creation_time
            break
    record = EscrowRecord(STARTUP_KEY, "bek", Locator(file), key_id=startup.guid, secret=startup.key,
                          created_at=created or filetime_to_datetime(header.creation_time))
    if header.volume_guid != startup.guid:
        record.volume_guid = header.volume_guid
        record.notes.append("the header names another GUID than the protector (a volume's, as Windows 11 writes)")
    yield record
