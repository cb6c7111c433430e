#!/usr/bin/env python3
"""Make the exFAT sample of tests/test_files.py: tests/filesystem_samples/exfat.img.gz and the
record of what it holds, exfat.json.

    sudo python scripts/make_exfat_sample.py     # needs mkfs.exfat (exfatprogs), mount.exfat-fuse
                                                 # (exfat-fuse), losetup and /dev/fuse; root

The filesystem is made by exfatprogs and filled through the exfat-fuse driver (a loop device
under it: exfat-fuse mounts block devices only), and the record is what that driver reports back
once the files are written: each path's type, size, SHA-256 and modification time. So the test
compares our reading (dissect.fat through bitlocker_tools.files) with a writer and reader that
share no code with it. The sample is committed, not made at test time, because a loop device and
a FUSE mount are more than a test run can count on; the files' times are fixed, so only the
volume serial and the directory layout differ between two runs of this script.

The image is the filesystem followed by a free tail, so that the forge can put the BitLocker
metadata there (see bitlocker_tools.forge).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "filesystem_samples"
KiB, MiB = 1024, 1 << 20
FS_SIZE = 4 * MiB
TAIL = 3 * 0x10000 + 0x2000  # three metadata block areas and the relocated boot area (as the fixtures)
WHEN = datetime(2024, 3, 4, 5, 6, 8, tzinfo=timezone.utc).timestamp()


def _content(seed: str, n: int) -> bytes:
    """``n`` bytes that differ at every line (a misplaced cluster shows) yet compress well."""
    lines = b"".join(f"{seed} line {i:08d}\n".encode() for i in range(n // 10 + 1))
    return lines[:n]


def _fill(mnt: Path) -> None:
    (mnt / "Docs" / "Sub Dir").mkdir(parents=True)
    (mnt / "Docs" / "Report.txt").write_bytes(b"exFAT inside BitLocker\r\n")
    (mnt / "empty.dat").write_bytes(b"")
    (mnt / "Ünïcödé name that is longer than fifteen.txt").write_bytes(_content("long", 5000))
    # two files grown in turns: their clusters interleave, so each needs its FAT chain
    a, b = mnt / "Docs" / "Sub Dir" / "frag_a.bin", mnt / "frag_b.bin"
    for i in range(6):
        with a.open("ab") as fa:
            fa.write(_content(f"a{i}", 10 * KiB))
        with b.open("ab") as fb:
            fb.write(_content(f"b{i}", 10 * KiB))
    (mnt / "big_contiguous.bin").write_bytes(_content("big", 200 * KiB + 123))
    for p in sorted(mnt.rglob("*"), reverse=True):
        os.utime(p, (WHEN, WHEN))


def _record(mnt: Path) -> dict:
    entries = {}
    for p in sorted(mnt.rglob("*")):
        st = p.stat()
        rel = "/" + p.relative_to(mnt).as_posix()
        is_dir = p.is_dir()
        entries[rel] = {
            "type": "directory" if is_dir else "file",
            "size": None if is_dir else st.st_size,
            "sha256": None if is_dir else hashlib.sha256(p.read_bytes()).hexdigest(),
            "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat().replace("+00:00", "Z"),
        }
    return entries


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        img, mnt = Path(tmp) / "exfat.img", Path(tmp) / "mnt"
        mnt.mkdir()
        with img.open("wb") as fh:
            fh.truncate(FS_SIZE)
        subprocess.run(["mkfs.exfat", "-L", "BTEXFAT", str(img)], check=True, capture_output=True)
        loop = subprocess.run(["losetup", "-f", "--show", str(img)], check=True, capture_output=True,
                              text=True).stdout.strip()
        try:
            subprocess.run(["mount.exfat-fuse", loop, str(mnt)], check=True, capture_output=True)
            try:
                _fill(mnt)
                os.sync()
                subprocess.run(["umount", str(mnt)], check=True)
                subprocess.run(["mount.exfat-fuse", "-o", "ro", loop, str(mnt)], check=True, capture_output=True)
                record = _record(mnt)  # what the driver reads back from a fresh mount
            finally:
                subprocess.run(["umount", str(mnt)], capture_output=True)
        finally:
            subprocess.run(["losetup", "-d", loop], check=True)
        subprocess.run(["fsck.exfat", "-n", str(img)], check=True, capture_output=True)
        with img.open("r+b") as fh:
            fh.truncate(FS_SIZE + TAIL)
        (OUT / "exfat.img.gz").write_bytes(gzip.compress(img.read_bytes(), mtime=0))
    doc = {"about": "made by scripts/make_exfat_sample.py: mkfs.exfat, files written and read back "
                    "through exfat-fuse; the times are exfat-fuse's view of them, in UTC",
           "fs_size": FS_SIZE, "size": FS_SIZE + TAIL, "label": "BTEXFAT", "entries": record}
    (OUT / "exfat.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT / 'exfat.img.gz'} and exfat.json: {len(record)} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
