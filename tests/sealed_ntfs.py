"""An NTFS filesystem inside a real BitLocker volume, for the dissect.target tests and benchmark.

The corpus volumes are real Windows volumes, but their published images keep only the metadata
and the first sectors (everything else was zeroed to make them small), so no filesystem can be
read from them. Here ``mkntfs`` and ``ntfscp`` (ntfs-3g) make an NTFS image, and it is sealed
into a copy of a corpus volume: every sector of the image is written where that volume keeps
it (the first sectors at the relocated volume header, ciphertext under the volume's own FVEK).
The metadata stays Windows' own; what reads the result back (dissect.fve, our core) must agree
with the files put in, which are known here independently of either reader.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

MiB = 1 << 20


def have_ntfs_tools() -> bool:
    return shutil.which("mkntfs") is not None and shutil.which("ntfscp") is not None


def sample_files(count: int = 12, seed: int = 19, max_size: int = 300_000, per_dir: int = 0) -> dict[str, bytes]:
    """``count`` files of mixed sizes (empty, resident in the MFT record, a few clusters, many),
    random content from ``seed``: the names a walk must find and the bytes it must read.

    ``per_dir``: that many files to a folder, five folders to a parent (``d00/s0/file-00000.bin``),
    the shape of a real volume (needs :func:`make_ntfs` to mount the image); 0: all in the root.
    """
    rng = random.Random(seed)
    fixed = [0, 1, 600, 4096, 4097, 65536, max_size]
    files = {}
    for i in range(count):
        size = fixed[i] if i < len(fixed) else rng.randrange(1, max_size)
        name = "notes café.txt" if i == 1 else f"file-{i:05d}.bin"
        if per_dir:
            name = f"d{i // (per_dir * 5):02d}/s{(i // per_dir) % 5}/{name}"
        files[name] = rng.randbytes(size)
    return files


def make_ntfs(image: Path, size: int, files: dict[str, bytes]) -> bytes:
    """An NTFS image of ``size`` bytes holding ``files``; returns its bytes.

    Files in the root are copied in with ``ntfscp``; folders need the image mounted with ntfs-3g
    (FUSE), since no ntfs-3g tool makes a folder in an unmounted image.
    """
    image.unlink(missing_ok=True)
    with image.open("wb") as fh:
        fh.truncate(size)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-L", "SEALED", "-c", "4096", "-s", "512", str(image),
                    str(size // 512)], check=True, capture_output=True)
    if any("/" in name for name in files):
        _copy_mounted(image, files)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "content"
            for name, content in files.items():
                src.write_bytes(content)
                subprocess.run(["ntfscp", "-q", str(image), str(src), name], check=True, capture_output=True)
    return image.read_bytes()


def _copy_mounted(image: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into the NTFS ``image`` through an ntfs-3g mount (kept in the foreground,
    so that its exit after the unmount says every write reached the image)."""
    with tempfile.TemporaryDirectory() as tmp:
        mnt = Path(tmp)
        proc = subprocess.Popen(["ntfs-3g", "-o", "no_detach", str(image), str(mnt)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(200):
                if os.path.ismount(mnt) or proc.poll() is not None:
                    break
                time.sleep(0.05)
            if not os.path.ismount(mnt):
                if proc.poll() is None:
                    proc.terminate()
                    raise RuntimeError(f"ntfs-3g could not mount {image}: timed out")
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"ntfs-3g could not mount {image}: {err.strip()}")
            for name, content in files.items():
                path = mnt / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        finally:
            if os.path.ismount(mnt):
                unmount = ["fusermount3", "-u"] if shutil.which("fusermount3") else ["umount"]
                subprocess.run([*unmount, str(mnt)], check=False)
            proc.wait(timeout=60)


def seal(volume: Path, credentials, plain: bytes, dst: Path) -> None:
    """Write a copy of ``volume`` to ``dst`` whose plaintext begins with ``plain``.

    ``credentials`` (a :class:`bitlocker_tools.Credentials`) unlock ``volume``. The region map of
    the volume says where each plaintext sector is stored and whether as ciphertext; a nonzero
    byte of ``plain`` where the volume presents zeros (its metadata blocks) is refused, since no
    reader could return it.
    """
    from bitlocker_tools._core import load
    from bitlocker_tools.protectors import unlock
    from bitlocker_tools.stream import ENCRYPTED, PLAIN, ZERO, DecryptedStream
    from bitlocker_tools.volume import BitLockerVolume

    _copy_sparse(volume, dst)
    core = load()
    with dst.open("r+b") as fh:
        vol = BitLockerVolume(fh, name=dst.name)
        keys = unlock(vol, credentials)
        stream = DecryptedStream(vol, keys)
        ss = vol.sector_size
        length = -(-len(plain) // ss) * ss
        if length > vol.size:
            raise ValueError(f"{len(plain)} bytes do not fit in {vol.size}-byte {volume.name}")
        data = plain.ljust(length, b"\0")
        for seg in stream.segments(0, length):
            chunk = data[seg.offset : seg.offset + seg.length]
            if seg.kind == ZERO:
                if any(chunk):
                    raise ValueError(f"the image has data at {seg.offset:#x}, where {volume.name} keeps metadata")
                continue
            if seg.kind == ENCRYPTED:
                chunk = bytes(core.crypt_sectors(int(keys.method), keys.sector_key, chunk, seg.physical, ss, False))
            elif seg.kind != PLAIN:
                raise ValueError(f"{volume.name}: {seg.kind} sectors are not supported here")
            fh.seek(seg.physical)
            fh.write(chunk)


def _copy_sparse(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` writing only its nonzero 1 MiB blocks (the corpus volumes are
    mostly zeros)."""
    zero = bytes(MiB)
    with src.open("rb") as fin, dst.open("wb") as fout:
        fout.truncate(src.stat().st_size)
        pos = 0
        while chunk := fin.read(MiB):
            if chunk != zero[: len(chunk)]:
                fout.seek(pos)
                fout.write(chunk)
            pos += len(chunk)


def sealed_volume(corpus_volume: Path, credentials, dst: Path, files: dict[str, bytes],
                  ntfs_size: int = 32 * MiB) -> Path:
    """``dst``: ``corpus_volume`` with an NTFS of ``ntfs_size`` bytes holding ``files`` inside."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = make_ntfs(Path(tmp) / "ntfs.img", ntfs_size, files)
    seal(corpus_volume, credentials, plain, dst)
    return dst
