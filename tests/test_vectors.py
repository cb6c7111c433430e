"""Both cores against published test vectors (tests/vectors/*.json, sources in docs/test-vectors.md).

Each vector runs through the pure twin and through the C extension on every kernel path this CPU
has (``_aes=`` / ``_sha=``). Each vector is also checked against an independent implementation
(pyca/cryptography, or dissect.fve for the Elephant diffuser) without the cores, so a mistyped
value in a file fails as a bad vector rather than passing or failing both cores alike.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from bitlocker_tools._core import _pure

try:
    from bitlocker_tools._core import _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

VECTORS = Path(__file__).resolve().parent / "vectors"
NATIVE_REASON = "C extension bitlocker_tools._core._native not built (run: python setup.py build_ext --inplace)"


def load(name: str) -> dict:
    """One vector file; its 'source' header names where the values come from."""
    data = json.loads((VECTORS / name).read_text())
    assert data["source"]["document"] and data["source"]["url"] and data["vectors"], name
    return data


def native_paths(kind: str) -> list[str]:
    """The ``_aes=`` or ``_sha=`` values the extension accepts on this CPU."""
    return _native._features()[f"{kind}_paths"] if _native is not None else []


def forced(name: str, **force: str):
    """The core ``name`` with the given kernel path forced on each function that takes it."""
    module = _pure if name == "pure" else _native
    if not force:
        return module
    funcs = {}
    for fname in ("stretch", "stretch_many", "crypt_sectors", "crypt_sectors_into", "ccm_decrypt",
                  "ccm_encrypt", "sha256_many", "expand_groups"):
        fn = getattr(module, fname)
        params = inspect.signature(fn).parameters
        funcs[fname] = functools.partial(fn, **{k: v for k, v in force.items() if k in params})
    return SimpleNamespace(**funcs)


def aes_cores():
    """pure, and native with each AES path of this CPU."""
    out = [pytest.param(("pure", {}), id="pure")]
    if _native is None:
        return out + [pytest.param(("native", {}), id="native", marks=pytest.mark.skip(reason=NATIVE_REASON))]
    return out + [pytest.param(("native", {"_aes": p}), id=f"native-{p}") for p in native_paths("aes")]


def sha_cores(lanes: bool):
    """pure, and native with each SHA-256 path of this CPU (lanes: the multi-lane stretch paths too)."""
    out = [pytest.param(("pure", {}), id="pure")]
    if _native is None:
        return out + [pytest.param(("native", {}), id="native", marks=pytest.mark.skip(reason=NATIVE_REASON))]
    paths = [p for p in native_paths("sha") if lanes or p in ("auto", "scalar", "shani")]
    return out + [pytest.param(("native", {"_sha": p}), id=f"native-{p}") for p in paths]


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


# --- independent references (pyca/cryptography) ------------------------------------------------


def _ciphers():
    return pytest.importorskip("cryptography.hazmat.primitives.ciphers")


def ecb(key: bytes, data: bytes, decrypt: bool = False) -> bytes:
    c = _ciphers()
    cipher = c.Cipher(c.algorithms.AES(key), c.modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def xts_reference(key1: bytes, key2: bytes, dusn: int, data: bytes, decrypt: bool) -> bytes:
    """XTS-AES of one data unit with pyca/cryptography: its XTS mode when the two keys differ,
    else (cryptography refuses duplicated XTS keys) IEEE 1619 clause 5.3 built on its AES-ECB."""
    c = _ciphers()
    tweak = dusn.to_bytes(16, "little")
    if key1 != key2:
        cipher = c.Cipher(c.algorithms.AES(key1 + key2), c.modes.XTS(tweak))
        ctx = cipher.decryptor() if decrypt else cipher.encryptor()
        return ctx.update(data) + ctx.finalize()
    t = int.from_bytes(ecb(key2, tweak), "little")
    out = b""
    for i in range(0, len(data), 16):
        tb = t.to_bytes(16, "little")
        out += xor(ecb(key1, xor(data[i:i + 16], tb), decrypt), tb)
        t = (t << 1) ^ (0x87 if t >> 127 else 0)
        t &= (1 << 128) - 1
    return out


# --- XTS-AES: IEEE Std 1619-2007 Annex B, NIST CAVP ---------------------------------------------

IEEE_XTS = load("xts_ieee1619.json")["vectors"]
CAVP_XTS = load("xts_cavp.json")["vectors"]


def ieee_case(v: dict):
    """(method, key, sector_size, offset, ptx, ctx) of an IEEE 1619 vector: one sector whose
    volume byte offset is the data unit sequence number times the data unit's length."""
    ptx, ctx = bytes.fromhex(v["ptx"]), bytes.fromhex(v["ctx"])
    key = bytes.fromhex(v["key1"] + v["key2"])
    method = 0x8004 if v["key_bits"] == 128 else 0x8005
    return method, key, len(ptx), int(v["data_unit_sequence_number"], 16) * len(ptx), ptx, ctx


