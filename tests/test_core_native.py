"""The C core (bitlocker_tools._core._native) against its pure-Python twin and published vectors.

Build the extension first with ``python setup.py build_ext --inplace``; without it the native
tests are skipped and only the pure-Python references run.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading

import pytest

from bitlocker_tools._core import _pure

try:
    from bitlocker_tools._core import _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

needs_native = pytest.mark.skipif(
    _native is None,
    reason="C extension bitlocker_tools._core._native not built "
    "(run: python setup.py build_ext --inplace)",
)

BACKENDS = [
    pytest.param("pure", id="pure"),
    pytest.param("native", id="native", marks=needs_native),
]


def backend(name):
    return _pure if name == "pure" else _native


@pytest.fixture(autouse=True)
def _reset_paths():
    yield
    if _native is not None:
        _native.set_paths(stretch="auto", aes="auto")


def available_stretch_paths():
    if _native is None:
        return []
    f = _native.features()
    paths = ["auto", "scalar"]
    paths += [p for p, flag in (("shani", "sha_ni"), ("avx2", "avx2"), ("avx512", "avx512")) if f[flag]]
    return paths


def available_aes_paths():
    if _native is None:
        return []
    return ["auto", "scalar"] + (["aesni"] if _native.features()["aesni"] else [])


# --- key stretching: published vectors ------------------------------------------------------------

SALT_10_1F = bytes(range(0x10, 0x20))
FULL_ROUNDS = 0x100000


def recovery_initial(password: str) -> bytes:
    key16 = b"".join((int(g) // 11).to_bytes(2, "little") for g in password.split("-"))
    return hashlib.sha256(key16).digest()


def user_password_initial(password: str) -> bytes:
    return hashlib.sha256(hashlib.sha256(password.encode("utf-16-le")).digest()).digest()


# The vector of the project's docs (bde-format.md / performance-limits.md: key e372dd30…2ea0 for
# this recovery password with salt 10..1f); the full value was computed with the pure path
# (hashlib) and is checked again below against both backends.
DOC_VECTOR_KEY = "e372dd304590db8404d71a9b5c72c522067b1204e5d69c8e57dda710f5942ea0"


@pytest.mark.parametrize("name", BACKENDS)
def test_stretch_doc_vector(name):
    initial = recovery_initial("111111-222222-333333-444444-555555-666666-111111-222222")
    key = backend(name).stretch(initial, SALT_10_1F, FULL_ROUNDS)
    assert key.hex().startswith("e372dd30") and key.hex().endswith("2ea0")
    assert key.hex() == DOC_VECTOR_KEY


# John the Ripper's BitLocker test hashes (openwall/john, src/bitlocker_common_plug.c):
# $bitlocker$<type>$16$<salt>$<iterations>$12$<nonce>$60$<mac 16 || encrypted VMK 44>, with the
# password. Types 0/1 are user passwords, 2/3 recovery passwords. The stretched key is checked
# by AES-CCM-decrypting the VMK blob (the tag must verify) and is pinned as well; the pinned
# keys were produced by this module's stretch and are confirmed by the CCM tag.
JTR_VECTORS = [
    ("$bitlocker$0$16$134bd2634ba580adc3758ca5a84d8666$1048576$12$9080903a0d9dd20103000000$60$"
     "0c52fdd87f17ac55d4f4b82a00b264070f36a84ead6d4cd330368f7dddfde1bdc9f5d08fa526dae361b3d6"
     "4875f76a077fe9c67f44e08d56f0131bb2", "openwall@123",
     "a702f41cf11b0b3eb73d52c0824d1279e1526132265513d803d6004a96a8558a"),
    ("$bitlocker$0$16$73926f843bbb41ea2a89a28b114a1a24$1048576$12$30a81ef90c9dd20103000000$60$"
     "942f852f2dc4ba8a589f35e750f33a5838d3bdc1ed77893e02ae1ac866f396f8635301f36010e0fcef0949"
     "078338f549ddb70e15c9a598e80c905baa", "password@123",
     "e8ded721cb31353930589ea6125d8ad807f777eb514e13d4ded0069386ae7aed"),
    ("$bitlocker$0$16$5e0686b4e7ce8a861b75bab3e8f1d424$1048576$12$90928da8c019d00103000000$60$"
     "ee5ce06cdc89b9fcdcd24bb854842fc8b715bb36c86c19e73ddb8a409718cac412f0416a51b1e0472fad8e"
     "db34d9208dd874dcadbf4779aaf01dfa74", "openwall@123",
     "072454fcfde8223318a42bb26c32ab2c48dfd66b8f2525b0afb3b6a7c55bd458"),
    ("$bitlocker$0$16$7b5c9407857f6d590a0d4dcf56d503a6$1048576$12$b02d06c0c019d00103000000$60$"
     "1af24981790bd0cc0d00b86b9893c0fdc63b20f0631e85f206b2af3c2c64f77bac2ec9379a4df51967c820"
     "33ed9661bace0e63c7dec4f9ef0cc27c5a", "openwall@12345",
     "32efa5203d432c0b90df3bc4f107fe9f6a70e481e3e4889f29e2a1a68eb3c1b9"),
    ("$bitlocker$0$16$9079aaee7be0923b529f069012f30b13$1048576$12$40ea50c2b79fd20103000000$60$"
     "caca601f042fae0eb697593e559760f8209d495ed0b61eda9c83a79f0abb3f598853b6f89cdffd3b5b66b9"
     "0b321b822c90c8ef5dac464ef6edd06881", "weakpassword12345",
     "28e5df6c7384d4b56cf02fa7ca2c3d9bfaf125b41b1c0bf02e99d83a4613f42a"),
    ("$bitlocker$2$16$432dd19f37dd413a88552225628c8ae5$1048576$12$a0da3fc75f6cd30106000000$60$"
     "3e57c68216ef3d2b8139fdb0ec74254bdf453e688401e89b41cae7c250739a8b36edd4fe86a597b5823cf3"
     "e0f41c98f623b528960a4bee00c42131ef", "111683-110022-683298-209352-468105-648483-571252-334455",
     "a31cc882bcbf88273facd5a8d1a5018cecf2b9ecee7e7e3d2f01fdd25919b8b2"),
]


def parse_jtr(h: str, password: str):
    f = h.split("$")
    kind, salt, rounds = int(f[2]), bytes.fromhex(f[4]), int(f[5])
    nonce, data = bytes.fromhex(f[7]), bytes.fromhex(f[9])
    initial = recovery_initial(password) if kind >= 2 else user_password_initial(password)
    return initial, salt, rounds, nonce, data


def ccm_opens(key: bytes, nonce: bytes, data: bytes) -> bytes:
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    return aead.AESCCM(key, tag_length=16).decrypt(nonce, data[16:] + data[:16], None)


@pytest.mark.parametrize(
    "name,vector",
    [pytest.param("native", v, id=f"native-{i}", marks=needs_native) for i, v in enumerate(JTR_VECTORS)]
    + [pytest.param("pure", JTR_VECTORS[i], id=f"pure-{i}") for i in (0, 5)],
)
def test_stretch_jtr_vectors(name, vector):
    h, password, expected = vector
    initial, salt, rounds, nonce, data = parse_jtr(h, password)
    key = backend(name).stretch(initial, salt, rounds)
    assert key.hex() == expected
    plain = ccm_opens(key, nonce, data)
    # the VMK KEY datum: size 0x2c, type 0, value type 1, version 1, method 0x2003
    assert plain[:12] == bytes.fromhex("2c0000000100000003200000")


@needs_native
def test_stretch_many_finds_the_recovery_password_among_decoys():
    h, password, expected = JTR_VECTORS[5]
    initial, salt, rounds, nonce, data = parse_jtr(h, password)
    rng = random.Random(5)
    candidates = [rng.randbytes(32) for _ in range(12)]
    candidates.insert(7, initial)
    keys = _native.stretch_many(candidates, salt, rounds)
    assert [k.hex() == expected for k in keys] == [i == 7 for i in range(13)]


# --- key stretching: equivalence ----------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("rounds", [0, 1, 2, 3, 15, 16, 17, 1000, -5])
def test_stretch_small_rounds_native_vs_pure(rounds):
    rng = random.Random(rounds)
    for _ in range(3):
        initial, salt = rng.randbytes(32), rng.randbytes(16)
        assert _native.stretch(initial, salt, rounds) == _pure.stretch(initial, salt, rounds)


@needs_native
@pytest.mark.parametrize("path", available_stretch_paths())
def test_stretch_many_every_path(path):
    rng = random.Random(path)
    salt = rng.randbytes(16)
    initials = [rng.randbytes(32) for _ in range(13)]
    for rounds in (1000, 37):
        ref = [_pure.stretch(i, salt, rounds) for i in initials]
        _native.set_paths(stretch=path)
        for n in range(1, 14):
            assert _native.stretch_many(initials[:n], salt, rounds) == ref[:n], (path, rounds, n)
        assert _native.stretch(initials[3], salt, rounds) == ref[3]
        # any iterable of buffers
        assert _native.stretch_many((bytearray(i) for i in initials[:5]), salt, rounds) == ref[:5]


@needs_native
def test_stretch_every_kernel():
    rng = random.Random(11)
    salt = rng.randbytes(16)
    initials = [rng.randbytes(32) for _ in range(17)]
    ref = [_pure.stretch(i, salt, 200) for i in initials]
    kernels = _native.features()["kernels"]
    assert "scalar" in kernels
    for name, info in kernels.items():
        for n in (1, info["lanes"] - 1, info["lanes"], info["lanes"] + 1, 17):
            if n >= 1:
                assert _native._stretch_kernel(name, initials[:n], salt, 200) == ref[:n], (name, n)


@needs_native
def test_stretch_arguments():
    assert _native.stretch_many([], bytes(16), 10) == []
    with pytest.raises(ValueError):
        _native.stretch(bytes(31), bytes(16), 10)
    with pytest.raises(ValueError):
        _native.stretch(bytes(32), bytes(15), 10)
    with pytest.raises(ValueError):
        _native.stretch_many([bytes(32), bytes(33)], bytes(16), 10)
    with pytest.raises(TypeError):
        _native.stretch_many([bytes(32), 5], bytes(16), 10)
    with pytest.raises(TypeError):
        _native.stretch(bytes(32), bytes(16), 1.5)
    assert _native.stretch(memoryview(bytes(32)), bytearray(16), 3) == _pure.stretch(bytes(32), bytes(16), 3)


@needs_native
def test_stretch_threads():
    """The GIL is released: threads run side by side and still get the right keys."""
    rng = random.Random(3)
    salt = rng.randbytes(16)
    jobs = [[rng.randbytes(32) for _ in range(5)] for _ in range(4)]
    results = [None] * len(jobs)

    def work(i):
        results[i] = _native.stretch_many(jobs[i], salt, 3000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job, res in zip(jobs, results):
        assert res == [_native.stretch(i, salt, 3000) for i in job]


# --- sector crypto ----------------------------------------------------------------------------------

METHODS = {  # method: key lengths (bytes) the metadata gives for it
    0x8000: 32, 0x8001: 64, 0x8002: 16, 0x8003: 32, 0x8004: 32, 0x8005: 64,
}


def random_batch(rng: random.Random, method: int, sector_size: int, n: int):
    key = rng.randbytes(METHODS[method])
    offset = rng.randrange(0, 1 << 44)
    if rng.random() < 0.5:
        offset -= offset % sector_size
    return key, rng.randbytes(n * sector_size), offset


@needs_native
@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_random_native_vs_pure(method, sector_size):
    """10,000 random sectors per method and size (100 calls x 100 sectors), both directions."""
    rng = random.Random(method * 7 + sector_size)
    for _ in range(100):
        key, data, offset = random_batch(rng, method, sector_size, 100)
        plain = _native.crypt_sectors(method, key, data, offset, sector_size, True)
        assert plain == _pure.crypt_sectors(method, key, data, offset, sector_size, True)
        cipher = _native.crypt_sectors(method, key, data, offset, sector_size, False)
        assert cipher == _pure.crypt_sectors(method, key, data, offset, sector_size, False)
        assert _native.crypt_sectors(method, key, cipher, offset, sector_size) == data


@needs_native
@pytest.mark.parametrize("aes", available_aes_paths())
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_paths_and_sizes(method, aes):
    """Every AES path, key size, and the other sector sizes, including odd sector counts."""
    _native.set_paths(aes=aes)
    rng = random.Random(method)
    # the key length picks AES-128/192/256 in both backends (192 is not a BitLocker size)
    key_lens = {0x8000: (32, 48, 64), 0x8001: (64,), 0x8002: (16, 24, 32), 0x8003: (32,),
                0x8004: (32, 48, 64), 0x8005: (64,)}[method]
    for key_len in key_lens:
        for sector_size in (512, 1024, 2048, 4096):
            for n in (1, 7, 9, 17):
                key = rng.randbytes(key_len)
                data = rng.randbytes(n * sector_size)
                offset = rng.randrange(0, 1 << 40)
                for decrypt in (True, False):
                    assert _native.crypt_sectors(method, key, data, offset, sector_size, decrypt) == \
                        _pure.crypt_sectors(method, key, data, offset, sector_size, decrypt)


@needs_native
@pytest.mark.parametrize("aes", available_aes_paths())
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_small_sector_sizes(method, aes):
    """Sector sizes that are not a multiple of 8 blocks exercise the tail loops."""
    _native.set_paths(aes=aes)
    rng = random.Random(method + 3)
    sizes = (32, 96, 160) if method in (0x8000, 0x8001) else (16, 48, 80, 144, 272)
    for sector_size in sizes:
        for n in (1, 5, 8, 11):
            key = rng.randbytes(METHODS[method])
            data = rng.randbytes(n * sector_size)
            offset = rng.randrange(0, 1 << 40)
            for decrypt in (True, False):
                assert _native.crypt_sectors(method, key, data, offset, sector_size, decrypt) == \
                    _pure.crypt_sectors(method, key, data, offset, sector_size, decrypt)
    if method in (0x8000, 0x8001):
        with pytest.raises(ValueError):
            _native.crypt_sectors(method, bytes(METHODS[method]), bytes(96), 0, 48)


@needs_native
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_offset_wraps_like_pure(method):
    key = bytes(range(METHODS[method]))
    data = bytes(range(256)) * 10
    offset = (1 << 64) - 512 * 2
    for decrypt in (True, False):
        assert _native.crypt_sectors(method, key, data, offset, 512, decrypt) == \
            _pure.crypt_sectors(method, key, data, offset, 512, decrypt)


@needs_native
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_into_and_buffers(method):
    rng = random.Random(method + 1)
    key, data, offset = random_batch(rng, method, 512, 12)
    expected = _pure.crypt_sectors(method, key, data, offset, 512, True)
    for src in (data, bytearray(data), memoryview(data)):
        assert _native.crypt_sectors(method, key, src, offset, 512) == expected
    out = bytearray(len(data))
    assert _native.crypt_sectors_into(method, key, data, offset, 512, True, out) is None
    assert out == expected
    # in place
    buf = bytearray(data)
    _native.crypt_sectors_into(method, key, buf, offset, 512, True, buf)
    assert buf == expected
    # into a slice of a larger buffer
    big = bytearray(len(data) + 100)
    _native.crypt_sectors_into(method, key, data, offset, 512, True, memoryview(big)[50:50 + len(data)])
    assert big[50:50 + len(data)] == expected and big[:50] == bytes(50)
    # partially overlapping input and output
    big = bytearray(len(data) + 512)
    big[:len(data)] = data
    _native.crypt_sectors_into(method, key, memoryview(big)[:len(data)], offset, 512, True,
                               memoryview(big)[512:])
    assert big[512:] == expected
    # the pure-Python twin of crypt_sectors_into
    out2 = bytearray(len(data))
    _pure.crypt_sectors_into(method, key, data, offset, 512, True, out2)
    assert out2 == expected
    with pytest.raises(ValueError):
        _native.crypt_sectors_into(method, key, data, offset, 512, True, bytearray(len(data) - 512))
    with pytest.raises(TypeError):
        _native.crypt_sectors_into(method, key, data, offset, 512, True, bytes(len(data)))


@pytest.mark.parametrize("name", BACKENDS)
def test_crypt_sectors_errors(name):
    mod = backend(name)
    assert mod.crypt_sectors(0x8004, bytes(32), b"", 0, 512) == bytearray()
    assert mod.crypt_sectors(0x1234, bytes(32), b"", 0, 512) == bytearray()
    with pytest.raises(ValueError):
        mod.crypt_sectors(0x8004, bytes(32), bytes(700), 0, 512)
    with pytest.raises(ValueError):
        mod.crypt_sectors(0x1234, bytes(32), bytes(512), 0, 512)
    with pytest.raises(ValueError):
        mod.crypt_sectors(0x8002, bytes(20), bytes(512), 0, 512)
    with pytest.raises(OverflowError):
        mod.crypt_sectors(0x8002, bytes(16), bytes(512), -512, 512)


@needs_native
def test_keyword_arguments_match_pure():
    kwargs = dict(initial=bytes(32), salt=bytes(16), rounds=5)
    assert _native.stretch(**kwargs) == _pure.stretch(**kwargs)
    assert _native.stretch_many(initials=[bytes(32)], salt=bytes(16), rounds=5) == \
        _pure.stretch_many(initials=[bytes(32)], salt=bytes(16), rounds=5)
    kwargs = dict(method=0x8004, key=bytes(range(32)), data=bytes(1024), offset=512,
                  sector_size=512, decrypt=False)
    assert _native.crypt_sectors(**kwargs) == _pure.crypt_sectors(**kwargs)
    out_n, out_p = bytearray(1024), bytearray(1024)
    _native.crypt_sectors_into(out=out_n, **kwargs)
    _pure.crypt_sectors_into(out=out_p, **kwargs)
    assert out_n == out_p
    assert _native.sha256_many(data=bytes(32), item_len=16) == \
        _pure.sha256_many(data=bytes(32), item_len=16)
    assert _native.expand_groups(groups=[[1]] * 8) == _pure.expand_groups(groups=[[1]] * 8)


def test_crypt_sectors_into_pure_length_check():
    with pytest.raises(ValueError):
        _pure.crypt_sectors_into(0x8004, bytes(32), bytes(512), 0, 512, True, bytearray(1024))


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("key_len", [32, 64])
def test_xts_against_cryptography(name, key_len):
    modes = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    rng = random.Random(key_len)
    method = 0x8004 if key_len == 32 else 0x8005
    for sector_size in (512, 4096):
        key = rng.randbytes(key_len)
        first = rng.randrange(0, 1 << 40)
        n = 20
        data = rng.randbytes(n * sector_size)
        got = backend(name).crypt_sectors(method, key, data, first * sector_size, sector_size, True)
        for s in range(n):
            tweak = (first + s).to_bytes(16, "little")
            dec = modes.Cipher(modes.algorithms.AES(key), modes.modes.XTS(tweak)).decryptor()
            chunk = data[s * sector_size:(s + 1) * sector_size]
            assert got[s * sector_size:(s + 1) * sector_size] == dec.update(chunk) + dec.finalize()


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("key_len", [16, 32])
def test_cbc_against_cryptography(name, key_len):
    c = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    rng = random.Random(key_len + 1)
    key = rng.randbytes(key_len)
    offset, n, ss = rng.randrange(0, 1 << 40) * 512, 10, 512
    data = rng.randbytes(n * ss)
    got = backend(name).crypt_sectors(0x8002 if key_len == 16 else 0x8003, key, data, offset, ss, True)
    ecb = c.Cipher(c.algorithms.AES(key), c.modes.ECB()).encryptor()
    for s in range(n):
        iv = ecb.update((offset + s * ss).to_bytes(8, "little") + bytes(8))
        dec = c.Cipher(c.algorithms.AES(key), c.modes.CBC(iv)).decryptor()
        assert got[s * ss:(s + 1) * ss] == dec.update(data[s * ss:(s + 1) * ss]) + dec.finalize()


# --- AES-CCM key blobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,aes", [("pure", None)] + [("native", a) for a in available_aes_paths()])
def test_ccm_against_cryptography(name, aes):
    """Every length a key blob can have (and block-boundary lengths) against pyca's AESCCM."""
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    rng = random.Random(3610)
    core = backend(name)
    if aes:
        core.set_paths(aes=aes)
    for length in (0, 1, 15, 16, 17, 28, 44, 60, 64, 76, 255):
        for key_len in (16, 24, 32):
            key, nonce, plain = rng.randbytes(key_len), rng.randbytes(12), rng.randbytes(length)
            sealed = aead.AESCCM(key, tag_length=16).encrypt(nonce, plain, None)
            ref_ct, ref_tag = sealed[:-16], sealed[-16:]
            assert core.ccm_encrypt(key, nonce, plain) == (ref_ct, ref_tag)
            assert core.ccm_decrypt(key, nonce, ref_ct, ref_tag) == plain
            bad = bytearray(ref_tag)
            bad[rng.randrange(16)] ^= 1 << rng.randrange(8)
            assert core.ccm_decrypt(key, nonce, ref_ct, bytes(bad)) is None
            if length:
                flipped = bytearray(ref_ct)
                flipped[rng.randrange(length)] ^= 0x80
                assert core.ccm_decrypt(key, nonce, bytes(flipped), ref_tag) is None


