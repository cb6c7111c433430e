"""Searching a space of recovery-password candidates (:mod:`.search`) for the one that opens a
protector: of a volume, or of a ``$bitlocker$`` line when the evidence may not travel.

The candidates go to the batched core in chunks, on all cores; each chunk is hashed once
(SHA-256 of the 16-byte keys in the core) and stretched once per target protector salt. After
every chunk a small state file records how many candidates are done, so a search killed at any
point (even by SIGKILL or a reboot) continues with ``resume`` where the record says, and no
candidate recorded as tried is tried again. The state holds counts and a digest of the search,
never a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ._core import load
from .crypto import kdf
from .errors import BadInputError, NotFoundError, UsageError
from .format.constants import ProtectorType, ValueType
from .hashline import HashLine, HashType, key_opens
from .metadata import Protector, StretchKeyValue
from .outputs import replace_record
from .protectors import try_vmk
from .search import SearchSpace
from .secret import masked_repr

if TYPE_CHECKING:
    from ._core import Core
    from .volume import BitLockerVolume

#: Candidates per chunk and worker: what keeps the batched core's pipelines full.
PER_WORKER = 256
#: Candidates per worker stretched to measure the rate before a search starts: one full set of
#: the widest kernel's lanes (16), a fraction of a second.
CALIBRATE_PER_WORKER = 16


@dataclass(frozen=True)
class Target:
    """One thing a candidate may open: a recovery-password protector, or a hash line."""

    label: str  # the protector GUID, or "hash"
    salt: bytes
    opens: Callable[[bytes], bool]  # does this stretched key open it?
    protector: Protector | None = None
    rounds: int = kdf.STRETCH_ROUNDS


def volume_targets(volume: BitLockerVolume, key_id: str | None = None, core: Core | None = None) -> list[Target]:
    """Every recovery-password protector of the volume (those whose GUID starts ``key_id``)."""
    out = []
    for p in volume.metadata.protectors:
        if p.type != ProtectorType.RECOVERY_PASSWORD:
            continue
        if key_id and not p.guid.startswith(key_id.lower().strip("{}")):
            continue
        child = p.entry.child(ValueType.STRETCH_KEY)
        if child is None or not isinstance(child.value, StretchKeyValue):
            continue
        out.append(Target(p.guid, child.value.salt, lambda key, p=p: try_vmk(p, key, core) is not None, p))
    if not out:
        has = ", ".join(f"{p.type.value} {p.key_id}" for p in volume.metadata.protectors) or "none"
        which = f" whose ID starts {key_id}" if key_id else ""
        raise NotFoundError(f"{volume.name}: no recovery-password protector{which} to search (volume has: {has})")
    return out


def hash_targets(lines: list[HashLine], core: Core | None = None) -> list[Target]:
    """The recovery-password lines (types 2 and 3) of a hash file, one target per protector.

    A file from ``bitlocker2john`` holds each recovery-password protector twice (type 2 and type
    3, the same salt and blob); a protector is stretched once, and checked with its type-3 line
    when there is one (the CCM tag: no false positive). User-password lines are left to John
    and hashcat."""
    wanted = [x for x in lines if x.hash_type in (HashType.RECOVERY_PASSWORD, HashType.RECOVERY_PASSWORD_MAC)]
    if not wanted:
        raise UsageError("no recovery-password hash line (types 2 and 3): a user password's lines (types 0 and 1) "
                         "are searched with John or hashcat")
    by_salt: dict[tuple[bytes, int], list[HashLine]] = {}
    for x in wanted:
        by_salt.setdefault((x.salt, x.rounds), []).append(x)
    out = []
    for n, ((salt, rounds), same) in enumerate(by_salt.items(), 1):
        line = next((x for x in same if x.hash_type.mac_check), same[0])
        label = "hash" if len(by_salt) == 1 else f"hash {n}"
        out.append(Target(label, salt, lambda key, line=line: key_opens(line, key, core), rounds=rounds))
    return out


@dataclass
class SearchState:
    """What a state file records."""

    digest: str  # of the search: the targets, the space, the shard
    done: int  # candidates of this shard tried, in order
    space_size: int

    def save(self, path: Path) -> None:
        replace_record(path, json.dumps({"digest": self.digest, "done": self.done, "space_size": self.space_size}))

    @classmethod
    def load(cls, path: Path) -> SearchState:
        try:
            d = json.loads(path.read_text())
            return cls(str(d["digest"]), int(d["done"]), int(d["space_size"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise BadInputError(f"{path}: not a readable search state file") from None


def search_digest(space: SearchSpace, targets: list[Target], shard: tuple[int, int]) -> str:
    """Names the search, so a state file is never applied to another one."""
    text = json.dumps({"pattern": str(space.pattern), "typos": space.typos, "swaps": space.swaps,
                       "any_order": space.any_order, "targets": [t.label for t in targets],
                       "salts": [t.salt.hex() for t in targets], "shard": list(shard)})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@masked_repr("key16")  # the recovered key: never in a log line or an internal error's message
@dataclass
class SearchResult:
    key16: bytes | None
    target: Target | None
    tried: int  # candidates of this shard tried, resumed ones included
    space_size: int  # candidates in the whole space
    shard_size: int  # candidates in this shard
    resumed_from: int
    seconds: float


def shard_size(space_size: int, shard: tuple[int, int]) -> int:
    k, n = shard
    return 0 if k > space_size else (space_size - k) // n + 1


def calibrate(targets: list[Target], workers: int, core: Core) -> float:
    """Candidates per second against all ``targets``, measured by stretching a small batch of
    throw-away keys, so that a search is judged before it spends a chunk or writes a state.
    A stretch costs the same whatever the key and the salt: one batch is timed per round count
    (Windows always uses 2**20) and counted once for each target that has it."""
    n = CALIBRATE_PER_WORKER * workers
    dummy = [bytes([i % 256]) * 32 for i in range(n)]
    seconds = 0.0
    for rounds, count in Counter(t.rounds for t in targets).items():
        t0 = time.perf_counter()
        kdf.stretch_batch(dummy, bytes(16), core, workers=workers, rounds=rounds)
        seconds += (time.perf_counter() - t0) * count
    return n / max(1e-9, seconds)


def run_search(space: SearchSpace, targets: list[Target], shard: tuple[int, int] = (1, 1),
               state_path: Path | None = None, resume: bool = False, workers: int | None = None,
               core: Core | None = None, progress: Callable[..., None] | None = None,
               budget: Callable[[float, int], None] | None = None, size: int | None = None,
               keep_state: bool = False) -> SearchResult:
    """Try the candidates of ``space`` (this ``shard`` of it) against ``targets`` until one opens.

    ``budget(rate, left)`` is called before the first chunk with the rate :func:`calibrate`
    measures (candidates per second, all targets) and the candidates left; it may raise to refuse
    a search that would take too long, and then nothing has been tried or written.
    ``progress(n)`` advances a bar; it is first called as ``progress(0, completed=start)``, the
    point a resumed search starts from. ``size`` is the space's size when the caller has counted
    it (an any-order space is counted by enumerating it). With ``keep_state`` the state file is
    left when the search ends, for the caller to remove once the result is out: a process killed
    in between then resumes at the last chunk, instead of searching the whole space again.
    """
    core = core or load()
    workers = workers or os.cpu_count() or 1
    size = space.size() if size is None else size
    mine = shard_size(size, shard)
    digest = search_digest(space, targets, shard)
    start = 0
    if state_path is not None and state_path.exists():
        saved = SearchState.load(state_path)
        if not resume:
            raise UsageError(f"{state_path}: a search state exists ({saved.done} of {saved.space_size} candidates "
                             "done): --resume continues it, or remove the file")
        if saved.digest != digest:
            raise BadInputError(f"{state_path}: the state is of another search (other pattern, options, targets "
                                "or shard)")
        start = saved.done
    if budget is not None and mine > start:
        budget(calibrate(targets, workers, core), mine - start)
    state = SearchState(digest, start, size)
    if progress:
        progress(0, completed=start)
    t0 = time.perf_counter()
    tried = start
    chunk = PER_WORKER * workers
    for keys in space.keys(start=start, shard=shard, chunk=chunk, core=core):
        count = len(keys) // 16
        digests = core.sha256_many(keys, 16)
        initials = [digests[i * 32 : i * 32 + 32] for i in range(count)]
        for target in targets:
            for i, key in enumerate(kdf.stretch_batch(initials, target.salt, core, workers=workers,
                                                      rounds=target.rounds)):
                if target.opens(key):
                    tried += count
                    _finish(None if keep_state else state_path)
                    return SearchResult(keys[i * 16 : i * 16 + 16], target, tried, size, mine, start,
                                        time.perf_counter() - t0)
        tried += count
        state.done = tried
        if state_path is not None:
            state.save(state_path)
        if progress:
            progress(count)
    _finish(None if keep_state else state_path)
    return SearchResult(None, None, tried, size, mine, start, time.perf_counter() - t0)


def _finish(state_path: Path | None) -> None:
    if state_path is not None:
        state_path.unlink(missing_ok=True)


def parse_duration(text: str) -> float:
    """``--max-time``: seconds, or a number with s, m, h or d."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise UsageError(f"--max-time {text!r}: a number of seconds, or with s, m, h or d (e.g. 4h)") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard K/N``: the K-th of N slices, 1 ≤ K ≤ N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N")
    return k, n
