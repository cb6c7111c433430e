"""The C core leaves no key material behind: every scratch buffer is wiped before it is freed, and
the stack the call used holds none of the secrets once it returns.

How it is read back: the module's test hook ``_native._wipe_audit(fn, args, kwargs, wipes)``
(native/module.c) calls one of the module's functions and returns, besides its result, a copy of
every heap scratch buffer as it was at the moment it was freed (after the wipe), and the 64 KiB
of stack below the hook's frame: the frames of the call that just returned (locals, spilled
registers, AES schedules, tweaks). The heap buffers must be all zeros; the stack must hold no
8-byte run of any secret: the key and each half, every AES round key of each key (FIPS-197 byte
order, computed here independently of the core), the XTS tweaks, CBC IVs and Elephant sector
keys of the first sectors (computed with ``cryptography``), the CCM plaintext and keystream, the
stretch's input and output (as bytes and as the big-endian words the kernels use).

The audit can fail: with ``wipes=False`` (every bt_wipe off for that one call) the same search
finds the round keys in the freed AES schedule, the stretched key in the freed output words, and
key material on the stack; and the round keys computed here are checked against that unwiped
schedule, so the search looks for what the core really holds.

Registers (xmm/ymm/zmm) are not memory and are not read back; see docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import struct

import pytest

native = pytest.importorskip("bitlocker_tools._core._native",
                             reason="C extension not built (python setup.py build_ext --inplace)")

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

# --- independent reference values ------------------------------------------------------------------

_SBOX: list[int] = []


def _sbox() -> list[int]:
    """The AES S-box from its definition (multiplicative inverse in GF(2^8), then the affine map)."""
    if _SBOX:
        return _SBOX

    def mul(a: int, b: int) -> int:
        r = 0
        while b:
            if b & 1:
                r ^= a
            a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
            b >>= 1
        return r

    for x in range(256):
        inv = next((y for y in range(1, 256) if mul(x, y) == 1), 0) if x else 0
        s = inv
        for i in range(1, 5):
            s ^= ((inv << i) | (inv >> (8 - i))) & 0xFF
        _SBOX.append(s ^ 0x63)
    assert _SBOX[0] == 0x63 and _SBOX[1] == 0x7C  # FIPS-197 figure 7
    return _SBOX


def round_keys(key: bytes) -> list[bytes]:
    """FIPS-197 key expansion: the 16-byte round keys (rk in the C core's layout)."""
    sbox, nk = _sbox(), len(key) // 4
    nr = nk + 6
    w = [list(key[4 * i:4 * i + 4]) for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (nr + 1)):
        t = list(w[i - 1])
        if i % nk == 0:
            t = [sbox[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = ((rcon << 1) ^ 0x11B) if rcon & 0x80 else rcon << 1
        elif nk > 6 and i % nk == 4:
            t = [sbox[b] for b in t]
        w.append([a ^ b for a, b in zip(w[i - nk], t)])
    flat = bytes(b for word in w for b in word)
    return [flat[16 * r:16 * r + 16] for r in range(nr + 1)]


def test_round_keys_match_fips_197():
    """FIPS-197 appendix A.1: the last round key of the AES-128 example key."""
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert round_keys(key)[10].hex() == "d014f9a8c9ee2589e13f0cc8b6630ca6"


def ecb(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def word_swapped(b: bytes) -> bytes:
    """The bytes as the stretch kernels hold them: big-endian words loaded into native u32."""
    return b"".join(b[i:i + 4][::-1] for i in range(0, len(b), 4))


def residue(stack: bytes, secrets: dict[str, bytes], run: int = 8) -> list[str]:
    """The names of the secrets of which some ``run``-byte piece occurs in ``stack``."""
    found = []
    for name, s in secrets.items():
        if any(s[i:i + run] in stack for i in range(0, len(s) - run + 1)):
            found.append(name)
    return found


def audit(fn, *args, wipes: bool = True, **kwargs):
    return native._wipe_audit(fn, args, kwargs or None, wipes)


# --- the operations and their secrets --------------------------------------------------------------


def aes_paths() -> list[str]:
    return ["scalar"] + (["aesni"] if native._features()["aesni"] else [])


def sha_paths() -> list[str]:
    return [p for p in native._features()["sha_paths"] if p != "auto"]


SS = 512
METHODS = {0x8000: 32, 0x8001: 64, 0x8002: 16, 0x8003: 32, 0x8004: 32, 0x8005: 64}  # key bytes


def sector_secrets(method: int, key: bytes, offset: int, sectors: int) -> dict[str, bytes]:
    """What a sector call derives from its key: the round keys, and per sector the CBC IV, the
    XTS tweak (and its next three multiples) or the Elephant sector key."""
    out: dict[str, bytes] = {"key": key}
    halves = [key] if method in (0x8002, 0x8003) else [key[:len(key) // 2], key[len(key) // 2:]]
    for h, half in enumerate(halves):
        out[f"key half {h}"] = half
        for r, rk in enumerate(round_keys(half)):
            out[f"round key {r} of key {h}"] = rk
    for s in range(sectors):
        off = offset + s * SS
        block = struct.pack("<QQ", off, 0)
        if method in (0x8002, 0x8003):
            out[f"CBC IV of sector {s}"] = ecb(key, block)
        elif method in (0x8004, 0x8005):
            t = int.from_bytes(ecb(halves[1], struct.pack("<QQ", off // SS, 0)), "little")
            for j in range(4):
                out[f"XTS tweak {j} of sector {s}"] = t.to_bytes(16, "little")
                t = ((t << 1) ^ (0x87 if t >> 127 else 0)) & ((1 << 128) - 1)
        else:
            out[f"CBC IV of sector {s}"] = ecb(halves[0], block)
            out[f"sector key of sector {s}"] = ecb(halves[1], block) + ecb(halves[1], block[:15] + b"\x80")
    return out


def operations():
    """(id, function, args, kwargs, secrets) of every core function that touches a secret, on
    every kernel path this CPU has."""
    rng = random.Random(20)
    ops = []
    for path in aes_paths():
        for method, klen in METHODS.items():
            key = rng.randbytes(klen)
            offset = 8 * SS * rng.randrange(1, 1000)
            data = rng.randbytes(16 * SS)  # 16 sectors: the 8-sector lanes and the tails
            for decrypt in (True, False):
                ops.append((f"crypt_sectors-{method:#x}-{'dec' if decrypt else 'enc'}-{path}", native.crypt_sectors,
                            (method, key, data, offset, SS, decrypt), {"_aes": path},
                            sector_secrets(method, key, offset, 16)))
            ops.append((f"crypt_sectors_into-{method:#x}-{path}", native.crypt_sectors_into,
                        (method, key, data, offset, SS, True, bytearray(data)), {"_aes": path},
                        sector_secrets(method, key, offset, 16)))
        for klen in (16, 32):
            key, nonce, vmk = rng.randbytes(klen), rng.randbytes(12), rng.randbytes(44)
            ct, tag = native.ccm_encrypt(key, nonce, vmk)
            stream = ecb(key, b"".join(b"\x02" + nonce + (i + 1).to_bytes(3, "big") for i in range(3)))
            secrets = {"key": key, "plaintext": vmk, "keystream": stream,
                       **{f"round key {r}": rk for r, rk in enumerate(round_keys(key))}}
            ops.append((f"ccm_decrypt-{klen}-{path}", native.ccm_decrypt, (key, nonce, ct, tag), {"_aes": path},
                        secrets))
            ops.append((f"ccm_decrypt-badtag-{klen}-{path}", native.ccm_decrypt,
                        (key, nonce, ct, bytes(16)), {"_aes": path}, secrets))
            ops.append((f"ccm_encrypt-{klen}-{path}", native.ccm_encrypt, (key, nonce, vmk), {"_aes": path},
                        secrets))
    salt = rng.randbytes(16)
    for path in sha_paths():
        initial = rng.randbytes(32)
        out = native.stretch(initial, salt, 4096)
        ops.append((f"stretch-{path}", native.stretch, (initial, salt, 4096), {"_sha": path},
                    {"initial": initial, "stretched": out, "initial words": word_swapped(initial),
                     "stretched words": word_swapped(out)}))
        initials = [rng.randbytes(32) for _ in range(13)]
        outs = native.stretch_many(initials, salt, 512)
        secrets = {}
        for i, (a, b) in enumerate(zip(initials, outs)):
            secrets.update({f"initial {i}": a, f"stretched {i}": b, f"initial words {i}": word_swapped(a),
                            f"stretched words {i}": word_swapped(b)})
        ops.append((f"stretch_many-{path}", native.stretch_many, (initials, salt, 512), {"_sha": path}, secrets))
    for name in native._features()["kernels"]:
        initials = [rng.randbytes(32) for _ in range(3)]
        outs = native._stretch_kernel(name, initials, salt, 256)
        secrets = {f"stretched words {i}": word_swapped(b) for i, b in enumerate(outs)}
        secrets.update({f"stretched {i}": b for i, b in enumerate(outs)})
        ops.append((f"_stretch_kernel-{name}", native._stretch_kernel, (name, initials, salt, 256), {}, secrets))
    key16s = rng.randbytes(16 * 5)
    for path in ("scalar", "shani") if native._features()["sha_ni"] else ("scalar",):
        digests = native.sha256_many(key16s, 16)
        ops.append((f"sha256_many-{path}", native.sha256_many, (key16s, 16), {"_sha": path},
                    {f"initial {i}": digests[32 * i:32 * i + 32] for i in range(5)}
                    | {f"initial words {i}": word_swapped(digests[32 * i:32 * i + 32]) for i in range(5)}))
    groups = [[rng.randrange(65536) for _ in range(2)] for _ in range(7)] + [[rng.randrange(65536)]]
    prefix = b"".join(struct.pack("<H", g[-1]) for g in groups[:7])
    ops.append(("expand_groups", native.expand_groups, (groups,), {}, {"last prefix": prefix}))
    return ops


OPS = operations()


@pytest.mark.parametrize("op", OPS, ids=[o[0] for o in OPS])
def test_no_key_material_left_after_the_call(op):
    name, fn, args, kwargs, secrets = op
    expected = fn(*args, **kwargs)
    result, blocks, stack = audit(fn, *args, **kwargs)
    assert result == expected or name.startswith("crypt_sectors_into")
    assert all(not any(b) for b in blocks), \
        f"{name}: freed scratch buffers not wiped: {[i for i, b in enumerate(blocks) if any(b)]}"
    found = residue(stack, secrets)
    assert not found, f"{name}: left on the stack: {', '.join(found)}"


# --- the audit can fail ---------------------------------------------------------------------------


def test_the_audit_finds_an_unwiped_aes_schedule():
    """wipes=False: the freed schedule of crypt_sectors holds the round keys computed here (which
    proves round_keys() looks for what the core stores), and the stack holds key material."""
    rng = random.Random(1)
    key = rng.randbytes(64)
    data = rng.randbytes(16 * SS)
    for path in aes_paths():
        _, blocks, stack = audit(native.crypt_sectors, 0x8005, key, data, 0, SS, True, _aes=path, wipes=False)
        assert len(blocks) == 1
        for half in (key[:32], key[32:]):
            assert b"".join(round_keys(half)) in blocks[0], path
        _, blocks, stack = audit(native.crypt_sectors, 0x8005, key, data, 0, SS, True, _aes=path)
        assert len(blocks) == 1 and not any(blocks[0])


def test_the_audit_finds_unwiped_stack_and_stretch_output():
    rng = random.Random(2)
    key, nonce, vmk = rng.randbytes(32), rng.randbytes(12), rng.randbytes(44)
    ct, tag = native.ccm_encrypt(key, nonce, vmk)
    for path in aes_paths():  # bt_ccm_decrypt's schedule lives on its stack
        _, _, stack = audit(native.ccm_decrypt, key, nonce, ct, tag, _aes=path, wipes=False)
        assert residue(stack, {f"round key {r}": rk for r, rk in enumerate(round_keys(key))}), path
    initial, salt = rng.randbytes(32), rng.randbytes(16)
    out = native.stretch(initial, salt, 1000)
    _, blocks, _ = audit(native.stretch, initial, salt, 1000, wipes=False)
    assert any(word_swapped(out) in b for b in blocks)
    _, blocks, _ = audit(native.stretch, initial, salt, 1000)
    assert blocks and not any(any(b) for b in blocks)


def test_the_audit_hook_restores_the_wipes():
    """After an audit with wipes=False the wipes are on again (the hook resets bt_wipe_skip)."""
    key = os.urandom(64)
    audit(native.crypt_sectors, 0x8005, key, bytes(SS), 0, SS, wipes=False)
    _, blocks, _ = audit(native.crypt_sectors, 0x8005, key, bytes(SS), 0, SS)
    assert not any(blocks[0])
    with pytest.raises(ValueError):  # an error inside the audited call propagates, and resets too
        audit(native.crypt_sectors, 0x8005, key[:5], bytes(SS), 0, SS, wipes=False)
    _, blocks, _ = audit(native.crypt_sectors, 0x8005, key, bytes(SS), 0, SS)
    assert not any(blocks[0])


# --- the pure twin: what it owns, it wipes --------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
def test_pure_twin_wipes_its_key_derived_scratch(method, monkeypatch):
    """_pure keeps tweaks, IVs and sector keys in numpy arrays and bytearrays of its own: each is
    handed to _wipe() holding the values computed here, and is all zeros afterwards. (The keys
    themselves arrive as immutable bytes, which Python cannot wipe; see docs/reliability.md.)"""
    from bitlocker_tools._core import _pure

    rng = random.Random(method)
    key, offset = rng.randbytes(METHODS[method]), 8 * SS * 3
    data = rng.randbytes(4 * SS)
    secrets = sector_secrets(method, key, offset, 4)
    wiped: list[tuple[bytes, object]] = []
    real = _pure._wipe

    def spy(*arrays):
        for a in arrays:
            base = a
            while getattr(base, "base", None) is not None and not isinstance(base.base, bytes):
                base = base.base
            wiped.append((bytes(memoryview(base).cast("B")), base))
        real(*arrays)

    monkeypatch.setattr(_pure, "_wipe", spy)
    for decrypt in (True, False):
        wiped.clear()
        assert _pure.crypt_sectors(method, key, data, offset, SS, decrypt) == \
            native.crypt_sectors(method, key, data, offset, SS, decrypt)
        held = b"".join(before for before, _ in wiped)
        derived = [v for k, v in secrets.items() if k.startswith(("CBC IV", "XTS tweak 0", "sector key"))]
        assert derived and all(v in held for v in derived), (method, decrypt)
        assert all(not any(memoryview(a).cast("B")) for _, a in wiped)
