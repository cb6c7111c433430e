"""Raw devices (``\\\\.\\PhysicalDrive0``, ``\\\\.\\D:``, ``/dev/sdb``), read the way Windows lets them be read.

A raw device is not a file. On Windows (WinPE is where examiners meet them) a read whose offset
or length is not a multiple of the sector size fails with EINVAL, ``seek(0, SEEK_END)`` and
``os.stat`` do not give the size, and both the size and the sector size come from IOCTLs. So
every read of a device goes through :class:`AlignedReader`, which widens it to whole aligned
blocks and never reads past the end of the device, and the size comes from a :class:`Backend`:
the OS calls behind one small interface. The Windows-only part is one ctypes call
(:func:`_fd_device_io_control`); the decoding of what the IOCTLs return
(:func:`geometry_from_ioctls`) is plain Python that the tests drive with the bytes Windows
would return, and the reader is tested against a fake device that refuses unaligned reads.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import struct
import sys
from dataclasses import dataclass
from typing import Callable, Protocol

#: Reads start and end on multiples of this (or of the sector size, when larger). 4096 is a
#: multiple of every common logical sector size (512 on 512n/512e disks, 4096 on 4Kn, 2048 on
#: optical media), so one alignment is valid on all of them; only the read that ends at the end
#: of the device stops short of it, on the device's own sector boundary.
ALIGN = 4096
#: One OS read at most: Windows fails very large raw reads (ERROR_NO_SYSTEM_RESOURCES), and
#: file objects loop over shorter reads anyway.
MAX_READ = 8 << 20

IOCTL_DISK_GET_DRIVE_GEOMETRY = 0x00070000
IOCTL_DISK_GET_DRIVE_GEOMETRY_EX = 0x000700A0
IOCTL_DISK_GET_LENGTH_INFO = 0x0007405C
FSCTL_ALLOW_EXTENDED_DASD_IO = 0x00090083
_BLKSSZGET = 0x1268  # Linux <linux/fs.h>: logical sector size (int)
_BLKGETSIZE64 = 0x80081272  # Linux <linux/fs.h>: size in bytes (u64)

# DISK_GEOMETRY: LARGE_INTEGER Cylinders; MEDIA_TYPE MediaType; DWORD TracksPerCylinder,
# SectorsPerTrack, BytesPerSector (24 bytes). DISK_GEOMETRY_EX: that, then LARGE_INTEGER DiskSize.
_GEOMETRY = struct.Struct("<qiIII")
_LARGE_INTEGER = struct.Struct("<q")
_GEOMETRY_EX_BUFFER = 256  # DISK_GEOMETRY_EX ends in variable partition/detection data
_PHYSICAL_DRIVE = re.compile(r"PhysicalDrive\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class DeviceGeometry:
    """What the OS says about a device: its size in bytes and its logical sector size."""

    size: int
    sector_size: int = 512


class Backend(Protocol):
    """The OS calls behind a raw device. ``open`` raises OSError (FileNotFoundError,
    PermissionError, ...) like :func:`os.open`; ``read`` is only ever asked for whole aligned
    blocks inside the device."""

    def open(self, path: str) -> int: ...

    def geometry(self, handle: int) -> DeviceGeometry: ...

    def read(self, handle: int, offset: int, length: int) -> bytes: ...

    def close(self, handle: int) -> None: ...


#: ``ioctl(code, out_size) -> bytes``: one DeviceIoControl call with no input; raises OSError.
Ioctl = Callable[[int, int], bytes]


def geometry_from_ioctls(ioctl: Ioctl) -> DeviceGeometry:
    """Size and sector size of a Windows disk or volume handle.

    The size is IOCTL_DISK_GET_LENGTH_INFO's (disks and volumes both answer it); a handle that
    does not answer it falls back to DISK_GEOMETRY_EX's DiskSize. The sector size is
    DISK_GEOMETRY_EX's BytesPerSector, else the older DISK_GEOMETRY's (volume handles answer
    that one), else 512. The error of the length IOCTL is what is raised when nothing gives a
    size: for an empty card reader that is ERROR_NOT_READY, which :mod:`.drives` reads as "no
    media".
    """
    size = sector = None
    length_error: OSError | None = None
    try:
        (size,) = _LARGE_INTEGER.unpack_from(ioctl(IOCTL_DISK_GET_LENGTH_INFO, 8))
    except OSError as exc:
        length_error = exc
    try:
        ex = ioctl(IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, _GEOMETRY_EX_BUFFER)
        sector = _GEOMETRY.unpack_from(ex)[4]
        if size is None:
            (size,) = _LARGE_INTEGER.unpack_from(ex, _GEOMETRY.size)
    except (OSError, struct.error):
        try:
            sector = _GEOMETRY.unpack_from(ioctl(IOCTL_DISK_GET_DRIVE_GEOMETRY, _GEOMETRY.size))[4]
        except (OSError, struct.error):
            pass
    if size is None:
        raise length_error or OSError("the device reports no size")
    return DeviceGeometry(size, sector if sector and sector & (sector - 1) == 0 else 512)


class PosixBackend:
    """Linux and other Unix: block devices through their ioctls (or lseek), regular files too.

    Linux block devices accept unaligned reads, but they are read aligned all the same, so the
    code that runs in WinPE is the code the tests and Linux users run.

    A read that fails (a bad sector) is tried again with ``O_DIRECT`` where there is one: the page
    cache reads a block device in whole pages (4 KiB or more), so through it one bad sector would
    fail the good sectors around it, while a direct read asks the device for exactly the sectors
    wanted. That is what lets the retries of :mod:`.unreadable` narrow down to the sector."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}
        self._direct: dict[int, int] = {}

    def open(self, path: str) -> int:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._paths[handle] = path
        return handle

    def geometry(self, handle: int) -> DeviceGeometry:
        if stat.S_ISBLK(os.fstat(handle).st_mode) and sys.platform.startswith("linux"):
            import fcntl

            try:
                (size,) = struct.unpack("<Q", fcntl.ioctl(handle, _BLKGETSIZE64, bytes(8)))
                (sector,) = struct.unpack("<i", fcntl.ioctl(handle, _BLKSSZGET, bytes(4)))
                return DeviceGeometry(size, sector)
            except OSError:
                pass
        return DeviceGeometry(os.lseek(handle, 0, os.SEEK_END))

    def read(self, handle: int, offset: int, length: int) -> bytes:
        try:
            return os.pread(handle, length, offset)
        except OSError:
            direct = self._direct_handle(handle)
            if direct is None:
                raise
        import mmap

        with mmap.mmap(-1, max(length, 1)) as buf:  # page-aligned, as O_DIRECT needs
            n = os.preadv(direct, [memoryview(buf)[:length]], offset)
            return bytes(buf[:n])

    def _direct_handle(self, handle: int) -> int | None:
        """A second, ``O_DIRECT`` handle on the same block device (None where there is none)."""
        if handle not in self._direct:
            flag, path = getattr(os, "O_DIRECT", 0), self._paths.get(handle)
            if not flag or path is None or not stat.S_ISBLK(os.fstat(handle).st_mode):
                return None
            try:
                self._direct[handle] = os.open(path, os.O_RDONLY | flag | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
        return self._direct[handle]

    def close(self, handle: int) -> None:
        direct = self._direct.pop(handle, None)
        if direct is not None:
            os.close(direct)
        self._paths.pop(handle, None)
        os.close(handle)


class WindowsBackend:
    """Windows and WinPE. ``os.open`` opens with GENERIC_READ and FILE_SHARE_READ|FILE_SHARE_WRITE,
    OPEN_EXISTING, which is what a raw disk or volume needs; write access is never asked for.
    ``ioctl(fd, code, out_size)`` is DeviceIoControl on the file descriptor's handle (the seam
    the tests drive)."""

    def __init__(self, ioctl: Callable[[int, int, int], bytes] | None = None):
        self._ioctl = ioctl or _fd_device_io_control

    def open(self, path: str) -> int:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        if not _PHYSICAL_DRIVE.search(path):
            # a volume handle: without this, a mounted filesystem's driver refuses reads past
            # the end of the filesystem, i.e. the last sectors of the partition
            try:
                self._ioctl(fd, FSCTL_ALLOW_EXTENDED_DASD_IO, 0)
            except OSError:
                pass  # not a volume with a filesystem mounted: nothing to lift
        return fd

    def geometry(self, handle: int) -> DeviceGeometry:
        return geometry_from_ioctls(lambda code, size: self._ioctl(handle, code, size))

    def read(self, handle: int, offset: int, length: int) -> bytes:
        os.lseek(handle, offset, os.SEEK_SET)  # no os.pread on Windows
        return os.read(handle, length)

    def close(self, handle: int) -> None:
        os.close(handle)


def _fd_device_io_control(fd: int, code: int, out_size: int) -> bytes:  # pragma: no cover - Windows only
    """DeviceIoControl with no input buffer on a file descriptor's handle; the output bytes, or
    OSError with the Windows error."""
    import ctypes
    import msvcrt
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.DeviceIoControl.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.LPVOID, wintypes.DWORD,
                                         wintypes.LPVOID, wintypes.DWORD, ctypes.POINTER(wintypes.DWORD),
                                         wintypes.LPVOID]
    kernel32.DeviceIoControl.restype = wintypes.BOOL
    out = ctypes.create_string_buffer(max(out_size, 1))
    returned = wintypes.DWORD(0)
    handle = msvcrt.get_osfhandle(fd)  # type: ignore[attr-defined]
    if not kernel32.DeviceIoControl(handle, code, None, 0, out if out_size else None, out_size,
                                    ctypes.byref(returned), None):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
    return out.raw[: returned.value]


