"""The space of recovery passwords a remembered, smudged or mistyped key may be, most likely first.

Each 6-digit group of a recovery password is 11 × a 16-bit word, so only 65,536 of the 10^6
six-digit strings are valid groups, and the groups are independent. A pattern says what is known
of each digit (a digit, a set ``[147]``, or ``?``); the search space is then, group by group, the
valid words that fit, and a key is a choice of one word per group. The errors people make widen
it, each "change" costing one:

* ``typos``: up to that many digits of the whole key differ from the pattern (a digit outside its
  set); counted per group as the number of such digits, so a candidate's typo count is exact;
* ``swaps``: one adjacent transposition somewhere in the key, in a group that then has no typo;
* ``any_order``: the groups in another order (a key read out of order); order by how many
  groups moved, identity first.

A key costs as much as its cheapest reading, and the space comes out in order of cost (with
``any_order``: by how many groups moved, then by cost). A swap stays inside one group: one
across the dash between two groups, or two swaps, is not in the space (``--typos 2`` covers both,
at a larger space).

The space is enumerated in *blocks*: products of one word list per group, each list homogeneous
in its cost, so a block's size is a product, sizes and skips are arithmetic, and every key of
the space is produced exactly once, in the block of its cheapest reading (:func:`pattern_blocks`;
any-order keys are deduplicated by value). Candidates come out as
16-byte keys (the eight words, little-endian), the input of the core's batched stretch.

Slices for many machines (``shard``) take every N-th candidate of the one ordered sequence, so
each slice starts with its share of the most likely keys; a resumed search skips a count of
candidates, which is arithmetic on block sizes.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .errors import CredentialFormatError
from .recovery_password import GROUP_LIMIT, GROUPS, RecoveryPassword, group_is_valid

DIGITS = frozenset("0123456789")
GROUP_DIGITS = 6
#: Words per group (0..65535): each is the group value / 11.
WORDS = GROUP_LIMIT // 11
#: The digits of every valid group value, one row per word (computed per search, cheap).
_POWERS = 10 ** np.arange(GROUP_DIGITS - 1, -1, -1)
_TOKEN = re.compile(r"\[([0-9]+)\]|([0-9?])")


@dataclass(frozen=True)
class GroupPattern:
    """What is known of one group: per digit, the digits it may be."""

    allowed: tuple[frozenset[str], ...]

    @property
    def text(self) -> str:
        return "".join("?" if a == DIGITS else next(iter(a)) if len(a) == 1 else "[" + "".join(sorted(a)) + "]"
                       for a in self.allowed)


@dataclass(frozen=True)
class Pattern:
    groups: tuple[GroupPattern, ...]

    def __str__(self) -> str:
        return "-".join(g.text for g in self.groups)


_SET = re.compile(r"\[([^\]]*)\]")
_RANGE = re.compile(r"([0-9])[\u2010-\u2015-]([0-9])")


def _expand_set(m: re.Match) -> str:
    """``[1-4]`` is ``[1234]``: expanded before dashes are dropped as group separators (which
    would make it ``[14]``)."""
    def expand(r: re.Match) -> str:
        if r[1] > r[2]:
            raise CredentialFormatError(f"pattern: set {m[0]!r}: the range {r[0]} runs backwards; write [{r[2]}-{r[1]}]")
        return "".join(str(d) for d in range(int(r[1]), int(r[2]) + 1))

    body = _RANGE.sub(expand, m[1].replace(" ", ""))
    if not body or not body.isdigit():
        raise CredentialFormatError(f"pattern: set {m[0]!r}: digits and ranges, e.g. [147] or [1-4]")
    return "[" + body + "]"


def parse_pattern(text: str) -> Pattern:
    """A key as remembered: digits, ``?`` for an unknown digit, ``[147]`` or ``[1-4]`` for one of
    a set; with or without dashes between the groups. Raises CredentialFormatError saying what
    is wrong."""
    cleaned = re.sub(r"[\s\u2010-\u2015-]", "", _SET.sub(_expand_set, text.strip()))
    positions: list[frozenset[str]] = []
    pos = 0
    while pos < len(cleaned):
        m = _TOKEN.match(cleaned, pos)
        if not m:
            raise CredentialFormatError(f"pattern: unexpected {cleaned[pos]!r} at character {pos + 1}: use digits, "
                                        "? for an unknown digit and [147] for one of a set")
        positions.append(frozenset(m.group(1)) if m.group(1) else DIGITS if m.group(2) == "?" else frozenset(m.group(2)))
        pos = m.end()
    if len(positions) != GROUPS * GROUP_DIGITS:
        raise CredentialFormatError(f"pattern: {len(positions)} digits; a recovery password has 48 (8 groups of 6)")
    return Pattern(tuple(GroupPattern(tuple(positions[i : i + GROUP_DIGITS]))
                         for i in range(0, len(positions), GROUP_DIGITS)))


def _digit_table() -> np.ndarray:
    values = np.arange(WORDS, dtype=np.int64) * 11
    return (values[:, None] // _POWERS) % 10  # shape (65536, 6)


def _mask(allowed: frozenset[str], column: np.ndarray) -> np.ndarray:
    return np.isin(column, [int(d) for d in allowed])


@dataclass(frozen=True)
class GroupTable:
    """The candidate words of one group: by number of typos, and the words one adjacent swap of
    the pattern gives (with no typo), by how many digits they differ from the pattern."""

    by_typos: tuple[tuple[int, ...], ...]  # index t: words with exactly t digits outside the pattern
    swapped: tuple[tuple[int, ...], ...]  # index h: swap words that differ from the pattern in h digits
    swap_words: frozenset[int]


def group_table(group: GroupPattern, max_typos: int, swaps: bool, digits: np.ndarray | None = None) -> GroupTable:
    digits = _digit_table() if digits is None else digits
    fits = np.stack([_mask(a, digits[:, i]) for i, a in enumerate(group.allowed)], axis=1)
    misses = GROUP_DIGITS - fits.sum(axis=1)
    by_typos = tuple(tuple(np.flatnonzero(misses == t).tolist()) for t in range(min(max_typos, GROUP_DIGITS) + 1))
    swap = np.zeros(WORDS, dtype=bool)
    if swaps:
        for i in range(GROUP_DIGITS - 1):
            ok = _mask(group.allowed[i + 1], digits[:, i]) & _mask(group.allowed[i], digits[:, i + 1])
            ok &= np.delete(fits, [i, i + 1], axis=1).all(axis=1)
            swap |= ok
    swapped = tuple(tuple(np.flatnonzero(swap & (misses == h)).tolist()) for h in range(GROUP_DIGITS + 1))
    return GroupTable(by_typos, swapped, frozenset(np.flatnonzero(swap).tolist()))


@dataclass(frozen=True)
class Block:
    """A product of one word list per group, in this order, and the number of changes its keys
    carry (for the most-likely-first order)."""

    lists: tuple[tuple[int, ...], ...]
    changes: int

    @property
    def size(self) -> int:
        n = 1
        for words in self.lists:
            n *= len(words)
        return n


def _compositions(total: int, parts: int, cap: int) -> Iterator[tuple[int, ...]]:
    """Every way to write ``total`` as ``parts`` numbers in 0..cap, in lexicographic order."""
    if parts == 0:
        if total == 0:
            yield ()
        return
    for first in range(min(total, cap) + 1):
        for rest in _compositions(total - first, parts - 1, cap):
            yield (first, *rest)


def _split(words: tuple[int, ...], swap_words: frozenset[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The words a swap could also explain, and the others."""
    return tuple(w for w in words if w in swap_words), tuple(w for w in words if w not in swap_words)


