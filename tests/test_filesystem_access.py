"""The decrypted stream is a real file object: dissect.ntfs mounts the NTFS inside a fixture
volume through it and reads files whose content the plain image fixes independently."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from bitlocker_tools.credentials import collect
from bitlocker_tools.protectors import unlock
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.volume import BitLockerVolume

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_dissect_ntfs_reads_files_through_the_stream():
    ntfs = pytest.importorskip("dissect.ntfs")
    entry = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    raw = gzip.decompress((FIXTURES / entry["file"]).read_bytes())
    plain = gzip.decompress((FIXTURES / entry["plain"]).read_bytes())
    vol = BitLockerVolume(io.BytesIO(raw))
    rp = next(p["recovery_password"] for p in entry["protectors"] if p["type"] == "recovery_password")
    stream = DecryptedStream(vol, unlock(vol, collect(recovery_password=[rp], use_env=False)))

    fs_enc = ntfs.NTFS(stream)
    fs_plain = ntfs.NTFS(io.BytesIO(plain))  # the unencrypted image the fixture was made from
    names = sorted(n for n in fs_enc.mft.get(".").listdir() if not n.startswith("$") and n != ".")
    assert names == sorted(n for n in fs_plain.mft.get(".").listdir() if not n.startswith("$") and n != ".")
    assert names, "the fixture's filesystem holds files"
    for name in names:
        assert fs_enc.mft.get(name).open().read() == fs_plain.mft.get(name).open().read()
