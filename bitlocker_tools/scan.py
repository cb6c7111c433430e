"""The examiner's first question: which BitLocker volumes are in this evidence, and how is each
protected? And, for every other command, which volume the user means.

Produces plain dataclasses; :mod:`.report` turns them into the JSON documents scripts read and
:mod:`.cli.render` into what people read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .boot_sector import parse_boot_sector
from .errors import BadInputError, NotFoundError, UsageError
from .filesystems import identify_filesystem
from .format.boot_sector import BOOT_SECTOR_SIZE
from .sources import Partition, Source, read_at, read_error
from .volume import BitLockerVolume


@dataclass
class VolumeReport:
    """One partition (or the whole source) as scan found it: BitLocker or not, and if so the
    opened volume or what is wrong with it."""

    partition: int | None
    offset: int
    size: int
    bitlocker: bool
    volume: BitLockerVolume | None = None
    error: str | None = None


@dataclass
class SourceReport:
    """One piece of evidence and its partitions."""

    path: str
    kind: str
    size: int
    volumes: list[VolumeReport] = field(default_factory=list)


def examine(source: Source, partition: Partition, strict: bool = False) -> VolumeReport:
    """Look at one partition: BitLocker or not, and if so its metadata (or what is wrong).

    A partition the partition table declares larger than what the evidence holds is examined
    on what is there; one that starts beyond the end, or whose boot sector is cut off, is
    reported as a truncated image instead of as "not BitLocker".
    """
    report = VolumeReport(partition.number, partition.offset, partition.size, False)
    name = source.path if partition.number is None else f"{source.path} partition {partition.number}"
    held = max(0, min(partition.size, source.size - partition.offset))
    if held == 0 and partition.size:
        report.error = (f"{name}: truncated image: the partition starts at offset {partition.offset}, "
                        f"beyond the end of the evidence ({source.size} bytes)")
        return report
    try:
        head = read_at(source.fh, partition.offset, BOOT_SECTOR_SIZE)
    except OSError as exc:  # whether it is BitLocker cannot be told: say so, and where
        report.error = str(read_error(name, "the boot sector", partition.offset, exc))
        return report
    if parse_boot_sector(head) is None:
        if source.size == 0:
            report.error = f"{name}: empty: 0 bytes"
        elif len(head) < BOOT_SECTOR_SIZE:
            report.error = (f"{name}: truncated image: {len(head)} bytes where a volume's 512-byte "
                            f"boot sector should be (offset {partition.offset})")
        elif (partition.offset == 0 and not source.partitioned and source.kind != "device"
              and identify_filesystem(head) is None):
            # a file that is no image is an error; a blank or swap drive is just not BitLocker
            report.error = (f"{name}: not a disk image or volume: no partition table, and no "
                            "BitLocker or filesystem boot sector at offset 0")
        return report
    report.bitlocker = True
    try:
        report.volume = BitLockerVolume(source.fh, partition.offset, held, name, strict=strict)
    except BadInputError as exc:
        report.error = str(exc)
    return report


def scan(source: Source, strict: bool = False) -> SourceReport:
    out = SourceReport(source.path, source.kind, source.size)
    out.volumes = [examine(source, p, strict) for p in source.partitions()]
    return out


def select(source: Source, volume: int | None = None, offset: int | None = None,
           strict: bool = False) -> BitLockerVolume:
    """The volume the user means: ``--volume N``, ``--offset BYTES``, or the only one there is.
    ``strict``: refuse metadata whose every copy fails its integrity check."""
    parts = source.partitions()
    if volume is not None and offset is not None:
        raise UsageError("give --volume or --offset, not both")
    if offset is not None and not 0 <= offset < source.size:
        raise UsageError(f"--offset {offset} is outside {source.path} (0 to {source.size - 1})")
    if offset is not None:
        match = [p for p in parts if p.offset == offset]
        part = match[0] if match else Partition(None, offset, source.size - offset)
        report = examine(source, part, strict)
    elif volume is not None:
        match = [p for p in parts if p.number == volume]
        if not match:
            numbers = ", ".join(str(p.number) for p in parts if p.number is not None) or "none"
            raise NotFoundError(f"{source.path}: no partition {volume} (partitions: {numbers})")
        report = examine(source, match[0], strict)
    else:
        reports = [examine(source, p, strict) for p in parts]
        found = [r for r in reports if r.bitlocker]
        if not found:
            damaged = [r.error for r in reports if r.error]
            raise BadInputError(damaged[0] if damaged else f"{source.path}: not BitLocker: no BitLocker volume found")
        if len(found) > 1:
            where = ", ".join(f"partition {r.partition} at offset {r.offset}" for r in found)
            raise UsageError(f"{source.path} holds {len(found)} BitLocker volumes ({where}): choose one with --volume N")
        report = found[0]
    if report.error:
        raise BadInputError(report.error)
    if not report.bitlocker:
        where = f"partition {report.partition} (offset {report.offset})" if report.partition is not None \
            else f"offset {report.offset}"
        raise BadInputError(f"{source.path}: not BitLocker: no BitLocker volume at {where}")
    assert report.volume is not None
    return report.volume
