#!/usr/bin/env python3
"""How long does `bitlocker-tools scan` take on a big drive image?

Builds a 100 GB *sparse* raw disk (a few MB on disk) with a GPT, a small FAT partition and one
BitLocker partition holding a corpus volume at 1 GiB, then times

* ``bitlocker-tools scan --json DISK`` as a whole process (interpreter start, imports, dissect),
  the median of N runs, and
* the same scan in-process (open_source + scan + report), the first call and the median of N,

prints the figures, and deletes the image. Needs sgdisk (Debian package gdisk) and the corpus
(scripts/fetch_corpus.py).

Usage:
    python scripts/bench_scan.py [--size-gb 100] [--runs 5] [--volume aes-xts_128.bin] [--dir DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GiB = 1 << 30


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _cli() -> list[str]:
    exe = shutil.which("bitlocker-tools")
    return [exe] if exe else [sys.executable, "-m", "bitlocker_tools"]


def _check(report: dict, offset: int) -> None:
    vols = [v for s in report["sources"] for v in s["volumes"] if v["bitlocker"]]
    assert len(vols) == 1 and vols[0]["offset"] == offset and "error" not in vols[0], report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=int, default=100, help="disk size in GB (10^9 bytes)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--volume", default="aes-xts_128.bin", help="corpus volume to put on the disk")
    parser.add_argument("--dir", default=None, help="where to create the sparse image (default: temp)")
    args = parser.parse_args()

    if not shutil.which("sgdisk"):
        raise SystemExit("sgdisk is needed (apt-get install gdisk)")
    corpus = Path(_load("fetch_corpus", ROOT / "scripts" / "fetch_corpus.py").ensure_corpus())
    diskbuild = _load("diskbuild", ROOT / "tests" / "diskbuild.py")
    volume = corpus / args.volume

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-scan-") as tmp:
        disk_path = Path(tmp) / "disk100g.raw"
        size = args.size_gb * 10**9 // 512 * 512
        t0 = time.perf_counter()
        disk = diskbuild.build_gpt(disk_path, [volume], start=GiB, size=size)
        build_s = time.perf_counter() - t0
        part = disk.part_for(volume)
        on_disk = disk_path.stat().st_blocks * 512
        print(f"image: {disk_path} {size / 1e9:.0f} GB apparent, {on_disk / 2**20:.1f} MiB on disk; "
              f"built in {build_s:.2f} s")
        print(f"BitLocker partition {part.number} at offset {part.offset} ({part.offset // GiB} GiB), "
              f"{part.size} bytes ({volume.name})")

        cmd = [*_cli(), "scan", "--json", str(disk_path)]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.strip()}")
            _check(json.loads(proc.stdout), part.offset)
        print(f"process  `{' '.join(Path(c).name for c in cmd[:-1])} DISK`: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}; {args.runs} runs)")

        sys.path.insert(0, str(ROOT))
        t0 = time.perf_counter()
        from bitlocker_tools.report import source_record
        from bitlocker_tools.scan import scan
        from bitlocker_tools.sources import open_source

        import_s = time.perf_counter() - t0
        inproc = []
        for _ in range(args.runs + 1):
            t0 = time.perf_counter()
            with open_source(disk_path) as src:
                report = {"sources": [source_record(scan(src))]}
            inproc.append(time.perf_counter() - t0)
            _check(report, part.offset)
        first, rest = inproc[0], inproc[1:]
        print(f"in-process scan: import {import_s * 1000:.1f} ms; first call {first * 1000:.1f} ms "
              f"(includes importing dissect.volume for the partition table); then median {statistics.median(rest) * 1000:.1f} ms "
              f"(min {min(rest) * 1000:.1f}, max {max(rest) * 1000:.1f}; {len(rest)} runs)")
    print("image deleted")


if __name__ == "__main__":
    main()
