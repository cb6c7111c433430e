"""Every key a volume holds, from one unlock (`keys`): recovery passwords recovered through the
VMK and proved, VMK and FVEK obtained by dissect.fve (not by us) opening the volumes, the exported
FVEK file read by dislocker, the keychain read by dissect.target, backup hints, and damaged
metadata opened honestly."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT, volume_file

from bitlocker_tools.credentials import collect
from bitlocker_tools.forge import ProtectorSpec, VolumeSpec, forge
from bitlocker_tools.format.constants import BackupMethod
from bitlocker_tools.format.constants import EncryptionMethod as M
from bitlocker_tools.keys import mask, volume_keys
from bitlocker_tools.protectors import unlock
from bitlocker_tools.volume import BitLockerVolume

PASSWORD = "password12!@"
PLAIN_NTFS = ROOT / "fixtures" / "plain" / "ntfs.img.gz"
#: How each corpus volume opens in dissect.fve (an independent implementation): (method, argument)
DISSECT_UNLOCK = {
    "aes_128.bin": ("passphrase", PASSWORD), "aes_256.bin": ("passphrase", PASSWORD),
    "aes_128_diffuser.bin": ("passphrase", PASSWORD), "aes_256_diffuser.bin": ("passphrase", PASSWORD),
    "aes-xts_128.bin": ("passphrase", PASSWORD), "aes-xts_256.bin": ("passphrase", PASSWORD),
    "recovery_password.bin": ("recovery", "284867-596541-514998-422114-660297-261613-215424-199408"),
    "recovery_key.bin": ("bek", "recovery_key.bek"), "startup_key.bin": ("bek", "startup_key.bek"),
    "suspended.bin": ("clear", None),
    "vista.bin": ("recovery", "517506-503998-044583-576191-587004-635965-501270-087802"),
    "win7_partial.bin": ("recovery", "131450-120197-153989-250338-511368-495572-680944-381546"),
    "eow_partial.bin": ("passphrase", PASSWORD),
}


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if volume_file(v) == name)


def _rp_protector(entry) -> str:
    return next(p["id"] for p in entry["protectors"] if p["type"] == "recovery_password")


@pytest.mark.parametrize("name, kwargs", [
    ("recovery_password.bin", dict(password=[PASSWORD])),  # the MANIFEST's must-show: password → RP
    ("win7_partial.bin", dict(clear_key=True)),  # a clear key → RP (Windows 7)
    ("vista.bin", dict(recovery_password=["517506-503998-044583-576191-587004-635965-501270-087802"])),
])
def test_recovery_password_recovered_through_the_vmk(name, kwargs, corpus_dir, manifest):
    entry = _entry(manifest, name)
    with (corpus_dir / name).open("rb") as fh:
        vol = BitLockerVolume(fh, name=name)
        keys = volume_keys(vol, unlock(vol, collect(use_env=False, **kwargs)))
    (rp,) = keys.recovery_passwords
    assert rp.protector.guid == _rp_protector(entry)
    assert str(rp.password) == entry["credentials"]["recovery_password"], rp.note
    assert [s.opened for s in keys.protectors].count(True) == 1


def test_an_fvek_recovers_no_password_and_says_why(corpus_dir):
    with (corpus_dir / "recovery_password.bin").open("rb") as fh:
        vol = BitLockerVolume(fh)
        fvek = unlock(vol, collect(password=[PASSWORD], use_env=False)).fvek
        keys = volume_keys(vol, unlock(vol, collect(fvek=fvek.hex(), use_env=False)))
    (rp,) = keys.recovery_passwords
    assert rp.password is None and "VMK" in rp.note
    assert not any(s.opened for s in keys.protectors)


def test_mask_keeps_only_the_last_group():
    from bitlocker_tools.recovery_password import parse

    assert mask(parse("284867-596541-514998-422114-660297-261613-215424-199408")) == \
        "******-******-******-******-******-******-******-199408"


def _dissect_keys(path: Path, how: tuple[str, str | None], corpus_dir: Path) -> tuple[bytes, bytes]:
    """(VMK, FVEK) as dissect.fve derives them, caught where it hands the VMK to its unlock."""
    bde_mod = pytest.importorskip("dissect.fve.bde")
    bde = bde_mod.BDE(path.open("rb"))
    caught: list[bytes] = []
    unlock_with_vmk = bde.unlock

    def spy(key):
        caught.append(bytes(getattr(key, "data", key)))
        return unlock_with_vmk(key)

    bde.unlock = spy
    kind, arg = how
    if kind == "passphrase":
        bde.unlock_with_passphrase(arg)
    elif kind == "recovery":
        bde.unlock_with_recovery_password(arg)
    elif kind == "bek":
        with (corpus_dir / arg).open("rb") as bek:
            bde.unlock_with_bek(bek)
    else:
        bde.unlock_with_clear_key()
    (vmk,) = caught
    fvek = bytes(bde.information.dataset.find_fvek().unbox(vmk).data)
    return vmk, fvek


def _digest_cli(run_cli, args, tmp_path) -> tuple[int, str, dict]:
    out = tmp_path / "plain.img"
    out.unlink(missing_ok=True)
    proc = run_cli("decrypt", *args, "-o", out, "--json")
    if proc.returncode:
        return proc.returncode, proc.stderr, {}
    doc = json.loads(proc.stdout)
    out.unlink()
    return 0, "", doc


@pytest.mark.parametrize("name", sorted(DISSECT_UNLOCK))
def test_vmk_and_fvek_from_dissect_fve_decrypt_to_the_manifest_hash(name, corpus_dir, manifest, run_cli, tmp_path):
    entry = _entry(manifest, name)
    vmk, fvek = _dissect_keys(corpus_dir / name, DISSECT_UNLOCK[name], corpus_dir)
    for args in (["--vmk", vmk.hex()], ["--fvek", fvek.hex()]):
        code, err, doc = _digest_cli(run_cli, [corpus_dir / name, *args], tmp_path)
        assert code == 0, (args[0], err)
        assert doc["via"] == args[0][2:]
        prefix = entry["decrypted_prefix_bytes"]
        if doc["bytes_written"] == prefix:
            assert doc["sha256"] == entry["decrypted_prefix_sha256"], args[0]
        else:  # eow_partial and win7_partial: the evidence holds exactly the prefix the manifest hashes
            pytest.fail(f"{name}: wrote {doc['bytes_written']} bytes, the manifest hashes {prefix}")


@pytest.mark.parametrize("name", sorted(DISSECT_UNLOCK))
def test_a_wrong_fvek_is_never_taken_for_a_proved_one(name, corpus_dir, manifest, run_cli, tmp_path):
    """On every corpus volume: a wrong FVEK is refused (exit 1) where a sector of known plaintext
    holds ciphertext, and is never reported as proved where none does (the sparse skeletons of
    vista.bin and eow_partial.bin): verify fails, decrypt warns, match does not count it."""
    entry = _entry(manifest, name)
    right = _dissect_keys(corpus_dir / name, DISSECT_UNLOCK[name], corpus_dir)[1]
    wrong = bytes(b ^ 0x5A for b in right)
    verify = run_cli("verify", corpus_dir / name, "--fvek", wrong.hex())
    assert verify.returncode == 1 and len(verify.stderr.splitlines()) == 1
    provable = "cannot be proved" not in verify.stderr
    out = tmp_path / "plain.img"
    decrypt = run_cli("decrypt", corpus_dir / name, "--fvek", wrong.hex(), "-o", out)
    if provable:
        assert decrypt.returncode == 1 and not out.exists(), decrypt.stderr
    else:
        assert name in ("vista.bin", "eow_partial.bin"), name
        assert decrypt.returncode == 0 and "warning: " in decrypt.stderr and "cannot be proved" in decrypt.stderr
        strict = run_cli("decrypt", corpus_dir / name, "--fvek", wrong.hex(), "-o", tmp_path / "s.img", "--strict")
        assert strict.returncode == 3
    (tmp_path / "fvek.txt").write_text(f"FVEK: {wrong.hex()}\n")
    match = run_cli("match", corpus_dir / name, "--keys", tmp_path / "fvek.txt", "--json")
    assert json.loads(match.stdout)["matches"] == [], entry["file"]


@pytest.mark.parametrize("option, value, needle", [("--vmk", "11" * 32, "VMK does not unwrap"),
                                                   ("--fvek", "22" * 32, "FVEK does not decrypt")])
def test_wrong_vmk_or_fvek_is_exit_1_with_a_clear_message(option, value, needle, corpus_dir, run_cli, tmp_path):
    for command in (["verify"], ["keys"], ["decrypt", "-o", tmp_path / "never.img"]):
        proc = run_cli(*command, corpus_dir / "aes-xts_128.bin", option, value)
        assert proc.returncode == 1, (command, proc.stderr)
        assert needle in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not list(tmp_path.iterdir()), "nothing is written for a wrong key"


def test_exported_fvek_file_opens_the_volume_in_dislocker(corpus_dir, manifest, run_cli, tmp_path):
    if shutil.which("dislocker-file") is None:
        pytest.skip("dislocker is not installed (.ci/run installs it)")
    name = "recovery_password.bin"
    fvek_file = tmp_path / "volume.fvek"
    proc = run_cli("keys", corpus_dir / name, "-p", PASSWORD, "--export-fvek", fvek_file, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["exported_fvek"] == str(fvek_file)
    raw = fvek_file.read_bytes()
    assert len(raw) == 66 and raw[:2] == (0x8004).to_bytes(2, "little")
    assert fvek_file.stat().st_mode & 0o077 == 0, "a key file is readable by its owner only"
    out = tmp_path / "dislocker.img"
    subprocess.run(["dislocker-file", "-V", str(corpus_dir / name), "-k", str(fvek_file), "--", str(out)],
                   check=True, capture_output=True, timeout=300)
    entry = _entry(manifest, name)
    digest = hashlib.sha256()
    with out.open("rb") as fh:
        digest.update(fh.read(entry["decrypted_prefix_bytes"]))
    assert digest.hexdigest() == entry["decrypted_prefix_sha256"]
    # an existing file is never overwritten
    again = run_cli("keys", corpus_dir / name, "-p", PASSWORD, "--export-fvek", fvek_file)
    assert again.returncode == 2 and "exists" in again.stderr and fvek_file.read_bytes() == raw


_TARGET_LIST = """
import sys
from pathlib import Path
from dissect.target import Target
from dissect.target.helpers import keychain
keychain.register_keychain_file(Path(sys.argv[1]))
t = Target.open(sys.argv[2])
plain = next(v for v in t.volumes if type(v.vs).__name__ == "BitlockerVolumeSystem")  # the unlocked one
plain.seek(0)
print(plain.read(11)[3:].decode("latin-1"))
print(sorted(n for n in t.fs.listdir("/") if not n.startswith("$")))
"""


def _dissect_target(keychain: Path, evidence: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _TARGET_LIST, str(keychain), str(evidence)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def test_keychain_lets_dissect_target_open_a_corpus_volume(corpus_dir, run_cli, tmp_path):
    """The corpus volumes' MFT is zero-filled (sparse skeletons), so dissect.target can open and
    decrypt the volume with the keychain but finds no files: its decrypted boot sector is NTFS."""
    pytest.importorskip("dissect.target")
    keychain = tmp_path / "keys.csv"
    proc = run_cli("keys", corpus_dir / "recovery_password.bin", "-p", PASSWORD, "--keychain", keychain)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(",") for line in keychain.read_text().splitlines()]
    assert rows[0] == ["bitlocker", "recovery_key", "3c116b76-c67b-484e-b439-ce2ed68b561e",
                       "284867-596541-514998-422114-660297-261613-215424-199408"]
    keychain.write_text(",".join(rows[0]) + "\n")  # the recovered recovery password alone
    assert _dissect_target(keychain, corpus_dir / "recovery_password.bin")[0] == "NTFS    "


def test_keychain_lets_dissect_target_list_the_root_directory(tmp_path, run_cli):
    pytest.importorskip("dissect.target")
    fixture = json.loads((ROOT / "fixtures" / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    volume = tmp_path / "volume.bin"
    volume.write_bytes(gzip.decompress((ROOT / "fixtures" / fixture["file"]).read_bytes()))
    password = next(p["password"] for p in fixture["protectors"] if p["type"] == "password")
    keychain = tmp_path / "keys.csv"
    assert run_cli("keys", volume, "-p", password, "--keychain", keychain).returncode == 0
    keychain.write_text(keychain.read_text().splitlines()[0] + "\n")  # the recovered recovery password alone
    from dissect.ntfs import NTFS

    plain = NTFS(io.BytesIO(gzip.decompress((ROOT / "fixtures" / fixture["plain"]).read_bytes())))
    expected = sorted(n for n in plain.mft.get(".").listdir() if not n.startswith("$") and n != ".")
    boot, names = _dissect_target(keychain, volume)
    assert boot == "NTFS    " and names and eval(names) == expected  # noqa: S307 - our own print of a list


def _forged(tmp_path, **spec) -> tuple[Path, object]:
    vol = forge(gzip.decompress(PLAIN_NTFS.read_bytes()), VolumeSpec(M.AES_XTS_128, **spec))
    path = tmp_path / "forged.bin"
    path.write_bytes(vol.data)
    return path, vol


def test_backup_hints_in_scan_info_and_keys(tmp_path, run_cli):
    """Layout of value type 0x15 (docs/format.md 3.7): two FILETIMEs, the method, flags."""
    when = datetime(2025, 3, 2, 10, 30, tzinfo=timezone.utc)
    path, vol = _forged(tmp_path, seed="backup", protectors=[
        ProtectorSpec("recovery_password", backups=((BackupMethod.ENTRA_ID, when), (BackupMethod.FILE, when))),
        ProtectorSpec("password", "pw")])
    (rp,) = vol.recovery_passwords
    expected = [{"destinations": ["entra_id"], "backup_time": "2025-03-02T10:30:00Z", "method": 4, "flags": 2},
                {"destinations": ["file"], "backup_time": "2025-03-02T10:30:00Z", "method": 8, "flags": 2}]
    scan = json.loads(run_cli("scan", "--json", path).stdout)["sources"][0]["volumes"][0]
    keys = json.loads(run_cli("keys", path, "-p", "pw", "--json").stdout)
    for doc in (scan, keys):
        rp_record, pw_record = doc["protectors"]
        assert [{k: b[k] for k in expected[0]} for b in rp_record["backup"]] == expected
        assert pw_record["backup"] == []
    assert keys["recovery_passwords"][0]["recovery_password"] == mask_text(rp)
    human = run_cli("keys", path, "-p", "pw").stdout
    assert "backed up to entra id on 2025-03-02" in human and "backed up to file" in human
    info = json.loads(run_cli("info", "--json", path).stdout)
    hints = [c for e in info["entries"] for c in e.get("children", []) if c["value_type"] == "backup_info"]
    assert [h["destinations"] for h in hints] == [["entra_id"], ["file"]]
    # an independent reader still opens the volume with the new entries in place
    bde_mod = pytest.importorskip("dissect.fve.bde")
    bde = bde_mod.BDE(path.open("rb"))
    bde.unlock_with_recovery_password(rp)
    assert bde.open().read(11)[3:] == b"NTFS    "


def mask_text(password: str) -> str:
    return "-".join(["******"] * 7 + [password.split("-")[-1]])


@pytest.mark.parametrize("damage", ["crc", "description"])
def test_every_copy_damaged_opens_with_a_warning_and_refuses_with_strict(damage, tmp_path, run_cli):
    path, vol = _forged(tmp_path, seed=f"all-damaged-{damage}", damage_copy=(0, 1, 2), damage=damage,
                        protectors=[ProtectorSpec("password", "pw")])
    offsets = [f"{o:#x}" for o in vol.metadata_offsets]
    for command in (["scan"], ["info"], ["verify", "-p", "pw"], ["keys", "-p", "pw"]):
        proc = run_cli(*command, path, "--json")
        assert proc.returncode == 0, (command, proc.stderr)
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("bitlocker-tools: warning: ")]
        assert warnings and all(o in warnings[0] for o in offsets), proc.stderr
        doc = json.loads(proc.stdout)
        record = doc["sources"][0]["volumes"][0] if command == ["scan"] else doc
        assert [c["crc_ok"] for c in record["integrity"]] == [False, False, False]
        assert [c["offset"] for c in record["integrity"]] == list(vol.metadata_offsets)
        if command[0] in ("verify", "keys"):
            # the SHA-256 under the VMK fails too when the covered bytes changed (description)
            assert [c["validation_ok"] for c in record["integrity"]] == [damage == "crc"] * 3
        strict = run_cli(*command, path, "--strict")
        assert strict.returncode == 3 and "strict" in strict.stderr and len(strict.stderr.splitlines()) == 1
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", path, "-p", "pw", "-o", out, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["sha256"] == vol.expected_sha256


def test_unreadable_eow_map_is_exit_3_unless_assume_encrypted(corpus_dir, tmp_path, run_cli):
    """eow_partial with both FVE-EOW information copies wiped: which chunks hold ciphertext is
    unknown; decrypt refuses, and --assume-encrypted decrypts with the range marked uncertain."""
    from bitlocker_tools.volume import BitLockerVolume as Vol

    raw = bytearray((corpus_dir / "eow_partial.bin").read_bytes())
    offsets = Vol(io.BytesIO(bytes(raw))).boot.eow_offsets
    for off in offsets:
        raw[off : off + 8] = b"XXXXXXXX"
    path = tmp_path / "eow.bin"
    path.write_bytes(raw)
    info = run_cli("info", "--json", path)
    assert info.returncode == 0
    eow_error = json.loads(info.stdout)["eow_error"]
    assert "\n" not in eow_error and all(f"{o:#x}" in eow_error for o in offsets)
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", path, "-p", PASSWORD, "-o", out, "--json")
    assert proc.returncode == 3 and "--assume-encrypted" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not out.exists()
    proc = run_cli("decrypt", path, "-p", PASSWORD, "-o", out, "--json", "--assume-encrypted")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["uncertain_ranges"] == [{"offset": 0, "size": path.stat().st_size}]
    assert "uncertain" in run_cli("decrypt", path, "-p", PASSWORD, "-o", tmp_path / "b.img",
                                  "--assume-encrypted").stdout


def test_no_key_material_in_keys_output_without_show_keys(corpus_dir, run_cli):
    name = "recovery_password.bin"
    rp = "284867-596541-514998-422114-660297-261613-215424-199408"
    shown = json.loads(run_cli("keys", corpus_dir / name, "-p", PASSWORD, "--json", "--show-keys").stdout)
    secrets = [shown["vmk"], shown["fvek"], rp, rp.replace("-", ""), PASSWORD]
    assert shown["recovery_passwords"][0]["recovery_password"] == rp
    for args in (["--json"], []):
        proc = run_cli("keys", corpus_dir / name, "-p", PASSWORD, *args)
        assert proc.returncode == 0
        for secret in secrets:
            for text in (proc.stdout, proc.stderr):
                assert secret.lower() not in text.lower() and secret.upper() not in text, secret


def test_a_tampered_copy_with_a_good_crc_gives_way_to_one_that_validates(corpus_dir, tmp_path, run_cli):
    """One copy's description changed and its CRC recomputed (what a careful forger leaves): the
    copies differ (said without a key); the unlock takes the copy whose SHA-256 validates under
    the VMK, names both, and --strict has nothing to refuse."""
    import struct
    import zlib

    raw = bytearray((corpus_dir / "aes_128.bin").read_bytes())
    offsets = struct.unpack_from("<3Q", raw, 176)
    first = offsets[0]
    at = raw.index("DESKTOP".encode("utf-16-le"), first, first + 0x10000)
    raw[at : at + 2] = "E".encode("utf-16-le")
    covered = struct.unpack_from("<H", raw, first + 8)[0] * 16
    struct.pack_into("<I", raw, first + covered + 4, zlib.crc32(bytes(raw[first : first + covered])))
    path = tmp_path / "tampered.bin"
    path.write_bytes(raw)

    scan = run_cli("scan", path, "--json")
    assert scan.returncode == 0 and f"{first:#x}" in scan.stderr and "differ" in scan.stderr
    for strict in ([], ["--strict"]):
        proc = run_cli("verify", path, "-p", PASSWORD, "--json", *strict)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["metadata_validated"] is True
        assert [(c["crc_ok"], c["validation_ok"]) for c in doc["integrity"]] == [(True, False), (True, True),
                                                                                 (True, True)]
        assert f"{first:#x}" in proc.stderr and f"{offsets[1]:#x}" in proc.stderr
    keys = json.loads(run_cli("keys", path, "-p", PASSWORD, "--json").stdout)
    assert keys["metadata_validated"] is True


def test_an_fvek_given_as_fvek_and_tweak_exports_a_file_dislocker_reads(corpus_dir, manifest, run_cli, tmp_path):
    """AES-128 with the diffuser: verify prints the FVEK as the 16-byte FVEK and 16-byte TWEAK
    that --fvek takes; the file exported from that form is laid out as the metadata's datum, so
    our own --fvek @FILE and dislocker -k read it."""
    name = "aes_128_diffuser.bin"
    shown = json.loads(run_cli("verify", corpus_dir / name, "-p", PASSWORD, "--show-keys", "--json").stdout)["fvek"]
    assert len(shown) == 64  # 32 bytes: FVEK || TWEAK
    out = tmp_path / "k.fvek"
    assert run_cli("keys", corpus_dir / name, "--fvek", shown, "--export-fvek", out).returncode == 0
    raw = out.read_bytes()
    assert raw[2:18] == bytes.fromhex(shown[:32]) and raw[34:50] == bytes.fromhex(shown[32:])
    assert run_cli("verify", corpus_dir / name, "--fvek", "@" + str(out)).returncode == 0
    if shutil.which("dislocker-file") is None:
        pytest.skip("dislocker is not installed (.ci/run installs it)")
    plain = tmp_path / "dislocker.img"
    subprocess.run(["dislocker-file", "-V", str(corpus_dir / name), "-k", str(out), "--", str(plain)],
                   check=True, capture_output=True, timeout=300)
    entry = _entry(manifest, name)
    with plain.open("rb") as fh:
        assert hashlib.sha256(fh.read(entry["decrypted_prefix_bytes"])).hexdigest() == entry["decrypted_prefix_sha256"]
