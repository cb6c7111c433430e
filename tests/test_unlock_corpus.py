"""Every real Windows volume of the corpus unlocks with its manifest credential and decrypts to
exactly the plaintext that independent tools agreed on (SHA-256 of the first N bytes)."""

from __future__ import annotations

import hashlib

import pytest

from bitlocker_tools.credentials import collect
from bitlocker_tools.errors import WrongKeyError
from bitlocker_tools.protectors import unlock
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.volume import BitLockerVolume

CHUNK = 8 << 20


def _volumes(manifest):
    return {v["file"][: -len(".gz")]: v for v in manifest["volumes"]}


def _credential_sets(entry, corpus_dir):
    """Each way the manifest says the volume opens, as collect() keyword sets."""
    c = entry["credentials"]
    sets = []
    if "recovery_password" in c:
        sets.append(("recovery_password", dict(recovery_password=[c["recovery_password"]])))
    if "password" in c:
        sets.append(("password", dict(password=[c["password"]])))
    if "bek" in c:
        sets.append(("startup_key", dict(bek=[str(corpus_dir / c["bek"])])))
    if c.get("clear_key"):
        sets.append(("clear_key", dict(clear_key=True)))
    if "fvek" in c:
        sets.append(("fvek", dict(fvek=c["fvek"])))
    if not c:
        sets.append(("none", {}))
    return sets


def _digest(stream: DecryptedStream, n: int) -> str:
    h = hashlib.sha256()
    pos = 0
    while pos < n:
        data = stream.read_at(pos, min(CHUNK, n - pos))
        assert data, f"stream ended at {pos} of {n}"
        h.update(data)
        pos += len(data)
    return h.hexdigest()


NAMES = [
    "aes_128.bin", "aes_256.bin", "aes_128_diffuser.bin", "aes_256_diffuser.bin", "aes-xts_128.bin",
    "aes-xts_256.bin", "recovery_password.bin", "recovery_key.bin", "startup_key.bin", "suspended.bin",
    "decrypted.bin", "vista.bin", "win7_partial.bin", "eow_partial.bin",
]


@pytest.mark.parametrize("name", NAMES)
def test_every_credential_unlocks_and_plaintext_matches(name, corpus_dir, manifest):
    entry = _volumes(manifest)[name]
    evidence = corpus_dir / name
    with evidence.open("rb") as fh:
        vol = BitLockerVolume(fh, name=name)
        results = []
        for via, kwargs in _credential_sets(entry, corpus_dir):
            r = unlock(vol, collect(use_env=False, **kwargs))
            assert r.via == via
            if r.protector is not None:
                listed = {(p["type"], p["id"]) for p in entry["protectors"]}
                assert (r.protector.type.value, r.protector.guid) in listed
                assert r.metadata_validated is True  # every Windows block, Vista included, carries it
            results.append(r)
        # Every credential leads to the same sector key; the first one is checked against the hash.
        assert len({r.sector_key for r in results}) == 1
        stream = DecryptedStream(vol, results[0])
        assert _digest(stream, entry["decrypted_prefix_bytes"]) == entry["decrypted_prefix_sha256"]
        assert stream.read_at(0, 512)[3:11] == b"NTFS    "


def test_fvek_from_password_equals_escrowed_fvek(corpus_dir, manifest):
    """The key chain (stretch, VMK unwrap, FVEK unwrap) yields the FVEK other tools printed."""
    for name, entry in _volumes(manifest).items():
        c = entry["credentials"]
        if "fvek" not in c or "password" not in c:
            continue
        with (corpus_dir / name).open("rb") as fh:
            vol = BitLockerVolume(fh, name=name)
            derived = unlock(vol, collect(password=[c["password"]], use_env=False))
            given = unlock(vol, collect(fvek=c["fvek"], use_env=False))
            assert derived.sector_key == given.sector_key, name


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("aes-xts_128.bin", dict(password=["password12?"])),
        ("recovery_password.bin", dict(recovery_password=["131450-120197-153989-250338-511368-495572-680944-381546"])),
        ("suspended.bin", dict(password=["password12!@"])),  # no password protector at all
    ],
)
def test_wrong_credentials_are_refused(name, kwargs, corpus_dir):
    with (corpus_dir / name).open("rb") as fh:
        vol = BitLockerVolume(fh, name=name)
        with pytest.raises(WrongKeyError):
            unlock(vol, collect(use_env=False, **kwargs))


def test_other_volumes_bek_is_refused(corpus_dir):
    with (corpus_dir / "recovery_key.bin").open("rb") as fh:
        vol = BitLockerVolume(fh)
        with pytest.raises(WrongKeyError, match="startup key"):
            unlock(vol, collect(bek=[str(corpus_dir / "startup_key.bek")], use_env=False))


def test_truncated_image_reports_missing_size(corpus_dir):
    """The corpus images are shorter than the volumes their metadata describe."""
    with (corpus_dir / "aes-xts_128.bin").open("rb") as fh:
        vol = BitLockerVolume(fh)
        assert vol.declared_size == 65994752
        assert vol.size == 51032064


def test_read_into_a_reused_buffer_equals_read_at(corpus_dir):
    """decrypt reuses its chunk buffers: whatever a buffer held before, the regions that read as
    zeros (metadata blocks, relocated header) must come out zero again."""
    with (corpus_dir / "aes-xts_128.bin").open("rb") as fh:
        vol = BitLockerVolume(fh)
        stream = DecryptedStream(vol, unlock(vol, collect(password=["password12!@"], use_env=False)))
        for start, length in vol.reserved_regions()[:2]:
            offset = max(0, start - 4096) // 512 * 512
            buf = bytearray(b"\xff" * (length + 8192))
            n = stream.read_into(offset, buf)
            assert n == min(len(buf), stream.size - offset)
            assert buf[:n] == stream.read_at(offset, n)
            assert not any(buf[start - offset : start - offset + min(length, n - (start - offset))])
        with pytest.raises(ValueError, match="multiple of the sector size"):
            stream.read_into(3, bytearray(512))
