"""Active Directory's naming of recovery objects: what a DN and a CN say about a key.

An ``msFVE-RecoveryInformation`` object is a child of its computer, named
``<creation time with UTC offset>{<recovery GUID>}``. So its CN gives the Key ID and the time,
and the next RDN of its DN the computer; a computer's own DN gives the computer from its
first RDN. A deleted object (under ``CN=Deleted Objects``) lost its parent; its
``lastKnownParent`` names the computer instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .record import normalise_key_id
from .times import ad_cn_time

_RECOVERY_CN = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)\s*\{([0-9A-Fa-f-]{36})\}")
_RDN = re.compile(r"^\s*([A-Za-z][\w-]*)\s*=\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class RecoveryName:
    """What a recovery object's CN says: its Key ID and when it was made."""

    key_id: str
    created_at: datetime | None


def recovery_names(text: str) -> list[RecoveryName]:
    """Every ``<timestamp>{<GUID>}`` in ``text`` (a script may join several with spaces)."""
    out = []
    for part in re.finditer(r"\d{4}-\d{2}-\d{2}T[^{}\s]*\{[0-9A-Fa-f-]{36}\}", text):
        name = recovery_name(part.group(0))
        if name:
            out.append(name)
    return out


def recovery_name(cn: str) -> RecoveryName | None:
    m = _RECOVERY_CN.match(cn)
    if not m:
        return None
    key_id = normalise_key_id(m.group(2))
    return RecoveryName(key_id, ad_cn_time(cn)) if key_id else None


def split_dn(dn: str) -> list[tuple[str, str]]:
    """The RDNs of a DN as (type, value), commas escaped with a backslash respected, ``\\0A``-style
    escapes (the deleted-object marker) kept as written."""
    parts, current, escaped = [], [], False
    for ch in dn:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    out = []
    for part in parts:
        m = _RDN.match(part)
        if m:
            out.append((m.group(1).upper(), _unescape(m.group(2).strip())))
    return out


def _unescape(value: str) -> str:
    return re.sub(r"\\([,+\"\\<>;=# ])", r"\1", value)


@dataclass(frozen=True)
class DnFacts:
    """What a DN says: the recovery object's name (if it is one), and the computer."""

    recovery: RecoveryName | None
    computer: str | None
    deleted: bool


def dn_facts(dn: str) -> DnFacts:
    rdns = split_dn(dn)
    if not rdns:
        return DnFacts(None, None, False)
    deleted = any(t == "CN" and v.lower() == "deleted objects" for t, v in rdns) or "\\0ADEL:" in dn.upper()
    first = rdns[0][1]
    recovery = recovery_name(first)
    if recovery is None:
        return DnFacts(None, first if rdns[0][0] == "CN" else None, deleted)
    parent = rdns[1] if len(rdns) > 1 else None
    computer = parent[1] if parent and parent[0] == "CN" and not deleted else None
    return DnFacts(recovery, computer, deleted)


def computer_from_dn(dn: str) -> str | None:
    """A computer's name from its own DN (``CN=PC01,OU=...``) or from a child's."""
    facts = dn_facts(dn)
    return facts.computer