def test_ieee_xts_vectors_agree_with_cryptography():
    assert [v["vector"] for v in IEEE_XTS] == list(range(1, 15))
    for v in IEEE_XTS:
        dusn = int(v["data_unit_sequence_number"], 16)
        k1, k2 = bytes.fromhex(v["key1"]), bytes.fromhex(v["key2"])
        ptx, ctx = bytes.fromhex(v["ptx"]), bytes.fromhex(v["ctx"])
        assert xts_reference(k1, k2, dusn, ptx, False) == ctx, v["vector"]
        assert xts_reference(k1, k2, dusn, ctx, True) == ptx, v["vector"]


@pytest.mark.parametrize("core", aes_cores())
def test_ieee_xts_vectors(core):
    mod = forced(core[0], **core[1])
    for v in IEEE_XTS:
        method, key, ss, offset, ptx, ctx = ieee_case(v)
        assert offset < 1 << 64
        assert mod.crypt_sectors(method, key, ptx, offset, ss, False) == ctx, v["vector"]
        assert mod.crypt_sectors(method, key, ctx, offset, ss, True) == ptx, v["vector"]
        out = bytearray(len(ctx))
        mod.crypt_sectors_into(method, key, ctx, offset, ss, True, out)
        assert out == ptx, v["vector"]


@pytest.mark.parametrize("core", aes_cores())
@pytest.mark.parametrize("run", [(4, 5, 6), (7, 8, 9)], ids=["dusn-0-2", "dusn-fd-ff"])
def test_ieee_xts_consecutive_sectors_in_one_call(core, run):
    """Vectors 4-6 and 7-9 are three consecutive data units under one key: one call over three
    sectors must step the tweak exactly as the standard's separate vectors do."""
    mod = forced(core[0], **core[1])
    cases = [ieee_case(IEEE_XTS[n - 1]) for n in run]
    method, key, ss, first = cases[0][:4]
    assert [c[3] for c in cases] == [first, first + ss, first + 2 * ss]
    ptx = b"".join(c[4] for c in cases)
    ctx = b"".join(c[5] for c in cases)
    assert mod.crypt_sectors(method, key, ptx, first, ss, False) == ctx
    assert mod.crypt_sectors(method, key, ctx, first, ss, True) == ptx


def test_cavp_xts_vectors_agree_with_cryptography():
    for v in CAVP_XTS:
        key = bytes.fromhex(v["key"])
        half = len(key) // 2
        pt, ct = bytes.fromhex(v["pt"]), bytes.fromhex(v["ct"])
        dusn = v["data_unit_sequence_number"]
        assert xts_reference(key[:half], key[half:], dusn, pt, False) == ct, (v["file"], v["section"], v["count"])


@pytest.mark.parametrize("core", aes_cores())
def test_cavp_xts_vectors(core):
    mod = forced(core[0], **core[1])
    for v in CAVP_XTS:
        key, pt, ct = bytes.fromhex(v["key"]), bytes.fromhex(v["pt"]), bytes.fromhex(v["ct"])
        ss = v["data_unit_len_bits"] // 8
        offset = v["data_unit_sequence_number"] * ss
        method = 0x8004 if v["key_bits"] == 128 else 0x8005
        where = (v["file"], v["section"], v["count"])
        if v["section"] == "ENCRYPT":
            assert mod.crypt_sectors(method, key, pt, offset, ss, False) == ct, where
        else:
            assert mod.crypt_sectors(method, key, ct, offset, ss, True) == pt, where


# --- AES-CBC: SP 800-38A F.2; AES itself: FIPS-197 Appendix C -------------------------------------

SP800_38A = load("cbc_sp800_38a.json")["vectors"]
FIPS197 = load("aes_fips197.json")["vectors"]
IV_OFFSETS = [0, 0x1234567 * 512]  # where the constructed sector sits: any offset must do


def cbc_method(key: bytes) -> int:
    return 0x8003 if len(key) == 32 else 0x8002


