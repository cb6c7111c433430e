"""Every JSON document the command line prints, built from the library's dataclasses.

The field names here are a contract: examiners' scripts read ``sources[].volumes[].protectors[]
.key_id``, ``verify``'s ``protector_id`` and ``decrypt``'s ``sha256``, and docs/cli.md documents
each of them. This module is the one place they are spelled, and the only place a document is
assembled; :mod:`.cli.render` draws the same documents for people. Secrets (VMK, FVEK) enter a
document only when the caller asks (``show_keys``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .format.constants import VolumeState, method_label
from .format.types import iso_utc
from .metadata import Protector
from .scan import SourceReport, VolumeReport
from .unreadable import EXIT_INCOMPLETE
from .unreadable import total as unreadable_total

if TYPE_CHECKING:
    from .decrypt import DecryptResult
    from .escrow.record import EscrowProblem, EscrowRecord
    from .files import FileEntry
    from .hashline import Export
    from .keys import VolumeKeys
    from .matching import MatchReport
    from .mount import Mounted
    from .protectors import UnlockResult
    from .recover import SearchResult
    from .search import GroupVerdict
    from .stream import DecryptedStream
    from .unreadable import UnreadableRange
    from .volume import BitLockerVolume

#: Fields a failing command adds to ``{"error", "exit_code"}``, so that a script reading the
#: success document finds the same keys (``verify``'s ``unlocked`` is false, not missing).
_FAILURE_FIELDS: dict[str, dict[str, Any]] = {
    "verify": {"unlocked": False, "protector_id": None, "protector_type": None},
}


# --- scan ------------------------------------------------------------------------------------------


def protector_record(p: Protector) -> dict[str, Any]:
    return {
        "id": p.guid,
        "key_id": p.key_id,
        "type": p.type.value,
        "code": p.code,
        "creation_time": iso_utc(p.creation_time),
        "needs_tpm": p.type.needs_tpm,
        "backup": [{"destinations": b.destinations, "backup_time": iso_utc(b.backup_time),
                    "creation_time": iso_utc(b.creation_time), "method": b.method, "flags": b.flags}
                   for b in p.backups],
    }


def integrity_records(vol: BitLockerVolume, unlocked: UnlockResult | None = None) -> list[dict[str, Any]]:
    """Per metadata copy: does its CRC-32 match, and (once the VMK is known) its SHA-256?"""
    validation = unlocked.copy_validation if unlocked is not None else {}
    return [{"offset": c.offset, "crc_ok": c.crc_ok, "validation_ok": validation.get(c.offset)} for c in vol.copies]


def volume_record(r: VolumeReport) -> dict[str, Any]:
    """One partition as ``scan`` reports it (``info`` starts from the same record)."""
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
    d.update(
        {
            "metadata_version": md.version,
            "variant": v.boot.variant,
            "encryption_method": method_label(md.encryption_method),
            "state": md.state.lower(),
            "next_state": md.next_state_name.lower(),
            "volume_guid": md.volume_guid,
            "description": md.description,
            "creation_time": iso_utc(md.creation_time),
            "sector_size": v.sector_size,
            "encrypted_size": md.encrypted_volume_size if md.version >= 2 else None,
            "used_space_only": v.eow is not None or v.boot.is_eow,
            "protectors": [protector_record(p) for p in md.protectors],
            "metadata_copies": [
                {"offset": c.offset, "valid": c.valid, **({"error": c.error} if c.error else {}),
                 **({"unreadable": True} if c.unreadable else {})}
                for c in v.copies
            ],
            "integrity": integrity_records(v),
        }
    )
    if md.version >= 2 and md.current_state != VolumeState.ENCRYPTED and md.encrypted_volume_size:
        d["percent_encrypted"] = round(100.0 * min(md.encrypted_volume_size, v.size) / v.size, 2) if v.size else None
    if v.eow_error:
        d["eow_error"] = v.eow_error
    if v.unreadable:  # sectors of its structures that could not be read (a failing disk)
        d["unreadable_ranges"] = unreadable_records(v.unreadable)
    return d


def source_record(s: SourceReport) -> dict[str, Any]:
    return {
        "path": s.path,
        "kind": s.kind,
        "size": s.size,
        "volumes": [volume_record(v) for v in s.volumes],
    }


def unreadable_source(path: str, error: str) -> dict[str, Any]:
    """A source that could not be opened at all, in the place its record would have been."""
    return {"path": path, "error": error, "volumes": []}


def scan_document(sources: list[dict[str, Any]], failure: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every source's record; when the scan fails (exit 1: nothing found, 3: a source or volume
    cannot be read), also the failure's ``error`` (the first problem) and ``exit_code``."""
    return {"sources": sources, **(failure or {})}