@pytest.mark.parametrize("name", BACKENDS)
def test_ccm_rejects_malformed_arguments(name):
    core = backend(name)
    with pytest.raises(ValueError, match="key length"):
        core.ccm_decrypt(bytes(20), bytes(12), b"x", bytes(16))
    with pytest.raises(ValueError, match="nonce"):
        core.ccm_decrypt(bytes(32), bytes(13), b"x", bytes(16))
    with pytest.raises(ValueError, match="tag"):
        core.ccm_decrypt(bytes(32), bytes(12), b"x", bytes(8))
    with pytest.raises(ValueError, match="key length"):
        core.ccm_encrypt(bytes(7), bytes(12), b"x")


# --- Elephant diffuser --------------------------------------------------------------------------------

DIFFUSER_A_ENC_OF_A = "f58aa15c1219f893c4ed355d363d8f831bcc0c4a82c6bbffcca321aada9e86ec"
DIFFUSER_B_ENC_OF_A = "1d5a51ae0d0b6309f1f8661376af9ebd880b1274601f6841f5aaeb5273580133"


def diffuser(name):
    return _pure._diffuser_test if name == "pure" else _native._diffuser_test


@pytest.mark.parametrize("name", BACKENDS)
def test_diffuser_self_test(name):
    sector = b"a" * 512
    assert hashlib.sha256(diffuser(name)("a", False, sector)).hexdigest() == DIFFUSER_A_ENC_OF_A
    assert hashlib.sha256(diffuser(name)("b", False, sector)).hexdigest() == DIFFUSER_B_ENC_OF_A


