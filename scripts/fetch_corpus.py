#!/usr/bin/env python3
"""Fetch the public corpus of real BitLocker volumes and cache it outside the repository.

The 14 volumes made by Windows (Vista to 11) that the tests and the README demo run on are the
test data of dissect.fve; they ship in its ``dissect.fve==4.6`` sdist on PyPI under
``tests/_data/bde``. They are AGPL-licensed data that the project must not carry itself, so this
script finds them in this order and never writes into the repository:

1. ``$BITLOCKER_TOOLS_CORPUS`` (a folder holding the ``.bin.gz``/``.bek`` files);
2. ``../shared/corpus`` beside the project checkout (the development machines have it);
3. the sdist, downloaded with ``pip download`` into the cache.

Every compressed file is checked against the SHA-256 pinned in ``tests/corpus_manifest.json``
before it is used, and each volume is decompressed once into the cache as a *sparse* file
(the images are mostly zeros; win7_partial is 2.9 GB uncompressed but a few MB on disk).

Usage:
    python scripts/fetch_corpus.py                 # fetch all, print the cache folder
    python scripts/fetch_corpus.py NAME [NAME...]  # print the path of each named file
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "corpus_manifest.json"
CHUNK = 1 << 20


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bitlocker-tools" / "corpus"


def load_manifest() -> dict:
    with MANIFEST.open() as fh:
        return json.load(fh)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _candidate_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("BITLOCKER_TOOLS_CORPUS"):
        dirs.append(Path(env))
    dirs.append(ROOT.parent / "shared" / "corpus")
    dirs.append(cache_dir() / "sdist")
    return dirs


def _download_sdist(manifest: dict, target: Path) -> None:
    """Download the sdist with pip (the one registry reachable everywhere) and unpack its data."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "-d", tmp, manifest["sdist"]],
            check=True,
        )
        archives = list(Path(tmp).glob("*.tar.gz"))
        if not archives:
            raise SystemExit(f"pip download of {manifest['sdist']} produced no sdist")
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if "/tests/_data/bde/" in member.name and name in manifest["files"]:
                    src = tar.extractfile(member)
                    assert src is not None
                    tmp_out = target / (name + ".part")
                    with tmp_out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    tmp_out.replace(target / name)


def find_compressed(manifest: dict) -> Path:
    """Return a folder whose files all match the pinned hashes, downloading if needed."""
    names = manifest["files"]
    for attempt in range(2):
        for folder in _candidate_dirs():
            if all((folder / n).is_file() for n in names) and all(
                _sha256(folder / n) == h for n, h in names.items()
            ):
                return folder
        if attempt == 0:
            _download_sdist(manifest, cache_dir() / "sdist")
    raise SystemExit("corpus files not found or their SHA-256 does not match the manifest")


def _sparse_gunzip(src: Path, dst: Path) -> None:
    """Decompress, seeking over all-zero blocks so the cached image stays sparse."""
    tmp = dst.with_name(dst.name + ".part")
    zero = bytes(CHUNK)
    with gzip.open(src, "rb") as fin, tmp.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            if chunk == zero[: len(chunk)]:
                fout.seek(len(chunk), os.SEEK_CUR)
            else:
                fout.write(chunk)
        fout.truncate()
    tmp.replace(dst)


def ensure_corpus() -> Path:
    """Make sure every volume is decompressed in the cache; return the cache folder."""
    manifest = load_manifest()
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "verified.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == manifest["files"]:
        return out
    folder = find_compressed(manifest)
    for name in manifest["files"]:
        if name.endswith(".gz"):
            _sparse_gunzip(folder / name, out / name[: -len(".gz")])
        else:
            shutil.copyfile(folder / name, out / name)
    stamp.write_text(json.dumps(manifest["files"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="file names, e.g. recovery_password.bin")
    args = parser.parse_args()
    folder = ensure_corpus()
    if not args.names:
        print(folder)
    for name in args.names:
        path = folder / name
        if not path.is_file():
            raise SystemExit(f"{name}: not in the corpus")
        print(path)


if __name__ == "__main__":
    main()
