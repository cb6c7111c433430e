"""``bitlocker-tools ls`` and ``extract``: the files inside an unlocked volume, read straight from
the decrypted stream (:mod:`bitlocker_tools.files`), without writing a decrypted image or
mounting anything. Registered on the app when ``cli/__init__.py`` imports this module; the
library is imported inside the commands."""

from __future__ import annotations

import hashlib
import os
import sys
from typing import List, Optional

import typer

from . import (
    BekOpt,
    ClearKeyOpt,
    FvekOpt,
    JsonOpt,
    OffsetOpt,
    PasswordOpt,
    RecoveryOpt,
    StrictOpt,
    VmkOpt,
    VolumeOpt,
    _credentials,
    _emit_json,
    _unlocked,
    app,
    handle_errors,
)


@app.command("ls")
@handle_errors
def ls(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    path: str = typer.Argument("/", metavar="[PATH]", help="Directory (or file) inside the volume: / or \\ "
                               "separated, case-insensitive. Default: the root."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    recursive: bool = typer.Option(False, "--recursive", "-R", help="Also every subdirectory's entries."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List the files of the unlocked volume's filesystem (NTFS, FAT12/16/32, exFAT): size, times, MFT record."""
    from ..files import VolumeFiles
    from ..report import ls_document
    from ..stream import DecryptedStream
    from . import render

    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    with _unlocked(source, volume, offset, creds, strict) as (vol, result):
        files = VolumeFiles(DecryptedStream(vol, result), vol.name)
        listed, entries = files.list(path, recursive=recursive)
        doc = ls_document(source, vol, files.filesystem, listed.path, recursive, entries)
        if as_json:
            _emit_json(doc)
        else:
            render.ls(doc)


@app.command("extract")
@handle_errors
def extract(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    path: str = typer.Argument(..., metavar="PATH", help="File inside the volume: / or \\ separated, "
                               "case-insensitive."),
    output: str = typer.Option(..., "--output", "-o", help="Output file (must not exist); '-' writes to stdout."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Copy one file out of the unlocked volume, byte for byte, with its size and SHA-256."""
    from ..errors import UsageError
    from ..files import VolumeFiles
    from ..outputs import write_new_file_from
    from ..report import extract_document
    from ..stream import DecryptedStream
    from . import render

    if output != "-" and os.path.lexists(output):  # before a key is stretched (the evidence exists, too)
        raise UsageError(f"{output}: exists; remove it or choose another output")
    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    with _unlocked(source, volume, offset, creds, strict) as (vol, result):
        files = VolumeFiles(DecryptedStream(vol, result), vol.name)
        entry, fh = files.open(path)
        digest, written = hashlib.sha256(), 0

        def chunks():  # a short read raises inside: write_new_file_from then leaves nothing at OUT
            nonlocal written
            for data in files.read_chunks(entry, fh):
                digest.update(data)
                written += len(data)
                yield data

        if output == "-":
            out = sys.stdout.buffer
            for data in chunks():
                out.write(data)
            out.flush()
        else:
            write_new_file_from(output, chunks(), secret=False)
        doc = extract_document(source, vol, files.filesystem, entry, output, written, digest.hexdigest())
        if as_json:  # with -o - stdout carries the file: the summary goes to stderr
            _emit_json(doc, sys.stderr if output == "-" else sys.stdout)
        else:
            render.extract(doc)