#: Windows errors that mean a drive with no medium in it (an empty card reader or DVD drive):
#: ERROR_NOT_READY and ERROR_NO_MEDIA_IN_DRIVE. Python maps the first to EACCES, so it would
#: otherwise pass for a permission problem.
_NO_MEDIA_WINERRORS = (21, 1112)


def no_media(exc: OSError) -> bool:
    """Does this error from opening or sizing a device say that no medium is inserted?"""
    return getattr(exc, "winerror", None) in _NO_MEDIA_WINERRORS or exc.errno == getattr(errno, "ENOMEDIUM", -1)


def platform_backend() -> Backend:
    """The backend of this OS (the seam the tests replace with a fake device)."""
    return WindowsBackend() if sys.platform == "win32" else PosixBackend()


class PositionedReader(io.RawIOBase):
    """A seekable, read-only raw file object of ``size`` bytes that keeps its own position (a
    seek never reaches what is underneath): the base of the device reader here and of the
    guarded container reader in :mod:`.sources`."""

    def __init__(self, size: int):
        super().__init__()
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class AlignedReader(PositionedReader):
    """Read-only raw file object over a device that only accepts aligned reads.

    Each read is widened to :data:`ALIGN` (or the sector size, when larger) at both ends and
    trimmed; the last block of the device is read only up to the device's end, which is a whole
    number of its sectors. Keeps its own position, so a seek never reaches the device.
    """

    def __init__(self, backend: Backend, handle: int, geometry: DeviceGeometry):
        super().__init__(geometry.size)
        self._backend = backend
        self._handle = handle
        self.geometry = geometry
        self._align = max(ALIGN, geometry.sector_size)
        ss = geometry.sector_size
        self._end = -(-self._size // ss) * ss  # where the device's last sector ends

    def readinto(self, buf) -> int:  # type: ignore[override]
        want = min(len(buf), max(0, self._size - self._pos), MAX_READ)
        if want <= 0:
            return 0
        a = self._align
        start = self._pos // a * a
        stop = min(-(-(self._pos + want) // a) * a, self._end)
        try:
            data = self._read_exactly(start, stop - start)
        except OSError:
            start, data = self._read_around_error(want)
        chunk = memoryview(data)[self._pos - start : self._pos - start + want]
        buf[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def _read_around_error(self, want: int) -> tuple[int, bytes]:
        """A read failed (a bad sector): answer as a file on a failing disk does, with the sectors
        that can be read before the first that cannot (a short read), or the error when the
        first sector itself fails, so that the caller's retries can narrow down to the sector.
        Found by halving, in whole sectors: a few reads, not one per sector."""
        ss = self.geometry.sector_size
        start = self._pos // ss * ss
        stop = min(-(-(self._pos + want) // ss) * ss, self._end)
        good, bad = 0, (stop - start) // ss  # sectors from start known readable / first known to fail
        data = b""
        error: OSError | None = None
        try:
            return start, self._read_exactly(start, stop - start)
        except OSError as exc:
            error = exc
        while bad - good > 1:
            mid = (good + bad) // 2
            try:
                data = self._read_exactly(start, mid * ss)
                good = mid
            except OSError as exc:
                error, bad = exc, mid
        if good * ss <= self._pos - start:
            assert error is not None
            raise error
        return start, data[: good * ss]

    def _read_exactly(self, offset: int, length: int) -> bytes:
        data = self._backend.read(self._handle, offset, length)
        if len(data) == length or not data:
            return data
        parts = [data]  # a short read inside the device: go on from where it stopped
        got = len(data)
        while got < length:
            more = self._backend.read(self._handle, offset + got, length - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._backend.close(self._handle)
        super().close()


def open_device(path: str, backend: Backend | None = None) -> tuple[io.BufferedReader, DeviceGeometry]:
    """Open a raw device read-only: a buffered file object over an :class:`AlignedReader`, and
    what the OS says of its size. Raises OSError as the OS does (the caller names the source)."""
    backend = backend or platform_backend()
    handle = backend.open(path)
    try:
        geometry = backend.geometry(handle)
    except BaseException:
        backend.close(handle)
        raise
    return io.BufferedReader(AlignedReader(backend, handle, geometry), 1 << 20), geometry
