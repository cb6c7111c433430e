"""``bitlocker-tools hash`` and :mod:`bitlocker_tools.hashline`: ``$bitlocker$`` lines for John the
Ripper and hashcat.

The exported lines are checked by an implementation written here from the layout in docs/hash.md
(parse by hand, stretch with hashlib, unwrap with pyca/cryptography's AESCCM), never by the
module under test; John's published hashes check our parser and checker; and Debian's hashcat
(mode 22100, on the CPU through PoCL) cracks a line we wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess

import pytest
from conftest import MANIFEST_PATH, ROOT, assert_cli_error, run_bitlocker_tools, volume_file

from bitlocker_tools import hashline
from bitlocker_tools.errors import BadInputError, CredentialFormatError
from bitlocker_tools.format.constants import ProtectorType, ValueType
from bitlocker_tools.scan import select
from bitlocker_tools.sources import open_source

MANIFEST = json.loads(MANIFEST_PATH.read_text())
JTR = json.loads((ROOT / "tests" / "vectors" / "jtr_bitlocker.json").read_text())["vectors"]
EXPORTED = ("password", "recovery_password")
#: every corpus volume with a password or recovery-password protector
WITH_LINES = [v for v in MANIFEST["volumes"] if any(p["type"] in EXPORTED for p in v["protectors"])]
VMK_KEY_DATUM = bytes.fromhex("2c0000000100000003200000")  # size 0x2c, KEY, value type 1, v1, 0x2003


# --- an independent reading of the format (docs/hash.md), not bitlocker_tools.hashline ------------


def parse_line(line: str) -> dict:
    """``$bitlocker$type$16$salt$rounds$12$nonce$60$mac+vmk`` by hand."""
    assert re.fullmatch(r"\$bitlocker\$[0-3]\$16\$[0-9a-f]{32}\$1048576\$12\$[0-9a-f]{24}\$60\$[0-9a-f]{120}", line), line
    _, tag, kind, salt_len, salt, rounds, nonce_len, nonce, data_len, data = line.split("$")
    raw = bytes.fromhex(data)
    assert (tag, int(salt_len), int(nonce_len), int(data_len), len(raw)) == ("bitlocker", 16, 12, 60, 60)
    return {"type": int(kind), "salt": bytes.fromhex(salt), "rounds": int(rounds), "nonce": bytes.fromhex(nonce),
            "mac": raw[:16], "vmk": raw[16:]}


def initial(kind: int, secret: str) -> bytes:
    if kind >= 2:  # recovery password: the groups / 11 as little-endian u16, then SHA-256
        return hashlib.sha256(b"".join((int(g) // 11).to_bytes(2, "little") for g in secret.split("-"))).digest()
    return hashlib.sha256(hashlib.sha256(secret.encode("utf-16-le")).digest()).digest()


def stretch(first: bytes, salt: bytes, rounds: int) -> bytes:
    """SHA-256 over last ‖ initial ‖ salt ‖ u64 counter, ``rounds`` times (about 1 s in hashlib)."""
    last, middle, pack = bytes(32), first + salt, struct.Struct("<Q").pack
    for count in range(rounds):
        last = hashlib.sha256(last + middle + pack(count)).digest()
    return last


def opens_independently(fields: dict, secret: str) -> bool:
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    from cryptography.exceptions import InvalidTag

    key = stretch(initial(fields["type"], secret), fields["salt"], fields["rounds"])
    try:
        plain = aead.AESCCM(key, tag_length=16).decrypt(fields["nonce"], fields["vmk"] + fields["mac"], None)
    except InvalidTag:
        return False
    assert plain[:12] == VMK_KEY_DATUM and len(plain) == 44
    return True


def metadata_values(path) -> dict:
    """Per protector GUID: (type, salt, nonce, mac, encrypted VMK) read through the library's
    metadata parser (the values the lines must carry)."""
    with open_source(path) as src:
        vol = select(src)
        out = {}
        for p in vol.metadata.protectors:
            sk, ccm = p.entry.child(ValueType.STRETCH_KEY), p.entry.child(ValueType.AES_CCM)
            if sk is not None and ccm is not None:
                out[p.guid] = (p.type.value, sk.value.salt, ccm.value.nonce, ccm.value.mac, ccm.value.data)
        return out


# --- (1) every corpus volume: the lines are the metadata's, and the manifest's secret opens them ---


@pytest.mark.parametrize("entry", WITH_LINES, ids=[volume_file(v) for v in WITH_LINES])
def test_exported_lines_match_the_metadata_and_open_with_the_manifest_secret(entry, corpus_dir, run_cli):
    path = corpus_dir / volume_file(entry)
    proc = run_cli("hash", path, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["volume_guid"] == entry["volume_guid"] and doc["format"] == "john"
    expected = {p["id"]: p["type"] for p in entry["protectors"] if p["type"] in EXPORTED}
    assert {x["protector_id"]: x["protector_type"] for x in doc["lines"]} == expected
    assert len(doc["lines"]) == len(expected)
    on_disk = metadata_values(path)
    for x in doc["lines"]:
        fields = parse_line(x["line"])
        kind, salt, nonce, mac, vmk = on_disk[x["protector_id"]]
        assert (fields["salt"], fields["nonce"], fields["mac"], fields["vmk"]) == (salt, nonce, mac, vmk)
        assert fields["type"] == x["hash_type"] == (1 if kind == "password" else 3)  # the MAC-checked types
        assert x["key_id"] == x["protector_id"][:8].upper()
        secret = entry["credentials"]["password" if kind == "password" else "recovery_password"]
        assert opens_independently(fields, secret), f"{volume_file(entry)}: {kind} does not open {x['line']}"
    # human mode: the same lines, one per line, and nothing else on stdout
    plain = run_cli("hash", path)
    assert plain.returncode == 0 and plain.stderr == ""
    assert plain.stdout.splitlines() == [x["line"] for x in doc["lines"]]


def test_a_wrong_password_does_not_open_an_exported_line(corpus_dir, run_cli):
    """The independent check can fail: a near-miss password gives a tag mismatch."""
    proc = run_cli("hash", corpus_dir / "aes_128.bin")
    assert not opens_independently(parse_line(proc.stdout.strip()), "password12!#")


def test_the_library_checker_opens_our_lines_with_the_right_secret_only(corpus_dir, manifest):
    entry = next(v for v in manifest["volumes"] if v["file"] == "recovery_password.bin.gz")
    with open_source(corpus_dir / "recovery_password.bin") as src:
        found = hashline.export(select(src).metadata)
    by_type = {x.protector.type: hashline.parse(str(x.line)) for x in found.lines}
    rp, pw = by_type[ProtectorType.RECOVERY_PASSWORD], by_type[ProtectorType.PASSWORD]
    secret_rp, secret_pw = entry["credentials"]["recovery_password"], entry["credentials"]["password"]
    assert hashline.opens(rp, secret_rp) and hashline.opens(pw, secret_pw)
    assert not hashline.opens(pw, secret_pw.upper())
    with pytest.raises(CredentialFormatError):  # a password is no recovery password
        hashline.opens(rp, secret_pw)
    decoy = "-".join(["000000"] * 8)
    assert hashline.first_opening(rp, [decoy, secret_rp.replace("-", " "), decoy]) == secret_rp.replace("-", " ")
    assert hashline.first_opening(pw, ["a", "b"]) is None


def test_a_protector_without_its_vmk_blob_is_left_out_with_why(corpus_dir):
    with open_source(corpus_dir / "recovery_password.bin") as src:
        md = select(src).metadata
    rp, pw = md.protectors
    assert str(hashline.protector_line(pw, mac_check=False)).startswith("$bitlocker$0$")
    assert str(hashline.protector_line(rp, mac_check=False)).startswith("$bitlocker$2$")
    pw.entry.value.children[:] = [c for c in pw.entry.children if c.value_type != ValueType.AES_CCM]
    found = hashline.export(md)
    assert [x.protector.guid for x in found.lines] == [rp.guid]
    assert [(x.protector.guid, x.reason) for x in found.left_out] == [
        (pw.guid, f"password protector {pw.guid} has no AES-CCM VMK blob")]


# --- (2) John the Ripper's published hashes ----------------------------------------------------------


@pytest.mark.parametrize("v", JTR, ids=[f"jtr-{i}" for i in range(len(JTR))])
def test_john_vectors_parse_and_open_with_our_checker(v):
    line = hashline.parse(v["hash"])
    assert str(line) == v["hash"]  # our writer gives back John's exact text
    assert line.rounds == 0x100000 and len(line.salt) == 16 and len(line.nonce) == 12
    assert len(line.mac) == 16 and len(line.encrypted_vmk) == 44
    assert line.protector_type == (ProtectorType.RECOVERY_PASSWORD if v["hash"][11] == "2" else ProtectorType.PASSWORD)
    assert hashline.opens(line, v["password"])
    # the same data as John's "with MAC verification" type (1 or 3) opens with the same secret
    with_mac = hashline.parse(v["hash"].replace("$bitlocker$0$", "$bitlocker$1$").replace("$bitlocker$2$", "$bitlocker$3$"))
    assert with_mac.hash_type.mac_check and hashline.key_opens(
        with_mac, bytes.fromhex(v["stretched_key"]))
    wrong = bytearray.fromhex(v["stretched_key"])
    wrong[-1] ^= 1
    assert not hashline.key_opens(line, bytes(wrong))


def test_john_vectors_reject_a_wrong_candidate():
    pw = hashline.parse(JTR[0]["hash"])
    assert not hashline.opens(pw, JTR[0]["password"] + "!")
    rp = hashline.parse(JTR[5]["hash"])
    assert not hashline.opens(rp, "111683-110022-683298-209352-468105-648483-571252-334422")


def test_a_login_prefix_and_whitespace_are_ignored():
    assert str(hashline.parse(f"  evidence.E01:{JTR[0]['hash']}\n")) == JTR[0]["hash"]


@pytest.mark.parametrize("mutate,needle", [
    (lambda f: f.__setitem__(2, "4"), "hash type 4"),
    (lambda f: f.__setitem__(3, "15"), "salt length 15"),
    (lambda f: f.__setitem__(4, f[4][:-2]), "salt has 15 bytes"),
    (lambda f: f.__setitem__(5, "2097152"), "rounds 2097152"),
    (lambda f: f.__setitem__(6, "13"), "nonce length 13"),
    (lambda f: f.__setitem__(8, "61"), "its length field says 61"),
    (lambda f: f.__setitem__(9, f[9][:-1] + "g"), "field 8 (data) is not hex"),
    (lambda f: f.append("x"), "expected 8 fields"),
])
def test_malformed_lines_name_the_field(mutate, needle):
    fields = JTR[0]["hash"].split("$")
    mutate(fields)
    with pytest.raises(BadInputError, match=re.escape(needle)):
        hashline.parse("$".join(fields))


def test_not_a_hash_line():
    with pytest.raises(BadInputError, match="not a \\$bitlocker\\$ hash line"):
        hashline.parse("$krb5tgs$23$*user$realm$spn*$deadbeef")


# --- (3) hashcat -m 22100 on the CPU cracks our line ----------------------------------------------


def _hashcat(tmp_path, hashes: str, words: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a straight word-list attack; (the process, the passwords it cracked)."""
    exe = shutil.which("hashcat")
    if exe is None:
        pytest.skip("hashcat is not installed (Debian: apt-get install hashcat pocl-opencl-icd ocl-icd-libopencl1)")
    (tmp_path / "hashes.txt").write_text(hashes)
    (tmp_path / "words.txt").write_text("".join(w + "\n" for w in words))
    out = tmp_path / "cracked.txt"
    # The first run compiles the OpenCL kernel (about 30 s on two cores); --runtime bounds the attack.
    cmd = [exe, "-m", "22100", "-a", "0", "-O", "--quiet", "--potfile-disable", "--restore-disable",
           "--logfile-disable", "--session", f"bitlocker-tools-test-{os.getpid()}", "--runtime", "120",
           "--outfile", str(out), "--outfile-format", "2", "--backend-ignore-cuda", "--backend-ignore-hip",
           str(tmp_path / "hashes.txt"), str(tmp_path / "words.txt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    said = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1) and re.search(r"No OpenCL|No devices found|No such file.*OpenCL", said, re.I):
        pytest.skip(f"hashcat finds no OpenCL device (install pocl-opencl-icd and ocl-icd-libopencl1): {said[-300:]}")
    return proc, out.read_text().splitlines() if out.exists() else []


@pytest.fixture(scope="module")
def password_line(corpus_dir) -> str:
    proc = run_bitlocker_tools("hash", corpus_dir / "aes_128.bin", "--format", "hashcat")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_hashcat_cracks_an_exported_password_line(tmp_path, password_line, manifest):
    password = next(v for v in manifest["volumes"] if v["file"] == "aes_128.bin.gz")["credentials"]["password"]
    proc, cracked = _hashcat(tmp_path, password_line, ["Password12!@", password, "password12!"])
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 0: cracked
    assert cracked == [password]


def test_hashcat_does_not_crack_it_without_the_password(tmp_path, password_line):
    proc, cracked = _hashcat(tmp_path, password_line, ["Password12!@", "password12!"])
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1: exhausted
    assert cracked == []


def test_hashcat_refuses_a_recovery_password_line(tmp_path, corpus_dir, run_cli):
    """Why ``--format hashcat`` leaves them out: mode 22100 rejects types 2 and 3."""
    line = run_cli("hash", corpus_dir / "vista.bin").stdout
    assert line.startswith("$bitlocker$3$")
    proc, _ = _hashcat(tmp_path, line, ["x" * 8])
    assert proc.returncode not in (0, 1) and "No hashes loaded" in proc.stdout + proc.stderr


# --- (4) the CLI contract ----------------------------------------------------------------------------


def test_hashcat_format_leaves_recovery_lines_out_with_one_stderr_line(corpus_dir, run_cli):
    path = corpus_dir / "recovery_password.bin"
    proc = run_cli("hash", path, "--format", "hashcat")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("$bitlocker$1$")
    err = proc.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("bitlocker-tools: ")
    assert "recovery-password" in err[0] and "3C116B76" in err[0] and "--format john" in err[0]

    doc = json.loads(run_cli("hash", path, "--format", "hashcat", "--json").stdout)
    assert doc["format"] == "hashcat"
    assert [(x["protector_type"], x["hash_type"]) for x in doc["lines"]] == [("password", 1)]
    assert [(x["protector_id"], x["protector_type"]) for x in doc["left_out"]] == [
        ("3c116b76-c67b-484e-b439-ce2ed68b561e", "recovery_password")]


def test_json_fields(corpus_dir, run_cli):
    doc = json.loads(run_cli("hash", corpus_dir / "win7_partial.bin", "--json").stdout)
    assert set(doc) == {"volume_guid", "lines", "format", "left_out", "integrity"}
    assert doc["format"] == "john" and doc["left_out"] == []
    (x,) = doc["lines"]
    assert set(x) == {"protector_id", "key_id", "protector_type", "hash_type", "line"}
    assert (x["protector_id"], x["key_id"], x["protector_type"], x["hash_type"]) == (
        "8f716353-9c42-4c8e-a3bc-768def089e9d", "8F716353", "recovery_password", 3)


@pytest.mark.parametrize("name,has", [("suspended.bin", "clear_key 62472A91"), ("decrypted.bin", "none")])
def test_exit_1_without_a_password_or_recovery_password_protector(name, has, corpus_dir, run_cli):
    proc = run_cli("hash", corpus_dir / name)
    assert_cli_error(proc, 1, "no password or recovery-password protector", has)
    assert proc.stdout == ""
    doc = json.loads(run_cli("hash", corpus_dir / name, "--json").stdout)
    assert doc["exit_code"] == 1 and has in doc["error"]


def test_exit_1_for_hashcat_when_only_recovery_passwords_remain(corpus_dir, run_cli):
    proc = run_cli("hash", corpus_dir / "vista.bin", "--format", "hashcat")
    assert_cli_error(proc, 1, "hashcat", "B59C92D8", "--format john")
    assert proc.stdout == ""


def test_usage_and_bad_input(corpus_dir, run_cli, tmp_path):
    assert_cli_error(run_cli("hash", corpus_dir / "aes_128.bin", "--format", "jtr"), 2, "--format")
    assert_cli_error(run_cli("hash", tmp_path / "missing.img"), 3)
    (tmp_path / "zeros.img").write_bytes(bytes(1 << 16))
    assert_cli_error(run_cli("hash", tmp_path / "zeros.img"), 3)


def test_no_key_material_is_printed(corpus_dir, manifest, run_cli):
    """The lines hold the encrypted VMK only: never the VMK, the FVEK, a key16 or a secret."""
    from bitlocker_tools.credentials import collect
    from bitlocker_tools.protectors import unlock

    entry = next(v for v in manifest["volumes"] if v["file"] == "recovery_password.bin.gz")
    path = corpus_dir / "recovery_password.bin"
    with open_source(path) as src:
        result = unlock(select(src), collect(recovery_password=[entry["credentials"]["recovery_password"]]))
    rp = entry["credentials"]["recovery_password"]
    key16 = b"".join((int(g) // 11).to_bytes(2, "little") for g in rp.split("-"))
    secrets = [result.vmk.hex(), result.fvek.hex(), result.sector_key.hex(), key16.hex(), rp,
               entry["credentials"]["password"]]
    for args in ([], ["--json"], ["--format", "hashcat"], ["--format", "hashcat", "--json"]):
        proc = run_cli("hash", path, *args)
        said = (proc.stdout + proc.stderr).lower()
        for s in secrets:
            assert s.lower() not in said, f"hash {' '.join(args)} printed a secret"
