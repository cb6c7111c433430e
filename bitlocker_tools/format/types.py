"""The field types BitLocker's structures share: GUIDs and FILETIMEs.

GUIDs are stored in Windows' mixed-endian order (the first three groups little-endian), so a
byte-for-byte hex dump never matches the text Windows prints; :data:`Guid` is the construct
field that reads and writes the text form. FILETIMEs count 100-nanosecond intervals since
1601-01-01 UTC. Both conversions are written here once, for the reader and the forge alike.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from construct import Adapter, Bytes

#: The FILETIME epoch.
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def guid_from_bytes(raw: bytes) -> str:
    """The lowercase text form of a GUID stored mixed-endian."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_to_bytes(text: str) -> bytes:
    """The 16 on-disk bytes of a GUID given as text."""
    return uuid.UUID(text).bytes_le


class _GuidAdapter(Adapter):
    def _decode(self, obj, context, path):
        return guid_from_bytes(obj)

    def _encode(self, obj, context, path):
        return guid_to_bytes(obj)


#: A 16-byte GUID field that parses to (and builds from) its lowercase text form.
Guid = _GuidAdapter(Bytes(16))


def filetime_to_datetime(value: int) -> datetime | None:
    """FILETIME as an aware UTC datetime; None for 0 (never set) or values past year 9999."""
    if not value:
        return None
    try:
        return FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def datetime_to_filetime(when: datetime) -> int:
    """An aware datetime as FILETIME (to the microsecond, as Windows' own values are)."""
    return (when - FILETIME_EPOCH) // timedelta(microseconds=1) * 10


def iso_utc(when: datetime | None) -> str | None:
    """A time as the JSON output and the screen spell it: ISO 8601 in UTC with a ``Z``."""
    return when.isoformat().replace("+00:00", "Z") if when else None
