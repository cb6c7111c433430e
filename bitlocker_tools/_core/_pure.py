"""Pure-Python twin of the optimised core: same functions, same results, no compiler needed.

Its public functions are exactly those of the contract (:class:`bitlocker_tools._core.Core`,
``_contract.py``), with the same signatures; helpers start with an underscore.

This is what runs in WinPE or wherever the C extension is absent. It is still written for speed:
AES runs as one ECB call per batch (pycryptodome, AES-NI inside), and the per-sector parts (CBC
IVs, XTS tweak chains, the Elephant diffuser) are vectorised across sectors with numpy, because a
loop per sector in Python runs at a few MB/s.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from Crypto.Cipher import AES

from ._contract import ReadableBuffer, WritableBuffer

_DIFFUSER_A_ROT = (9, 0, 13, 0)
_DIFFUSER_B_ROT = (0, 10, 0, 25)
_GF_REDUCE = np.uint64(0x87)
_BATCH = 2 << 20  # bytes per numpy pass (measured best on the 2-core Zen 4 machine)
_BATCH_DIFFUSER = 4 << 20  # measured best on Zen 3 (1 MiB on Zen 4): fewer, longer numpy calls


def stretch(initial: ReadableBuffer, salt: ReadableBuffer, rounds: int) -> bytes:
    """BitLocker's key stretch: ``rounds`` SHA-256 calls over last||initial||salt||count."""
    sha256 = hashlib.sha256
    middle = bytes(initial) + bytes(salt)
    pack = struct.Struct("<Q").pack
    last = bytes(32)
    for count in range(rounds):
        last = sha256(last + middle + pack(count)).digest()
    return last


def stretch_many(initials: Iterable[ReadableBuffer], salt: ReadableBuffer, rounds: int) -> list[bytes]:
    """:func:`stretch` of each candidate, in order (one chain at a time: hashlib has no lanes)."""
    return [stretch(i, salt, rounds) for i in initials]


# --- sector crypto ---------------------------------------------------------------------------------


def _blocks(buf: bytes | bytearray | memoryview) -> np.ndarray:
    """View a buffer as (n_blocks, 2) little-endian u64 halves of 16-byte AES blocks."""
    return np.frombuffer(buf, dtype="<u8").reshape(-1, 2)


def _offset_blocks(first_offset: int, count: int, step: int) -> bytes:
    """16-byte blocks LE64(first_offset + i*step) || 0^8, one per sector."""
    arr = np.zeros((count, 2), dtype="<u8")
    arr[:, 0] = np.arange(count, dtype=np.uint64) * np.uint64(step) + np.uint64(first_offset)
    return arr.tobytes()


def _wipe(*arrays: np.ndarray | bytearray) -> None:
    """Zero key-derived scratch we own (tweaks, IVs, sector keys), at the end of a batch, not per
    block. What Python cannot reach stays: immutable ``bytes`` (the keys themselves), numpy's
    temporaries, pycryptodome's AES schedules (docs/reliability.md, "Secrets")."""
    for a in arrays:
        if isinstance(a, bytearray):
            a[:] = bytes(len(a))
            continue
        while isinstance(a.base, np.ndarray):  # a view: zero the whole array it shows part of
            a = a.base
        if a.flags.writeable:
            a.fill(0)


def _cbc(key: bytes, data, offset: int, sector_size: int, decrypt: bool, out: memoryview) -> None:
    """BitLocker AES-CBC into ``out``: IV of each sector = AES-ECB(K, LE64(byte offset) || 0^8).

    Decryption is one ECB call over the whole batch straight into ``out``, then one XOR with the
    previous ciphertext block (the IV for each sector's first block): two passes over memory.
    ``data`` and ``out`` must not overlap.
    """
    n = len(data) // sector_size
    bps = sector_size // 16
    ecb = AES.new(key, AES.MODE_ECB)
    iv_bytes = bytearray(16 * n)
    ecb.encrypt(_offset_blocks(offset, n, sector_size), output=iv_bytes)
    ivs = _blocks(iv_bytes)
    o = _blocks(out).reshape(n, bps, 2)
    if decrypt:
        ecb.decrypt(data, output=out)
        c = _blocks(data).reshape(n, bps, 2)
        np.bitwise_xor(o[:, 1:], c[:, :-1], out=o[:, 1:])
        np.bitwise_xor(o[:, 0], ivs, out=o[:, 0])
        del ivs
        _wipe(iv_bytes)
        return
    # Encryption is serial within a sector; vectorise across sectors, one block column at a time.
    p = _blocks(data).reshape(n, bps, 2)
    prev = ivs
    for j in range(bps):
        o[:, j] = _blocks(ecb.encrypt((p[:, j] ^ prev).tobytes()))
        prev = o[:, j]
    del ivs, prev
    _wipe(iv_bytes)


