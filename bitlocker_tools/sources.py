"""Evidence, opened read-only: image files, containers, physical drives, and their partitions.

A *source* is whatever the examiner names on the command line. It yields *partitions*: byte
ranges that may hold a BitLocker volume. Every partition is examined, because BitLocker is
recognised by its boot sector and not by a partition type.

dissect.target does the containers (E01, VMDK, VHD/VHDX, QCOW2, split raw) and volume systems
(MBR, GPT); it costs about 0.3 s to import, so a plain volume image, the common case for
``verify``, is recognised and opened without it.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .boot_sector import parse_boot_sector
from .devices import PositionedReader, no_media, open_device
from .errors import BadInputError, SourceNotFoundError
from .format.boot_sector import BOOT_SECTOR_SIZE, BOOT_SIGNATURE_OFFSET, BootSectorStart
from .format.constants import BOOT_SIGNATURE, SIGNATURE, TOGO_OEM
from .unreadable import UnreadableRange, error_text, is_read_error, read_salvaging

_DEVICE_PATH = re.compile(r"^\\\\[.?]\\", re.IGNORECASE)  # \\.\PhysicalDrive0, \\.\C:, \\?\Volume{..}


def read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    """Read up to ``length`` bytes at ``offset``; shorter only at the end of the evidence.

    Every read of evidence is positional (seek, then read until done), so several volumes and
    threads can share one handle, provided they do not interleave a seek and its read.

    A read that fails with an I/O error is tried once more on the unbuffered file beneath: a
    buffered reader reads a whole buffer ahead, so a bad sector near the bytes asked for would
    otherwise fail a read of good ones. If the bytes asked for themselves cannot be read, the
    error is raised (:func:`read_at_salvaging` reads around it instead).
    """
    try:
        return _read_at(fh, offset, length)
    except OSError as exc:
        if not is_read_error(exc) or not isinstance(fh, io.BufferedReader) or not length:
            raise
        error = exc
    try:  # once more, on the unbuffered file: only the bytes asked for
        return _read_at(fh.raw, offset, length)
    except OSError as exc:
        if not is_read_error(exc):
            raise
        raise error from None
    finally:
        fh.seek(0, io.SEEK_END)  # the buffer is stale after a read beneath it: a seek drops it


def _read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    out = bytearray()
    while len(out) < length:
        chunk = fh.read(length - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_into_at(fh: BinaryIO, offset: int, target: memoryview) -> int:
    """Fill ``target`` from ``offset``; return how many bytes the evidence holds there (fewer only
    at its end). Raises OSError where the evidence cannot be read."""
    fh.seek(offset)
    readinto = getattr(fh, "readinto", None)
    got = 0
    while got < len(target):
        if readinto is not None:
            n = readinto(target[got:])
        else:
            chunk = fh.read(len(target) - got)
            n = len(chunk)
            target[got : got + n] = chunk
        if not n:
            break
        got += n
    return got


def salvage_into(fh: BinaryIO, offset: int, target: memoryview, sector: int,
                 volume_start: int = 0) -> tuple[int, list[UnreadableRange]]:
    """Fill ``target`` from ``offset`` reading around the sectors that cannot be read (zeros), by
    the policy of :func:`.unreadable.read_salvaging`; return (bytes held, unreadable ranges).

    The pieces are read from the unbuffered file under a buffered one: a buffered reader fills
    its whole buffer (8 KiB to 1 MiB) for a one-sector read, which would fail on any bad sector
    near a good one. The buffer is dropped afterwards (a seek from the end resynchronises it)."""
    raw = fh.raw if isinstance(fh, io.BufferedReader) else fh
    try:
        return read_salvaging(lambda at, view: read_into_at(raw, at, view), offset, target, sector, volume_start)
    finally:
        if raw is not fh:
            fh.seek(0, io.SEEK_END)


def read_at_salvaging(fh: BinaryIO, offset: int, length: int, sector: int,
                      volume_start: int = 0) -> tuple[bytes, list[UnreadableRange]]:
    """:func:`read_at` that reads around unreadable sectors (zeros) instead of failing, and says
    which (volume offsets, from ``volume_start``)."""
    try:
        return _read_at(fh, offset, length), []
    except OSError as exc:
        if not is_read_error(exc):
            raise
    buf = bytearray(length)
    got, bad = salvage_into(fh, offset, memoryview(buf), sector, volume_start)
    return bytes(buf[:got]), bad


def read_error(name: str, what: str, offset: int, exc: OSError) -> BadInputError:
    """The one line for a structure that cannot be read at all (the boot sector, the partition
    table): what, where, and the error."""
    return BadInputError(f"{name}: cannot read {what} at offset {offset}: {error_text(exc)}")


@dataclass
class Partition:
    """A byte range of the evidence; ``number`` is the partition number (None: the whole source)."""

    number: int | None
    offset: int
    size: int
    type: str | None = None


def _is_device(path: str) -> bool:
    if _DEVICE_PATH.match(path):
        return True
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


class GuardedReader(PositionedReader):
    """A container's file object whose failures name the evidence.

    dissect's container readers fail on a truncated or damaged image with whatever their parser
    hits (EOFError, struct errors, ValueError ...), deep inside a read. This turns every such
    failure into one :class:`BadInputError` naming the image and the offset, so a scan of many
    sources reports the bad one and goes on.
    """

    def __init__(self, inner: BinaryIO, name: str, kind: str, size: int):
        super().__init__(size)
        self._inner = inner
        self._name = name
        self._kind = kind

    def read(self, size: int = -1) -> bytes:
        try:
            self._inner.seek(self._pos)
            data = self._inner.read(size)
        except OSError as exc:
            if not is_read_error(exc):
                raise self._damaged(describe(exc)) from None
            # the image file itself cannot be read here (a bad sector under it): an I/O error,
            # which a reader may read around, not a damaged container
            raise OSError(exc.errno, exc.strerror or str(exc), self._name) from None
        except Exception as exc:  # noqa: BLE001 - dissect raises many kinds
            raise self._damaged(describe(exc)) from None
        remaining = max(0, self._size - self._pos)
        want = remaining if size is None or size < 0 else min(size, remaining)
        if len(data) < want:
            # e.g. a sparse VMDK whose grains lie past the end of a cut-off file: dissect returns
            # a short read inside the disk, which must not pass for the end of the evidence
            raise self._damaged(f"{want - len(data)} of {want} bytes missing")
        self._pos += len(data)
        return data

    def _damaged(self, what: str) -> BadInputError:
        return BadInputError(f"{self._name}: the {self._kind} image is truncated or damaged "
                             f"(reading offset {self._pos}: {what})")

    def readinto(self, buf) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            except Exception:  # noqa: BLE001 - closing evidence must never mask the real error
                pass
        super().close()


def describe(exc: BaseException) -> str:
    """One line for an exception from a parser: its message, or what its type means."""
    if isinstance(exc, EOFError):
        return f"unexpected end of data{': ' + str(exc) if str(exc) else ''}"
    return str(exc) or type(exc).__name__


class Source:
    """One piece of evidence, open read-only. Use as a context manager."""

    def __init__(self, path: str | os.PathLike, fh: BinaryIO, size: int, kind: str):
        self.path = str(path)
        self.fh = fh
        self.size = size
        self.kind = kind  # "volume", "raw", "device" or a dissect container type
        self._partitions: list[Partition] | None = None
        #: a partition table was found (set by :meth:`partitions`)
        self.partitioned = False

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.fh.close()
        except Exception:  # noqa: BLE001 - closing evidence must never mask the real error
            pass

    def partitions(self) -> list[Partition]:
        """Every partition of the disk, or the whole source when it is a single volume."""
        if self._partitions is None:
            self._partitions = self._find_partitions()
        return self._partitions

    def _find_partitions(self) -> list[Partition]:
        """The partitions of an MBR or GPT disk (512- or 4096-byte sectors), read with
        dissect.volume: the partition-table part of dissect.target without the rest of it, which
        costs most of a second to import."""
        whole = [Partition(None, 0, self.size)]
        try:
            head = read_at(self.fh, 0, BOOT_SECTOR_SIZE)
        except OSError as exc:
            raise read_error(self.path, "sector 0 (the boot sector or partition table)", 0, exc) from None
        if parse_boot_sector(head) is not None:
            return whole
        try:
            from dissect.volume.disk import Disk
        except ImportError:  # pragma: no cover - dissect.volume comes with dissect.target
            return whole
        parts: list[Partition] = []
        unreadable: OSError | None = None
        for sector_size in (512, 4096):  # a 4Kn disk's GPT is at byte 4096
            try:
                self.fh.seek(0)
                disk = Disk(self.fh, sector_size=sector_size)
            except BadInputError:
                raise  # the container itself cannot be read
            except OSError as exc:  # a bad sector in the table: not "no table"
                unreadable = unreadable or exc
                continue
            except Exception:  # noqa: BLE001 - dissect raises many kinds; no table means one volume
                continue
            parts = [
                Partition(v.number, v.offset, _partition_size(v, sector_size),
                          str(v.type) if v.type is not None else None)
                for v in disk.partitions
            ]
            break
        # dissect lists MBR extended containers too; keep real partitions with a size. Those
        # that start beyond the end of the evidence stay: they tell of a truncated image.
        parts = [p for p in parts if p.size]
        if not parts and unreadable is not None and is_read_error(unreadable):
            raise BadInputError(f"{self.path}: cannot read the partition table: {error_text(unreadable)}")
        self.partitioned = bool(parts)
        return parts or whole


def _partition_size(v, sector_size: int) -> int:
    """dissect.volume computes GPT sizes as (last_lba - first_lba) sectors, but GPT's last LBA is
    inclusive: one sector short, which would cut the last sector off every GPT partition."""
    entry = getattr(v, "raw", None)
    first, last = getattr(entry, "first_lba", None), getattr(entry, "last_lba", None)
    if isinstance(first, int) and isinstance(last, int) and last >= first:
        return (last - first + 1) * sector_size
    return v.size


#: (offset, bytes) that mark a container image dissect.target must open (E01/Ex01/L01, VMDK
#: sparse/COWD/descriptor, VHDX, QCOW2, a dynamic VHD's footer copy, VDI). A fixed VHD carries
#: its footer at the end; split raw is recognised by its name.
_CONTAINER_MAGIC = (
    (0, b"EVF\x09\r\n\xff\x00"), (0, b"EVF2\r\n\x81\x00"), (0, b"LVF\x09\r\n\xff\x00"),
    (0, b"KDMV"), (0, b"COWD"), (0, b"# Disk DescriptorFile"), (0, b"vhdxfile"), (0, b"QFI\xfb"),
    (0, b"conectix"), (0x40, b"\x7f\x10\xda\xbe"),
)
_SPLIT_RAW = re.compile(r"\.(\d{3}|aa[a-z])$", re.IGNORECASE)


def _is_container(path: Path, fh: BinaryIO, head: bytes, size: int) -> bool:
    if _SPLIT_RAW.search(path.name):
        return True
    if any(head[o : o + len(m)] == m for o, m in _CONTAINER_MAGIC):
        return True
    try:
        return size >= 1024 and read_at(fh, size - 512, 8) == b"conectix"
    except OSError:  # the last sector cannot be read: no fixed VHD footer to go by
        return False


def open_source(path: str | os.PathLike | list) -> Source:
    """Open evidence read-only; raise BadInputError naming the source when it cannot be read."""
    if isinstance(path, list):
        return _open_container(path, str(path[0]))
    spath = str(path)
    if _is_device(spath):
        return _open_device(spath)
    p = Path(spath)
    if not p.exists():
        raise SourceNotFoundError(f"{spath}: no such file")
    if p.is_dir():
        raise BadInputError(f"{spath}: is a directory, not an image")
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise BadInputError(f"{spath}: cannot open: {exc.strerror}") from None
    size = p.stat().st_size
    try:
        head = read_at(fh, 0, BOOT_SECTOR_SIZE)
    except OSError as exc:
        fh.close()
        raise read_error(spath, "sector 0 (the boot sector or partition table)", 0, exc) from None
    if parse_boot_sector(head) is not None:
        return Source(spath, fh, size, "volume")
    start = BootSectorStart.parse(head) if len(head) >= BootSectorStart.sizeof() else None
    if len(head) < BOOT_SECTOR_SIZE and start is not None and start.oem in (SIGNATURE, TOGO_OEM):
        fh.close()
        raise BadInputError(f"{spath}: truncated: a BitLocker boot sector cut off after {len(head)} bytes")
    if head[BOOT_SIGNATURE_OFFSET:BOOT_SECTOR_SIZE] == BOOT_SIGNATURE and not _is_container(p, fh, head, size):
        # a raw disk (MBR, or GPT behind its protective MBR) or an unencrypted volume: read
        # directly, without importing dissect.target
        return Source(spath, fh, size, "raw")
    fh.close()
    return _open_container(p, spath)  # containers, and whatever else dissect.target recognises


def _open_device(path: str) -> Source:
    """A raw device, read through :class:`.devices.AlignedReader` with the size the OS reports."""
    try:
        fh, geometry = open_device(path)
    except OSError as exc:
        if no_media(exc):
            raise BadInputError(f"{path}: no media in the drive") from None
        raise device_error(path, exc) from None
    return Source(path, fh, geometry.size, "device")


def device_error(path: str, exc: OSError) -> BadInputError:
    """The one line for a device that cannot be opened (also what ``scan --all-drives`` reports
    for an unreadable drive); a permission problem says what privilege raw devices need."""
    if isinstance(exc, FileNotFoundError):
        return SourceNotFoundError(f"{path}: no such device")
    if isinstance(exc, PermissionError):
        return BadInputError(f"{path}: cannot open device: {exc.strerror or exc} (raw devices need root, "
                             "or an elevated prompt on Windows)")
    return BadInputError(f"{path}: cannot open device: {exc.strerror or exc}")


def _open_container(item, name: str) -> Source:
    try:
        from dissect.target import container
    except ImportError as exc:  # pragma: no cover - dissect.target is a dependency
        raise BadInputError(f"{name}: dissect.target is needed for this kind of image ({exc})") from None
    try:
        c = container.open(item)
    except Exception as exc:  # noqa: BLE001 - surface one line, not dissect's traceback
        cause = exc.__cause__ or exc
        raise BadInputError(f"{name}: cannot open as a disk image: {_container_error(cause)}") from None
    kind = getattr(c, "__type__", "raw")
    size = int(c.size)
    return Source(name, GuardedReader(c, name, kind, size), size, kind)


def _container_error(exc: BaseException) -> str:
    text = describe(exc)
    if isinstance(exc, EOFError) or "Failed to load" in text:
        # e.g. a VHDX or E01 cut short: dissect says only "Failed to load EWF: [paths]"
        return f"truncated or damaged ({text.split(':')[0]})"
    return text
