"""Rendering for people (Rich) and the JSON dictionaries of ``info``, ``verify`` and ``decrypt``.

Secrets (VMK, FVEK) appear only when the user passes ``--show-keys``. Progress goes to stderr,
and so does the summary of ``decrypt -o -``, which keeps stdout for the plaintext.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..decrypt import DecryptResult
from ..metadata import (
    AesCcmValue,
    Entry,
    ExternalKeyValue,
    KeyValue,
    OffsetSizeValue,
    RawValue,
    StretchKeyValue,
    TpmValue,
    UnicodeValue,
    UseKeyValue,
    VmkValue,
)
from ..format.constants import ProtectorType
from ..protectors import UnlockResult
from ..scan import VolumeReport, iso_utc, volume_report_dict
from ..volume import BitLockerVolume

if TYPE_CHECKING:
    from rich.console import Console
    from rich.tree import Tree

# Rich is imported when something is printed for a person, not for --json (it costs ~50 ms).


def _console(stream) -> Console:
    """A Console on ``stream``; when that is not a terminal, lines are never wrapped (a log or a
    pipe gets one line per message, as grep expects)."""
    from rich.console import Console

    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, soft_wrap=True, width=4096)


def _out() -> Console:
    return _console(sys.stdout)


def _err() -> Console:
    return _console(sys.stderr)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# --- scan -----------------------------------------------------------------------------------------


def scan(reports: list[dict[str, Any]]) -> None:
    con = _out()
    for src in reports:
        con.print(f"[bold]{src['path']}[/bold]" + (f"  ({src.get('kind')}, {_size(src.get('size'))})" if "kind" in src else ""))
        if src.get("error"):
            con.print(f"  [red]error:[/red] {src['error']}")
            continue
        for v in src["volumes"]:
            label = "whole source" if v["partition"] is None else f"partition {v['partition']}"
            where = f"{label}  offset {v['offset']}  size {v['size']} ({_size(v['size'])})"
            if not v["bitlocker"]:
                con.print(f"  {where}  [dim]not BitLocker[/dim]" + (f"  [red]{v['error']}[/red]" if v.get("error") else ""))
                continue
            if v.get("error"):
                con.print(f"  {where}  [red]BitLocker, damaged:[/red] {v['error']}")
                continue
            con.print(f"  {where}  [bold green]BitLocker[/bold green] (metadata v{v['metadata_version']}, {v['variant']})")
            state = v["state"] + (f", {v['percent_encrypted']}% encrypted, next {v['next_state']}" if "percent_encrypted" in v else "")
            rows = [("method", v["encryption_method"]), ("state", state + ("  (used space only)" if v["used_space_only"] else "")),
                    ("volume GUID", v["volume_guid"]), ("description", v["description"] or "-"),
                    ("created", v["creation_time"] or "-")]
            for k, val in rows:
                con.print(f"    {k:<12} {val}")
            con.print("    protectors" + ("   (none)" if not v["protectors"] else ""))
            for p in v["protectors"]:
                note = "  [yellow]needs the TPM[/yellow]" if p["needs_tpm"] else ""
                if p["type"] == ProtectorType.CLEAR_KEY.value:
                    note = "  [yellow]clear key: protection suspended, no credential needed[/yellow]"
                con.print(f"      Key ID {p['key_id']}  {p['type']:<18} {p['id']}{note}")
            for c in v["metadata_copies"]:
                if not c["valid"]:
                    con.print(f"    [yellow]metadata copy at {c['offset']:#x} unusable: {c.get('error')}[/yellow]")


# --- info -------------------------------------------------------------------------------------------


def _value_text(e: Entry) -> str:
    v = e.value
    if isinstance(v, KeyValue):
        return f"method {v.method:#06x}, {len(v.key)}-byte key"
    if isinstance(v, UnicodeValue):
        return repr(v.text)
    if isinstance(v, StretchKeyValue):
        return f"method {v.method:#06x}, salt {v.salt.hex()}"
    if isinstance(v, UseKeyValue):
        return f"method {v.method:#06x}"
    if isinstance(v, AesCcmValue):
        return f"nonce {iso_utc(v.nonce_time)} #{v.nonce_counter}, {len(v.data)} bytes"
    if isinstance(v, VmkValue):
        return f"{v.guid}  protection {v.protection:#06x} ({ProtectorType.from_code(v.protection).value}), created {iso_utc(v.creation_time)}"
    if isinstance(v, ExternalKeyValue):
        return f"{v.guid}, created {iso_utc(v.creation_time)}"
    if isinstance(v, OffsetSizeValue):
        return f"offset {v.offset:#x}, size {v.size}"
    if isinstance(v, TpmValue):
        return f"TPM blob, {len(v.blob)} bytes"
    if isinstance(v, RawValue):
        return f"{len(v.data)} bytes: {v.data[:16].hex()}{'…' if len(v.data) > 16 else ''}"
    return ""


def _entry_dict(e: Entry) -> dict[str, Any]:
    d: dict[str, Any] = {
        "offset": e.offset,
        "size": e.size,
        "entry_type": e.type_name().lower(),
        "value_type": e.value_name().lower(),
        "version": e.version,
    }
    v = e.value
    if isinstance(v, KeyValue):
        d["method"] = v.method
        d["key_size"] = len(v.key)
    elif isinstance(v, UnicodeValue):
        d["text"] = v.text
    elif isinstance(v, StretchKeyValue):
        d.update(method=v.method, salt=v.salt.hex())
    elif isinstance(v, UseKeyValue):
        d["method"] = v.method
    elif isinstance(v, AesCcmValue):
        d.update(nonce=v.nonce.hex(), mac=v.mac.hex(), data_size=len(v.data))
    elif isinstance(v, VmkValue):
        d.update(guid=v.guid, protection=v.protection, creation_time=iso_utc(v.creation_time))
    elif isinstance(v, ExternalKeyValue):
        d.update(guid=v.guid, creation_time=iso_utc(v.creation_time))
    elif isinstance(v, OffsetSizeValue):
        d.update(offset_value=v.offset, size_value=v.size, extra=v.extra.hex())
    elif isinstance(v, TpmValue):
        d["blob_size"] = len(v.blob)
    elif isinstance(v, RawValue):
        d["data"] = v.data.hex()
    if e.children:
        d["children"] = [_entry_dict(c) for c in e.children]
    return d


def info_dict(vol: BitLockerVolume) -> dict[str, Any]:
    md = vol.metadata
    report = volume_report_dict(VolumeReport(None, vol.offset, vol.size, True, vol))
    report.update(
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
            "entries": [_entry_dict(e) for e in md.entries],
            "validation_entry": _entry_dict(md.validation_entry) if md.validation_entry else None,
            "reserved_regions": [{"offset": o, "size": s} for o, s in vol.reserved_regions()],
        }
    )
    if vol.eow is not None:
        report["eow"] = {
            "offset": vol.eow.offset,
            "chunk_size": vol.eow.chunk_size,
            "bitmaps": [
                {"region_offset": b.region_offset, "region_size": b.region_size,
                 "chunks": b.bit_count,
                 "encrypted_chunks": sum(b.is_encrypted(i) for i in range(b.bit_count))}
                for b in vol.eow.bitmaps
            ],
        }
    return report


def _add_entry(tree: Tree, e: Entry) -> None:
    node = tree.add(f"[bold]{e.type_name()}[/bold] {e.value_name()} @{e.offset:#x} ({e.size} B, v{e.version}): {_value_text(e)}")
    for c in e.children:
        _add_entry(node, c)


def info(vol: BitLockerVolume, data: dict[str, Any]) -> None:
    from rich.tree import Tree

    con = _out()
    md = vol.metadata
    root = Tree(f"[bold]{vol.name}[/bold] at offset {vol.offset}, {_size(vol.size)}")
    general = root.add("volume")
    for key in ("variant", "metadata_version", "encryption_method", "state", "next_state", "volume_guid",
                "description", "creation_time", "sector_size", "encrypted_size", "used_space_only"):
        general.add(f"{key}: {data.get(key)}")
    copies = root.add("metadata copies")
    for c in vol.copies:
        copies.add(f"{c.offset:#x}: {'valid' if c.valid else 'UNUSABLE: ' + str(c.error)}")
    header = root.add(f"block header (copy at {md.offset:#x})")
    for k, v in data["block_header"].items():
        header.add(f"{k}: {v}")
    prot = root.add("key protectors")
    for p in md.protectors:
        prot.add(f"Key ID {p.key_id}  {p.type.value}  {p.guid}  created {iso_utc(p.creation_time)}"
                 + ("  (needs the TPM)" if p.type.needs_tpm else ""))
    entries = root.add("entries")
    for e in md.entries:
        _add_entry(entries, e)
    if md.validation_entry is not None:
        _add_entry(root.add("validation"), md.validation_entry)
    regions = root.add("regions read as zeros")
    for o, s in vol.reserved_regions():
        regions.add(f"{o:#x} +{s:#x}")
    if vol.eow is not None:
        eow = root.add(f"encrypt-on-write (chunk {_size(vol.eow.chunk_size)})")
        for b in data["eow"]["bitmaps"]:
            eow.add(f"region {b['region_offset']:#x} +{b['region_size']:#x}: {b['encrypted_chunks']}/{b['chunks']} chunks encrypted")
    con.print(root)


# --- verify / decrypt --------------------------------------------------------------------------------


def verify_dict(vol: BitLockerVolume, r: UnlockResult, show_keys: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "unlocked": True,
        "protector_id": r.protector.guid if r.protector else None,
        "protector_type": r.protector.type.value if r.protector else r.via,
        "key_id": r.protector.key_id if r.protector else None,
        "via": r.via,
        "encryption_method": r.method.label,
        "metadata_validated": r.metadata_validated,
        "volume_guid": vol.metadata.volume_guid,
    }
    if show_keys:
        d["vmk"] = r.vmk.hex() if r.vmk else None
        d["fvek"] = r.key.hex() if r.key else None
    return d


def verify(data: dict[str, Any]) -> None:
    con = _out()
    if data["encryption_method"] == "NONE" and not data["protector_id"]:
        con.print("[green]OK[/green]: the volume is not encrypted (BitLocker was turned off; its metadata "
                  "remains, with no key protector): no key is needed")
    elif data["protector_id"]:
        con.print(f"[green]OK[/green]: the {data['via'].replace('_', ' ')} opens protector {data['protector_id']} "
                  f"(Key ID {data['key_id']}, {data['protector_type']})")
    else:
        con.print(f"[green]OK[/green]: the {data['via'].upper()} decrypts this volume ({data['encryption_method']})")
    if data["metadata_validated"] is False:
        con.print("[yellow]warning: the metadata's authenticated validation does not match (tampered or mixed copies)[/yellow]")
    for k in ("vmk", "fvek"):
        if data.get(k):
            con.print(f"{k.upper()}: {data[k]}")


def decrypt_dict(vol: BitLockerVolume, r: UnlockResult, done: DecryptResult, show_keys: bool) -> dict[str, Any]:
    d = verify_dict(vol, r, show_keys)
    d.update(
        {
            "output": done.output,
            "bytes_written": done.bytes_written,
            "sha256": done.sha256,
            "filesystem": done.filesystem,
            "missing_bytes": done.missing_bytes,
            "declared_size": vol.declared_size,
            "resumed_from": done.resumed_from,
        }
    )
    return d


def decrypt(data: dict[str, Any]) -> None:
    con = _err() if data["output"] == "-" else _out()  # stdout may carry the plaintext
    con.print(f"wrote {data['bytes_written']} bytes to {data['output']}")
    con.print(f"SHA-256 {data['sha256']}")
    con.print(f"filesystem: {data['filesystem'] or '[yellow]none recognised[/yellow] (wrong FVEK, or not NTFS/FAT/exFAT/ReFS)'}")
    if data["declared_size"] and data["declared_size"] > data["bytes_written"]:
        con.print(f"[yellow]the image ends early: the metadata describes {data['declared_size']} bytes, "
                  f"{data['declared_size'] - data['bytes_written']} are missing from the evidence[/yellow]")
    if data["missing_bytes"]:
        con.print(f"[yellow]{data['missing_bytes']} bytes of relocated sectors lie beyond the evidence and read as zeros[/yellow]")
    for k in ("vmk", "fvek"):
        if data.get(k):
            con.print(f"{k.upper()}: {data[k]}")


@contextlib.contextmanager
def progress(total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr with rate and ETA; silent when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=_err(), transient=True) as bar:
        task = bar.add_task("decrypting", total=total)
        yield lambda n: bar.advance(task, n)
