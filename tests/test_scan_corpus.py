"""`scan --json` and `info --json` on every real volume of the corpus report what the manifest says."""

from __future__ import annotations

import json

import pytest
from conftest import MANIFEST_PATH, volume_file

METHOD_LABELS = {
    "AES_128": "AES-CBC-128",
    "AES_256": "AES-CBC-256",
    "AES_128_DIFFUSER": "AES-CBC-128-DIFFUSER",
    "AES_256_DIFFUSER": "AES-CBC-256-DIFFUSER",
    "AES_XTS_128": "AES-XTS-128",
    "AES_XTS_256": "AES-XTS-256",
    "NONE": "NONE",
}

with MANIFEST_PATH.open() as _fh:
    _NAMES = [volume_file(v) for v in json.load(_fh)["volumes"]]


@pytest.fixture(scope="module")
def scanned(corpus_dir, manifest, run_cli):
    """One `scan --json` over all the corpus volumes: {file name: its one volume dict}."""
    paths = [corpus_dir / volume_file(v) for v in manifest["volumes"]]
    proc = run_cli("scan", "--json", *paths)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert [s["path"] for s in data["sources"]] == [str(p) for p in paths]
    out = {}
    for path, source in zip(paths, data["sources"]):
        assert source["kind"] == "volume", source
        assert source["size"] == path.stat().st_size
        assert len(source["volumes"]) == 1, source
        out[path.name] = source["volumes"][0]
    return out


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if volume_file(v) == name)


def test_manifest_covers_the_corpus(manifest):
    assert len(manifest["volumes"]) == 14
    assert {v["method"] for v in manifest["volumes"]} <= set(METHOD_LABELS)


@pytest.mark.parametrize("name", _NAMES)
def test_scan_reports_manifest_facts(scanned, manifest, name):
    expected = _entry(manifest, name)
    vol = scanned[name]
    assert vol["bitlocker"] is True
    assert vol["partition"] is None
    assert vol["offset"] == 0
    assert "error" not in vol, vol.get("error")
    assert vol["encryption_method"] == METHOD_LABELS[expected["method"]]
    assert vol["volume_guid"] == expected["volume_guid"]
    assert vol["metadata_version"] == expected["metadata_version"]
    if expected.get("description") is not None:
        assert vol["description"] == expected["description"]
    assert {p["id"] for p in vol["protectors"]} == {p["id"] for p in expected["protectors"]}
    assert {(p["id"], p["type"]) for p in vol["protectors"]} == {
        (p["id"], p["type"]) for p in expected["protectors"]
    }
    for p in vol["protectors"]:
        assert p["key_id"] == p["id"].split("-")[0].upper()
        assert len(p["key_id"]) == 8
    assert vol["metadata_copies"], "no metadata copies reported"
    assert any(c["valid"] for c in vol["metadata_copies"])


@pytest.mark.parametrize("name", _NAMES)
def test_info_json(corpus_dir, manifest, run_cli, scanned, name):
    expected = _entry(manifest, name)
    proc = run_cli("info", "--json", corpus_dir / name)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["volume_guid"] == expected["volume_guid"]
    assert info["encryption_method"] == METHOD_LABELS[expected["method"]]
    assert info["metadata_version"] == expected["metadata_version"]
    assert {p["id"] for p in info["protectors"]} == {p["id"] for p in expected["protectors"]}
    # info is a superset of the scan record of the same volume
    for key, value in scanned[name].items():
        assert info[key] == value, key
    assert info["boot_sector"]["metadata_offsets"]
    assert info["entries"], "info lists no metadata entries"
