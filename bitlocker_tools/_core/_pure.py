"""Pure-Python twin of the optimised core: same functions, same results, no compiler needed.

This is what runs in WinPE or wherever the C extension is absent. It is still written for speed:
AES runs as one ECB call per batch (pycryptodome, AES-NI inside), and the per-sector parts (CBC
IVs, XTS tweak chains, the Elephant diffuser) are vectorised across sectors with numpy, because a
loop per sector in Python runs at a few MB/s.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
from Crypto.Cipher import AES

_DIFFUSER_A_ROT = (9, 0, 13, 0)
_DIFFUSER_B_ROT = (0, 10, 0, 25)
_GF_REDUCE = np.uint64(0x87)


def stretch(initial: bytes, salt: bytes, rounds: int) -> bytes:
    """BitLocker's key stretch: ``rounds`` SHA-256 calls over last||initial||salt||count."""
    sha256 = hashlib.sha256
    middle = bytes(initial) + bytes(salt)
    pack = struct.Struct("<Q").pack
    last = bytes(32)
    for count in range(rounds):
        last = sha256(last + middle + pack(count)).digest()
    return last


def stretch_many(initials: list[bytes], salt: bytes, rounds: int) -> list[bytes]:
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


def _cbc(key: bytes, data: bytes, offset: int, sector_size: int, decrypt: bool) -> bytearray:
    """BitLocker AES-CBC: IV of each sector = AES-ECB(K, LE64(byte offset) || 0^8)."""
    n = len(data) // sector_size
    bps = sector_size // 16
    ecb = AES.new(key, AES.MODE_ECB)
    ivs = _blocks(ecb.encrypt(_offset_blocks(offset, n, sector_size))).reshape(n, 1, 2)
    if decrypt:
        c = _blocks(data).reshape(n, bps, 2)
        p = _blocks(ecb.decrypt(data)).reshape(n, bps, 2).copy()
        p[:, 0] ^= ivs[:, 0]
        p[:, 1:] ^= c[:, :-1]
        return bytearray(p.tobytes())
    # Encryption is serial within a sector; vectorise across sectors, one block column at a time.
    p = _blocks(data).reshape(n, bps, 2)
    out = np.empty_like(p)
    prev = ivs[:, 0]
    for j in range(bps):
        out[:, j] = _blocks(ecb.encrypt((p[:, j] ^ prev).tobytes()))
        prev = out[:, j]
    return bytearray(out.tobytes())


def _xts_tweaks(key2: bytes, first_sector: int, n: int, bps: int) -> np.ndarray:
    """All XTS tweaks, shape (n, bps, 2): T0 = AES(K2, sector number), T(j+1) = T(j) * alpha."""
    ecb = AES.new(key2, AES.MODE_ECB)
    t0 = _blocks(ecb.encrypt(_offset_blocks(first_sector, n, 1)))
    tweaks = np.empty((n, bps, 2), dtype="<u8")
    lo = t0[:, 0].copy()
    hi = t0[:, 1].copy()
    one, s63 = np.uint64(1), np.uint64(63)
    for j in range(bps):
        tweaks[:, j, 0] = lo
        tweaks[:, j, 1] = hi
        carry = hi >> s63
        hi = (hi << one) | (lo >> s63)
        lo = (lo << one) ^ (carry * _GF_REDUCE)
    return tweaks


