"""From a secret to the 32-byte key that opens a protector's VMK blob.

User password: SHA-256(SHA-256(UTF-16LE(password))); recovery password: SHA-256(key16); both
then go through the 1,048,576-round SHA-256 stretch with the protector's salt. The stretch runs
in the optimised core (C with SHA-NI, or the pure-Python twin).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .._core import load
from ..format.constants import STRETCH_ROUNDS

if TYPE_CHECKING:
    from .._core import Core


def password_initial(password: str) -> bytes:
    return hashlib.sha256(hashlib.sha256(password.encode("utf-16-le")).digest()).digest()


def recovery_initial(key16: bytes) -> bytes:
    return hashlib.sha256(key16).digest()


def stretch(initial: bytes, salt: bytes, core: Core | None = None) -> bytes:
    return (core or load()).stretch(initial, salt, STRETCH_ROUNDS)


#: Most candidates one worker stretches per call of the core (about 0.9 s on one core): a
#: multiple of the widest kernel's 16 lanes, and the longest Ctrl-C waits for.
PIECE = 32


def stretch_batch(initials: list[bytes], salt: bytes, core: Core | None = None,
                  workers: int | None = None, rounds: int = STRETCH_ROUNDS) -> list[bytes]:
    """Stretch many candidates against one salt on all cores; results in input order.

    This is what a candidate search or a keys × protectors match runs: worker threads take
    pieces of at most :data:`PIECE` candidates and call the core's batched ``stretch_many``
    (which keeps several independent SHA-256 chains in flight and releases the GIL), so memory
    stays at a few bytes per candidate; on Ctrl-C the pieces not begun are dropped, so the
    interrupt is felt within one piece, not after the whole batch.
    """
    core = core or load()
    workers = max(1, min(workers or os.cpu_count() or 1, len(initials)))
    if workers == 1 and len(initials) <= PIECE:
        return list(core.stretch_many(initials, salt, rounds))
    size = max(1, min(PIECE, -(-len(initials) // workers)))
    parts = [initials[i : i + size] for i in range(0, len(initials), size)]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(parts)))
    try:
        results = list(pool.map(lambda part: core.stretch_many(part, salt, rounds), parts))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [key for part in results for key in part]
