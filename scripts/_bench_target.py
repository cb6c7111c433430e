"""dissect.target figures for scripts/bench.py (issue #19): ``Target.open()`` and a filesystem walk
on a BitLocker volume, with dissect's own BitLocker class (dissect.fve) and with bitlocker-tools'
(``bitlocker_tools.dissect_target``), side by side, and the same NTFS with no BitLocker at all
(the floor: what dissect's NTFS and filesystem layers cost by themselves).

The volume is corpus recovery_password.bin (Windows' own metadata, AES-XTS-128) with an NTFS of
``count`` files sealed into it (tests/sealed_ntfs.py: mkntfs and ntfs-3g), opened with its
recovery password from dissect's keychain. Measured, each from a fresh ``Target.open``: the open
(key stretch, volume and filesystem detection); a walk of the whole filesystem reading the first
4 KiB of every file, as triage plugins do; the walk reading every file whole; 8 MiB of the
decrypted volume read straight (target-dd, target-mount, a scan of the volume). All three set-ups
must read the same bytes. Figures are CPU seconds of this process (steady on a busy machine;
every part runs in this one thread) with wall seconds beside them.

Run alone: ``python scripts/_bench_target.py [--files N]`` prints the figures without touching the docs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bitlocker_tools.credentials import collect  # noqa: E402

HEAD = 4096
MiB = 1 << 20
NTFS_SIZE = 32 * MiB  # below the volume's first metadata block
STREAM_BYTES = 8 * MiB


def _sealed_ntfs():
    spec = importlib.util.spec_from_file_location("sealed_ntfs", ROOT / "tests" / "sealed_ntfs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(cdir: Path, manifest: dict, folder: Path, count: int) -> tuple[Path, Path, str, str, str]:
    """(sealed volume, the plain NTFS image sealed into it, recovery password, its protector GUID,
    the layout of the files): recovery_password.bin with an NTFS of ``count`` files."""
    sealed = _sealed_ntfs()
    if not sealed.have_ntfs_tools():
        raise RuntimeError("mkntfs and ntfscp (ntfs-3g) are needed to build the benchmark volume")
    entry = next(v for v in manifest["volumes"] if v["file"] == "recovery_password.bin.gz")
    rp = entry["credentials"]["recovery_password"]
    guid = next(p["id"] for p in entry["protectors"] if p["type"] == "recovery_password")
    image = folder / "plain.img"
    try:  # folders of 40 files, as on a real volume (needs an ntfs-3g FUSE mount)
        plain = sealed.make_ntfs(image, NTFS_SIZE, sealed.sample_files(count, seed=19, max_size=12_000, per_dir=40))
        layout = "folders of 40 files"
    except RuntimeError as exc:  # no FUSE here: every file in the root
        print(f"({exc}; all files in the root instead)", file=sys.stderr)
        plain = sealed.make_ntfs(image, NTFS_SIZE, sealed.sample_files(count, seed=19, max_size=12_000))
        layout = "all files in the root"
    volume = folder / "sealed.bin"
    sealed.seal(cdir / "recovery_password.bin", collect(recovery_password=[rp], use_env=False), plain, volume)
    return volume, image, rp, guid, layout


def _clock() -> tuple[float, float]:
    """(wall, CPU seconds of this process): on a busy machine the CPU time is the steadier figure,
    and every part measured here runs in this one thread."""
    return time.perf_counter(), time.process_time()


def walk_once(path: Path, whole: bool = False) -> dict:
    """Open ``path`` as a target and read the first 4 KiB of every file (``whole``: every file
    in full): wall and CPU seconds of each part, and a digest of what was read."""
    from dissect.target import Target

    w0, c0 = _clock()
    target = Target.open(path)
    w1, c1 = _clock()
    digest, files, unreadable, nbytes = hashlib.sha256(), 0, 0, 0
    for root, _dirs, names in target.fs.walk("/"):
        for name in names:
            p = f"{root.rstrip('/')}/{name}"
            try:
                with target.fs.open(p) as fh:
                    data = fh.read() if whole else fh.read(HEAD)
            except (OSError, ValueError):  # dissect's FileNotFoundError etc. for streamless system files
                unreadable += 1
                continue
            files += 1
            nbytes += len(data)
            digest.update(p.encode() + b"\0" + hashlib.sha256(data).digest())
    w2, c2 = _clock()
    opened = [type(v.vs).__name__ for v in target.volumes if v.vs is not None and v.vs.__type__ == "bitlocker"]
    return {"open_s": w1 - w0, "open_cpu_s": c1 - c0, "walk_s": w2 - w1, "walk_cpu_s": c2 - c1, "files": files,
            "bytes": nbytes, "unreadable": unreadable, "sha256": digest.hexdigest(), "opened_by": opened}


def _open_once(path: Path) -> None:
    """Open ``path`` as a target, untimed: a warm-up of whichever volume system opens it."""
    from dissect.target import Target

    Target.open(path)


def stream_once(path: Path, length: int = STREAM_BYTES) -> dict:
    """Read the first ``length`` bytes of the volume dissect.target decrypted, 1 MiB at a time
    (what target-dd, target-mount and a scan of the whole volume do): seconds and a digest."""
    from dissect.target import Target

    target = Target.open(path)
    [vol] = [v for v in target.volumes if v.fs is not None]  # the NTFS: decrypted, or the plain image
    digest = hashlib.sha256()
    w0, c0 = _clock()
    vol.seek(0)
    for _ in range(length // MiB):
        digest.update(vol.read(MiB))
    w1, c1 = _clock()
    return {"stream_s": w1 - w0, "stream_cpu_s": c1 - c0, "sha256": digest.hexdigest()}


def _runs(path: Path) -> dict:
    heads = walk_once(path)
    full = walk_once(path, whole=True)
    raw = stream_once(path)
    return {"open_s": heads["open_s"], "open_cpu_s": heads["open_cpu_s"],
            "heads_s": heads["walk_s"], "heads_cpu_s": heads["walk_cpu_s"],
            "whole_s": full["walk_s"], "whole_cpu_s": full["walk_cpu_s"],
            "stream_s": raw["stream_s"], "stream_cpu_s": raw["stream_cpu_s"],
            "files": heads["files"], "bytes": full["bytes"], "opened_by": heads["opened_by"],
            "sha256": (heads["sha256"], full["sha256"], raw["sha256"])}


def walk(cdir: Path, manifest: dict, count: int = 2000) -> dict:
    """Open and walk the volume with dissect.fve, with ours, and (the floor: dissect's own NTFS
    and filesystem layers, no BitLocker at all) the plain NTFS image that was sealed into it."""
    from dissect.target.helpers import keychain

    from bitlocker_tools.dissect_target import installed

    with tempfile.TemporaryDirectory() as tmp:
        path, plain, rp, guid, layout = build(cdir, manifest, Path(tmp), count)
        before = keychain.KEYCHAIN[:]
        keychain.register_key(keychain.KeyType.RECOVERY_KEY, rp, identifier=guid, provider="bitlocker")
        try:
            with installed():
                walk_once(path)  # warm-up: dissect imports its plugins on the first open
                ours = _runs(path)
            # warm-up of dissect's own path: its first open imports dissect.fve and the BDE
            # volume system, which must not be counted against it (a walk is not needed for that)
            _open_once(path)
            fve = _runs(path)
            floor = _runs(plain)
        finally:
            keychain.KEYCHAIN[:] = before
    if not (fve["sha256"] == ours["sha256"] == floor["sha256"]) or fve["files"] != ours["files"]:
        raise AssertionError(f"the walks read different data: {fve} / {ours} / {floor}")
    if ours["opened_by"] != ["BitLockerToolsVolumeSystem"] or fve["opened_by"] != ["BitlockerVolumeSystem"]:
        raise AssertionError(f"unexpected volume systems: ours {ours['opened_by']}, dissect {fve['opened_by']}")
    out = {"files": ours["files"], "bytes": ours["bytes"], "layout": layout, "dissect_fve": fve, "ours": ours,
           "plain": floor}
    for part in ("open", "heads", "whole", "stream"):
        out[f"ratio_{part}"] = fve[f"{part}_s"] / ours[f"{part}_s"]
        out[f"ratio_{part}_cpu"] = fve[f"{part}_cpu_s"] / ours[f"{part}_cpu_s"]
    return out


#: scripts/bench.py's table: ``rep.table(TITLE, HEADER, rows(walk(cdir, man)))``
TITLE = "dissect.target: Target.open and a filesystem walk (issue #19)"
HEADER = ["what (CPU seconds)", "dissect.fve", "bitlocker-tools", "speed-up", "same NTFS, no BitLocker"]
PARTS = [("open", "Target.open (key stretch, detection)"), ("heads", f"walk, first {HEAD // 1024} KiB of every file"),
         ("whole", "walk, every file read whole"), ("stream", f"{STREAM_BYTES // MiB} MiB of the decrypted volume, 1 MiB reads")]


def rows(result: dict) -> list[list[str]]:
    """The figures of :func:`walk` as table rows."""
    fve, ours, floor = result["dissect_fve"], result["ours"], result["plain"]
    out = []
    for part, label in PARTS:
        cpu = f"{part}_cpu_s"
        out.append([label, f"{fve[cpu]:.2f} s", f"{ours[cpu]:.3f} s" if ours[cpu] < 0.1 else f"{ours[cpu]:.2f} s",
                    f"{fve[cpu] / ours[cpu]:.1f}×", f"{floor[cpu]:.2f} s"])
    return out


def _print(result: dict) -> None:
    print(f"{TITLE}: {result['files']} files ({result['layout']}, {result['bytes'] / 1e6:.1f} MB) on a sealed "
          "corpus volume (AES-XTS-128)")
    table = [HEADER, *rows(result)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, str(ROOT / "scripts"))
    import fetch_corpus  # type: ignore[import-not-found]

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000, help="files in the NTFS (default 2000)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    cdir = Path(fetch_corpus.ensure_corpus())
    man = json.loads((ROOT / "tests" / "corpus_manifest.json").read_text())
    res = walk(cdir, man, args.files)
    print(json.dumps(res, indent=1) if args.json else "", end="")
    _print(res)
