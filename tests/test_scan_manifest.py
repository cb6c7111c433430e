"""`scan` against the facts of shared/corpus/MANIFEST.md that no other test checks: the conversion
state of each real Windows volume (paused half way, used-space-only, fully encrypted), the
percentage encrypted computed from the conversion boundary the manifest gives, and a creation
time that agrees with the date Windows wrote into the volume description.

The expected values are typed in here from MANIFEST.md (the independent truth), not derived from
what the reader says.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import volume_file

# MANIFEST.md: "win7_partial: ciphertext ends at byte 1,143,820,288 (sector 2,234,024); from there
# on the volume is plain text", "decryption paused half way (state PAUSED, next DECRYPTED)", and
# its decompressed size N = 2,874,839,040.
WIN7_BOUNDARY = 1_143_820_288
WIN7_SIZE = 2_874_839_040
assert WIN7_BOUNDARY == 2_234_024 * 512

# MANIFEST.md, "Credentials and identity": the fully encrypted ones (not partial, not decrypted).
FULLY_ENCRYPTED = [
    "aes_128.bin", "aes_256.bin", "aes_128_diffuser.bin", "aes_256_diffuser.bin", "aes-xts_128.bin",
    "aes-xts_256.bin", "recovery_password.bin", "recovery_key.bin", "startup_key.bin", "suspended.bin",
    "vista.bin",
]


def _scan(run_cli, *paths) -> list[dict]:
    proc = run_cli("scan", "--json", *paths)
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    assert len(sources) == len(paths)
    out = []
    for src in sources:
        assert len(src["volumes"]) == 1, src
        out.append(src["volumes"][0])
    return out


def _utc(text: str) -> datetime:
    assert isinstance(text, str) and text, text
    # ISO 8601 UTC, as docs/cli.md promises: a trailing Z or +00:00.
    assert text.endswith("Z") or text.endswith("+00:00"), text
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert when.utcoffset() == timedelta(0), text
    return when


def _description_date(description: str) -> date:
    m = re.search(r"(\d{1,2})/(\d{1,2})/(\d{4})\s*$", description)
    assert m, description
    month, day, year = map(int, m.groups())
    return date(year, month, day)


def test_win7_partial_is_paused_with_the_manifest_boundary(corpus_dir, run_cli):
    (rec,) = _scan(run_cli, corpus_dir / "win7_partial.bin")
    assert rec["bitlocker"] is True
    assert rec["encryption_method"] == "AES-CBC-256"
    assert rec["state"] == "paused"
    assert rec["next_state"] == "decrypted"
    assert rec["used_space_only"] is False
    assert rec["size"] == WIN7_SIZE
    assert rec["encrypted_size"] == WIN7_BOUNDARY
    assert "percent_encrypted" in rec, "a partially converted volume must report percent_encrypted"
    expected = 100.0 * WIN7_BOUNDARY / rec["size"]  # 39.787...
    assert abs(rec["percent_encrypted"] - expected) <= 0.01, (rec["percent_encrypted"], expected)
    assert 39.7 < rec["percent_encrypted"] < 39.9


def test_win7_partial_human_scan_says_paused(corpus_dir, run_cli):
    proc = run_cli("scan", corpus_dir / "win7_partial.bin")
    assert proc.returncode == 0, proc.stderr
    state_lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("state")]
    assert len(state_lines) == 1, proc.stdout
    line = state_lines[0]
    assert "paused" in line and "decrypted" in line, line
    assert re.search(r"\b39\.[78]\d*\s*%", line), line  # 39.787...% encrypted, however rounded
    assert "used space only" not in line, line


def test_eow_partial_is_used_space_only(corpus_dir, run_cli):
    (rec,) = _scan(run_cli, corpus_dir / "eow_partial.bin")
    assert rec["bitlocker"] is True
    assert rec["encryption_method"] == "AES-CBC-128"
    assert rec["used_space_only"] is True
    # the MANIFEST does not give its block-header states; dissect.fve, an independent parser, reads
    # them: 4 and 4 (a used-space-only volume is "encrypted" while chunks never written stay plain)
    bde = pytest.importorskip("dissect.fve.bde")
    with (corpus_dir / "eow_partial.bin").open("rb") as fh:
        header = bde.BDE(fh).information.header
        names = {1: "decrypted", 2: "switching_dirty", 3: "paused", 4: "encrypted", 5: "switching"}
        assert (rec["state"], rec["next_state"]) == (names[header.CurrentState], names[header.NextState])
    assert rec["state"] == "encrypted"
    proc = run_cli("scan", corpus_dir / "eow_partial.bin")
    assert proc.returncode == 0, proc.stderr
    assert "used space only" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", FULLY_ENCRYPTED)
def test_fully_encrypted_volume_state(name, corpus_dir, run_cli):
    (rec,) = _scan(run_cli, corpus_dir / name)
    assert rec["state"] == "encrypted", rec["state"]
    assert rec["next_state"] == "encrypted", rec["next_state"]
    assert "percent_encrypted" not in rec, rec.get("percent_encrypted")
    assert rec["used_space_only"] is False


def test_fully_decrypted_volume_state(corpus_dir, run_cli):
    (rec,) = _scan(run_cli, corpus_dir / "decrypted.bin")
    assert rec["encryption_method"] == "NONE"
    assert rec["state"] == "decrypted"
    assert "percent_encrypted" not in rec


def test_creation_time_agrees_with_the_description_date(corpus_dir, manifest, run_cli):
    """Windows writes the local date of encryption into the description ("USER-PC C: 10/21/2021");
    the metadata's creation time (UTC) must fall on that date, give or take the time zone."""
    entries = [e for e in manifest["volumes"] if e["description"]]
    assert len(entries) == 13
    records = _scan(run_cli, *(corpus_dir / volume_file(e) for e in entries))
    for entry, rec in zip(entries, records):
        name = volume_file(entry)
        assert rec["description"] == entry["description"], name
        when = _utc(rec["creation_time"])
        local = _description_date(entry["description"])
        assert abs((when.date() - local).days) <= 1, f"{name}: created {when}, description says {local}"
        assert when.tzinfo is not None and when <= datetime.now(timezone.utc)


def test_creation_time_of_the_known_volumes(corpus_dir, run_cli):
    """The dates MANIFEST.md gives, volume by volume (typed in here)."""
    expected = {"win7_partial.bin": date(2021, 10, 21), "eow_partial.bin": date(2021, 10, 12),
                "vista.bin": date(2021, 10, 21), "aes_128.bin": date(2021, 10, 8),
                "suspended.bin": date(2021, 10, 24), "aes_128_diffuser.bin": date(2021, 10, 24)}
    records = _scan(run_cli, *(corpus_dir / n for n in expected))
    for (name, day), rec in zip(expected.items(), records):
        assert abs((_utc(rec["creation_time"]).date() - day).days) <= 1, (name, rec["creation_time"])


def test_info_reports_the_same_state_fields(corpus_dir, run_cli):
    """`info` starts from the scan record: the same state fields for the paused volume."""
    (rec,) = _scan(run_cli, corpus_dir / "win7_partial.bin")
    proc = run_cli("info", "--json", corpus_dir / "win7_partial.bin")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("state", "next_state", "percent_encrypted", "used_space_only", "creation_time", "encrypted_size"):
        assert doc[key] == rec[key], key
    assert doc["block_header"]["encrypted_volume_size"] == WIN7_BOUNDARY
