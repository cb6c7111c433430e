"""``bitlocker-tools mount``: the decrypted volume as one read-only file in a FUSE mount
(:mod:`bitlocker_tools.mount`), for ntfs-3g, The Sleuth Kit, ewfacquire and the like.

Registered on :data:`bitlocker_tools.cli.app` when ``cli/__init__.py`` imports this module; the
library (and mfusepy with it) is imported inside the command.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

from . import (
    AssumeEncryptedOpt,
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
    _warn,
    app,
    handle_errors,
)


@app.command()
@handle_errors
def mount(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    mountpoint: str = typer.Argument(..., metavar="MOUNTPOINT", help="An empty directory."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    name: str = typer.Option("bitlocker.img", "--name", help="The file's name inside the mount."),
    foreground: bool = typer.Option(
        False, "--foreground", "-f",
        help="Serve in this process until Ctrl-C, SIGTERM or fusermount3 -u (default: return once mounted, "
        "serving in the background)."),
    assume_encrypted: bool = AssumeEncryptedOpt,
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Mount the decrypted volume as one read-only file (FUSE) for ntfs-3g, The Sleuth Kit, ewfacquire."""
    from ..mount import VolumeFile, check_mountpoint, check_name, describe, load_fuse, mount_in_background, serve
    from ..report import mount_document
    from ..stream import DecryptedStream

    where = check_mountpoint(mountpoint)  # exit 2, before a key is stretched
    check_name(name)
    load_fuse()  # exit 3 with a hint, likewise
    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    # the warnings are said before serving (below), not once the mount is gone
    with _unlocked(source, volume, offset, creds, strict, warn=False) as (vol, result):
        stream = DecryptedStream(vol, result, assume_encrypted=assume_encrypted)
        fs = VolumeFile(stream, name)

        def say(mounted) -> None:
            try:
                if as_json:
                    _emit_json(mount_document(vol, result, mounted))
                else:
                    how = ("Ctrl-C or" if mounted.foreground else "") + f" fusermount3 -u {mounted.mountpoint}"
                    print(f"{mounted.path}: {vol.name} decrypted, {mounted.size} bytes, read-only"
                          f"{f' ({mounted.filesystem})' if mounted.filesystem else ''}; unmount with {how.strip()}")
                sys.stdout.flush()
            except BrokenPipeError:  # nobody reads the summary (| head): the mount serves all the same
                pass

        if not foreground:
            pid = mount_in_background(fs, where)
            _warn(*vol.warnings, *result.warnings)
            say(describe(fs, False, pid))
            return

        def ready() -> None:
            _warn(*vol.warnings, *result.warnings)
            say(describe(fs, True, os.getpid()))

        fs.on_ready = ready
        serve(fs, where)
