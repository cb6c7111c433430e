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
    """Look at one partition: BitLocker or not, and if so its metadata (or what is wrong)."""
    report = VolumeReport(partition.number, partition.offset, partition.size, False)
    head = read_at(source.fh, partition.offset, 512)
    if parse_boot_sector(head) is None:
        return report
    report.bitlocker = True
    name = source.path if partition.number is None else f"{source.path} partition {partition.number}"
    try:
        report.volume = BitLockerVolume(source.fh, partition.offset, partition.size, name)
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
        found = [r for r in (examine(source, p) for p in parts) if r.bitlocker]
        if not found:
            raise NotFoundError(f"{source.path}: no BitLocker volume found")
        if len(found) > 1:
            where = ", ".join(f"partition {r.partition} at offset {r.offset}" for r in found)
            raise UsageError(f"{source.path} holds {len(found)} BitLocker volumes ({where}): choose one with --volume N")
        report = found[0]
    if not report.bitlocker:
        raise NotFoundError(f"{source.path}: no BitLocker volume at offset {report.offset}")
    if report.error:
        raise BadInputError(report.error)
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
