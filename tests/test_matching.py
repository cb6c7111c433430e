"""Matching escrowed keys to volumes, called directly on records: by identifier, proved by
crypto, identifier-less keys tried, and every key that opens nothing reported with its reason."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import volume_file

from bitlocker_tools.escrow.record import FVEK, RECOVERY_PASSWORD, STARTUP_KEY, EscrowRecord, Locator
from bitlocker_tools.keyfiles import parse_bek
from bitlocker_tools.matching import (
    BY_KEY_ID_PREFIX,
    BY_PROTECTOR_ID,
    BY_TRYING,
    BY_VOLUME_GUID,
    VolumeRef,
    keys_for_key_id,
    match_keys,
)
from bitlocker_tools.recovery_password import RecoveryPassword
from bitlocker_tools.recovery_password import parse as rp
from bitlocker_tools.volume import BitLockerVolume

RP_VOLUME = "284867-596541-514998-422114-660297-261613-215424-199408"
RP_GUID = "3c116b76-c67b-484e-b439-ce2ed68b561e"
WIN7_RP = "131450-120197-153989-250338-511368-495572-680944-381546"
VISTA_RP = "517506-503998-044583-576191-587004-635965-501270-087802"


def _record(kind=RECOVERY_PASSWORD, key=None, key_id=None, line=1, file="escrow.txt", **extra) -> EscrowRecord:
    r = EscrowRecord(kind, "test", Locator(file, line=line), key_id=key_id, **extra)
    if kind == RECOVERY_PASSWORD:
        r.recovery_password = rp(key)
    else:
        r.secret = key
    return r


def random_password(rng: random.Random) -> str:
    return str(RecoveryPassword(tuple(rng.randrange(65536) * 11 for _ in range(8))))


@pytest.fixture(scope="module")
def volumes(corpus_dir, manifest):
    refs = []
    handles = []
    for entry in manifest["volumes"]:
        fh = (corpus_dir / volume_file(entry)).open("rb")
        handles.append(fh)
        refs.append(VolumeRef(volume_file(entry), None, 0, BitLockerVolume(fh, name=volume_file(entry))))
    yield {r.source: r for r in refs}
    for fh in handles:
        fh.close()


def test_by_protector_id_prefix_volume_guid_and_trying(volumes, corpus_dir, manifest):
    bek = parse_bek((corpus_dir / "startup_key.bek").read_bytes())
    aes128 = next(v for v in manifest["volumes"] if v["file"] == "aes_128.bin.gz")
    records = [
        _record(key=RP_VOLUME, key_id=RP_GUID, line=1),  # full protector GUID
        _record(key=WIN7_RP, key_id="8f716353", line=2),  # the Key ID of the recovery screen
        _record(key=VISTA_RP, line=3),  # no identifier at all
        _record(STARTUP_KEY, bek.key, key_id=bek.guid, line=4),
        _record(FVEK, bytes.fromhex(aes128["credentials"]["fvek"]), volume_guid=aes128["volume_guid"], line=5),
    ]
    report = match_keys(list(volumes.values()), records)
    got = {(m.ref.source, m.matched_by, m.record.locator.line) for m in report.matches}
    assert got == {("recovery_password.bin", BY_PROTECTOR_ID, 1), ("win7_partial.bin", BY_KEY_ID_PREFIX, 2),
                   ("vista.bin", BY_TRYING, 3), ("startup_key.bin", BY_PROTECTOR_ID, 4),
                   ("aes_128.bin", BY_VOLUME_GUID, 5)}
    assert report.try_all.ran and report.try_all.keys == 1
    assert report.stale == [] and report.unmatched == []
    locked = {r.source for r in report.locked}
    assert "recovery_password.bin" not in locked and "aes_256.bin" in locked
    assert "suspended.bin" not in locked and "decrypted.bin" not in locked  # no key needed


def test_stale_keys_are_not_wrong_keys(volumes):
    """A key under the right GUID with other digits (rotated or mistyped), and an older key of
    the same computer (AD keeps every key a computer ever escrowed): stale, not unmatched."""
    rng = random.Random(5)
    rotated = _record(key=random_password(rng), key_id=RP_GUID, line=7)
    older = _record(key=random_password(rng), key_id="0badf00d-0000-4000-8000-000000000001", line=8,
                    computer_name="DESKTOP-QNI1MMF", created_at=datetime(2020, 5, 1, tzinfo=timezone.utc))
    newer = _record(key=random_password(rng), key_id="0badf00d-0000-4000-8000-000000000002", line=9,
                    computer_name="DESKTOP-QNI1MMF", created_at=datetime(2023, 5, 1, tzinfo=timezone.utc))
    report = match_keys([volumes["recovery_password.bin"]], [rotated, older, newer])
    stale = {s.record.locator.line: s for s in report.stale}
    assert set(stale) == {7, 8}
    assert stale[7].protector.guid == RP_GUID and "identifier matches" in stale[7].reason
    assert "older than every protector" in stale[8].reason
    assert [r.locator.line for r in report.unmatched] == [9]
    assert report.matches == []


def test_prefix_collision_is_settled_by_crypto(volumes):
    """Two escrowed keys under the same 8-digit Key ID: only the one that opens is the match. The
    other names this one protector and does not open it: stale (an older key of it, or one of
    another computer whose ID shares the prefix; the reason says which check failed)."""
    rng = random.Random(7)
    other = _record(key=random_password(rng), key_id="3c116b76", line=1)
    right = _record(key=RP_VOLUME, key_id="3c116b76", line=2)
    report = match_keys([volumes["recovery_password.bin"]], [other, right])
    assert [(m.record.locator.line, m.matched_by) for m in report.matches] == [(2, BY_KEY_ID_PREFIX)]
    assert [(s.record.locator.line, s.protector.guid) for s in report.stale] == [(1, RP_GUID)]
    assert "Key ID names this protector" in report.stale[0].reason and report.unmatched == []


def test_a_prefix_naming_several_protectors_is_not_called_stale(volumes, corpus_dir):
    """Two images of the same disk: the Key ID names a protector on each, the key opens neither;
    which one it belonged to (if any) is unknown, so it is unmatched, not stale."""
    twin = VolumeRef("copy.bin", None, 0, BitLockerVolume((corpus_dir / "recovery_password.bin").open("rb")))
    key = _record(key=random_password(random.Random(8)), key_id="3c116b76", line=1)
    report = match_keys([volumes["recovery_password.bin"], twin], [key])
    assert report.stale == [] and report.unmatched == [key]


def test_malformed_duplicates_and_conflicts(volumes):
    bad = EscrowRecord(RECOVERY_PASSWORD, "test", Locator("docs.txt", line=3), raw="123456-231453-...",
                       bad_groups=[1, 2, 3, 4, 5, 6, 7, 8])
    one = _record(key=RP_VOLUME, key_id=RP_GUID, file="a.csv", line=2)
    same = _record(key=RP_VOLUME, key_id=RP_GUID, file="b.ldif", line=9)
    clash = _record(key=random_password(random.Random(1)), key_id=RP_GUID, file="c.json", line=4)
    report = match_keys([volumes["recovery_password.bin"]], [bad, one, same, clash])
    assert report.malformed == [bad]
    assert [[r.locator.file for r in g] for g in report.duplicates] == [["a.csv", "b.ldif"]]
    assert [sorted(r.locator.file for r in g) for g in report.conflicts] == [["a.csv", "b.ldif", "c.json"]]
    assert [m.record.locator.file for m in report.matches] == ["a.csv"]
    assert [s.record.locator.file for s in report.stale] == ["c.json"]


def test_identifier_less_keys_past_the_limit_wait_for_try_all(volumes):
    rng = random.Random(11)
    keys = [_record(key=random_password(rng), line=i) for i in range(6)] + [_record(key=VISTA_RP, line=99)]
    refs = [volumes["vista.bin"]]
    announced = []
    report = match_keys(refs, keys, try_limit=5, announce=announced.append)
    assert not report.try_all.ran and report.try_all.stretches == 7 and "--try-all" in report.try_all.reason
    assert announced and report.matches == [] and len(report.unmatched) == 7
    done = []
    report = match_keys(refs, keys, try_limit=5, try_all=True, progress=done.append)
    assert [(m.record.locator.line, m.matched_by) for m in report.matches] == [(99, BY_TRYING)]
    assert sum(done) == 7


def test_key_id_lookup_newest_first():
    when = [datetime(2021, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc)]
    a = _record(key=RP_VOLUME, key_id=RP_GUID, created_at=when[0], line=1)
    b = _record(key=WIN7_RP, key_id="3c116b76", created_at=when[1], line=2)
    c = _record(key=VISTA_RP, key_id="b59c92d8-b1b1-485e-a8ff-b7eafba260f3", line=3)
    assert [r.locator.line for r in keys_for_key_id("3C116B76", [a, b, c])] == [2, 1]
    assert [r.locator.line for r in keys_for_key_id("{3C116B76-C67B", [a, b, c])] == [2, 1]
    assert keys_for_key_id("deadbeef", [a, b, c]) == []


def test_ten_thousand_keys_hide_the_corpus_keys(volumes, manifest, corpus_dir):
    """10,000 escrowed recovery passwords with valid checksums and random GUIDs; the corpus keys
    among them, under their protector GUIDs, open exactly their volumes; the rest match nothing."""
    rng = random.Random(2026)
    records = [_record(key=random_password(rng), key_id=str(_uuid(rng)), line=i + 1) for i in range(10_000)]
    truth = {}
    for entry in manifest["volumes"]:
        c = entry["credentials"]
        if "recovery_password" in c:
            pid = next(p["id"] for p in entry["protectors"] if p["type"] == "recovery_password")
            at = rng.randrange(len(records))
            records.insert(at, _record(key=c["recovery_password"], key_id=pid, line=-1 - len(truth)))
            truth[volume_file(entry)] = pid
    report = match_keys(list(volumes.values()), records)
    assert {m.ref.source: m.protector.guid for m in report.matches} == truth
    assert len(report.unmatched) == 10_000 and report.stale == [] and not report.try_all.ran


def _uuid(rng: random.Random):
    import uuid

    return uuid.UUID(int=rng.getrandbits(128), version=4)


def test_module_has_no_state_between_calls(volumes):
    """Two runs with the same input give the same answer (no cache keyed on object ids survives)."""
    records = [_record(key=RP_VOLUME, key_id=RP_GUID)]
    first = match_keys([volumes["recovery_password.bin"]], records)
    second = match_keys([volumes["recovery_password.bin"]], records)
    assert [(m.ref.source, m.matched_by) for m in first.matches] == [(m.ref.source, m.matched_by) for m in second.matches]
    assert Path  # (imported for the fixtures' paths)
