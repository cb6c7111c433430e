"""Pure-Python references for the native core's extra functions.

``_pure.py`` defines the shared core interface; the C extension (``_native``) adds a few
functions for recovery-password searches and for allocation-free sector crypto. These are their
pure-Python twins: the same signatures and results, used as the fallback and by the tests that
check the extension.
"""

from __future__ import annotations

import hashlib
import itertools
import struct

import numpy as np

from . import _pure


def expand_groups(groups: list[list[int]]) -> bytes:
    """All key16 values for 8 groups of candidate words, concatenated.

    ``groups`` holds, for each of the 8 recovery-password groups, the candidate 16-bit words
    (group value / 11). Every combination becomes 8 little-endian u16 (16 bytes), in
    lexicographic order with group 0 varying slowest (``itertools.product`` order).
    """
    groups = [list(g) for g in groups]
    if len(groups) != 8:
        raise ValueError("groups must hold exactly 8 groups")
    for i, g in enumerate(groups):
        for v in g:
            v = int(v)
            if not 0 <= v <= 0xFFFF:
                raise ValueError(f"group {i}: word {v} is not in 0..65535")
    pack = struct.Struct("<8H").pack
    return b"".join(pack(*combo) for combo in itertools.product(*groups))


def sha256_many(data: bytes | bytearray | memoryview, item_len: int) -> bytes:
    """SHA-256 of each consecutive ``item_len``-byte item of ``data``, digests concatenated."""
    data = memoryview(data).cast("B")
    if item_len <= 0 or len(data) % item_len:
        raise ValueError("item_len must be positive and divide the length of data")
    sha256 = hashlib.sha256
    return b"".join(sha256(data[i:i + item_len]).digest() for i in range(0, len(data), item_len))


def crypt_sectors_into(method: int, key: bytes, data: bytes | bytearray | memoryview, offset: int,
                       sector_size: int, decrypt: bool, out: bytearray | memoryview) -> None:
    """``crypt_sectors`` writing its result into ``out`` (a writable buffer of the same length)."""
    view = memoryview(out).cast("B")
    if len(view) != len(data):
        raise ValueError("out must have the same length as data")
    view[:] = _pure.crypt_sectors(method, key, bytes(data), offset, sector_size, decrypt)


def diffuser_test(which: str, decrypt: bool, data: bytes) -> bytearray:
    """One Elephant diffuser ('a' or 'b') over ``data`` as a single sector (the pure twin of
    the native ``_diffuser_test`` hook)."""
    words = np.frombuffer(bytes(data), dtype="<u4").reshape(-1, 1).copy()
    if which == "a":
        _pure.diffuser_a(words, decrypt)
    elif which == "b":
        _pure.diffuser_b(words, decrypt)
    else:
        raise ValueError("which must be 'a' or 'b'")
    return bytearray(words.astype("<u4").tobytes())