# --- info ------------------------------------------------------------------------------------------


def info_document(vol: BitLockerVolume) -> dict[str, Any]:
    """Everything ``scan`` says about the volume, then every structure the metadata holds."""
    md = vol.metadata
    doc = volume_record(VolumeReport(None, vol.offset, vol.size, True, vol))
    doc.update(
        {
            "boot_sector": {
                "variant": vol.boot.variant,
                "guid": vol.boot.guid,
                "bytes_per_sector": vol.boot.bytes_per_sector,
                "sectors_per_cluster": vol.boot.sectors_per_cluster,
                "metadata_offsets": vol.boot.metadata_offsets,
                "eow_offsets": vol.boot.eow_offsets,
            },
            "block_header": {
                "offset": md.offset,
                "version": md.version,
                "current_state": md.current_state,
                "next_state": md.next_state,
                "encrypted_volume_size": md.encrypted_volume_size,
                "convert_size": md.convert_size,
                "volume_header_sectors": md.volume_header_sectors,
                "metadata_offsets": list(md.metadata_offsets),
                ("mft_mirror_cluster" if md.version == 1 else "volume_header_offset"): md.volume_header_offset,
                "crc32_valid": md.crc_valid,
            },
            "next_nonce": md.next_nonce,
            "entries": [e.as_dict() for e in md.entries],
            "validation_entry": md.validation_entry.as_dict() if md.validation_entry else None,
            "reserved_regions": [{"offset": o, "size": s} for o, s in vol.reserved_regions()],
        }
    )
    if vol.eow is not None:
        doc["eow"] = {
            "offset": vol.eow.offset,
            "chunk_size": vol.eow.chunk_size,
            "bitmaps": [
                {"region_offset": b.region_offset, "region_size": b.region_size,
                 "chunks": b.bit_count, "encrypted_chunks": b.encrypted_chunks}
                for b in vol.eow.bitmaps
            ],
        }
    return doc


# --- verify / decrypt ------------------------------------------------------------------------------


def _keys(r: UnlockResult) -> dict[str, Any]:
    return {"vmk": r.vmk.hex() if r.vmk else None, "fvek": r.sector_key.hex() if r.sector_key else None}


def verify_document(vol: BitLockerVolume, r: UnlockResult, show_keys: bool) -> dict[str, Any]:
    """Which protector the credential opened (or how else the volume was opened)."""
    p = r.protector
    d: dict[str, Any] = {
        "unlocked": True,
        "protector_id": p.guid if p else None,
        "protector_type": p.type.value if p else r.via.value,
        "key_id": p.key_id if p else None,
        "via": r.via.value,
        "encryption_method": r.method.label,
        "metadata_validated": r.metadata_validated,
        "volume_guid": vol.metadata.volume_guid,
        "integrity": integrity_records(vol, r),
    }
    if show_keys:
        d.update(_keys(r))
    return d


def decrypt_document(vol: BitLockerVolume, r: UnlockResult, done: DecryptResult, show_keys: bool,
                     uncertain: list[tuple[int, int]] | None = None, evidence: str | None = None) -> dict[str, Any]:
    """The verify fields, then what was written and its digest; for an output written in full
    over unreadable sectors of ``evidence``, also the failure's ``error`` and ``exit_code`` (4)."""
    d = verify_document(vol, r, show_keys)
    d.update(
        {
            "output": done.output,
            "bytes_written": done.bytes_written,
            "sha256": done.sha256,
            "filesystem": done.filesystem,
            "missing_bytes": done.missing_bytes,
            "declared_size": vol.declared_size,
            "resumed_from": done.resumed_from,
            "uncertain_ranges": [{"offset": o, "size": n} for o, n in uncertain or []],
            "hashes": done.hashes,
            "sparse_bytes": done.sparse_bytes,
            "complete": done.complete,
            "unreadable_bytes": unreadable_total(done.unreadable),
            "unreadable_ranges": unreadable_records(done.unreadable),
            "badranges_file": done.badranges_file,
        }
    )
    if not done.complete:
        where = f"; listed in {done.badranges_file}" if done.badranges_file else ""
        d["error"] = (f"{done.output}: incomplete: {unreadable_total(done.unreadable)} bytes in "
                      f"{len(done.unreadable)} unreadable ranges of {evidence or vol.name} were written as zeros{where}")
        d["exit_code"] = EXIT_INCOMPLETE
    return d


