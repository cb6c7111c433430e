"""Evidence access below the CLI: the aligned raw-device reader and source detection."""

from __future__ import annotations

import os

from bitlocker_tools.devices import AlignedReader, DeviceGeometry, PosixBackend
from bitlocker_tools.scan import scan, select
from bitlocker_tools.sources import _open_device


def test_aligned_reader_serves_unaligned_reads(tmp_path):
    data = os.urandom(3 * 4096 + 100)
    path = tmp_path / "dev.bin"
    path.write_bytes(data)
    backend = PosixBackend()
    reader = AlignedReader(backend, backend.open(str(path)), DeviceGeometry(len(data)))
    try:
        for offset, length in [(0, 10), (5, 4096), (4090, 20), (8191, 4200), (len(data) - 7, 50)]:
            reader.seek(offset)
            buf = bytearray(length)
            n = reader.readinto(buf)
            assert bytes(buf[:n]) == data[offset : offset + length]
        reader.seek(0, 2)
        assert reader.tell() == len(data)
    finally:
        reader.close()


def test_device_path_scans_like_an_image(corpus_dir):
    """A raw device is opened through the aligned reader; the scan must not depend on that."""
    src = _open_device(str(corpus_dir / "recovery_password.bin"))
    with src:
        assert src.kind == "device"
        report = scan(src)
        assert [v.bitlocker for v in report.volumes] == [True]
        vol = select(src)
        assert vol.metadata.volume_guid == "8e6909f1-6ba3-49ea-bf8d-ec83fab656cd"
        assert {p.key_id for p in vol.metadata.protectors} == {"3C116B76", "6DD54BCD"}
