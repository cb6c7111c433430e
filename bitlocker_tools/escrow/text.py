"""Text as the importers need it: decoded whatever wrote it, split into lines the way an editor
counts them, normalised, and searched for keys and identifiers.

Keys arrive typed, copied from PDFs and e-mails, and mistyped. A 48-digit key is therefore
found leniently (:data:`.patterns.DASHED_RUN` and friends) and then classified: well formed, or
malformed with the failing groups named, so that a typo is reported where it is ("group 3 of
line 12") instead of silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..recovery_password import GROUPS, RecoveryPassword, group_is_valid
from . import patterns
from .record import RECOVERY_PASSWORD, EscrowRecord, Locator, normalise_key_id

BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def decode(raw: bytes) -> tuple[str, str]:
    """``raw`` as text, and the encoding used. Windows writes these files as UTF-16LE with a BOM
    (the TXT file, ``Out-File`` in PowerShell 5.1), UTF-8 with or without one (Notepad, newer
    PowerShell), or the ANSI code page (``cmd >``): a BOM decides, then NULs in every other byte
    (UTF-16 without a BOM), then strict UTF-8, then cp1252."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding, "replace"), encoding + "-bom"
    sample = raw[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > len(sample) // 4 and even == 0:
            return raw.decode("utf-16-le", "replace"), "utf-16-le"
        if even > len(sample) // 4 and odd == 0:
            return raw.decode("utf-16-be", "replace"), "utf-16-be"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace"), "cp1252"


def looks_like_text(raw: bytes, text: str) -> bool:
    """Whether decoded bytes are text at all: few control characters (a binary file decoded as
    cp1252 is full of them)."""
    if not raw:
        return True
    sample = text[:8192]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\r\n\f\v") + sample.count("\ufffd")
    return controls <= max(2, len(sample) // 100)


def lines(text: str) -> list[str]:
    """The lines of ``text`` as an editor numbers them (CRLF, LF or CR; index 0 is line 1)."""
    return patterns.LINE_BREAK.split(text)


def normalise(text: str) -> str:
    """Unicode dashes and spaces as ASCII, character for character (offsets do not move)."""
    return text.translate(patterns.NORMALISE)


# --- keys -----------------------------------------------------------------------------------------------


@dataclass
class FoundKey:
    """A 48-digit key (or what was meant to be one) found in a string."""

    start: int
    end: int
    raw: str
    password: RecoveryPassword | None = None
    bad_groups: list[int] = field(default_factory=list)
    defect: str | None = None


def classify_digits(raw: str, groups: list[str]) -> FoundKey | None:
    """A run of digit ``groups`` as written (``raw``): a key, a malformed key, or None for a run
    that is no key at all (too few or too many groups or digits, like a date or a number table).

    Separators are not trusted: 48 digits are a key however they are grouped. Otherwise eight
    groups are checked one by one (a group of the wrong length fails), and 7 or 9 groups are a
    key with a group lost or doubled, kept for repair."""
    digits = "".join(groups)
    if len(digits) == 48:
        six = [digits[i:i + 6] for i in range(0, 48, 6)]
        bad = [i + 1 for i, g in enumerate(six) if not group_is_valid(int(g))]
        if not bad:
            return FoundKey(0, 0, raw, RecoveryPassword(tuple(int(g) for g in six)))
        if len(groups) == 1:
            return FoundKey(0, 0, raw, None, bad, _fails(bad) + " (48 digits without separators, read in sixes)")
        if len(groups) != GROUPS:  # 48 digits grouped otherwise: the regrouping is the best guess
            return FoundKey(0, 0, raw, None, bad,
                            _fails(bad) + " (the digits regrouped in sixes: separators were misplaced)")
        # eight groups as written: a digit lost in one and one added in another says more than a regrouping
    if len(groups) == 1:
        if len(digits) in (47, 49):
            return FoundKey(0, 0, raw, None, [], f"{len(digits)} digits without separators; a key has 48")
        return None
    if len(groups) not in patterns.RUN_GROUPS or len(digits) not in patterns.RUN_DIGITS:
        return None
    bad = [i + 1 for i, g in enumerate(groups[:GROUPS]) if len(g) != 6 or not group_is_valid(int(g))]
    if len(groups) != GROUPS:
        more = f"; {_fails(bad)}" if bad else ""
        return FoundKey(0, 0, raw, None, bad, f"{len(groups)} groups; a key has 8{more}")
    lengths = [i + 1 for i, g in enumerate(groups) if len(g) != 6]
    checks = [i for i in bad if i not in lengths]
    parts = [_lengths(groups, lengths) + " (each of the 8 groups has 6)" if lengths else "",
             _fails(checks) if checks else ""]
    return FoundKey(0, 0, raw, None, bad, "; ".join(p for p in parts if p))


def _lengths(groups: list[str], which: list[int]) -> str:
    sizes = {len(groups[i - 1]) for i in which}
    if len(which) > 1 and len(sizes) == 1:
        return f"groups {', '.join(map(str, which))} have {sizes.pop()} digits"
    return ", ".join(f"group {i} has {len(groups[i - 1])} digits" for i in which)


def _fails(bad: list[int]) -> str:
    which = f"group {bad[0]}" if len(bad) == 1 else "groups " + ", ".join(map(str, bad))
    return f"{which} {'fails' if len(bad) == 1 else 'fail'} the check (a multiple of 11 below 720896)"


_STRICT = re.compile(r"(?<![0-9])[0-9]{6}(?:-[0-9]{6}){7}(?![0-9])")
_SHORT_END = 3  # digits: a group this short at either end of a longer run is a number ("1-", "item 7-"), not a group


def _trim_numbering(run: str, start: int) -> tuple[int, int]:
    """The run without short numbers glued to its ends by a dash, as long as 8 groups remain."""
    parts = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", run)]
    while len(parts) > GROUPS and parts[0][1] - parts[0][0] <= _SHORT_END:
        parts = parts[1:]
    while len(parts) > GROUPS and parts[-1][1] - parts[-1][0] <= _SHORT_END:
        parts = parts[:-1]
    return start + parts[0][0], start + parts[-1][1]


def find_keys(line: str) -> list[FoundKey]:
    """Every key (well formed or not) in one normalised line, in order of position."""
    found: list[FoundKey] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in patterns.DASHED_RUN.finditer(line):
        start, end = _trim_numbering(m.group(0), m.start())
        key = classify_digits(line[start:end], re.findall(r"[0-9]+", line[start:end]))
        if key is not None:
            key.start, key.end = start, end
            found.append(key)
            taken.append((start, end))
            continue
        for inner in _STRICT.finditer(m.group(0)):  # a key glued to other numbers ("1-004928-...")
            key = classify_digits(inner.group(0), inner.group(0).split("-"))
            if key is not None:
                key.start, key.end = m.start() + inner.start(), m.start() + inner.end()
                found.append(key)
                taken.append((key.start, key.end))
    for m in patterns.SPACED_RUN.finditer(line):
        if not free(*m.span()):
            continue
        groups = m.group(0).split()
        if len(groups) > GROUPS and len(groups) % GROUPS == 0 and all(len(g) == 6 for g in groups):
            # several keys in a row, separated by spaces like their groups
            spans = [(g.start() + m.start(), g.end() + m.start()) for g in re.finditer(r"[0-9]+", m.group(0))]
            for i in range(0, len(spans), GROUPS):
                start, end = spans[i][0], spans[i + GROUPS - 1][1]
                key = classify_digits(line[start:end], groups[i:i + GROUPS])
                if key is not None:
                    key.start, key.end = start, end
                    found.append(key)
            taken.append(m.span())
            continue
        key = classify_digits(m.group(0), groups)
        if key is not None:
            key.start, key.end = m.span()
            found.append(key)
            taken.append(m.span())
    for m in patterns.BARE_RUN.finditer(line):
        if free(*m.span()):
            key = classify_digits(m.group(0), [m.group(0)])
            if key is not None:
                key.start, key.end = m.span()
                found.append(key)
    return sorted(found, key=lambda k: k.start)


def key_record(key: FoundKey, source_type: str, locator: Locator, **fields: object) -> EscrowRecord:
    """The record of a found 48-digit key; ``fields`` are the other record fields."""
    record = EscrowRecord(RECOVERY_PASSWORD, source_type, locator, **fields)  # type: ignore[arg-type]
    record.recovery_password = key.password
    if key.password is None:
        record.raw, record.bad_groups, record.defect = key.raw.strip(), list(key.bad_groups), key.defect
    return record


# --- identifiers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundId:
    """An identifier in a string: a whole GUID, or a prefix of one (``key_id`` normalised)."""

    start: int
    end: int
    key_id: str

    @property
    def full(self) -> bool:
        return len(self.key_id) == 36


def find_guids(line: str) -> list[FoundId]:
    """Whole GUIDs in a line, braces or not."""
    out = []
    for m in patterns.GUID.finditer(line):
        key_id = normalise_key_id(m.group(1))
        if key_id:
            out.append(FoundId(m.start(), m.end(), key_id))
    return out


def find_ids(line: str, short: bool = True) -> list[FoundId]:
    """GUIDs and, if ``short``, Windows 7's 16-character prefixes and 8-hex-digit Key IDs with a
    letter among them (in free text an all-digit 8-digit token is as likely a date)."""
    out = find_guids(line)
    if short:
        taken = [(f.start, f.end) for f in out]
        for pattern in (patterns.WIN7_PREFIX, patterns.KEY_ID_8):
            for m in pattern.finditer(line):
                if any(m.start() < e and m.end() > s for s, e in taken):
                    continue
                if pattern is patterns.KEY_ID_8 and m.group(0).isdigit():
                    continue
                key_id = normalise_key_id(m.group(0))
                if key_id:
                    out.append(FoundId(m.start(), m.end(), key_id))
                    taken.append(m.span())
    return sorted(out, key=lambda f: f.start)


def cell_ids(value: str) -> list[str]:
    """Every identifier in a table cell, in order: GUIDs, else one prefix (the cell is the Key ID
    column, so an all-digit 8-digit ID counts here)."""
    text = normalise(value).strip()
    guids = [f.key_id for f in find_guids(text)]
    if guids:
        return guids
    key_id = normalise_key_id(text)
    return [key_id] if key_id else []


def name_hint(file_name: str) -> str | None:
    """The identifier a file name carries (``BitLocker Recovery Key <ID>.TXT``, ``<GUID>.BEK``),
    a hint only: files get renamed and Windows sometimes cuts the ID."""
    for m in patterns.NAME_ID.finditer(file_name):
        if "-" in m.group(0) or not m.group(0).isdigit():  # "20250302" is a date, not an ID
            return normalise_key_id(m.group(0))
    return None
