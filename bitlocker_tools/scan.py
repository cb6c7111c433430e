"""The examiner's first question: which BitLocker volumes are in this evidence, and how is each
protected? Produces plain dataclasses that the CLI renders as a table or as JSON.

The JSON field names (``sources[].volumes[].partition``, ``protectors[].key_id`` ...) are a
contract that examiners' scripts rely on; :func:`volume_report_dict` is the one place they are
spelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import BadInputError, NotFoundError, UsageError
from .filesystems import identify_filesystem
from .format.constants import VolumeState
from .sources import Partition, Source
from .volume import BitLockerVolume, parse_boot_sector, read_at


@dataclass
class VolumeReport:
    partition: int | None
    offset: int
    size: int
    bitlocker: bool
    volume: BitLockerVolume | None = None
    error: str | None = None


@dataclass
class SourceReport:
    path: str
    kind: str
    size: int
    volumes: list[VolumeReport] = field(default_factory=list)


def examine(source: Source, partition: Partition) -> VolumeReport:
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
    head = read_at(source.fh, partition.offset, 512)
    if parse_boot_sector(head) is None:
        if source.size == 0:
            report.error = f"{name}: empty: 0 bytes"
        elif len(head) < 512:
            report.error = (f"{name}: truncated image: {len(head)} bytes where a volume's 512-byte "
                            f"boot sector should be (offset {partition.offset})")
        elif partition.offset == 0 and not source.partitioned and identify_filesystem(head) is None:
            report.error = (f"{name}: not a disk image or volume: no partition table, and no "
                            "BitLocker or filesystem boot sector at offset 0")
        return report
    report.bitlocker = True
    try:
        report.volume = BitLockerVolume(source.fh, partition.offset, held, name)
    except BadInputError as exc:
        report.error = str(exc)
    return report


def scan(source: Source) -> SourceReport:
    out = SourceReport(source.path, source.kind, source.size)
    out.volumes = [examine(source, p) for p in source.partitions()]
    return out


def select(source: Source, volume: int | None = None, offset: int | None = None) -> BitLockerVolume:
    """The volume the user means: ``--volume N``, ``--offset BYTES``, or the only one there is."""
    parts = source.partitions()
    if volume is not None and offset is not None:
        raise UsageError("give --volume or --offset, not both")
    if offset is not None and not 0 <= offset < source.size:
        raise UsageError(f"--offset {offset} is outside {source.path} (0 to {source.size - 1})")
    if offset is not None:
        match = [p for p in parts if p.offset == offset]
        part = match[0] if match else Partition(None, offset, source.size - offset)
        report = examine(source, part)
    elif volume is not None:
        match = [p for p in parts if p.number == volume]
        if not match:
            numbers = ", ".join(str(p.number) for p in parts if p.number is not None) or "none"
            raise NotFoundError(f"{source.path}: no partition {volume} (partitions: {numbers})")
        report = examine(source, match[0])
    else:
        reports = [examine(source, p) for p in parts]
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


def iso_utc(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def volume_report_dict(r: VolumeReport) -> dict[str, Any]:
    d: dict[str, Any] = {
        "partition": r.partition,
        "offset": r.offset,
        "size": r.size,
        "bitlocker": r.bitlocker,
    }
    if r.error:
        d["error"] = r.error
    v = r.volume
    if v is None:
        return d
    md = v.metadata
    method = md.method
    d.update(
        {
            "metadata_version": md.version,
            "variant": v.boot.variant,
            "encryption_method": method.label if method is not None else f"0x{md.encryption_method:04x}",
            "state": md.state.lower(),
            "next_state": md.next_state_name.lower(),
            "volume_guid": md.volume_guid,
            "description": md.description,
            "creation_time": iso_utc(md.creation_time),
            "sector_size": v.sector_size,
            "encrypted_size": md.encrypted_volume_size if md.version >= 2 else None,
            "used_space_only": v.eow is not None or v.boot.is_eow,
            "protectors": [
                {
                    "id": p.guid,
                    "key_id": p.key_id,
                    "type": p.type.value,
                    "code": p.code,
                    "creation_time": iso_utc(p.creation_time),
                    "needs_tpm": p.type.needs_tpm,
                }
                for p in md.protectors
            ],
            "metadata_copies": [
                {"offset": c.offset, "valid": c.valid, **({"error": c.error} if c.error else {})}
                for c in v.copies
            ],
        }
    )
    if md.version >= 2 and md.current_state != VolumeState.ENCRYPTED and md.encrypted_volume_size:
        d["percent_encrypted"] = round(100.0 * min(md.encrypted_volume_size, v.size) / v.size, 2) if v.size else None
    if v.eow_error:
        d["eow_error"] = v.eow_error
    return d


def source_report_dict(s: SourceReport) -> dict[str, Any]:
    return {
        "path": s.path,
        "kind": s.kind,
        "size": s.size,
        "volumes": [volume_report_dict(v) for v in s.volumes],
    }