@needs_native
@pytest.mark.parametrize("size", [32, 48, 64, 512, 1024, 4096])
def test_diffuser_native_vs_pure(size):
    rng = random.Random(size)
    for _ in range(5):
        data = rng.randbytes(size)
        for which in "ab":
            for decrypt in (True, False):
                got = _native._diffuser_test(which, decrypt, data)
                assert got == _pure._diffuser_test(which, decrypt, data)
            assert _native._diffuser_test(which, True, _native._diffuser_test(which, False, data)) == data


# --- candidate helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pure", pytest.param("native", marks=needs_native)])
def test_expand_groups_order(name):
    mod = _pure if name == "pure" else _native
    groups = [[1, 2], [3], [4], [5], [6], [7], [8], [9, 10]]
    out = mod.expand_groups(groups)
    words = [int.from_bytes(out[i:i + 2], "little") for i in range(0, len(out), 2)]
    assert words == [1, 3, 4, 5, 6, 7, 8, 9,
                     1, 3, 4, 5, 6, 7, 8, 10,
                     2, 3, 4, 5, 6, 7, 8, 9,
                     2, 3, 4, 5, 6, 7, 8, 10]
    assert mod.expand_groups([[1]] * 7 + [[]]) == b""
    for bad in ([[1]] * 7, [[1]] * 7 + [[65536]], [[1]] * 7 + [[-1]]):
        with pytest.raises(ValueError):
            mod.expand_groups(bad)


