"""Drawing for people (Rich): the documents of :mod:`..report`, as tables, trees and lines.

Everything shown here is in the JSON document too; this module only chooses words and layout,
and builds no document of its own. Secrets (VMK, FVEK) appear only when the document carries them
(``--show-keys``). Progress goes to stderr, and so does the summary of ``decrypt -o -``, which
keeps stdout for the plaintext.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..format.constants import ProtectorType
from ..format.types import iso_utc
from ..metadata import Entry
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


def scan(doc: dict[str, Any]) -> None:
    con = _out()
    for src in doc["sources"]:
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
                note += "".join(f"  {_backup_text(b)}" for b in p.get("backup", []))
                con.print(f"      Key ID {p['key_id']}  {p['type']:<18} {p['id']}{note}")
            for c in v["metadata_copies"]:
                if not c["valid"]:
                    con.print(f"    [yellow]metadata copy at {c['offset']:#x} unusable: {c.get('error')}[/yellow]")


# --- info -------------------------------------------------------------------------------------------


def _add_entry(tree: Tree, e: Entry) -> None:
    from rich.markup import escape

    node = tree.add(f"[bold]{e.type_name()}[/bold] {e.value_name()} @{e.offset:#x} ({e.size} B, v{e.version}): "
                    f"{escape(e.value.summary())}")
    for c in e.children:
        _add_entry(node, c)


def info(vol: BitLockerVolume, data: dict[str, Any]) -> None:
    """The info document as a tree; entries are drawn from the volume, whose values summarise
    themselves."""
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


def decrypt(data: dict[str, Any]) -> None:
    con = _err() if data["output"] == "-" else _out()  # stdout may carry the plaintext
    holes = f" ({data['sparse_bytes']} of them as holes)" if data.get("sparse_bytes") else ""
    con.print(f"wrote {data['bytes_written']} bytes to {data['output']}{holes}")
    names = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5"}
    for name, value in data.get("hashes", {}).items():
        con.print(f"{names.get(name, name)} {value}")
    why = ("its first sectors lie beyond the evidence" if data["missing_bytes"]
           else "wrong FVEK, or not NTFS/FAT/exFAT/ReFS")
    con.print(f"filesystem: {data['filesystem'] or f'[yellow]none recognised[/yellow] ({why})'}")
    if data["declared_size"] and data["declared_size"] > data["bytes_written"]:
        con.print(f"[yellow]the image ends early: the metadata describes {data['declared_size']} bytes, "
                  f"{data['declared_size'] - data['bytes_written']} are missing from the evidence[/yellow]")
    if data["missing_bytes"]:
        con.print(f"[yellow]{data['missing_bytes']} bytes of relocated sectors lie beyond the evidence and read as zeros[/yellow]")
    for r in data.get("uncertain_ranges", []):
        con.print(f"[yellow]uncertain: {r['size']} bytes at offset {r['offset']} were decrypted as if every chunk held "
                  "ciphertext (--assume-encrypted)[/yellow]")
    for k in ("vmk", "fvek"):
        if data.get(k):
            con.print(f"{k.upper()}: {data[k]}")


def _backup_text(b: dict[str, Any]) -> str:
    where = " and ".join(d.replace("_", " ") for d in b["destinations"])
    return f"backed up to {where}" + (f" on {b['backup_time'][:10]}" if b.get("backup_time") else "")


def keys(data: dict[str, Any]) -> None:
    """The keys document: how the volume was opened, its protectors, the recovered passwords."""
    con = _out()
    opened = data["opened_with"]
    how = opened["via"].replace("_", " ")
    con.print(f"opened with the {how}" + (f" (protector {opened['protector_id']})" if opened["protector_id"] else "")
              + f"; {data['encryption_method']}, volume {data['volume_guid']}")
    con.print("protectors" + ("   (none)" if not data["protectors"] else ""))
    for p in data["protectors"]:
        notes = ["[green]opened[/green]"] if p["opened"] else []
        if p["needs_tpm"]:
            notes.append("[yellow]needs the TPM[/yellow]")
        notes += [_backup_text(b) for b in p.get("backup", [])]
        con.print(f"  Key ID {p['key_id']}  {p['type']:<18} {p['id']}  created {p['creation_time'] or '-'}"
                  + ("  " + ", ".join(notes) if notes else ""))
    if data["recovery_passwords"]:
        con.print("recovery passwords" + ("" if any(r["recovery_password"] and "*" not in r["recovery_password"]
                                                    for r in data["recovery_passwords"]) else "  (masked; --show-keys prints them)"))
    for r in data["recovery_passwords"]:
        value = r["recovery_password"] or f"[yellow]not recovered: {r.get('note')}[/yellow]"
        con.print(f"  Key ID {r['key_id']}  {value}")
    if data["opened_with"]["via"] != "none":
        for k in ("vmk", "fvek"):
            con.print(f"{k.upper():<5} {data[k] if data.get(k) else '(hidden; --show-keys prints it)'}")
    if data.get("exported_fvek"):
        con.print(f"FVEK file (dislocker -k) written to {data['exported_fvek']}")
    if data.get("keychain"):
        con.print(f"keychain ({data['keychain_rows']} rows, target-query -K) written to {data['keychain']}")


@contextlib.contextmanager
def progress(total: int, enabled: bool = True, label: str = "decrypting",
             unit: str | None = None) -> Iterator[Callable[..., None]]:
    """A Rich progress bar on stderr with rate and ETA; silent when stderr is not a terminal.
    ``unit`` None counts bytes; otherwise counts of ``unit`` (e.g. "candidates"). The callable it
    gives advances the bar by ``n``; ``total=`` (re)sets its length once that is known;
    ``completed=`` sets where work starts (a resumed search) and starts the clock there, so
    that rate and ETA are of this run's work, shown from its first advance."""
    if not enabled or not sys.stderr.isatty():  # before importing Rich's progress: 0.1 s of a short run
        yield lambda n, total=None, completed=None: None
        return
    import time

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    mark = {"time": time.monotonic(), "done": 0}  # where this run's clock starts

    def rate(task) -> float | None:
        seconds = time.monotonic() - mark["time"]
        done = task.completed - mark["done"]
        return done / seconds if done > 0 and seconds > 0 else None

    class Rate(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[override]
            r = rate(task)
            return Text(f"{r:.1f} {unit}/s" if r else f"- {unit}/s")

    class Eta(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[override]
            r = rate(task)
            if not r or task.total is None:
                return Text("-:--:--")
            left = int(max(0.0, task.total - task.completed) / r)
            return Text(f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}")

    columns = ([DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()] if unit is None
               else [MofNCompleteColumn(), Rate(), Eta()])
    with Progress("[progress.description]{task.description}", BarColumn(), *columns,
                  console=_err(), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int, total: int | None = None, completed: int | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            if completed is not None:
                bar.update(task, completed=completed)
                mark.update(time=time.monotonic(), done=completed)
            bar.advance(task, n)

        yield advance


def match(data: dict[str, Any]) -> None:
    """The match document: each volume and its key, then what else the escrow holds."""
    con = _out()
    by_volume = {(m["source"], m["offset"]): m for m in data["matches"]}
    locked = {(v["source"], v["offset"]): v for v in data["locked_volumes"]}
    for v in data["volumes"]:
        where = f"{v['source']}" + (f" partition {v['partition']}" if v["partition"] is not None else "")
        m = by_volume.get((v["source"], v["offset"]))
        if m:
            src = m["key_source"]
            at = src.get("line") or src.get("row") or src.get("dn") or src.get("json_path")
            key = m["key"]
            con.print(f"[green]opened[/green]  {where}: {m['protector_type']} {m['protector_id'] or ''} "
                      f"by {m['matched_by'].replace('_', ' ')}, key from {src['file']}"
                      + (f" ({at})" if at else "") + (f": {key['recovery_password']}" if "recovery_password" in key else ""))
        elif v["status"] == "no_key_needed":
            con.print(f"[green]open[/green]    {where}: no key needed (suspended or decrypted)")
        else:
            con.print(f"[red]locked[/red]  {where} ({v['description'] or 'no description'})")
            for p in locked.get((v["source"], v["offset"]), {}).get("protectors", []):
                hints = "".join(f", {_backup_text(b)}" for b in p.get("backup", []))
                con.print(f"          Key ID {p['key_id']}  {p['type']}{hints}")
    sections = [("stale", "stale keys (the identifier matches, the key does not, or older than the volume)"),
                ("unmatched_keys", "keys that match nothing"), ("malformed", "malformed keys"),
                ("duplicates", "the same key in several places"), ("conflicts", "one identifier, different keys")]
    for key, title in sections:
        if data[key]:
            con.print(f"{title}: {len(data[key])}")
    for r in data["malformed"][:20]:
        src = r["key_source"]
        why = r.get("defect") or f"groups {r['bad_groups']} fail the check"
        con.print(f"  {src['file']} line {src.get('line', src.get('row', '?'))}: {why}")
    for problem in data["problems"][:20]:
        con.print(f"[yellow]unreadable:[/yellow] {problem['key_source']['file']}: {problem['error']}")
    if data["try_all"]["skipped_because"]:
        con.print(f"[yellow]not tried:[/yellow] {data['try_all']['skipped_because']}")


def key_id(data: dict[str, Any]) -> None:
    con = _out()
    for r in data["keys"]:
        src = r["key_source"]
        state = "valid" if "bad_groups" not in r else f"groups {r['bad_groups']} fail the check"
        con.print(f"{r.get('key_id')}  {r.get('recovery_password', '(not a recovery password)')}  "
                  f"{r.get('computer_name', '-')}  {r.get('created_at', '-')}  {state}  {src['file']}")
    if data["ambiguous"]:
        con.print(f"[yellow]{len(data['keys'])} keys share the Key ID {data['key_id']}: give more digits of the "
                  "identifier to tell them apart[/yellow]")


def check_key(data: dict[str, Any]) -> None:
    con = _out()
    if data["valid"]:
        con.print("[green]valid[/green]: every group passes its check (whether it opens a volume, only the volume can say)")
        return
    con.print(f"[red]invalid[/red]: group{'s' if len(data['failing_groups']) > 1 else ''} "
              f"{', '.join(map(str, data['failing_groups']))} fail{'' if len(data['failing_groups']) > 1 else 's'} "
              "the check (a multiple of 11 below 720896)")
    for g in data["groups"]:
        if not g["valid"]:
            con.print(f"  group {g['group']} {g['text']}: one digit off: {', '.join(g['corrections']) or 'none'}; "
                      f"two digits swapped: {', '.join(g['transpositions']) or 'none'}")


def recover(data: dict[str, Any]) -> None:
    con = _out()
    cost = f"{data['candidates_tried']:,} of {data['space_size']:,} candidates tried"
    if data["shard"] != "1/1":
        cost += f" (shard {data['shard']}: {data['shard_size']:,})"
    if data["found"]:
        con.print(f"[green]found[/green]: {data['recovery_password']} opens protector {data['protector_id'] or '(the hash line)'}"
                  f"; {cost}")
    else:
        con.print(f"[yellow]not found[/yellow]: no candidate opens a protector; {cost}")


# --- ls, extract ----------------------------------------------------------------------------------


def ls(data: dict[str, Any]) -> None:
    """The listing as a table: one row per entry; names are shown as stored (never as markup)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    con = _out()
    ntfs = data["filesystem"] == "NTFS"
    title = f"{escape(data['path'])} ({data['filesystem']}{', recursive' if data['recursive'] else ''})"
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("type")
    table.add_column("size", justify="right")
    for name in ("modified", "created", "accessed"):
        table.add_column(name)
    if ntfs:
        table.add_column("MFT record", justify="right")
    table.add_column("path" if data["recursive"] else "name")
    for e in data["entries"]:
        row = ["dir" if e["type"] == "directory" else "file", "-" if e["size"] is None else str(e["size"]),
               e["modified"] or "-", e["created"] or "-", e["accessed"] or "-"]
        if ntfs:
            row.append(str(e["mft_record"]))
        table.add_row(*row, Text(e["path"] if data["recursive"] else e["name"]))
    con.print(table)
    files = sum(e["type"] == "file" for e in data["entries"])
    dirs = len(data["entries"]) - files
    con.print(f"{files} file{'' if files == 1 else 's'}, {dirs} director{'y' if dirs == 1 else 'ies'}")


def extract(data: dict[str, Any]) -> None:
    from rich.markup import escape

    con = _err() if data["output"] == "-" else _out()  # stdout may carry the file
    con.print(f"wrote {data['size']} bytes of {escape(data['path'])} to {escape(data['output'])}")
    con.print(f"SHA-256 {data['sha256']}")