def cbc_decrypt_with_iv(mod, key: bytes, iv: bytes, ct: bytes, offset: int) -> bytes:
    """Plain AES-CBC decryption with a free IV through the core's BitLocker CBC: in the sector
    [IV, C1..Cn] block j decrypts to AES^-1(C_j) xor C_(j-1), and the IV stands as C_0; the first
    block (decrypted under BitLocker's offset IV) is dropped."""
    sector = iv + ct
    return bytes(mod.crypt_sectors(cbc_method(key), key, sector, offset, len(sector), True)[16:])


def cbc_encrypt_with_iv(mod, key: bytes, iv: bytes, pt: bytes, offset: int) -> bytes:
    """Plain AES-CBC encryption with a free IV through the core: a first block B encrypts to
    X = AES(B xor offset IV); then the sector [B, P1 xor X xor IV, P2..Pn] encrypts to
    [X, AES(P1 xor IV), ...], which is the CBC of P under IV after X."""
    b = bytes(16)
    x = bytes(mod.crypt_sectors(cbc_method(key), key, b, offset, 16, False))
    sector = b + xor(pt[:16], xor(x, iv)) + pt[16:]
    out = bytes(mod.crypt_sectors(cbc_method(key), key, sector, offset, len(sector), False))
    assert out[:16] == x
    return out[16:]


def test_sp800_38a_cbc_vectors_agree_with_cryptography():
    c = _ciphers()
    assert [v["sections"] for v in SP800_38A] == [["F.2.1", "F.2.2"], ["F.2.3", "F.2.4"], ["F.2.5", "F.2.6"]]
    for v in SP800_38A:
        key, iv = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
        pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
        assert len(key) * 8 == v["key_bits"]
        enc = c.Cipher(c.algorithms.AES(key), c.modes.CBC(iv)).encryptor()
        assert enc.update(pt) + enc.finalize() == ct, v["sections"]


@pytest.mark.parametrize("core", aes_cores())
def test_sp800_38a_cbc_vectors(core):
    mod = forced(core[0], **core[1])
    for v in SP800_38A:
        key, iv = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
        pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
        for offset in IV_OFFSETS:
            assert cbc_encrypt_with_iv(mod, key, iv, pt, offset) == ct, (v["sections"][0], offset)
            assert cbc_decrypt_with_iv(mod, key, iv, ct, offset) == pt, (v["sections"][1], offset)


def test_fips197_vectors_agree_with_cryptography():
    assert [v["section"] for v in FIPS197] == ["C.1", "C.2", "C.3"]
    for v in FIPS197:
        key = bytes.fromhex(v["key"])
        assert ecb(key, bytes.fromhex(v["plaintext"])).hex() == v["ciphertext"], v["section"]


@pytest.mark.parametrize("core", aes_cores())
def test_fips197_vectors(core):
    """One AES block each way through CBC sectors (the ECB-equivalent construction): decrypting
    [0^16, C] gives AES^-1(C) in the second block, and after X = CBC-encrypt([B]), encrypting
    [B, P xor X] gives AES(P) in the second block."""
    mod = forced(core[0], **core[1])
    for v in FIPS197:
        key, pt, ct = (bytes.fromhex(v[k]) for k in ("key", "plaintext", "ciphertext"))
        for offset in IV_OFFSETS:
            assert cbc_decrypt_with_iv(mod, key, bytes(16), ct, offset) == pt, (v["section"], offset)
            assert cbc_encrypt_with_iv(mod, key, bytes(16), pt, offset) == ct, (v["section"], offset)


# --- AES-CCM: Project Wycheproof (12-byte nonce, 16-byte tag, no associated data) ----------------

CCM = load("ccm_wycheproof.json")["vectors"]


def test_wycheproof_ccm_vectors_agree_with_cryptography():
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    exceptions = pytest.importorskip("cryptography.exceptions")
    results = {"valid": 0, "invalid": 0}
    for v in CCM:
        key, nonce = bytes.fromhex(v["key"]), bytes.fromhex(v["nonce"])
        assert len(nonce) == 12 and len(bytes.fromhex(v["tag"])) == 16 and len(key) * 8 == v["key_bits"]
        sealed = bytes.fromhex(v["ct"] + v["tag"])
        ccm = aead.AESCCM(key, tag_length=16)
        if v["result"] == "valid":
            assert ccm.encrypt(nonce, bytes.fromhex(v["msg"]), None) == sealed, v["tcId"]
        else:
            with pytest.raises(exceptions.InvalidTag):
                ccm.decrypt(nonce, sealed, None)
        results[v["result"]] += 1
    assert results == {"valid": 60, "invalid": 81}


