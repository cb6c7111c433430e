"""The JSON contract, built directly from the library: every document's fields are the ones
docs/cli.md documents, values come from the metadata (checked against the corpus manifest), and
no key material enters a document unless asked for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import volume_file

from bitlocker_tools.credentials import collect
from bitlocker_tools.decrypt import DecryptResult
from bitlocker_tools.protectors import unlock
from bitlocker_tools.report import (
    decrypt_document,
    failure_document,
    info_document,
    scan_document,
    source_record,
    unreadable_source,
    verify_document,
)
from bitlocker_tools.scan import scan
from bitlocker_tools.sources import open_source
from bitlocker_tools.volume import BitLockerVolume

CLI_DOC = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
RP = "284867-596541-514998-422114-660297-261613-215424-199408"


def _documented(section: str) -> set[str]:
    """The quoted field names in one '## command' section of docs/cli.md."""
    body = CLI_DOC.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r'"([a-z_0-9]+)"', body)) | set(re.findall(r"`([a-z_0-9]+)`", body))


@pytest.fixture(scope="module")
def rp_volume(corpus_dir):
    with (corpus_dir / "recovery_password.bin").open("rb") as fh:
        yield BitLockerVolume(fh, name="recovery_password.bin")


def test_scan_document_fields_are_documented_and_right(corpus_dir, manifest):
    documented = _documented("scan")
    for entry in manifest["volumes"]:
        path = corpus_dir / volume_file(entry)
        with open_source(path) as src:
            doc = scan_document([source_record(scan(src))])
        (vol,) = doc["sources"][0]["volumes"]
        assert set(vol) - {"error", "eow_error"} <= documented, set(vol) - documented
        assert vol["volume_guid"] == entry["volume_guid"]
        assert {(p["id"], p["type"]) for p in vol["protectors"]} == {(p["id"], p["type"]) for p in entry["protectors"]}
        for p in vol["protectors"]:
            assert set(p) <= documented and p["key_id"] == p["id"][:8].upper()
    assert unreadable_source("x.E01", "x.E01: no such file") == {"path": "x.E01", "error": "x.E01: no such file",
                                                                 "volumes": []}


def test_info_document_is_a_superset_of_the_scan_record(rp_volume):
    doc = info_document(rp_volume)
    for key in ("boot_sector", "block_header", "entries", "validation_entry", "reserved_regions", "next_nonce"):
        assert key in doc
    assert doc["block_header"]["crc32_valid"] is True
    assert [e["entry_type"] for e in doc["entries"]] == ["description", "vmk", "vmk", "fvek", "volume_header_block"]
    assert doc["entries"][0]["text"] == "DESKTOP-QNI1MMF TestVolume 10/8/2021"


def test_verify_document_hides_keys_unless_asked(rp_volume):
    result = unlock(rp_volume, collect(recovery_password=[RP], use_env=False))
    doc = verify_document(rp_volume, result, show_keys=False)
    assert set(doc) <= _documented("verify")
    integrity = doc.pop("integrity")
    assert [(c["offset"], c["crc_ok"], c["validation_ok"]) for c in integrity] == [
        (o, True, True) for o in rp_volume.metadata.metadata_offsets]
    assert doc == {"unlocked": True, "protector_id": "3c116b76-c67b-484e-b439-ce2ed68b561e",
                   "protector_type": "recovery_password", "key_id": "3C116B76", "via": "recovery_password",
                   "encryption_method": "AES-XTS-128", "metadata_validated": True,
                   "volume_guid": "8e6909f1-6ba3-49ea-bf8d-ec83fab656cd"}
    secrets = {result.vmk.hex(), result.sector_key.hex()}
    assert not any(s in str(doc) for s in secrets)
    shown = verify_document(rp_volume, result, show_keys=True)
    assert {shown["vmk"], shown["fvek"]} == secrets


def test_decrypt_document_fields(rp_volume):
    result = unlock(rp_volume, collect(password=["password12!@"], use_env=False))
    done = DecryptResult("out.img", 51032064, "NTFS", 0, 0, {"sha256": "ab" * 32})
    doc = decrypt_document(rp_volume, result, done, show_keys=False)
    assert set(doc) <= _documented("decrypt") | _documented("verify")
    assert doc["output"] == "out.img" and doc["declared_size"] == 65994752 and doc["via"] == "password"
    assert doc["sha256"] == doc["hashes"]["sha256"] == "ab" * 32 and doc["complete"] and "exit_code" not in doc
    assert "vmk" not in doc and "fvek" not in doc


def test_failure_documents():
    assert failure_document("verify", "wrong", 1) == {"unlocked": False, "protector_id": None,
                                                      "protector_type": None, "error": "wrong", "exit_code": 1}
    assert failure_document("scan", "bad", 3) == {"error": "bad", "exit_code": 3}


def test_keys_document(rp_volume):
    from bitlocker_tools.keys import volume_keys
    from bitlocker_tools.report import keys_document

    result = unlock(rp_volume, collect(password=["password12!@"], use_env=False))
    keys = volume_keys(rp_volume, result)
    doc = keys_document(rp_volume, keys, show_keys=False, exported_fvek="x.fvek", keychain=("k.csv", 2))
    assert set(doc) <= _documented("keys"), set(doc) - _documented("keys")
    assert doc["opened_with"] == {"via": "password", "protector_id": "6dd54bcd-633d-4836-9ebc-44fa02f1776d"}
    assert doc["recovery_passwords"] == [{"protector_id": "3c116b76-c67b-484e-b439-ce2ed68b561e", "key_id": "3C116B76",
                                          "recovery_password": "******-" * 7 + "199408"}]
    assert [p["opened"] for p in doc["protectors"]] == [False, True]
    assert (doc["exported_fvek"], doc["keychain"], doc["keychain_rows"]) == ("x.fvek", "k.csv", 2)
    assert "vmk" not in doc and RP not in str(doc)
    shown = keys_document(rp_volume, keys, show_keys=True)
    assert shown["recovery_passwords"][0]["recovery_password"] == RP
    assert shown["fvek"] == verify_document(rp_volume, result, True)["fvek"]  # one spelling across commands


def test_hash_recover_and_check_key_documents(rp_volume):
    from bitlocker_tools.hashline import export
    from bitlocker_tools.recover import SearchResult, Target
    from bitlocker_tools.report import check_key_document, hash_document, recover_document
    from bitlocker_tools.search import check_key

    doc = hash_document(rp_volume, export(rp_volume.metadata, "john"))
    assert set(doc) <= _documented("hash") and [x["hash_type"] for x in doc["lines"]] == [3, 1]
    p = rp_volume.metadata.protectors[0]
    found = SearchResult(bytes(16), Target(p.guid, bytes(16), lambda k: True, p), 12, 91, 91, 0, 1.5)
    doc = recover_document(found, "1/1", show_keys=False)
    assert set(doc) <= _documented("recover") and doc["recovery_password"] == "******-" * 7 + "000000"
    assert (doc["candidates_tried"], doc["space_size"], doc["rate"]) == (12, 91, 8.0)
    doc = check_key_document(check_key(RP.replace("514998", "514999")))
    assert set(doc) <= _documented("check-key") and doc["failing_groups"] == [3]
