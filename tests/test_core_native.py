"""The C core (bitlocker_tools._core._native) against its pure-Python twin, and the contract both keep.

Build the extension first with ``python setup.py build_ext --inplace``; without it the native
tests are skipped and only the pure-Python references run. The published vectors are in
tests/vectors/ and run in tests/test_vectors.py; this file compares the cores with each other on
random data, on every kernel path the CPU has (forced per call with ``_sha=`` / ``_aes=``).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import random
import threading
import typing
from pathlib import Path

import pytest

from bitlocker_tools._core import Core, _pure

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


def available_stretch_paths():
    """The ``_sha=`` values of this CPU, derived from the CPU flags (and checked against what
    ``_features()`` says in test_features_and_forced_paths)."""
    if _native is None:
        return []
    f = _native._features()
    paths = ["auto", "scalar"]
    paths += [p for p, flag in (("shani", "sha_ni"), ("avx2", "avx2"), ("avx512", "avx512")) if f[flag]]
    return paths


def available_aes_paths():
    if _native is None:
        return []
    return ["auto", "scalar"] + (["aesni"] if _native._features()["aesni"] else [])


def load_vectors(name: str) -> list:
    return json.loads((Path(__file__).resolve().parent / "vectors" / name).read_text())["vectors"]


FULL_ROUNDS = 0x100000


def recovery_initial(password: str) -> bytes:
    key16 = b"".join((int(g) // 11).to_bytes(2, "little") for g in password.split("-"))
    return hashlib.sha256(key16).digest()


# --- the contract: both cores provide exactly Core's functions, with its signatures ---------------

CONTRACT = sorted(name for name, value in vars(Core).items()
                  if inspect.isfunction(value) and not name.startswith("_"))
PRIVATE_PATH_ARGS = {"_sha", "_aes"}  # the native kernel-path hooks, kept out of the contract


def public_functions(module) -> list[str]:
    """The module's public callables (for the pure twin: functions defined in it)."""
    if module is _pure:
        return sorted(n for n, v in vars(module).items()
                      if inspect.isfunction(v) and v.__module__ == module.__name__ and not n.startswith("_"))
    return sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))


def contract_parameters(name: str) -> list[inspect.Parameter]:
    params = list(inspect.signature(getattr(Core, name)).parameters.values())
    assert params[0].name == "self"
    return params[1:]


def shape(params) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in params]


def test_contract_lists_the_functions_the_package_calls():
    assert CONTRACT == ["ccm_decrypt", "ccm_encrypt", "crypt_sectors", "crypt_sectors_into",
                        "expand_groups", "sha256_many", "stretch", "stretch_many"]
    for name in CONTRACT:
        assert len(inspect.getdoc(getattr(Core, name))) > 80, name  # says what it is for


@pytest.mark.parametrize("name", BACKENDS)
def test_core_provides_exactly_the_contract(name):
    """A function added to one core and not to the contract (or the other core) fails here."""
    module = backend(name)
    assert public_functions(module) == CONTRACT
    assert isinstance(module, Core)


def test_pure_signatures_match_the_contract():
    for name in CONTRACT:
        fn = getattr(_pure, name)
        assert shape(inspect.signature(fn).parameters.values()) == shape(contract_parameters(name)), name
        assert typing.get_type_hints(fn) == typing.get_type_hints(getattr(Core, name)), name


@needs_native
def test_native_signatures_match_the_contract():
    """The extension's text signatures: the contract's parameters, then at most one keyword-only
    kernel-path hook defaulting to 'auto'."""
    for name in CONTRACT:
        params = list(inspect.signature(getattr(_native, name)).parameters.values())
        hooks = [p for p in params if p.name in PRIVATE_PATH_ARGS]
        assert all(p.kind is p.KEYWORD_ONLY and p.default == "auto" for p in hooks), name
        assert len(hooks) <= 1, name
        public = [p for p in params if p.name not in PRIVATE_PATH_ARGS]
        assert shape(public) == shape(contract_parameters(name)), name