@pytest.mark.parametrize("core", aes_cores())
def test_wycheproof_ccm_vectors(core):
    mod = forced(core[0], **core[1])
    for v in CCM:
        key, nonce, msg, ct, tag = (bytes.fromhex(v[k]) for k in ("key", "nonce", "msg", "ct", "tag"))
        if v["result"] == "valid":
            assert mod.ccm_encrypt(key, nonce, msg) == (ct, tag), v["tcId"]
            assert mod.ccm_decrypt(key, nonce, ct, tag) == msg, v["tcId"]
        else:
            assert mod.ccm_decrypt(key, nonce, ct, tag) is None, v["tcId"]


# --- SHA-256: NIST CAVP ShortMsg, FIPS 180-2 Appendix B ---------------------------------------------

SHORT_MSG = load("sha256_cavp_shortmsg.json")["vectors"]
FIPS180 = load("sha256_fips180.json")["vectors"]


def fips180_message(v: dict) -> bytes:
    if "repeat" in v:
        return v["msg_ascii_repeat"].encode() * v["repeat"]
    return v["msg_ascii"].encode()


def sha256_cryptography(data: bytes) -> str:
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize().hex()


def test_sha256_vectors_agree_with_cryptography():
    assert [v["len_bits"] for v in SHORT_MSG] == list(range(8, 520, 8))
    for v in SHORT_MSG:
        msg = bytes.fromhex(v["msg"])
        assert len(msg) * 8 == v["len_bits"] and sha256_cryptography(msg) == v["md"], v["len_bits"]
    assert [v["section"] for v in FIPS180] == ["B.1", "B.2", "B.3"]
    for v in FIPS180:
        assert sha256_cryptography(fips180_message(v)) == v["md"], v["section"]


@pytest.mark.parametrize("core", sha_cores(lanes=False))
def test_sha256_vectors(core):
    mod = forced(core[0], **core[1])
    for v in SHORT_MSG:
        msg, md = bytes.fromhex(v["msg"]), bytes.fromhex(v["md"])
        assert mod.sha256_many(msg, len(msg)) == md, v["len_bits"]
        assert mod.sha256_many(msg * 3, len(msg)) == md * 3, v["len_bits"]
    for v in FIPS180:
        msg = fips180_message(v)
        assert mod.sha256_many(msg, len(msg)).hex() == v["md"], v["section"]


# --- Elephant diffuser: dissect.fve's published values ----------------------------------------------

DIFFUSER = load("elephant_diffuser_dissect_fve.json")["vectors"]


def diffuser_sector(v: dict) -> bytes:
    return v["sector_ascii_repeat"].encode() * v["sector_size"]


def test_diffuser_vectors_agree_with_dissect_fve():
    elephant = pytest.importorskip("dissect.fve.crypto.elephant")
    for v in DIFFUSER:
        buf = bytearray(diffuser_sector(v))
        getattr(elephant, f"diffuser_{v['diffuser']}_encrypt")(memoryview(buf), len(buf))
        assert hashlib.sha256(buf).hexdigest() == v["sha256_of_encrypted"], v["diffuser"]


@pytest.mark.parametrize("name", ["pure", pytest.param("native", marks=pytest.mark.skipif(
    _native is None, reason=NATIVE_REASON))])
def test_diffuser_vectors(name):
    hook = (_pure if name == "pure" else _native)._diffuser_test
    for v in DIFFUSER:
        sector = diffuser_sector(v)
        encrypted = hook(v["diffuser"], False, sector)
        assert hashlib.sha256(encrypted).hexdigest() == v["sha256_of_encrypted"], v["diffuser"]
        assert hook(v["diffuser"], True, bytes(encrypted)) == sector


# --- the BitLocker key stretch: John the Ripper's hashes, the project notes' vector ---------------

JTR = load("jtr_bitlocker.json")["vectors"]
NOTES = load("bitlocker_stretch_notes.json")["vectors"]
VMK_KEY_DATUM = bytes.fromhex("2c0000000100000003200000")  # size 0x2c, KEY, value type 1, v1, 0x2003


