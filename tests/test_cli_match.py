"""`match` as examiners run it: a pile of escrow exports of 10,000 keys in several formats with
the corpus keys hidden among them, proved against every corpus volume; stale and older keys,
a Windows 11 `.BEK` that matches by its volume GUID without a stretch, the keychain read by
dissect.target, the case-report CSV, the helpdesk's Key ID lookup, and the exit codes."""

from __future__ import annotations

import base64
import csv
import gzip
import json
import random
import re
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, volume_file

from bitlocker_tools.recovery_password import RecoveryPassword

CLI_DOC = (ROOT / "docs" / "cli.md").read_text()


def _password(rng: random.Random) -> str:
    return str(RecoveryPassword(tuple(rng.randrange(65536) * 11 for _ in range(8))))


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if volume_file(v) == name)


def _rp_protector(entry) -> str:
    return next(p["id"] for p in entry["protectors"] if p["type"] == "recovery_password")


@pytest.fixture(scope="module")
def escrow(tmp_path_factory, manifest, corpus_dir) -> Path:
    """10,000 random keys with valid checksums and random GUIDs in four export formats, and the
    corpus keys hidden among them, each in a different one."""
    rng = random.Random(16)
    folder = tmp_path_factory.mktemp("escrow")
    keys = [(_guid(rng), _password(rng), f"PC{i:05d}") for i in range(10_000)]
    rp = _entry(manifest, "recovery_password.bin")
    w7 = _entry(manifest, "win7_partial.bin")
    vista = _entry(manifest, "vista.bin")
    graph = [{"id": g, "createdDateTime": "2025-03-02T22:07:55Z", "volumeType": 1, "deviceId": _guid(rng), "key": k}
             for g, k, _ in keys[:4000]]
    graph.insert(1234, {"id": _rp_protector(w7), "createdDateTime": "2021-10-21T20:31:00Z", "volumeType": "1",
                        "deviceId": _guid(rng), "key": w7["credentials"]["recovery_password"]})
    (folder / "entra").mkdir()
    (folder / "entra" / "recoveryKeys.json").write_text(json.dumps({"value": graph}))
    with (folder / "ad-export.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["ComputerName", "Name", "msFVE-RecoveryPassword", "msFVE-RecoveryGuid"])
        for g, k, pc in keys[4000:7000]:
            out.writerow([pc, f"2025-03-02T14:07:55-08:00{{{g.upper()}}}", k, "System.Byte[]"])
    ldif = []
    hidden = [(4000, _rp_protector(rp), rp["credentials"]["recovery_password"], "DESKTOP-QNI1MMF")]
    rows = [(g, k, pc) for g, k, pc in keys[7000:10_000]]
    for at, g, k, pc in hidden:
        rows.insert(at - 3000, (g, k, pc))
    for g, k, pc in rows:
        b64 = base64.b64encode(uuid.UUID(g).bytes_le).decode()
        ldif += [f"dn: CN=2025-03-02T14:07:55-08:00{{{g.upper()}}},CN={pc},OU=WS,DC=corp,DC=example",
                 "objectClass: msFVE-RecoveryInformation", f"msFVE-RecoveryPassword: {k}",
                 f"msFVE-RecoveryGuid:: {b64}", "whenCreated: 20250302220755.0Z", ""]
    (folder / "ad.ldf").write_text("\n".join(ldif))
    vista_id = _rp_protector(vista).upper()
    txt = (f"BitLocker Drive Encryption recovery key\r\n\r\nIdentifier:\r\n\r\n\t{vista_id}\r\n\r\n"
           f"Recovery Key:\r\n\r\n\t{vista['credentials']['recovery_password']}\r\n")
    (folder / f"BitLocker Recovery Key {vista_id}.TXT").write_bytes(b"\xff\xfe" + txt.encode("utf-16-le"))
    (folder / "usb").mkdir()
    (folder / "usb" / "key.bek").write_bytes((corpus_dir / "startup_key.bek").read_bytes())  # renamed
    (folder / "broken.BEK").write_bytes(b"not a key file at all")  # listed, never fatal
    return folder


@pytest.fixture(scope="module")
def matched(escrow, corpus_dir, manifest, run_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("match")
    paths = [corpus_dir / volume_file(v) for v in manifest["volumes"]]
    proc = run_cli("match", *paths, "--keys", escrow, "--json", "--csv", out / "case.csv",
                   "--keychain", out / "case.keys", timeout=900)
    return proc, out


def test_every_corpus_key_is_found_and_proved(matched, manifest):
    proc, _ = matched
    assert proc.returncode == 1, proc.stderr  # the password-only volumes stay locked
    doc = json.loads(proc.stdout)
    got = {Path(m["source"]).name: (m["protector_id"], m["matched_by"], Path(m["key_source"]["file"]).name)
           for m in doc["matches"]}
    startup = _entry(manifest, "startup_key.bin")
    assert got == {
        "recovery_password.bin": (_rp_protector(_entry(manifest, "recovery_password.bin")), "protector_id", "ad.ldf"),
        "win7_partial.bin": (_rp_protector(_entry(manifest, "win7_partial.bin")), "protector_id",
                             "recoveryKeys.json"),
        "vista.bin": (_rp_protector(_entry(manifest, "vista.bin")), "protector_id",
                      f"BitLocker Recovery Key {_rp_protector(_entry(manifest, 'vista.bin')).upper()}.TXT"),
        "startup_key.bin": (next(p["id"] for p in startup["protectors"] if p["type"] == "startup_key"),
                            "protector_id", "key.bek"),
    }
    assert all(m["verified"] and "*" in m["key"]["recovery_password"] for m in doc["matches"]
               if "recovery_password" in m["key"])
    # the volume's identity stays the evidence's, whatever the escrow claims
    for m in doc["matches"]:
        assert m["key_id"] == m["protector_id"][:8].upper()
    assert len(doc["unmatched_keys"]) == 10_000 and doc["stale"] == []
    locked = {Path(v["source"]).name for v in doc["locked_volumes"]}
    assert locked == {"aes_128.bin", "aes_256.bin", "aes_128_diffuser.bin", "aes_256_diffuser.bin", "aes-xts_128.bin",
                      "aes-xts_256.bin", "recovery_key.bin", "eow_partial.bin"}
    assert [Path(p["key_source"]["file"]).name for p in doc["problems"]] == ["broken.BEK"]
    # the LDIF hid its key under a mixed-endian binary GUID and a line number the examiner can find
    ldif = next(m for m in doc["matches"] if m["key_source"]["file"].endswith("ad.ldf"))
    assert ldif["key_source"]["dn"].startswith("CN=2025-03-02T14:07:55-08:00{3C116B76")
    assert ldif["key"]["computer_name"] == "DESKTOP-QNI1MMF"


def test_the_json_fields_are_documented(matched):
    doc = json.loads(matched[0].stdout)
    section = CLI_DOC.split("## match SOURCE", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r'"([a-z_]+)"', section))
    assert set(doc) <= documented, set(doc) - documented
    for m in doc["matches"]:
        assert {"source", "partition", "offset", "protector_id", "protector_type", "key_source", "verified"} <= set(m)
        assert set(m) | set(m["key"]) <= documented, (set(m) | set(m["key"])) - documented


def test_case_report_csv_one_row_per_volume(matched, manifest):
    _, out = matched
    rows = list(csv.DictReader((out / "case.csv").open()))
    assert len(rows) == len(manifest["volumes"])
    by_name = {Path(r["source"]).name: r for r in rows}
    assert by_name["vista.bin"]["status"] == "matched" and by_name["aes_128.bin"]["status"] == "locked"
    assert by_name["suspended.bin"]["status"] == "no_key_needed"
    assert by_name["recovery_password.bin"]["key_file"].endswith("ad.ldf")


def test_keychain_of_proved_keys_opens_the_evidence_in_dissect_target(matched, corpus_dir, manifest):
    pytest.importorskip("dissect.target")
    from test_keys import _dissect_target

    _, out = matched
    rows = [line.split(",") for line in (out / "case.keys").read_text().splitlines()]
    rp = _entry(manifest, "recovery_password.bin")
    assert ["bitlocker", "recovery_key", _rp_protector(rp), rp["credentials"]["recovery_password"]] in rows
    assert all(r[0] == "bitlocker" for r in rows) and len(rows) == 4
    assert (out / "case.keys").stat().st_mode & 0o077 == 0
    assert _dissect_target(out / "case.keys", corpus_dir / "recovery_password.bin")[0] == "NTFS    "


def test_stale_and_older_keys_and_a_bek_by_its_volume_guid(tmp_path, corpus_dir, run_cli):
    """A key under the right GUID with other digits, and an older key of the same computer, are
    stale, not wrong; a Windows 11 .BEK naming the volume matches without any stretch."""
    rng = random.Random(3)
    csv_text = ("ComputerName,RecoveryKeyId,RecoveryKey,CreatedDateTime\n"
                f"DESKTOP-QNI1MMF,3c116b76-c67b-484e-b439-ce2ed68b561e,{_password(rng)},2021-10-09T10:00:00Z\n"
                f"DESKTOP-QNI1MMF,{_guid(rng)},{_password(rng)},2020-05-01T10:00:00Z\n")
    (tmp_path / "intune.csv").write_text(csv_text)
    proc = run_cli("match", corpus_dir / "recovery_password.bin", "--keys", tmp_path / "intune.csv", "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [s["key_source"].get("row") for s in doc["stale"]] == [1, 2]
    assert "identifier matches" in doc["stale"][0]["reason"] and "older" in doc["stale"][1]["reason"]
    assert doc["unmatched_keys"] == [] and doc["matches"] == []


def test_a_windows_11_bek_matches_by_the_volume_guid_without_a_stretch(tmp_path, monkeypatch):
    from bitlocker_tools.crypto import kdf
    from bitlocker_tools.escrow import load_keys
    from bitlocker_tools.forge import ProtectorSpec, VolumeSpec, bek_file, forge
    from bitlocker_tools.format.constants import EncryptionMethod
    from bitlocker_tools.format.metadata import MetadataHeader
    from bitlocker_tools.matching import BY_VOLUME_GUID, VolumeRef, match_keys
    from bitlocker_tools.sources import open_source
    from bitlocker_tools.volume import BitLockerVolume

    plain = gzip.decompress((ROOT / "fixtures" / "plain" / "ntfs.img.gz").read_bytes())
    vol = forge(plain, VolumeSpec(EncryptionMethod.AES_XTS_128, [ProtectorSpec("startup_key")], seed="win11-bek"))
    (p,) = vol.protectors
    # Windows 11 names the volume in the key file's header; the entry still names the protector,
    # here one the volume does not have (the file belongs to it all the same)
    raw = bytearray(bek_file(_guid(random.Random(1)), p.startup_key, vol.spec.created))
    header = MetadataHeader.parse(bytes(raw[:48]))
    raw[:48] = MetadataHeader.build({**{k: v for k, v in header.items() if k != "_io"},
                                     "volume_guid": vol.volume_guid})
    (tmp_path / "E.BEK").write_bytes(bytes(raw))
    (tmp_path / "forged.bin").write_bytes(vol.data)
    loaded = load_keys([str(tmp_path / "E.BEK")])
    assert [r.volume_guid for r in loaded.records] == [vol.volume_guid]
    stretches = []
    monkeypatch.setattr(kdf, "stretch_batch", lambda *a, **k: stretches.append(a) or [])
    with open_source(tmp_path / "forged.bin") as src:
        ref = VolumeRef(str(tmp_path / "forged.bin"), None, 0, BitLockerVolume(src.fh))
        report = match_keys([ref], loaded.records)
    assert [(m.matched_by, m.protector.guid) for m in report.matches] == [(BY_VOLUME_GUID, p.guid)]
    assert stretches == []


def test_key_id_lookup_for_the_helpdesk(run_cli):
    samples = ROOT / "tests" / "escrow_samples"
    proc = run_cli("match", "--key-id", "7A3F09C2", "--keys", samples, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ambiguous"] is True and len(doc["keys"]) >= 2
    assert all(k["key_id"].startswith("7a3f09c2") for k in doc["keys"])
    human = run_cli("match", "--key-id", "7a3f09c2", "--keys", samples).stdout
    assert "give more digits" in human
    none = run_cli("match", "--key-id", "0BADF00D", "--keys", samples)
    assert none.returncode == 1 and "0BADF00D" in none.stderr


def test_exit_codes(tmp_path, corpus_dir, run_cli):
    (tmp_path / "keys.txt").write_text("284867-596541-514998-422114-660297-261613-215424-199408\n")
    ok = run_cli("match", corpus_dir / "recovery_password.bin", "--keys", tmp_path / "keys.txt")
    assert ok.returncode == 0, ok.stderr
    assert "opened" in ok.stdout and "199408" in ok.stdout and "284867" not in ok.stdout
    missing = run_cli("match", tmp_path / "no-such.E01", "--keys", tmp_path / "keys.txt", "--json")
    assert missing.returncode == 3 and json.loads(missing.stdout)["exit_code"] == 3
    usage = run_cli("match", "--keys", tmp_path / "keys.txt")
    assert usage.returncode == 2