@needs_native
def test_expand_groups_native_vs_pure():
    rng = random.Random(8)
    for _ in range(200):
        groups = [[rng.randrange(65536) for _ in range(rng.randrange(1, 4))] for _ in range(8)]
        assert _native.expand_groups(groups) == _pure.expand_groups(groups)
    full = [list(range(65536))] + [[111111 // 11]] * 7
    assert _native.expand_groups(full) == _pure.expand_groups(full)


@needs_native
@pytest.mark.parametrize("path", ["auto", "scalar"])
def test_sha256_many(path):
    _native.set_paths(stretch=path)
    rng = random.Random(9)
    for item_len in (1, 16, 32, 55, 56, 63, 64, 65, 119, 120, 200):
        data = rng.randbytes(item_len * 23)
        expected = b"".join(hashlib.sha256(data[i:i + item_len]).digest()
                            for i in range(0, len(data), item_len))
        assert _native.sha256_many(data, item_len) == expected
        assert _pure.sha256_many(data, item_len) == expected
    assert _native.sha256_many(b"", 16) == b""
    for mod in (_native, _pure):
        with pytest.raises(ValueError):
            mod.sha256_many(bytes(17), 16)
        with pytest.raises(ValueError):
            mod.sha256_many(bytes(16), 0)


@needs_native
def test_recovery_candidates_pipeline():
    """expand_groups -> sha256_many -> stretch_many gives the doc vector's key."""
    pw = [111111, 222222, 333333, 444444, 555555, 666666, 111111, 222222]
    groups = [[g // 11] for g in pw]
    groups[2] = [333333 // 11 - 1, 333333 // 11, 333333 // 11 + 1]
    key16s = _native.expand_groups(groups)
    initials = _native.sha256_many(key16s, 16)
    assert initials[32:64] == recovery_initial("-".join(map(str, pw)))
    keys = _native.stretch_many([initials[i:i + 32] for i in range(0, len(initials), 32)],
                                SALT_10_1F, FULL_ROUNDS)
    assert [k.hex() == DOC_VECTOR_KEY for k in keys] == [False, True, False]


# --- features / paths ---------------------------------------------------------------------------------


@needs_native
def test_features_and_set_paths():
    f = _native.features()
    for flag in ("sha_ni", "aesni", "avx2", "avx512", "vaes"):
        assert isinstance(f[flag], bool)
    assert f["stretch"] == "auto" and f["aes"] == "auto"
    assert isinstance(f["kernels"], dict) and "scalar" in f["kernels"]
    prev = _native.set_paths(stretch="scalar", aes="scalar")
    assert prev == {"stretch": "auto", "aes": "auto"}
    assert _native.features()["stretch"] == "scalar"
    assert _native.features()["aes_path"] == "scalar"
    assert _native.set_paths(**prev) == {"stretch": "scalar", "aes": "scalar"}
    assert _native.features()["stretch"] == "auto"
    with pytest.raises(ValueError):
        _native.set_paths(stretch="quantum")
    with pytest.raises(ValueError):
        _native.set_paths(aes="gpu")
    for path, flag in (("shani", "sha_ni"), ("avx2", "avx2"), ("avx512", "avx512")):
        if not f[flag]:
            with pytest.raises(ValueError):
                _native.set_paths(stretch=path)


def test_load_prefers_native_unless_pure_forced(monkeypatch):
    from bitlocker_tools._core import backend_name, load

    assert backend_name(load(pure=True)) == "pure-python"
    if _native is not None:
        monkeypatch.delenv("BITLOCKER_TOOLS_PURE", raising=False)
        assert backend_name(load()) == "native"
        assert os.environ.get("BITLOCKER_TOOLS_PURE") is None