def stub_signatures() -> dict[str, list[tuple]]:
    """(name, kind, default) of each function's parameters in _native.pyi, read with ast."""
    import bitlocker_tools._core as core_pkg

    tree = ast.parse((Path(core_pkg.__file__).parent / "_native.pyi").read_text())
    out = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        a = node.args
        positional = a.posonlyargs + a.args
        defaults = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + \
            [ast.literal_eval(d) for d in a.defaults]
        params = [(p.arg, inspect.Parameter.POSITIONAL_ONLY, d) for p, d in zip(a.posonlyargs, defaults)]
        params += [(p.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, d)
                   for p, d in zip(a.args, defaults[len(a.posonlyargs):])]
        params += [(p.arg, inspect.Parameter.KEYWORD_ONLY,
                    inspect.Parameter.empty if d is None else ast.literal_eval(d))
                   for p, d in zip(a.kwonlyargs, a.kw_defaults)]
        out[node.name] = params
    return out


@needs_native
def test_native_stub_matches_the_extension():
    """_native.pyi names every function of the extension with its parameters, so a type checker
    sees what the extension really takes."""
    stub = stub_signatures()
    functions = sorted(n for n in dir(_native) if callable(getattr(_native, n)) and not n.startswith("__"))
    assert sorted(stub) == functions
    for name in functions:
        assert stub[name] == shape(inspect.signature(getattr(_native, name)).parameters.values()), name


@needs_native
def test_stretch_many_finds_the_recovery_password_among_decoys():
    """John the Ripper's recovery-password hash (tests/vectors/jtr_bitlocker.json) in a batch of
    13 on the planner: only the right lane gives the key."""
    v = load_vectors("jtr_bitlocker.json")[5]
    f = v["hash"].split("$")
    salt, rounds = bytes.fromhex(f[4]), int(f[5])
    rng = random.Random(5)
    candidates = [rng.randbytes(32) for _ in range(12)]
    candidates.insert(7, recovery_initial(v["password"]))
    keys = _native.stretch_many(candidates, salt, rounds)
    assert [k.hex() == v["stretched_key"] for k in keys] == [i == 7 for i in range(13)]


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
        for n in range(1, 14):
            assert _native.stretch_many(initials[:n], salt, rounds, _sha=path) == ref[:n], (path, rounds, n)
        assert _native.stretch(initials[3], salt, rounds, _sha=path) == ref[3]
        # any iterable of buffers
        assert _native.stretch_many((bytearray(i) for i in initials[:5]), salt, rounds, _sha=path) == ref[:5]


@needs_native
def test_stretch_every_kernel():
    rng = random.Random(11)
    salt = rng.randbytes(16)
    initials = [rng.randbytes(32) for _ in range(17)]
    ref = [_pure.stretch(i, salt, 200) for i in initials]
    kernels = _native._features()["kernels"]
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
                    assert _native.crypt_sectors(method, key, data, offset, sector_size, decrypt, _aes=aes) == \
                        _pure.crypt_sectors(method, key, data, offset, sector_size, decrypt)


