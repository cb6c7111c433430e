"""Every physical drive of this machine, for ``scan --all-drives`` (WinPE's first question).

Windows: the ``PhysicalDriveN`` names that QueryDosDevice lists (the DOS device namespace, a
documented kernel32 call that plain WinPE has; WMI it may not have). Where that call fails,
``\\\\.\\PhysicalDrive0``, 1, ... are probed until :data:`PROBE_MISSES` in a row do not exist
(numbers can have gaps when a disk is removed). Linux: the whole disks in ``/sys/block``
(partitions live below their disk there, so they are never listed); RAM disks (``ram``,
``zram``) are not evidence, and device-mapper and md devices (those with ``slaves``) are built
from disks that are listed themselves.

A drive with no medium (an empty card reader, a loop device with nothing attached) is left out.
A drive that cannot be opened (no permission) is listed with the reason, so that ``scan``
reports it and goes on. The OS is reached only through seams (:class:`~.devices.Backend`, the
``/sys/block`` folder, the DOS-device lister), which the tests drive with fakes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from . import devices
from .errors import UnsupportedError

#: Windows probing (only where QueryDosDevice fails): give up after this many missing numbers
#: in a row, and never go past PROBE_LIMIT.
PROBE_MISSES = 16
PROBE_LIMIT = 256

_PHYSICAL_DRIVE = re.compile(r"^PhysicalDrive(\d+)$", re.IGNORECASE)
_NOT_DRIVES = ("ram", "zram")


@dataclass
class Drive:
    """One drive: its device path and size, or why it cannot be read (``error``)."""

    path: str
    size: int | None = None
    sector_size: int | None = None
    error: str | None = None


def list_drives(platform: str | None = None, *, backend: devices.Backend | None = None,
                sys_block: str = "/sys/block", dev: str = "/dev",
                dos_devices: Optional[Callable[[], Iterable[str]]] = None) -> list[Drive]:
    """The physical drives, in the OS's order (disk 0 first). Raises UnsupportedError where the
    platform offers no way to list them (neither Windows nor a ``/sys/block``)."""
    platform = platform or sys.platform
    backend = backend or devices.platform_backend()
    if platform == "win32":
        return windows_drives(backend, dos_devices or _dos_device_names)
    if os.path.isdir(sys_block):
        return linux_drives(backend, sys_block, dev)
    raise UnsupportedError(f"--all-drives: cannot list the drives on {platform}; name the devices instead")


def linux_drives(backend: devices.Backend, sys_block: str = "/sys/block", dev: str = "/dev") -> list[Drive]:
    out = []
    for name in sorted(os.listdir(sys_block), key=_natural):
        if name.startswith(_NOT_DRIVES):
            continue
        base = os.path.join(sys_block, name)
        try:
            if os.listdir(os.path.join(base, "slaves")):
                continue  # dm-*, md*: made of disks that are scanned themselves
        except OSError:
            pass
        try:
            with open(os.path.join(base, "size")) as fh:
                sectors = int(fh.read().strip() or 0)  # always in 512-byte units
        except (OSError, ValueError):
            sectors = 0
        if sectors == 0:
            continue  # no medium
        drive = _probe(backend, os.path.join(dev, name.replace("!", "/")))
        if drive is not None:
            out.append(drive)
    return out


def windows_drives(backend: devices.Backend, dos_devices: Callable[[], Iterable[str]]) -> list[Drive]:
    try:
        numbers = sorted({int(m.group(1)) for m in map(_PHYSICAL_DRIVE.match, dos_devices()) if m})
    except OSError:
        numbers = None
    out = []
    if numbers is not None:
        for n in numbers:
            drive = _probe(backend, rf"\\.\PhysicalDrive{n}")
            if drive is not None and drive.error != _MISSING:
                out.append(drive)
        return out
    misses = 0
    for n in range(PROBE_LIMIT):
        drive = _probe(backend, rf"\\.\PhysicalDrive{n}")
        if drive is not None and drive.error == _MISSING:
            misses += 1
            if misses >= PROBE_MISSES:
                break
            continue
        misses = 0
        if drive is not None:
            out.append(drive)
    return out


_MISSING = "no such device"


def _probe(backend: devices.Backend, path: str) -> Drive | None:
    """Open the drive to learn its size: a :class:`Drive`, one with ``error`` set when it cannot
    be read, or None when it holds no medium."""
    from .sources import device_error

    try:
        fh, geometry = devices.open_device(path, backend)
    except FileNotFoundError:
        return Drive(path, error=_MISSING)
    except OSError as exc:
        return None if devices.no_media(exc) else Drive(path, error=str(device_error(path, exc)))
    fh.close()  # only the size was wanted here
    if geometry.size == 0:
        return None
    return Drive(path, geometry.size, geometry.sector_size)


def _natural(name: str) -> list:
    """nvme2n1 before nvme10n1: numbers compared as numbers."""
    # re.split with a group alternates text (even places) and digits (odd places)
    return [int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name))]


def _dos_device_names() -> list[str]:  # pragma: no cover - Windows only
    """Every name in the DOS device namespace (``C:``, ``PhysicalDrive0``, ``CdRom0``, ...)."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    size = 1 << 16
    while size <= 1 << 24:
        buf = ctypes.create_unicode_buffer(size)
        n = kernel32.QueryDosDeviceW(None, buf, size)
        if n:
            return [name for name in buf[:n].split("\0") if name]
        if ctypes.get_last_error() != 122:  # ERROR_INSUFFICIENT_BUFFER: try a larger one
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
        size *= 4
    raise OSError("QueryDosDevice: the list of devices does not fit")