# --- keys ------------------------------------------------------------------------------------------


def keys_document(vol: BitLockerVolume, keys: VolumeKeys, show_keys: bool, exported_fvek: str | None = None,
                  keychain: tuple[str, int] | None = None) -> dict[str, Any]:
    """Every protector, whether the credential opened it, and the recovery password behind each
    recovery-password protector (masked unless ``show_keys``); the files written, if any."""
    from .keys import mask

    r = keys.unlocked
    d: dict[str, Any] = {
        "volume_guid": vol.metadata.volume_guid,
        "encryption_method": r.method.label,
        "opened_with": {"via": r.via.value, "protector_id": r.protector.guid if r.protector else None},
        "protectors": [
            {**{k: v for k, v in protector_record(s.protector).items() if k != "code"}, "opened": s.opened}
            for s in keys.protectors
        ],
        "recovery_passwords": [
            {"protector_id": rp.protector.guid, "key_id": rp.protector.key_id,
             "recovery_password": (str(rp.password) if show_keys else mask(rp.password)) if rp.password else None,
             **({"note": rp.note} if rp.note else {})}
            for rp in keys.recovery_passwords
        ],
        "metadata_validated": r.metadata_validated,
        "integrity": integrity_records(vol, r),
    }
    if show_keys:
        d.update(_keys(r))  # the same spelling as verify's: the key material --fvek takes
    if exported_fvek is not None:
        d["exported_fvek"] = exported_fvek
    if keychain is not None:
        d["keychain"], d["keychain_rows"] = keychain
    return d


# --- failures --------------------------------------------------------------------------------------


def failure_document(command: str, message: str, exit_code: int) -> dict[str, Any]:
    """What ``--json`` prints when a command fails: the one-line message and the exit code."""
    return {**_FAILURE_FIELDS.get(command, {}), "error": message, "exit_code": exit_code}


# --- match -----------------------------------------------------------------------------------------


def _key_source(record: EscrowRecord) -> dict[str, Any]:
    return {**record.locator.as_dict(), "source_type": record.source_type}


def _key_value(record: EscrowRecord, show_keys: bool) -> dict[str, Any]:
    """The key itself: a recovery password masked unless ``show_keys``, other keys only then."""
    from .keys import mask

    if record.recovery_password is not None:
        return {"recovery_password": str(record.recovery_password) if show_keys else mask(record.recovery_password)}
    if record.secret is not None and show_keys:
        return {"key": record.secret.hex()}
    return {}


def escrow_key_record(record: EscrowRecord, show_keys: bool) -> dict[str, Any]:
    """An escrowed key as the match report lists it: what it is, where it came from, what the
    source says of it (never the key unless ``show_keys``, and a malformed key's text only then)."""
    d: dict[str, Any] = {"kind": record.kind, "key_id": record.key_id, "key_source": _key_source(record)}
    for name in ("computer_name", "device_id", "volume_guid", "volume_type"):
        if getattr(record, name):
            d[name] = getattr(record, name)
    if record.created_at is not None:
        d["created_at"] = iso_utc(record.created_at)
    if not record.well_formed:
        d["bad_groups"] = record.bad_groups
        if getattr(record, "defect", None):
            d["defect"] = record.defect
        if show_keys and record.raw:
            d["raw"] = record.raw
    d.update(_key_value(record, show_keys))
    return d


def _volume_where(ref: Any) -> dict[str, Any]:
    return {"source": ref.source, "partition": ref.partition, "offset": ref.offset,
            "volume_guid": ref.volume.metadata.volume_guid}


def _key_of(record: EscrowRecord, show_keys: bool) -> dict[str, Any]:
    """An escrowed key next to a volume: where it came from at the top, what the source says of
    it under ``key`` (so that the source's ``key_id`` or ``volume_guid`` never stands in for the
    volume's)."""
    described = escrow_key_record(record, show_keys)
    return {"key_source": described.pop("key_source"), "key": described}