def pattern_blocks(tables: Sequence[GroupTable], typos: int, swaps: bool) -> Iterator[Block]:
    """The blocks of one group order, fewest changes first; every key once, in the block of its
    cheapest reading.

    A key can be read as typos alone (cost: its typo count T, if T ≤ ``typos``) or, for each group
    g whose word a swap of the pattern gives, as that swap plus typos elsewhere (cost 1 + T − t_g,
    if T − t_g ≤ ``typos``). Its cost is the cheapest reading's; on a tie the typo reading owns
    it, then the lowest swapped group. So a typo block leaves out, in its groups with two or more
    typos, the words a swap explains (cheaper read as a swap); and the swap block of group g
    leaves out the keys whose typo reading is as cheap, and, in another group h, the swap words
    that would make h's reading cheaper, or as cheap with h below g. Each block stays one product.
    """
    cap = min(typos, GROUP_DIGITS)
    for changes in range(typos + (1 if swaps else 0) + 1):
        if changes <= typos:
            for counts in _compositions(changes, GROUPS, cap):
                lists = []
                for g, t in enumerate(counts):
                    words = tables[g].by_typos[t]
                    lists.append(_split(words, tables[g].swap_words)[1] if swaps and t >= 2 else words)
                if all(lists):
                    yield Block(tuple(lists), changes)
        if not swaps or changes == 0:
            continue
        for g in range(GROUPS):
            others = [h for h in range(GROUPS) if h != g]
            for counts in _compositions(changes - 1, GROUPS - 1, cap):
                t = dict(zip(others, counts))
                for h_g, words_g in enumerate(tables[g].swapped):
                    total = h_g + changes - 1  # the key's typo count T
                    if not words_g or (h_g <= 1 and total <= typos):
                        continue  # empty, or the typo reading is as cheap (cost T ≤ changes) and fits
                    lists = []
                    for k in range(GROUPS):
                        if k == g:
                            lists.append(words_g)
                            continue
                        words = tables[k].by_typos[t[k]]
                        # k's own swap reading costs changes + h_g − t[k]: cheaper, or tied and lower
                        beaten = (t[k] > h_g or (t[k] == h_g and k < g)) and total - t[k] <= typos
                        lists.append(_split(words, tables[k].swap_words)[1] if beaten else words)
                    if all(lists):
                        yield Block(tuple(lists), changes)


