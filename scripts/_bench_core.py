#!/usr/bin/env python3
"""Timing of the optimised core: native (C extension) against the pure-Python twin.

Prints, on one core:
  * ms per key for one stretch (0x100000 rounds) on each single-candidate path;
  * keys/s for batched stretch_many on each forced path, and for each kernel alone;
  * MB/s of crypt_sectors_into for every method, 512- and 4096-byte sectors, both directions.

Usage: python scripts/_bench_core.py [--quick] [--mib N] [--batch N]
Build the extension first: python setup.py build_ext --inplace
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitlocker_tools._core import _pure  # noqa: E402

try:
    from bitlocker_tools._core import _native
except ImportError:  # pragma: no cover
    _native = None

ROUNDS = 0x100000
METHODS = [(0x8004, 32, "XTS-128"), (0x8005, 64, "XTS-256"), (0x8002, 16, "CBC-128"),
           (0x8003, 32, "CBC-256"), (0x8000, 32, "CBC-128+diffuser"), (0x8001, 64, "CBC-256+diffuser")]


def timed(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_stretch(args) -> None:
    salt = os.urandom(16)
    initial = os.urandom(32)
    rounds = ROUNDS // 8 if args.quick else ROUNDS
    scale = ROUNDS / rounds
    print(f"== stretch, one key ({ROUNDS:#x} rounds{'; scaled from ' + hex(rounds) if scale != 1 else ''})")
    t = timed(lambda: _pure.stretch(initial, salt, rounds // 4), 1) * 4 * scale
    print(f"  pure-python (hashlib)        {t * 1e3:8.1f} ms/key")
    if _native is None:
        print("  native: not built")
        return
    feats = _native._features()
    for path in ["auto", "shani", "avx512", "avx2", "scalar"]:
        if path not in feats["sha_paths"]:
            continue
        r = rounds // 4 if path == "scalar" else rounds
        t = timed(lambda: _native.stretch(initial, salt, r, _sha=path), 1 if args.quick else 3) * ROUNDS / r
        print(f"  native stretch, path {path:7s} {t * 1e3:8.1f} ms/key")

    print(f"== stretch_many, batch of {args.batch} keys, one thread")
    initials = [os.urandom(32) for _ in range(args.batch)]
    for path in ["auto", "shani", "avx512", "avx2", "scalar"]:
        if path not in feats["sha_paths"]:
            continue
        r = rounds // 8 if path == "scalar" else rounds // 2
        t = timed(lambda: _native.stretch_many(initials, salt, r, _sha=path), 1) * ROUNDS / r
        print(f"  path {path:7s}: {args.batch / t:7.1f} keys/s/core  ({t / args.batch * 1e3:6.1f} ms/key)")
    print("== single kernels (one call each, full lanes)")
    for name, info in _native._features()["kernels"].items():
        lanes = info["lanes"]
        batch = [os.urandom(32) for _ in range(lanes)]
        r = rounds // 16 if name == "scalar" else rounds // 4
        t = timed(lambda: _native._stretch_kernel(name, batch, salt, r), 1) * ROUNDS / r
        print(f"  {name:11s} lanes {lanes:2d}: {lanes / t:7.1f} keys/s/core  ({t / lanes * 1e3:6.1f} ms/key)")


def bench_crypt(args) -> None:
    print(f"== crypt_sectors_into, MB/s (1e6 B/s): native on a {args.mib} MiB buffer and on a "
          f"1 MiB buffer (in cache, comparable to `openssl speed`), pure on {args.pure_mib} MiB")
    print(f"  {'method':18s} {'sector':>6s} {'dec':>7s} {'enc':>7s} {'dec 1M':>7s} {'enc 1M':>7s}"
          f" {'pure dec':>8s} {'pure enc':>8s}")
    data = os.urandom(args.mib << 20)
    out = bytearray(len(data))
    small = data[: 1 << 20]
    out_small = bytearray(len(small))
    pdata = data[: args.pure_mib << 20]
    reps = 3 if args.quick else 5
    for method, klen, label in METHODS:
        key = os.urandom(klen)
        for ss in (512, 4096):
            row = []
            if _native is not None:
                for dec in (True, False):
                    t = timed(lambda: _native.crypt_sectors_into(method, key, data, 0, ss, dec, out), reps)
                    row.append(f"{len(data) / t / 1e6:7.0f}")

                for dec in (True, False):
                    def many():
                        for _ in range(32):
                            _native.crypt_sectors_into(method, key, small, 0, ss, dec, out_small)
                    t = timed(many, reps) / 32
                    row.append(f"{len(small) / t / 1e6:7.0f}")
            else:
                row += [f"{'-':>7s}"] * 4
            for dec in (True, False):
                t = timed(lambda: _pure.crypt_sectors(method, key, pdata, 0, ss, dec), 1)
                row.append(f"{len(pdata) / t / 1e6:8.0f}")
            print(f"  {label:18s} {ss:6d} " + " ".join(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    ap.add_argument("--mib", type=int, default=64, help="native buffer size in MiB")
    ap.add_argument("--pure-mib", type=int, default=8, help="pure-Python buffer size in MiB")
    ap.add_argument("--batch", type=int, default=48, help="stretch_many batch size")
    args = ap.parse_args()
    if _native is not None:
        f = _native._features()
        flags = ", ".join(k for k in ("sha_ni", "aesni", "avx2", "avx512", "vaes") if f[k])
        print(f"native core: {flags or 'portable only'}")
        _native._calibrate()
    else:
        print("native core: not built (python setup.py build_ext --inplace)")
    bench_stretch(args)
    bench_crypt(args)


if __name__ == "__main__":
    main()