def match_document(report: MatchReport, problems: list[EscrowProblem], show_keys: bool,
                   keychain: tuple[str, int] | None = None, failure: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each volume and the key that opened it, and every key that did not open anything, why.
    ``keychain``: (path, rows) of a keychain written; ``failure``: the failure fields, when the
    exit code is not 0."""
    matched = {id(m.ref): m for m in report.matches}
    locked = {id(r) for r in report.locked}
    volumes = []
    for ref in report.volumes:
        status = "matched" if id(ref) in matched else "locked" if id(ref) in locked else "no_key_needed"
        volumes.append({**_volume_where(ref), "description": ref.volume.metadata.description, "status": status,
                        "integrity": integrity_records(ref.volume)})
    doc = {
        "volumes": volumes,
        "matches": [
            {**_volume_where(m.ref), "protector_id": m.protector.guid if m.protector else None,
             "protector_type": m.protector.type.value if m.protector else m.record.kind,
             "key_id": m.protector.key_id if m.protector else None, "matched_by": m.matched_by, "verified": True,
             **_key_of(m.record, show_keys)}
            for m in report.matches
        ],
        "stale": [
            {**_volume_where(s.ref), "protector_id": s.protector.guid if s.protector else None,
             "key_id": s.protector.key_id if s.protector else None, "reason": s.reason, **_key_of(s.record, show_keys)}
            for s in report.stale
        ],
        "unmatched_keys": [escrow_key_record(r, show_keys) for r in report.unmatched],
        "malformed": [escrow_key_record(r, show_keys) for r in report.malformed],
        "duplicates": [{"kind": g[0].kind, "key_id": g[0].key_id, "key_sources": [_key_source(r) for r in g]}
                       for g in report.duplicates],
        "conflicts": [{"key_id": g[0].key_id, "key_sources": [_key_source(r) for r in g]} for g in report.conflicts],
        "locked_volumes": [
            {**_volume_where(ref), "description": ref.volume.metadata.description,
             "protectors": [{k: v for k, v in protector_record(p).items() if k != "code"}
                            for p in ref.volume.metadata.protectors]}
            for ref in report.locked
        ],
        "problems": [{"key_source": p.locator.as_dict(), "error": p.message} for p in problems],
        "try_all": {"keys": report.try_all.keys, "protectors": report.try_all.protectors,
                    "stretches": report.try_all.stretches, "ran": report.try_all.ran,
                    "skipped_because": report.try_all.reason},
    }
    if keychain is not None:
        doc["keychain"], doc["keychain_rows"] = keychain
    return {**doc, **(failure or {})}


def key_id_document(prefix: str, records: list[EscrowRecord], show_keys: bool,
                    failure: dict[str, Any] | None = None) -> dict[str, Any]:
    """``match --key-id``: every escrowed key under a Key ID, newest first, and whether the
    prefix is ambiguous (several different keys share it)."""
    distinct = {r.value_text() for r in records if r.well_formed}
    return {"key_id": prefix, "keys": [escrow_key_record(r, show_keys) for r in records],
            "ambiguous": len(distinct) > 1, **(failure or {})}


# --- hash ------------------------------------------------------------------------------------------


def hash_document(vol: BitLockerVolume, found: Export) -> dict[str, Any]:
    """``hash --json``: one entry per ``$bitlocker$`` line, and the password or recovery-password
    protectors that got none, with why (hashcat takes no recovery-password line)."""

    def ids(p: Protector) -> dict[str, Any]:
        return {"protector_id": p.guid, "key_id": p.key_id, "protector_type": p.type.value}

    return {
        "volume_guid": vol.metadata.volume_guid,
        "lines": [{**ids(x.protector), "hash_type": int(x.line.hash_type), "line": str(x.line)} for x in found.lines],
        "format": found.tool.value,
        "left_out": [{**ids(x.protector), "reason": x.reason} for x in found.left_out],
        "integrity": integrity_records(vol),
    }


# --- check-key, recover ----------------------------------------------------------------------------


def check_key_document(verdicts: list[GroupVerdict]) -> dict[str, Any]:
    """Each group of a key as typed: valid or not, and the valid groups one digit or one adjacent
    transposition away (the key is the user's own text: no secret is added to it)."""
    return {
        "valid": all(v.valid for v in verdicts),
        "failing_groups": [v.index for v in verdicts if not v.valid],
        "groups": [{"group": v.index, "text": v.text, "valid": v.valid, "corrections": v.corrections,
                    "transpositions": v.transpositions} for v in verdicts],
    }


def recover_document(result: SearchResult, shard: str, show_keys: bool) -> dict[str, Any]:
    """What a search found (masked unless ``show_keys``) and what it cost."""
    from .keys import mask
    from .recovery_password import RecoveryPassword

    found = RecoveryPassword.from_key16(result.key16) if result.key16 is not None else None
    target = result.target
    return {
        "found": found is not None,
        "recovery_password": (str(found) if show_keys else mask(found)) if found else None,
        "protector_id": target.protector.guid if target and target.protector else None,
        "key_id": target.protector.key_id if target and target.protector else None,
        "candidates_tried": result.tried,
        "space_size": result.space_size,
        "shard": shard,
        "shard_size": result.shard_size,
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 3),
        "rate": round((result.tried - result.resumed_from) / result.seconds, 1) if result.seconds > 0 else None,
    }


# --- mount -----------------------------------------------------------------------------------------


def mount_document(vol: BitLockerVolume, r: UnlockResult, mounted: Mounted) -> dict[str, Any]:
    """The verify fields (never the keys: a mount has no --show-keys), then where the plaintext
    is served: the mount point, the one file in it, and the process serving it."""
    d = verify_document(vol, r, show_keys=False)
    d.update(
        {
            "mountpoint": mounted.mountpoint,
            "path": mounted.path,
            "size": mounted.size,
            "foreground": mounted.foreground,
            "pid": mounted.pid,
            "read_only": True,
            "filesystem": mounted.filesystem,
        }
    )
    return d


# --- ls, extract -----------------------------------------------------------------------------------


def file_entry_record(e: FileEntry) -> dict[str, Any]:
    """One file or directory inside the volume. Times are ISO 8601: UTC (``Z``) on NTFS and on
    exFAT when it recorded its offset from UTC; FAT's local times carry no zone (it stores none),
    and FAT's access time is a date. ``None`` where the filesystem records no such time."""

    def when(t: Any) -> str | None:
        return None if t is None else t.isoformat().replace("+00:00", "Z")

    return {
        "name": e.name,
        "path": e.path,
        "type": e.type,
        "size": e.size,
        "created": when(e.created),
        "modified": when(e.modified),
        "accessed": when(e.accessed),
        "mft_record": e.mft_record,
    }


def ls_document(source: str, vol: BitLockerVolume, filesystem: str, path: str, recursive: bool,
                entries: list[FileEntry]) -> dict[str, Any]:
    """``ls --json``: where the listing comes from, and its entries (``path`` is the canonical
    spelling of the directory or file listed)."""
    return {
        "source": source,
        "volume_guid": vol.metadata.volume_guid,
        "filesystem": filesystem,
        "path": path,
        "recursive": recursive,
        "entries": [file_entry_record(e) for e in entries],
    }


def extract_document(source: str, vol: BitLockerVolume, filesystem: str, entry: FileEntry, output: str,
                     written: int, sha256: str) -> dict[str, Any]:
    """``extract --json``: the file copied out, where to, and the digest of what was written."""
    return {
        "source": source,
        "volume_guid": vol.metadata.volume_guid,
        "filesystem": filesystem,
        "path": entry.path,
        "output": output,
        "size": written,
        "sha256": sha256,
        "entry": file_entry_record(entry),
    }


# --- unreadable evidence (failing disks) -----------------------------------------------------------

#: What the offsets of an unreadable range mean, spelled once for the summary and the sidecar.
UNREADABLE_OFFSETS = ("offset: volume offset in the source (bytes from the first byte of the BitLocker volume as "
                      "the evidence stores it); evidence_offset: the same bytes as an offset in the evidence; "
                      "output_offset: where they lie in the decrypted output, which holds zeros there")


def unreadable_records(ranges: list[UnreadableRange]) -> list[dict[str, Any]]:
    """Each range that could not be read: ``{"offset", "length", "error", "evidence_offset",
    "output_offset"}`` (see :data:`UNREADABLE_OFFSETS`)."""
    return [r.as_dict() for r in ranges]


def badranges_document(stream: DecryptedStream, output: str, ranges: list[UnreadableRange],
                       hashes: dict[str, str]) -> dict[str, Any]:
    """``OUT.badranges.json``: which parts of the output are zeros because the evidence could not
    be read there, tied to the output by its digests and to the evidence by its volume."""
    v = stream.volume
    return {
        "format": "bitlocker-tools unreadable ranges",
        "version": 1,
        "output": output,
        "source": getattr(v.fh, "name", None) if isinstance(getattr(v.fh, "name", None), str) else v.name,
        "volume": v.name,
        "volume_offset": v.offset,
        "volume_guid": v.metadata.volume_guid,
        "sector_size": stream.sector_size,
        "complete": not ranges,
        "unreadable_bytes": unreadable_total(ranges),
        "offsets": UNREADABLE_OFFSETS,
        "unreadable_ranges": unreadable_records(ranges),
        "hashes": hashes,
    }