def orders(any_order: bool) -> Iterator[tuple[int, ...]]:
    """Group orders to try: the given one, then (any_order) every other permutation by how many
    groups it moves (two swapped groups first), each class in lexicographic order."""
    identity = tuple(range(GROUPS))
    yield identity
    if not any_order:
        return
    by_moved: dict[int, list[tuple[int, ...]]] = {}
    for perm in itertools.permutations(identity):
        moved = sum(1 for i, p in enumerate(perm) if i != p)
        if moved:
            by_moved.setdefault(moved, []).append(perm)
    for moved in sorted(by_moved):
        yield from by_moved[moved]


@dataclass(frozen=True)
class SearchSpace:
    """A pattern and the changes allowed: the ordered sequence of candidate keys."""

    pattern: Pattern
    typos: int = 0
    swaps: bool = False
    any_order: bool = False

    #: any-order spaces are deduplicated by value in memory; past this they are refused
    MAX_ANY_ORDER = 4_000_000

    def tables(self) -> list[GroupTable]:
        digits = _digit_table()
        return [group_table(g, self.typos, self.swaps, digits) for g in self.pattern.groups]

    def blocks(self) -> Iterator[Block]:
        tables = self.tables()
        for perm in orders(self.any_order):
            permuted = [tables[p] for p in perm]
            yield from pattern_blocks(permuted, self.typos, self.swaps)

    def upper_bound(self) -> int:
        """The number of keys the blocks hold (the exact size unless any_order, where the same
        key can come from two orders)."""
        return sum(b.size for b in self.blocks())

    def size(self) -> int:
        """The exact number of distinct candidates."""
        if not self.any_order:
            return self.upper_bound()
        return sum(len(chunk) // 16 for chunk in self.keys())

    def check(self) -> None:
        if not self.any_order:
            return
        bound = self.upper_bound()
        if bound > self.MAX_ANY_ORDER:
            raise CredentialFormatError(
                f"pattern: with --any-order the space holds {bound:,} keys before duplicates are "
                f"removed, more than {self.MAX_ANY_ORDER:,}: fix the order of some groups or narrow the pattern")

    def keys(self, start: int = 0, shard: tuple[int, int] = (1, 1), chunk: int = 4096,
             core=None) -> Iterator[bytes]:
        """The candidates as concatenated 16-byte keys, in order, from the ``start``-th candidate of
        this shard on, in pieces of ``chunk`` keys (the last may be shorter: small blocks are
        joined, so the batched stretch always gets full batches); ``shard`` (K, N) keeps every
        N-th candidate of the whole sequence, the first being its (K-1)-th."""
        pending = bytearray()
        for piece in self._pieces(start, shard, chunk, core):
            pending += piece
            while len(pending) >= chunk * 16:
                yield bytes(pending[: chunk * 16])
                del pending[: chunk * 16]
        if pending:
            yield bytes(pending)

    def _pieces(self, start: int, shard: tuple[int, int], chunk: int, core) -> Iterator[bytes]:
        from ._core import load

        core = core or load()
        k, n = shard
        seen: set[bytes] | None = set() if self.any_order else None
        index = 0  # position in the whole sequence
        taken = 0  # candidates of this shard so far
        for block in self.blocks():
            size = block.size
            if seen is None:
                first = (k - 1 - index) % n
                mine = 0 if first >= size else (size - 1 - first) // n + 1
                if taken + mine <= start:  # the whole block precedes the resume point
                    taken += mine
                    index += size
                    continue
            for part in _subblocks(block, chunk):
                raw = core.expand_groups(part)
                m = len(raw) // 16
                if seen is not None:
                    rows = [raw[i * 16 : i * 16 + 16] for i in range(m)]
                    fresh = [r for r in rows if r not in seen]
                    seen.update(fresh)
                    raw, m = b"".join(fresh), len(fresh)
                first = (k - 1 - index) % n
                picked = np.frombuffer(raw, dtype=np.uint8).reshape(m, 16)[first::n] if m else np.zeros((0, 16), np.uint8)
                index += m
                skip = max(0, start - taken)
                taken += len(picked)
                if skip < len(picked):
                    yield picked[skip:].tobytes()


def _subblocks(block: Block, chunk: int) -> Iterator[tuple[tuple[int, ...], ...]]:
    """The block cut into products of at most about ``chunk`` keys, in its own order, by fixing
    its leading groups' words one by one."""
    lists = block.lists
    inner = 1
    split = GROUPS
    while split > 0 and inner * len(lists[split - 1]) <= chunk:
        split -= 1
        inner *= len(lists[split])
    if split == 0:
        yield lists
        return
    # lists[:split] are fixed word by word (the last of them cut into slices), lists[split:] vary
    head, pivot = lists[: split - 1], lists[split - 1]
    step = max(1, chunk // inner)
    for prefix in itertools.product(*head):
        for i in range(0, len(pivot), step):
            yield tuple((w,) for w in prefix) + (pivot[i : i + step],) + lists[split:]


def key16_text(key16: bytes) -> str:
    """The 48 digits of a 16-byte key (a candidate as John's --stdin reads it)."""
    return str(RecoveryPassword.from_key16(key16))


# --- check-key --------------------------------------------------------------------------------------


@dataclass
class GroupVerdict:
    """One group of a key as typed: is it valid, and if not, what nearby groups are."""

    index: int  # 1-based
    text: str
    valid: bool
    corrections: list[str]  # single-digit substitutions that make it valid
    transpositions: list[str]  # adjacent transpositions that make it valid


def check_key(text: str) -> list[GroupVerdict]:
    """Each group of a key as typed; raises CredentialFormatError when it is not 8 groups of 6
    digits at all (the message says what is wrong)."""
    cleaned = text.strip()
    if re.search(r"[^\d\s\u2010-\u2015-]", cleaned):
        raise CredentialFormatError("key: only digits, dashes and spaces are allowed")
    groups = [g for g in re.split(r"[\s\u2010-\u2015-]+", cleaned) if g]
    digits = "".join(groups)
    if len(groups) != GROUPS or any(len(g) != GROUP_DIGITS for g in groups):
        if len(digits) == GROUPS * GROUP_DIGITS:
            groups = [digits[i : i + GROUP_DIGITS] for i in range(0, len(digits), GROUP_DIGITS)]
        else:
            lengths = ", ".join(str(len(g)) for g in groups)
            raise CredentialFormatError(f"key: {len(digits)} digits in {len(groups)} groups ({lengths}); "
                                        "a recovery password has 8 groups of 6")
    out = []
    for i, g in enumerate(groups, 1):
        if _valid(g):
            out.append(GroupVerdict(i, g, True, [], []))
            continue
        subs = sorted({g[:p] + d + g[p + 1 :] for p in range(GROUP_DIGITS) for d in "0123456789"
                       if d != g[p] and _valid(g[:p] + d + g[p + 1 :])})
        swaps = sorted({g[:p] + g[p + 1] + g[p] + g[p + 2 :] for p in range(GROUP_DIGITS - 1)
                        if g[p] != g[p + 1] and _valid(g[:p] + g[p + 1] + g[p] + g[p + 2 :])})
        out.append(GroupVerdict(i, g, False, subs, swaps))
    return out


def _valid(group: str) -> bool:
    return group_is_valid(int(group))