_RUN = 32  # tweaks computed from one by a single shift (see _times_alpha)
_SHIFTS = np.arange(1, _RUN, dtype=np.uint64)


def _times_alpha(lo: np.ndarray, hi: np.ndarray, k: np.ndarray | np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) * alpha^k in XTS's GF(2^128), little-endian 64-bit halves, for 1 <= k <= 56.

    A shift left by k, and the k bits shifted out of the top reduced by x^128 = x^7+x^2+x+1:
    for k <= 56 that reduction (the bits times 0x87) fits in the low half, so the whole product
    is a few array operations, for any array of k at once.
    """
    out_bits = hi >> (np.uint64(64) - k)
    new_hi = (hi << k) | (lo >> (np.uint64(64) - k))
    new_lo = (lo << k) ^ out_bits ^ (out_bits << np.uint64(1)) ^ (out_bits << np.uint64(2)) \
        ^ (out_bits << np.uint64(7))
    return new_lo, new_hi


def _xts_tweaks(key2: bytes, first_sector: int, n: int, bps: int) -> np.ndarray:
    """All XTS tweaks, shape (n, bps, 2): T0 = AES(K2, sector number), T(j) = T0 * alpha^j.

    Instead of a chain of bps doublings (one numpy call per block column, slow for 4096-byte
    sectors), each run of 32 tweaks comes from its first one in one broadcast product
    (:func:`_times_alpha` with k = 1..31), and the runs follow each other by alpha^32.
    """
    ecb = AES.new(key2, AES.MODE_ECB)
    t0 = _blocks(ecb.encrypt(_offset_blocks(first_sector, n, 1)))
    runs, run = -(-bps // _RUN), min(bps, _RUN)
    firsts = np.empty((n, runs, 2), dtype=np.uint64)
    firsts[:, 0] = t0
    for r in range(1, runs):
        firsts[:, r, 0], firsts[:, r, 1] = _times_alpha(firsts[:, r - 1, 0], firsts[:, r - 1, 1], np.uint64(_RUN))
    out = np.empty((n, runs, run, 2), dtype=np.uint64)
    out[:, :, 0] = firsts
    if run > 1:
        lo, hi = _times_alpha(firsts[:, :, 0:1], firsts[:, :, 1:2], _SHIFTS[: run - 1])
        out[:, :, 1:, 0] = lo
        out[:, :, 1:, 1] = hi
    _wipe(firsts)
    flat = out.reshape(n, runs * run, 2)
    return flat if runs * run == bps else flat[:, :bps]


def _xts(key: bytes, data, offset: int, sector_size: int, decrypt: bool, out: memoryview) -> None:
    half = len(key) // 2
    n = len(data) // sector_size
    bps = sector_size // 16
    tweaks = _xts_tweaks(key[half:], offset // sector_size, n, bps)
    o = _blocks(out).reshape(n, bps, 2)
    np.bitwise_xor(_blocks(data).reshape(n, bps, 2), tweaks, out=o)
    ecb = AES.new(key[:half], AES.MODE_ECB)
    if decrypt:
        ecb.decrypt(out, output=out)
    else:
        ecb.encrypt(out, output=out)
    np.bitwise_xor(o, tweaks, out=o)
    _wipe(tweaks)


def _sector_keys(tweak_key: bytes, offset: int, n: int, sector_size: int) -> np.ndarray:
    """The 32-byte Elephant sector key of each sector, as (n, 8) u32 words."""
    ecb = AES.new(tweak_key, AES.MODE_ECB)
    blocks = np.frombuffer(_offset_blocks(offset, n, sector_size), dtype=np.uint8).reshape(n, 16).copy()
    first = np.frombuffer(ecb.encrypt(blocks.tobytes()), dtype=np.uint8).reshape(n, 16)
    blocks[:, 15] = 0x80
    second = np.frombuffer(ecb.encrypt(blocks.tobytes()), dtype=np.uint8).reshape(n, 16)
    return np.concatenate([first, second], axis=1).view("<u4")


def _rotl_rows(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r)) if r else x


def _diffuse(words: np.ndarray, passes: int, a: int, b: int, rot: tuple[int, ...], decrypt: bool) -> None:
    """One Elephant diffuser on (n_words, n_sectors) u32 words, in place:
    ``d[i] += d[i+a] ^ rotl(d[i+b], rot[i % 4])`` for ascending i (``-=`` and descending i to
    encrypt). Every step runs on all sectors at once.

    When the words a step reads lie on the side the pass has not reached yet (diffuser B when
    decrypting, A when encrypting), they still hold their old values, so all steps but the five
    that wrap around run as one array operation; otherwise the pass is serial, one word at a time.
    """
    n = words.shape[0]
    op = np.add if decrypt else np.subtract
    m = max(abs(a), abs(b))
    ahead = (a > 0) == decrypt
    if ahead and n > 2 * m:
        first = 0 if decrypt else m  # rows done in one operation: [first, first + n - m)
        block = slice(first, first + n - m)
        src_a = slice(first + a, first + a + n - m)
        src_b = slice(first + b, first + b + n - m)
        tail = list(range(n - m, n)) if decrypt else list(range(m - 1, -1, -1))
        for _ in range(passes):
            mix = words[src_b].copy()
            for res, r in enumerate(rot):
                if r:
                    k0 = (res - first) % 4
                    mix[k0::4] = _rotl_rows(mix[k0::4], r)
            mix ^= words[src_a]
            op(words[block], mix, out=words[block])
            for i in tail:
                words[i] = op(words[i], words[(i + a) % n] ^ _rotl_rows(words[(i + b) % n], rot[i % 4]))
        return
    tmp = np.empty(words.shape[1], dtype=np.uint32)
    tmp2 = np.empty_like(tmp)
    steps = [(i, (i + a) % n, (i + b) % n, rot[i % 4]) for i in range(n)]
    if not decrypt:
        steps.reverse()
    for _ in range(passes):
        for i, ia, ib, r in steps:
            src = words[ib]
            if r:
                np.left_shift(src, np.uint32(r), out=tmp)
                np.right_shift(src, np.uint32(32 - r), out=tmp2)
                np.bitwise_or(tmp, tmp2, out=tmp)
                np.bitwise_xor(tmp, words[ia], out=tmp)
            else:
                np.bitwise_xor(src, words[ia], out=tmp)
            op(words[i], tmp, out=words[i])


def _diffuser_a(words: np.ndarray, decrypt: bool) -> None:
    """Elephant diffuser A: 5 cycles of d[i] += d[i-2] ^ rotl(d[i-5], (9, 0, 13, 0)[i % 4])."""
    _diffuse(words, 5, -2, -5, _DIFFUSER_A_ROT, decrypt)


def _diffuser_b(words: np.ndarray, decrypt: bool) -> None:
    """Elephant diffuser B: 3 cycles of d[i] += d[i+2] ^ rotl(d[i+5], (0, 10, 0, 25)[i % 4])."""
    _diffuse(words, 3, 2, 5, _DIFFUSER_B_ROT, decrypt)


def _elephant(fvek: bytes, tweak: bytes, data, offset: int, sector_size: int, decrypt: bool,
              out: memoryview) -> None:
    n = len(data) // sector_size
    sector_keys = _sector_keys(tweak, offset, n, sector_size)
    keys = np.tile(sector_keys, (1, sector_size // 32))  # (n, words)
    _wipe(sector_keys)
    if decrypt:
        _cbc(fvek, data, offset, sector_size, True, out)
        sectors = np.frombuffer(out, dtype="<u4").reshape(n, -1)
        words = sectors.T.copy()  # (words, sectors): each diffuser step runs on all sectors
        _diffuser_b(words, True)
        _diffuser_a(words, True)
        np.bitwise_xor(words.T, keys, out=sectors)  # the sector key, and back to sector order
        _wipe(keys)
        return
    words = np.bitwise_xor(np.frombuffer(data, dtype="<u4").reshape(n, -1), keys).T.copy()
    _wipe(keys)
    _diffuser_a(words, False)
    _diffuser_b(words, False)
    _cbc(fvek, memoryview(words.T.tobytes()), offset, sector_size, False, out)


_KERNELS = {0x8002: _cbc, 0x8003: _cbc, 0x8004: _xts, 0x8005: _xts}


def crypt_sectors_into(method: int, key: ReadableBuffer, data: ReadableBuffer, offset: int,
                       sector_size: int, decrypt: bool, out: WritableBuffer) -> None:
    """Decrypt (or encrypt) whole sectors stored at volume byte ``offset`` into ``out``.

    ``key`` is the method's key material: CBC the FVEK; XTS key1||key2; diffuser FVEK||TWEAK
    (two equal halves). ``method`` is the metadata's encryption-method code. ``out`` has the
    length of ``data`` and may be the same buffer (in place).
    """
    src = memoryview(data).cast("B")
    dst = memoryview(out).cast("B")
    if len(dst) != len(src):
        raise ValueError("out must have the same length as data")
    if len(src) % sector_size:
        raise ValueError("data must be a whole number of sectors")
    if not len(src):
        return
    if method in (0x8000, 0x8001):
        half = len(key) // 2
        fvek, tweak = bytes(key[:half]), bytes(key[half:])

        def kernel(d, o, off):
            _elephant(fvek, tweak, d, off, sector_size, decrypt, o)

        # Few, long rows: the diffuser's per-word steps cost numpy call overhead per batch.
        batch = max(_BATCH_DIFFUSER, 1024 * sector_size)
    elif method in _KERNELS:
        fn, k = _KERNELS[method], bytes(key)

        def kernel(d, o, off):
            fn(k, d, off, sector_size, decrypt, o)

        batch = _BATCH
    else:
        raise ValueError(f"unsupported method {method:#x}")
    if np.shares_memory(np.frombuffer(src, np.uint8), np.frombuffer(dst, np.uint8)):
        src = memoryview(bytes(src))  # the kernels read ciphertext after writing plaintext
    # numpy passes run fastest when their arrays stay in cache: split big batches.
    batch = max(batch // sector_size, 1) * sector_size
    for pos in range(0, len(src), batch):
        kernel(src[pos : pos + batch], dst[pos : pos + batch], offset + pos)


def crypt_sectors(method: int, key: ReadableBuffer, data: ReadableBuffer, offset: int,
                  sector_size: int, decrypt: bool = True) -> bytearray:
    """Decrypt (or encrypt) whole sectors stored at volume byte ``offset``, into a new buffer.

    ``key`` is the method's key material: CBC the FVEK; XTS key1||key2; diffuser FVEK||TWEAK
    (two equal halves). ``method`` is the metadata's encryption-method code.
    """
    out = bytearray(len(data))
    crypt_sectors_into(method, key, data, offset, sector_size, decrypt, out)
    return out


# --- key blobs -----------------------------------------------------------------------------------


def _ccm_check(key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer) -> None:
    if len(key) not in (16, 24, 32):
        raise ValueError(f"invalid AES key length ({len(key)} bytes)")
    if len(nonce) != 12:
        raise ValueError("the nonce must be 12 bytes")
    if len(data) >= 1 << 24:
        raise ValueError("data too long for a 3-byte CCM length")


def ccm_decrypt(key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer,
                mac: ReadableBuffer) -> Optional[bytes]:
    """AES-CCM decryption of a BitLocker key blob (12-byte nonce, 16-byte tag, no associated
    data); None when the tag does not verify."""
    _ccm_check(key, nonce, data)
    if len(mac) != 16:
        raise ValueError("the tag must be 16 bytes")
    cipher = AES.new(bytes(key), AES.MODE_CCM, nonce=bytes(nonce), mac_len=16)
    try:
        return cipher.decrypt_and_verify(bytes(data), bytes(mac))
    except ValueError:
        return None


def ccm_encrypt(key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer) -> Tuple[bytes, bytes]:
    """AES-CCM encryption as BitLocker wraps a key: (ciphertext, tag)."""
    _ccm_check(key, nonce, data)
    cipher = AES.new(bytes(key), AES.MODE_CCM, nonce=bytes(nonce), mac_len=16)
    return cipher.encrypt_and_digest(bytes(data))


# --- candidate search and allocation-free helpers (same interface as the C core) ----------------


def expand_groups(groups: Sequence[Sequence[int]]) -> bytes:
    """All key16 values for 8 groups of candidate words, concatenated.

    ``groups`` holds, for each of the 8 recovery-password groups, the candidate 16-bit words
    (group value / 11). Every combination becomes 8 little-endian u16 (16 bytes), in
    lexicographic order with group 0 varying slowest (``itertools.product`` order).
    """
    lists = [list(g) for g in groups]
    if len(lists) != 8:
        raise ValueError("groups must hold exactly 8 groups")
    for i, g in enumerate(lists):
        for v in g:
            v = int(v)
            if not 0 <= v <= 0xFFFF:
                raise ValueError(f"group {i}: word {v} is not in 0..65535")
    pack = struct.Struct("<8H").pack
    return b"".join(pack(*combo) for combo in itertools.product(*lists))


def sha256_many(data: ReadableBuffer, item_len: int) -> bytes:
    """SHA-256 of each consecutive ``item_len``-byte item of ``data``, digests concatenated."""
    view = memoryview(data).cast("B")
    if item_len <= 0 or len(view) % item_len:
        raise ValueError("item_len must be positive and divide the length of data")
    sha256 = hashlib.sha256
    return b"".join(sha256(view[i:i + item_len]).digest() for i in range(0, len(view), item_len))


def _diffuser_test(which: str, decrypt: bool, data: ReadableBuffer) -> bytearray:
    """One Elephant diffuser ('a' or 'b') over ``data`` as a single sector (the pure twin of
    the native ``_diffuser_test`` hook)."""
    words = np.frombuffer(bytes(data), dtype="<u4").reshape(-1, 1).copy()
    if which == "a":
        _diffuser_a(words, decrypt)
    elif which == "b":
        _diffuser_b(words, decrypt)
    else:
        raise ValueError("which must be 'a' or 'b'")
    return bytearray(words.astype("<u4").tobytes())
