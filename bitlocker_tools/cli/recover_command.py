"""``bitlocker-tools check-key`` and ``recover``: a mistyped or partly known recovery password,
checked offline and searched for (the space: :mod:`bitlocker_tools.search`; the search:
:mod:`bitlocker_tools.recover`). Registered on the app like every command; the library is
imported inside the commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import JsonOpt, OffsetOpt, StrictOpt, VolumeOpt, _emit_json, _err, _warn, app, handle_errors


@app.command("check-key")
@handle_errors
def check_key(
    key: str = typer.Argument(..., metavar="KEY", help="A recovery password as typed: 8 groups of 6 digits."),
    as_json: bool = JsonOpt,
) -> None:
    """Offline, no image: is a recovery password well formed, and which nearby groups are? Exit 0 valid, 2 not."""
    from ..report import check_key_document
    from ..search import check_key as check
    from . import render

    verdicts = check(key)
    doc = check_key_document(verdicts)
    _emit_json(doc) if as_json else render.check_key(doc)
    if not doc["valid"]:
        raise typer.Exit(2)


@app.command()
@handle_errors
def recover(
    source: Optional[str] = typer.Argument(None, metavar="[SOURCE]", help="Image, device or volume file."),
    pattern: str = typer.Option(..., "--pattern", "-P", help="The key as remembered: ? an unknown digit, "
                                "[147] or [1-4] one of a set; dashes optional."),
    hash_line: Optional[str] = typer.Option(None, "--hash", help="Search a $bitlocker$ line (text), or @FILE: "
                                            "every recovery-password line in it, e.g. bitlocker2john's output; "
                                            "instead of the evidence."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    key_id: Optional[str] = typer.Option(None, "--key-id", help="Only the recovery-password protector whose ID "
                                         "starts with this (the recovery screen's Key ID)."),
    typos: int = typer.Option(0, "--typos", min=0, max=6, help="Up to K wrong digits anywhere."),
    swaps: bool = typer.Option(False, "--swaps", help="One adjacent transposition inside one group, somewhere "
                               "in the key (across a dash, or two of them: --typos 2 covers those)."),
    any_order: bool = typer.Option(False, "--any-order", help="The groups in any order."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Cores to use (default: all)."),
    max_time: str = typer.Option("4h", "--max-time", help="Refuse a search estimated to take longer (e.g. 30m, 4h)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted search from its state file."),
    state: Optional[str] = typer.Option(None, "--state", help="The state file (default: recover-<digest>.state "
                                        "in the current directory)."),
    shard: str = typer.Option("1/1", "--shard", help="K/N: search the K-th of N disjoint slices (one per machine)."),
    emit_candidates: bool = typer.Option(False, "--emit-candidates", help="Print the candidates, one per line, "
                                         "for John's --stdin; no search (asking for them is asking to see "
                                         "them: --show-keys is not needed)."),
    show_keys: bool = typer.Option(False, "--show-keys", help="Print the found key in full."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Recover a partly known or mistyped recovery password: exit 0 found, 1 not in the space."""
    from ..errors import UsageError
    from ..recover import parse_duration, parse_shard, search_digest
    from ..search import SearchSpace, key16_text, parse_pattern

    space = SearchSpace(parse_pattern(pattern), typos=typos, swaps=swaps, any_order=any_order)
    space.check()
    shard_kn = parse_shard(shard)
    limit = parse_duration(max_time)
    if emit_candidates:
        if source or hash_line:
            raise UsageError("--emit-candidates prints the space; give no SOURCE or --hash")
        out = sys.stdout
        for keys in space.keys(shard=shard_kn):
            out.write("".join(key16_text(keys[i : i + 16]) + "\n" for i in range(0, len(keys), 16)))
        return
    if (source is None) == (hash_line is None):
        raise UsageError("give SOURCE (with --volume/--offset as needed) or --hash LINE, one of them")
    with _targets(source, hash_line, volume, offset, key_id, strict) as (targets, name):
        state_path = Path(state) if state else Path(f"recover-{search_digest(space, targets, shard_kn)[:12]}.state")
        _run(space, targets, name, shard_kn, state_path, resume, workers, limit, show_keys, as_json, shard)


def _run(space, targets, name, shard_kn, state_path, resume, workers, limit, show_keys, as_json, shard_text) -> None:
    from ..errors import InterruptedWork, UsageError
    from ..recover import run_search, shard_size
    from ..report import recover_document
    from . import render

    size = space.size()
    mine = shard_size(size, shard_kn)
    _err(f"searching {mine:,} candidates" + (f" (shard {shard_text} of {size:,})" if shard_kn != (1, 1) else "")
         + f" against {len(targets)} protector{'s' if len(targets) > 1 else ''} of {name}")

    def budget(rate: float, left: int) -> None:
        """Called with the calibrated rate (all protectors) before anything is tried."""
        seconds = left / max(rate, 1e-9)
        if seconds > limit:
            raise UsageError(
                f"the search would take about {_duration(seconds)} at this machine's {rate:.0f} candidates/s "
                f"({left:,} left), more than --max-time {_duration(limit)}: narrow the pattern, split it with "
                "--shard K/N over machines, or export the protector with `bitlocker-tools hash` and run it on GPUs "
                "(--emit-candidates streams the candidates to John)")
        _err(f"{left:,} candidates at {rate:.0f}/s on this machine: about {_duration(seconds)} at most")

    try:
        with render.progress(mine, enabled=not as_json, label="recovery passwords", unit="candidates") as advance:
            result = run_search(space, targets, shard_kn, state_path, resume, workers, progress=advance,
                                budget=budget, size=size, keep_state=True)
    except KeyboardInterrupt:
        kept = (f"{state_path} records where the search is; --resume continues it" if state_path.exists()
                else "nothing was recorded yet")
        raise InterruptedWork(f"interrupted: {kept}") from None
    doc = recover_document(result, shard_text, show_keys)
    _emit_json(doc) if as_json else render.recover(doc)
    state_path.unlink(missing_ok=True)  # only now: killed before, --resume redoes the last chunk, not all
    if result.key16 is None:
        raise typer.Exit(1)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class _targets:
    """The protectors to search: the volume's (opened from the evidence, read-only) or a hash line's."""

    def __init__(self, source, hash_line, volume, offset, key_id, strict):
        self.args = (source, hash_line, volume, offset, key_id, strict)
        self.src = None

    def __enter__(self):
        source, hash_line, volume, offset, key_id, strict = self.args
        from ..recover import hash_targets, volume_targets

        if hash_line is not None:
            from ..credentials import decode_text, read_secret
            from ..hashline import parse

            if not hash_line.startswith("@"):
                return hash_targets([parse(hash_line)]), "the hash line"
            from ..errors import BadInputError
            from ..hashline import TAG

            text = decode_text(read_secret(hash_line, "hash file"))
            # bitlocker2john interleaves "Hash type: ..." captions; John's files may prefix "name:"
            lines = [ln for ln in text.splitlines() if TAG in ln]
            if not lines:
                raise BadInputError(f"{hash_line[1:]}: no $bitlocker$ line")
            targets = hash_targets([parse(ln) for ln in lines])
            return targets, f"{hash_line[1:]} ({len(lines)} line{'s' if len(lines) > 1 else ''})"
        from ..scan import select
        from ..sources import open_source

        self.src = open_source(source)
        vol = select(self.src, volume, offset, strict)
        _warn(*vol.warnings)
        return volume_targets(vol, key_id), vol.name

    def __exit__(self, *exc):
        if self.src is not None:
            self.src.close()