@needs_native
@pytest.mark.parametrize("aes", available_aes_paths())
@pytest.mark.parametrize("method", sorted(METHODS), ids=hex)
def test_crypt_sectors_small_sector_sizes(method, aes):
    """Sector sizes that are not a multiple of 8 blocks exercise the tail loops."""
    rng = random.Random(method + 3)
    sizes = (32, 96, 160) if method in (0x8000, 0x8001) else (16, 48, 80, 144, 272)
    for sector_size in sizes:
        for n in (1, 5, 8, 11):
            key = rng.randbytes(METHODS[method])
            data = rng.randbytes(n * sector_size)
            offset = rng.randrange(0, 1 << 40)
            for decrypt in (True, False):
                assert _native.crypt_sectors(method, key, data, offset, sector_size, decrypt, _aes=aes) == \
                    _pure.crypt_sectors(method, key, data, offset, sector_size, decrypt)
            out = bytearray(len(data))
            _native.crypt_sectors_into(method, key, data, offset, sector_size, True, out, _aes=aes)
            assert out == _pure.crypt_sectors(method, key, data, offset, sector_size, True)
    if method in (0x8000, 0x8001):
        with pytest.raises(ValueError):
            _native.crypt_sectors(method, bytes(METHODS[method]), bytes(96), 0, 48, _aes=aes)


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
    force = {"_aes": aes} if aes else {}
    for length in (0, 1, 15, 16, 17, 28, 44, 60, 64, 76, 255):
        for key_len in (16, 24, 32):
            key, nonce, plain = rng.randbytes(key_len), rng.randbytes(12), rng.randbytes(length)
            sealed = aead.AESCCM(key, tag_length=16).encrypt(nonce, plain, None)
            ref_ct, ref_tag = sealed[:-16], sealed[-16:]
            assert core.ccm_encrypt(key, nonce, plain, **force) == (ref_ct, ref_tag)
            assert core.ccm_decrypt(key, nonce, ref_ct, ref_tag, **force) == plain
            bad = bytearray(ref_tag)
            bad[rng.randrange(16)] ^= 1 << rng.randrange(8)
            assert core.ccm_decrypt(key, nonce, ref_ct, bytes(bad), **force) is None
            if length:
                flipped = bytearray(ref_ct)
                flipped[rng.randrange(length)] ^= 0x80
                assert core.ccm_decrypt(key, nonce, bytes(flipped), ref_tag, **force) is None


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
@pytest.mark.parametrize("path", [p for p in available_stretch_paths() if p in ("auto", "scalar", "shani")])
def test_sha256_many(path):
    rng = random.Random(9)
    for item_len in (1, 16, 32, 55, 56, 63, 64, 65, 119, 120, 200):
        data = rng.randbytes(item_len * 23)
        expected = b"".join(hashlib.sha256(data[i:i + item_len]).digest()
                            for i in range(0, len(data), item_len))
        assert _native.sha256_many(data, item_len, _sha=path) == expected
        assert _pure.sha256_many(data, item_len) == expected
    assert _native.sha256_many(b"", 16, _sha=path) == b""
    for mod in (_native, _pure):
        with pytest.raises(ValueError):
            mod.sha256_many(bytes(17), 16)
        with pytest.raises(ValueError):
            mod.sha256_many(bytes(16), 0)


