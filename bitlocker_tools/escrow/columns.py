"""The header-name heuristic every tabular importer shares: which column holds the key, the
Key ID, the computer, the date, the volume type; and which source a set of columns comes from.

One heuristic for CSV, the Microsoft account page (pasted or saved), PowerShell's tables and
lists and JSON objects, so that a column named ``RecoveryKeyId`` means the same everywhere and a
new export shape needs a word in :mod:`.vocabulary`, not a new parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import vocabulary as v

MAX_NAME = 48  # characters in a column name


def compact(name: str) -> str:
    """A header in the spelling the vocabulary uses: lowercase letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.strip().strip('"').lower())


def role_of(name: str) -> tuple[str, int] | None:
    """(role, rank) of one column name, or None for a column the importers do not use."""
    c = compact(name)
    if not c:
        return None
    if c in v.EXACT:
        return v.EXACT[c]
    for needed, forbidden, role in v.FUZZY:
        if role in v.NOT_IDENTIFIERS and c.endswith(("id", "guid")):
            continue  # "ComputerObjectId", "DeviceKeyGuid" are identifiers, whatever else they name
        if all(w in c for w in needed) and not any(w in c for w in forbidden):
            return role, 5
    return None


@dataclass
class ColumnMap:
    """The columns of one header, by role; each role's columns best first."""

    names: list[str]
    roles: dict[str, list[int]] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)  # each role's best rank (0: a name only it has)

    def has(self, role: str) -> bool:
        return bool(self.roles.get(role))

    def usable(self) -> bool:
        """A header worth reading rows by: a key column and something else we understand, and
        names short enough to be names (a sentence with commas is not a header)."""
        known = [r for r in self.roles if r != v.IGNORE]
        return self.has(v.KEY) and len(known) >= 2 and all(len(n.strip()) <= MAX_NAME for n in self.names)

    def generic_key(self) -> bool:
        """The key column has a name other exports use for other things ("Key", "Password")."""
        return self.ranks.get(v.KEY, 0) > 0


def map_columns(names: list[str]) -> ColumnMap:
    """Roles for a header's column names."""
    ranked: dict[str, list[tuple[int, int]]] = {}
    for index, name in enumerate(names):
        found = role_of(name)
        if found is not None:
            ranked.setdefault(found[0], []).append((found[1], index))
    for index, name in enumerate(names):
        conditional = v.CONDITIONAL.get(compact(name))
        if conditional is not None and conditional[2] in ranked:
            ranked.setdefault(conditional[0], []).append((conditional[1], index))
    roles = {role: [i for _, i in sorted(items)] for role, items in ranked.items()}
    return ColumnMap(list(names), roles, {role: min(r for r, _ in items) for role, items in ranked.items()})


def identify_source(names: list[str], default: str = "csv") -> str:
    """The source a header comes from, by its columns (:data:`.vocabulary.SIGNATURES`)."""
    have = {compact(n) for n in names}
    for prefix, source in v.SIGNATURE_PREFIXES:
        if any(h.startswith(prefix) for h in have):
            return source
    for source, needed in v.SIGNATURES:
        if needed <= have:
            return source
    return default
