"""A scan reads only what it needs: the partition table, one boot sector per partition and the
metadata blocks. Checked on a 100 GB sparse disk by counting the bytes the process reads (Linux
/proc/self/io), not by timing (scripts/bench_scan.py times it for docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

import diskbuild
import pytest

from bitlocker_tools.report import source_record
from bitlocker_tools.scan import scan
from bitlocker_tools.sources import open_source

GiB = 1 << 30
PROC_IO = Path("/proc/self/io")


def _bytes_read() -> int:
    fields = dict(line.split(": ") for line in PROC_IO.read_text().splitlines())
    return int(fields["rchar"])  # every byte read() returned to this process


@pytest.mark.skipif(not PROC_IO.exists(), reason="needs Linux /proc/self/io")
def test_scan_of_a_100_gb_disk_reads_under_a_megabyte(tmp_path, corpus_dir):
    if not diskbuild.have("sgdisk"):
        pytest.skip("sgdisk is not installed")
    volume = corpus_dir / "aes-xts_128.bin"
    size = 100 * 10**9 // 512 * 512
    disk = diskbuild.build_gpt(tmp_path / "disk100g.raw", [volume], start=GiB, size=size)
    part = disk.part_for(volume)

    def run() -> dict:
        with open_source(disk.path) as src:
            return source_record(scan(src))

    small = diskbuild.build_gpt(tmp_path / "small.raw", [volume])  # warm-up: imports, caches
    with open_source(small.path) as src:
        scan(src)
    before = _bytes_read()
    report = run()
    read = _bytes_read() - before

    found = [v for v in report["volumes"] if v["bitlocker"]]
    assert len(found) == 1 and found[0]["offset"] == part.offset and "error" not in found[0]
    assert found[0]["encryption_method"] == "AES-XTS-128"
    # GPT (a few KiB), two boot sectors, three 64 KiB metadata blocks: well under 1 MiB of 100 GB.
    assert read < 1 << 20, f"scan read {read} bytes"
