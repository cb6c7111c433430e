"""Times as escrow sources write them, in UTC.

The matcher compares an escrowed key's time with the protectors' creation times, so a time must
be an instant. Sources that say their zone (AD's CN, LDAP's GeneralizedTime, Graph) are exact;
PowerShell's CSV and table output prints local time in the exporting machine's culture, with
no zone at all, and MBAM's SQL dates have none either. Those are read as UTC and say so in a
note, rather than guessed from the examiner's own zone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2}|UTC|GMT)?$", re.IGNORECASE)
_GENERALIZED = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{4})?$")
_SLASHED = re.compile(
    r"^(\d{1,2})([/.])(\d{1,2})\2(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*([AaPp]\.?[Mm]\.?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?$")
_JSON_DATE = re.compile(r"^/?Date\((-?\d+)([+-]\d{4})?\)/?$")  # PowerShell 5.1 ConvertTo-Json

NAIVE_NOTE = "no time zone given: read as UTC"


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _fraction(text: str | None) -> int:
    return int((text or "0")[:6].ljust(6, "0"))


def parse_time(text: object) -> tuple[datetime | None, str | None]:
    """A time from a source's text: (UTC datetime, a note) or (None, a note) when it cannot be
    read. The note is None for an exact time, :data:`NAIVE_NOTE` when the zone was assumed."""
    if text is None:
        return None, None
    value = str(text).strip()
    if not value:
        return None, None
    try:
        when, zone = _parse(value)
    except ValueError:
        when, zone = None, None
    if when is None:
        return None, f"unreadable time {value!r}"
    if zone is None:
        return when.replace(tzinfo=timezone.utc), NAIVE_NOTE
    return when.replace(tzinfo=zone).astimezone(timezone.utc), None


def _parse(value: str) -> tuple[datetime | None, timezone | None]:
    m = _ISO.match(value)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), _fraction(frac)), _zone(zone)
    m = _GENERALIZED.match(value)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), _fraction(frac)), _zone(zone)
    m = _JSON_DATE.match(value)
    if m:
        return datetime(1970, 1, 1) + timedelta(milliseconds=int(m.group(1))), timezone.utc
    m = _SLASHED.match(value)
    if m:
        a, sep, b, y, h, mi, s, frac, ampm, zone = m.groups()
        # "/" is the US order (PowerShell's invariant culture too) unless the first number cannot
        # be a month; "." is the German/European day-first order
        month, day = (int(a), int(b)) if sep == "/" and int(a) <= 12 else (int(b), int(a))
        hour = int(h or 0)
        if ampm:
            hour = hour % 12 + (12 if ampm[0] in "Pp" else 0)
        return datetime(int(y), month, day, hour, int(mi or 0), int(s or 0), _fraction(frac)), _zone(zone)
    return None, None


def ad_cn_time(text: str) -> datetime | None:
    """The time at the start of AD's ``<timestamp>{<GUID>}`` name (it carries its UTC offset)."""
    when, _ = parse_time(text.split("{", 1)[0])
    return when
