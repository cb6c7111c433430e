"""Build small disk images around corpus volumes, for the container and bench tests.

Everything here writes sparse files: the corpus volumes are mostly zeros, so only the nonzero
1 MiB blocks of a volume are copied into the disk. The partition tables are written by the real
Debian tools (sgdisk, sfdisk) and the containers by qemu-img and ewfacquire, so the reader is
tested against images it did not make itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
SECTOR = 512
FIRST_PART_SIZE = 8 * MiB  # the non-BitLocker partition (FAT when mkfs.fat is there, else zeros)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def copy_sparse(src: Path, dst, offset: int) -> None:
    """Copy ``src`` into the open file ``dst`` at ``offset``, writing only nonzero 1 MiB blocks."""
    zero = bytes(MiB)
    with open(src, "rb") as fin:
        pos = 0
        while chunk := fin.read(MiB):
            if chunk != zero[: len(chunk)]:
                dst.seek(offset + pos)
                dst.write(chunk)
            pos += len(chunk)


def _align(n: int, to: int = MiB) -> int:
    return -(-n // to) * to


@dataclass
class Part:
    number: int
    offset: int
    size: int
    volume: Path | None  # the corpus volume inside, None for the non-BitLocker partition


@dataclass
class Disk:
    path: Path
    scheme: str  # "gpt" or "mbr"
    parts: list[Part] = field(default_factory=list)

    def part_for(self, volume: Path) -> Part:
        return next(p for p in self.parts if p.volume == volume)


def _layout(volumes: list[Path], start: int = 16 * MiB) -> tuple[list[Part], int]:
    parts = [Part(1, MiB, FIRST_PART_SIZE, None)]
    offset = start
    for i, vol in enumerate(volumes, start=2):
        size = vol.stat().st_size
        assert size % SECTOR == 0, vol
        parts.append(Part(i, offset, size, vol))
        offset = _align(offset + size + MiB)
    return parts, offset + MiB  # room for the backup GPT


def _fill(disk: Disk, workdir: Path) -> None:
    first = disk.parts[0]
    fat = None
    if have("mkfs.fat"):
        fat = workdir / f"{disk.path.name}.fat"
        fat.unlink(missing_ok=True)
        subprocess.run(["mkfs.fat", "-C", "-n", "NOTBDE", str(fat), str(first.size // 1024)],
                       check=True, capture_output=True)
    with open(disk.path, "r+b") as fh:
        if fat is not None:
            copy_sparse(fat, fh, first.offset)
        for p in disk.parts:
            if p.volume is not None:
                copy_sparse(p.volume, fh, p.offset)
    if fat is not None:
        fat.unlink()


def build_gpt(path: Path, volumes: list[Path], *, start: int = 16 * MiB, size: int | None = None) -> Disk:
    """A GPT disk: partition 1 a small FAT (not BitLocker), then one partition per volume,
    each at a 1 MiB-aligned offset and exactly the volume's size."""
    parts, end = _layout(volumes, start)
    with open(path, "wb") as fh:
        fh.truncate(size or end)
    cmd = ["sgdisk", "-o"]
    for p in parts:
        first = p.offset // SECTOR
        last = first + p.size // SECTOR - 1
        cmd += ["-n", f"{p.number}:{first}:{last}", "-t", f"{p.number}:0700"]
    subprocess.run([*cmd, str(path)], check=True, capture_output=True)
    disk = Disk(path, "gpt", parts)
    _fill(disk, path.parent)
    return disk


def build_mbr(path: Path, volumes: list[Path]) -> Disk:
    """The same layout with an MBR partition table written by sfdisk."""
    parts, end = _layout(volumes)
    with open(path, "wb") as fh:
        fh.truncate(end)
    script = "label: dos\nunit: sectors\n" + "".join(
        f"start={p.offset // SECTOR}, size={p.size // SECTOR}, type={'c' if p.volume is None else '7'}\n"
        for p in parts
    )
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", str(path)], input=script.encode(),
                   check=True, capture_output=True)
    disk = Disk(path, "mbr", parts)
    _fill(disk, path.parent)
    return disk


def qemu_convert(src: Path, dst: Path, fmt: str) -> Path:
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(src), str(dst)],
                   check=True, capture_output=True)
    return dst


def ewf_acquire(src: Path, target: Path) -> Path:
    """E01 via ewfacquire, non-interactive; ``target`` is the path without the .E01 extension."""
    subprocess.run(
        ["ewfacquire", "-u", "-q", "-t", str(target), "-f", "encase6", "-c", "deflate:fast",
         "-S", str(1024 * MiB), "-C", "case", "-D", "test disk", "-e", "tests", "-E", "1", "-N", "none",
         "-m", "fixed", "-M", "physical", str(src)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    out = target.with_name(target.name + ".E01")
    assert out.is_file(), f"ewfacquire wrote no {out}"
    return out


def split_raw(src: Path, stem: Path, part_size: int = 32 * MiB) -> list[Path]:
    """Split raw as forensic tools write it: stem.001, stem.002, ... (coreutils split)."""
    subprocess.run(["split", "-b", str(part_size), "-d", "-a", "3", "--numeric-suffixes=1",
                    str(src), str(stem) + "."], check=True, capture_output=True)
    parts = sorted(stem.parent.glob(stem.name + ".[0-9][0-9][0-9]"))
    assert len(parts) > 1, parts
    return parts


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_gpt(path: Path, size: int, parts: list[tuple[int, int]], sector: int = 4096) -> None:
    """A minimal GPT written here, for sector sizes the Debian tools cannot make on a file (a 4Kn
    disk): protective MBR, header at LBA 1, 128 entries, backup at the end. ``parts`` are
    (byte offset, byte size), sector aligned; every partition gets the Basic Data type."""
    import struct
    import uuid
    import zlib

    lbas = size // sector
    basic_data = uuid.UUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7").bytes_le
    entries = bytearray(128 * 128)
    for i, (off, length) in enumerate(parts):
        struct.pack_into("<16s16sQQQ", entries, 128 * i, basic_data, uuid.uuid4().bytes_le,
                         off // sector, (off + length) // sector - 1, 0)
    entry_lbas = len(entries) // sector or 1

    def header(current: int, backup: int, entries_lba: int) -> bytes:
        h = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, current, backup,
                                  2 + entry_lbas, lbas - 2 - entry_lbas, uuid.uuid4().bytes_le,
                                  entries_lba, 128, 128, zlib.crc32(entries)))
        struct.pack_into("<I", h, 16, zlib.crc32(h))
        return bytes(h).ljust(sector, b"\0")

    mbr = bytearray(512)
    struct.pack_into("<B3sB3sII", mbr, 446, 0, b"\0\x02\0", 0xEE, b"\xff\xff\xff", 1, min(lbas - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    with open(path, "r+b") as fh:
        fh.write(mbr)
        fh.seek(sector)
        fh.write(header(1, lbas - 1, 2))
        fh.write(entries)
        fh.seek((lbas - 1 - entry_lbas) * sector)
        fh.write(entries)
        fh.write(header(lbas - 1, 1, lbas - 1 - entry_lbas))