def _xts(key: bytes, data: bytes, offset: int, sector_size: int, decrypt: bool) -> bytearray:
    half = len(key) // 2
    n = len(data) // sector_size
    bps = sector_size // 16
    tweaks = _xts_tweaks(key[half:], offset // sector_size, n, bps)
    x = (_blocks(data).reshape(n, bps, 2) ^ tweaks).tobytes()
    ecb = AES.new(key[:half], AES.MODE_ECB)
    y = _blocks(ecb.decrypt(x) if decrypt else ecb.encrypt(x)).reshape(n, bps, 2) ^ tweaks
    return bytearray(y.tobytes())


def _sector_keys(tweak_key: bytes, offset: int, n: int, sector_size: int) -> np.ndarray:
    """The 32-byte Elephant sector key of each sector, as (n, 8) u32 words."""
    ecb = AES.new(tweak_key, AES.MODE_ECB)
    blocks = np.frombuffer(_offset_blocks(offset, n, sector_size), dtype=np.uint8).reshape(n, 16).copy()
    first = np.frombuffer(ecb.encrypt(blocks.tobytes()), dtype=np.uint8).reshape(n, 16)
    blocks[:, 15] = 0x80
    second = np.frombuffer(ecb.encrypt(blocks.tobytes()), dtype=np.uint8).reshape(n, 16)
    return np.concatenate([first, second], axis=1).view("<u4")


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    if r == 0:
        return x
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def diffuser_a(words: np.ndarray, decrypt: bool) -> None:
    """Elephant diffuser A in place on (n_words, n_sectors) u32 words; 5 cycles."""
    n = words.shape[0]
    for _ in range(5):
        order = range(n) if decrypt else range(n - 1, -1, -1)
        for i in order:
            mix = words[(i - 2) % n] ^ _rotl(words[(i - 5) % n], _DIFFUSER_A_ROT[i % 4])
            if decrypt:
                words[i] += mix
            else:
                words[i] -= mix


def diffuser_b(words: np.ndarray, decrypt: bool) -> None:
    """Elephant diffuser B in place on (n_words, n_sectors) u32 words; 3 cycles."""
    n = words.shape[0]
    for _ in range(3):
        order = range(n) if decrypt else range(n - 1, -1, -1)
        for i in order:
            mix = words[(i + 2) % n] ^ _rotl(words[(i + 5) % n], _DIFFUSER_B_ROT[i % 4])
            if decrypt:
                words[i] += mix
            else:
                words[i] -= mix


def _elephant(fvek: bytes, tweak: bytes, data: bytes, offset: int, sector_size: int,
              decrypt: bool) -> bytearray:
    n = len(data) // sector_size
    keys = _sector_keys(tweak, offset, n, sector_size)  # (n, 8)
    reps = sector_size // 32
    if decrypt:
        plain = _cbc(fvek, data, offset, sector_size, True)
        words = np.frombuffer(plain, dtype="<u4").reshape(n, -1).T.copy()  # (words, sectors)
        diffuser_b(words, True)
        diffuser_a(words, True)
        words ^= np.tile(keys, (1, reps)).T
        return bytearray(words.T.tobytes())
    words = np.frombuffer(bytes(data), dtype="<u4").reshape(n, -1).T.copy()
    words ^= np.tile(keys, (1, reps)).T
    diffuser_a(words, False)
    diffuser_b(words, False)
    return _cbc(fvek, words.T.tobytes(), offset, sector_size, False)


def crypt_sectors(method: int, key: bytes, data: bytes | bytearray | memoryview, offset: int,
                  sector_size: int, decrypt: bool = True) -> bytearray:
    """Decrypt (or encrypt) whole sectors stored at volume byte ``offset``.

    ``key`` is the method's key material: CBC the FVEK; XTS key1||key2; diffuser FVEK||TWEAK
    (two equal halves). ``method`` is the metadata's encryption-method code.
    """
    if len(data) % sector_size:
        raise ValueError("data must be a whole number of sectors")
    if not len(data):
        return bytearray()
    if method in (0x8002, 0x8003):
        return _cbc(key, data, offset, sector_size, decrypt)
    if method in (0x8004, 0x8005):
        return _xts(key, data, offset, sector_size, decrypt)
    if method in (0x8000, 0x8001):
        half = len(key) // 2
        return _elephant(key[:half], key[half:], data, offset, sector_size, decrypt)
    raise ValueError(f"unsupported method {method:#x}")