def recovery_initial(password: str) -> bytes:
    key16 = b"".join((int(g) // 11).to_bytes(2, "little") for g in password.split("-"))
    return hashlib.sha256(key16).digest()


def user_password_initial(password: str) -> bytes:
    return hashlib.sha256(hashlib.sha256(password.encode("utf-16-le")).digest()).digest()


def parse_jtr(v: dict):
    """(initial, salt, rounds, nonce, tag, encrypted VMK) of a $bitlocker$ hash."""
    f = v["hash"].split("$")
    assert f[1] == "bitlocker" and f[3] == "16" and f[6] == "12" and f[8] == "60"
    kind, salt, rounds = int(f[2]), bytes.fromhex(f[4]), int(f[5])
    nonce, data = bytes.fromhex(f[7]), bytes.fromhex(f[9])
    initial = recovery_initial(v["password"]) if kind >= 2 else user_password_initial(v["password"])
    return initial, salt, rounds, nonce, data[:16], data[16:]


def test_jtr_vectors_open_with_cryptography():
    """The pinned keys are ours, not John's: the CCM tag (checked by cryptography) confirms them."""
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    assert len(JTR) == 6
    for v in JTR:
        _, _, rounds, nonce, tag, vmk = parse_jtr(v)
        assert rounds == 0x100000
        plain = aead.AESCCM(bytes.fromhex(v["stretched_key"]), tag_length=16).decrypt(nonce, vmk + tag, None)
        assert plain[:12] == VMK_KEY_DATUM, v["hash"][:40]


@pytest.mark.parametrize(
    "name,index",
    [pytest.param("native", i, id=f"native-{i}", marks=pytest.mark.skipif(_native is None, reason=NATIVE_REASON))
     for i in range(len(JTR))]
    + [pytest.param("pure", i, id=f"pure-{i}") for i in (0, 5)],  # 0.5 s each in pure Python
)
def test_jtr_vectors(name, index):
    """John the Ripper's hash and password give a key whose CCM tag verifies in the core too."""
    v = JTR[index]
    mod = _pure if name == "pure" else _native
    initial, salt, rounds, nonce, tag, vmk = parse_jtr(v)
    key = mod.stretch(initial, salt, rounds)
    assert key.hex() == v["stretched_key"]
    plain = mod.ccm_decrypt(key, nonce, vmk, tag)
    assert plain is not None and plain[:12] == VMK_KEY_DATUM
    assert mod.ccm_decrypt(bytes([key[0] ^ 1]) + key[1:], nonce, vmk, tag) is None  # a wrong key fails


@pytest.mark.skipif(_native is None, reason=NATIVE_REASON)
@pytest.mark.parametrize("path", native_paths("sha"))
def test_jtr_recovery_password_vector_on_every_stretch_path(path):
    """The full 0x100000-round stretch on each forced kernel family (the equivalence tests use
    shorter chains), one candidate and a batch with decoys around it."""
    v = JTR[5]
    initial, salt, rounds, nonce, tag, vmk = parse_jtr(v)
    assert _native.stretch(initial, salt, rounds, _sha=path).hex() == v["stretched_key"]
    batch = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    batch.insert(1, initial)
    keys = _native.stretch_many(batch, salt, rounds, _sha=path)
    assert [k.hex() == v["stretched_key"] for k in keys] == [False, True, False, False]


def stretch_cryptography(initial: bytes, salt: bytes, rounds: int) -> bytes:
    """The stretch (docs/format.md section 3.4) on pyca/cryptography's SHA-256: about 2 s for 2**20."""
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    algo, new = hashes.SHA256(), hashes.Hash
    middle, pack, last = initial + salt, struct.Struct("<Q").pack, bytes(32)
    for count in range(rounds):
        h = new(algo)
        h.update(last + middle + pack(count))
        last = h.finalize()
    return last


def test_notes_vector_has_the_published_prefix_and_agrees_with_cryptography():
    (v,) = NOTES
    assert v["key"].startswith(v["key_prefix"]) and v["key"].endswith(v["key_suffix"])
    key = stretch_cryptography(recovery_initial(v["recovery_password"]), bytes.fromhex(v["salt"]), v["rounds"])
    assert key.hex() == v["key"]


@pytest.mark.parametrize("name", ["pure", pytest.param("native", marks=pytest.mark.skipif(
    _native is None, reason=NATIVE_REASON))])
def test_notes_vector(name):
    (v,) = NOTES
    mod = _pure if name == "pure" else _native
    key = mod.stretch(recovery_initial(v["recovery_password"]), bytes.fromhex(v["salt"]), v["rounds"])
    assert key.hex() == v["key"]