@needs_native
def test_recovery_candidates_pipeline():
    """expand_groups -> sha256_many -> stretch_many gives the key of the project notes' vector
    (tests/vectors/bitlocker_stretch_notes.json) for the right candidate only."""
    (v,) = load_vectors("bitlocker_stretch_notes.json")
    pw = [int(g) for g in v["recovery_password"].split("-")]
    groups = [[g // 11] for g in pw]
    groups[2] = [pw[2] // 11 - 1, pw[2] // 11, pw[2] // 11 + 1]
    key16s = _native.expand_groups(groups)
    initials = _native.sha256_many(key16s, 16)
    assert initials[32:64] == recovery_initial(v["recovery_password"])
    keys = _native.stretch_many([initials[i:i + 32] for i in range(0, len(initials), 32)],
                                bytes.fromhex(v["salt"]), v["rounds"])
    assert v["rounds"] == FULL_ROUNDS
    assert [k.hex() == v["key"] for k in keys] == [False, True, False]


# --- test hooks: features and per-call kernel paths --------------------------------------------------


@needs_native
def test_features_and_forced_paths():
    """_features() reports the CPU and kernels; kernel paths are forced per call only (no
    process-wide setting is left to leak between callers), and a bad or missing path is a
    ValueError on every function that takes one."""
    f = _native._features()
    for flag in ("sha_ni", "aesni", "avx2", "avx512", "vaes", "calibrated"):
        assert isinstance(f[flag], bool)
    assert not {"stretch", "aes"} & set(f)  # the old forced-path fields
    assert not hasattr(_native, "set_paths") and not hasattr(_native, "features")
    assert isinstance(f["kernels"], dict) and "scalar" in f["kernels"]
    assert {k["path"] for k in f["kernels"].values()} | {"auto"} == set(f["sha_paths"])
    assert sorted(f["sha_paths"]) == sorted(available_stretch_paths())
    assert sorted(f["aes_paths"]) == sorted(available_aes_paths())
    assert f["stretch_single_path"] == ("shani" if f["sha_ni"] else "auto")
    assert f["aes_path"] == ("aesni" if f["aesni"] else "scalar")
    _native._calibrate()
    assert _native._features()["calibrated"] is True

    salt, initial, key = bytes(16), bytes(32), bytes(32)
    sha_calls = [lambda p: _native.stretch(initial, salt, 3, _sha=p),
                 lambda p: _native.stretch_many([initial], salt, 3, _sha=p),
                 lambda p: _native.sha256_many(initial, 16, _sha=p)]
    aes_calls = [lambda p: _native.crypt_sectors(0x8004, key, bytes(512), 0, 512, _aes=p),
                 lambda p: _native.crypt_sectors_into(0x8004, key, bytes(512), 0, 512, True, bytearray(512), _aes=p),
                 lambda p: _native.ccm_decrypt(key, bytes(12), b"x", bytes(16), _aes=p),
                 lambda p: _native.ccm_encrypt(key, bytes(12), b"x", _aes=p)]
    for call in sha_calls:
        with pytest.raises(ValueError, match="unknown _sha path"):
            call("quantum")
        for path, flag in (("shani", "sha_ni"), ("avx2", "avx2"), ("avx512", "avx512")):
            if not f[flag]:
                with pytest.raises(ValueError, match="not available"):
                    call(path)
    for call in aes_calls:
        with pytest.raises(ValueError, match="unknown _aes path"):
            call("gpu")
        if not f["aesni"]:
            with pytest.raises(ValueError, match="not available"):
                call("aesni")
    for lanes in ("avx2", "avx512"):  # sha256_many hashes one item per call: no lane kernels
        with pytest.raises(ValueError, match=f"no {lanes} path"):
            _native.sha256_many(initial, 16, _sha=lanes)
    with pytest.raises(TypeError):  # keyword-only: a path can never be passed by position
        _native.crypt_sectors(0x8004, key, bytes(512), 0, 512, True, "scalar")
    with pytest.raises(TypeError):
        _native.stretch(initial, salt, 3, "scalar")


@needs_native
def test_forced_paths_are_per_call_across_threads():
    """Threads forcing different paths at the same time each get correct results: the choice
    travels with the call, not through shared state."""
    rng = random.Random(12)
    salt = rng.randbytes(16)
    initials = [rng.randbytes(32) for _ in range(9)]
    ref = [_pure.stretch(i, salt, 2000) for i in initials]
    key, data = rng.randbytes(32), rng.randbytes(64 * 512)
    plain = _pure.crypt_sectors(0x8004, key, data, 512 * 7, 512)
    errors = []

    def work(sha, aes):
        try:
            for _ in range(3):
                assert _native.stretch_many(initials, salt, 2000, _sha=sha) == ref
                assert _native.crypt_sectors(0x8004, key, data, 512 * 7, 512, _aes=aes) == plain
        except Exception as exc:  # reported below, in the test's thread
            errors.append((sha, aes, exc))

    shas, aess = available_stretch_paths(), available_aes_paths()
    threads = [threading.Thread(target=work, args=(shas[i % len(shas)], aess[i % len(aess)]))
               for i in range(max(len(shas), len(aess)) * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_load_prefers_native_unless_pure_forced(monkeypatch):
    from bitlocker_tools._core import backend_name, load

    assert backend_name(load(pure=True)) == "pure-python"
    if _native is not None:
        monkeypatch.delenv("BITLOCKER_TOOLS_PURE", raising=False)
        assert backend_name(load()) == "native"
        assert os.environ.get("BITLOCKER_TOOLS_PURE") is None
