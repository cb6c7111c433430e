"""``bitlocker-tools hash``: the volume's password and recovery-password protectors as
``$bitlocker$`` lines for John the Ripper and hashcat (the layout: :mod:`bitlocker_tools.hashline`).

Registered on :data:`bitlocker_tools.cli.app` when ``cli/__init__.py`` imports this module; like
the other commands it imports the library inside the command, so loading it costs nothing.
"""

from __future__ import annotations

import enum
from typing import Optional

import typer

from . import JsonOpt, OffsetOpt, StrictOpt, VolumeOpt, _emit_json, _err, _warn, app, handle_errors


class HashFormat(str, enum.Enum):
    """``--format``: the spelling of :class:`bitlocker_tools.hashline.Tool`, kept here so that the
    CLI's start-up does not import the library."""

    john = "john"
    hashcat = "hashcat"


# Named ``hash`` (shadowing the builtin here only) because handle_errors hands the function's
# name to report.failure_document as the command's.
@app.command("hash")
@handle_errors
def hash(  # noqa: A001
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    tool: HashFormat = typer.Option(
        HashFormat.john, "--format", case_sensitive=False,
        help="john: every password and recovery-password line; hashcat (-m 22100): password lines only."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Password and recovery-password protectors as $bitlocker$ hash lines for John the Ripper or hashcat."""
    from ..errors import NotFoundError
    from ..format.constants import ProtectorType
    from ..hashline import EXPORTABLE, export
    from ..scan import select
    from ..sources import open_source

    with open_source(source) as src:
        vol = select(src, volume, offset, strict)
        found = export(vol.metadata, tool.value)
    _warn(*vol.warnings)
    if not found.lines:
        protectors = vol.metadata.protectors
        if not any(p.type in EXPORTABLE for p in protectors):
            has = ", ".join(f"{p.type.value} {p.key_id}" for p in protectors) or "none"
            raise NotFoundError(f"{vol.name}: no password or recovery-password protector (volume has: {has})")
        reasons = "; ".join(f"{x.protector.type.value} {x.protector.key_id}: {x.reason}" for x in found.left_out)
        hint = " (--format john exports recovery passwords)" if tool == HashFormat.hashcat else ""
        raise NotFoundError(f"{vol.name}: no hash line for {tool.value}: {reasons}{hint}")
    if as_json:
        from ..report import hash_document

        _emit_json(hash_document(vol, found))
    else:
        for x in found.lines:
            print(x.line)
    # hashcat's recovery passwords: one note; anything else left out (damage): a warning each
    skipped = [x for x in found.left_out
               if tool == HashFormat.hashcat and x.protector.type == ProtectorType.RECOVERY_PASSWORD]
    if skipped:
        n = len(skipped)
        _err(f"note: {n} recovery-password protector{'s' if n > 1 else ''} left out "
             f"({', '.join(x.protector.key_id for x in skipped)}): hashcat's mode 22100 takes user passwords "
             "only; --format john exports them")
    _warn(*(f"{x.protector.type.value} {x.protector.key_id}: {x.reason}" for x in found.left_out if x not in skipped))
