"""The ``bitlocker-tools`` command line (Typer). Thin: parse, call the library, render, map errors.

Exit codes: 0 ok, 1 wrong key or nothing found, 2 usage, 3 bad or unsupported input. Every
command takes ``--json``. Heavy modules are imported inside the commands so that a ``verify``
on a volume image starts fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable, List, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find, inspect, unlock and decrypt BitLocker volumes offline. Evidence is only ever read.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --- shared options ----------------------------------------------------------------------------------

JsonOpt = typer.Option(False, "--json", help="Machine-readable output on stdout.")
VolumeOpt = typer.Option(None, "--volume", "-V", help="Partition number, as `scan` prints it.")
OffsetOpt = typer.Option(None, "--offset", help="Byte offset of the volume inside the disk.")
RecoveryOpt = typer.Option(
    None, "--recovery-password", "-r",
    help="48-digit recovery password; '-' reads stdin, '@FILE' a file (e.g. the Windows .TXT). "
    "Env: BITLOCKER_RECOVERY_PASSWORD.",
)
PasswordOpt = typer.Option(
    None, "--password", "-p", help="User password; '-' reads stdin, '@FILE' a file. Env: BITLOCKER_PASSWORD."
)
BekOpt = typer.Option(None, "--bek", help="Startup/recovery key file (.BEK).")
ClearKeyOpt = typer.Option(False, "--clear-key", help="Use the clear key of a suspended volume.")
VmkOpt = typer.Option(None, "--vmk", help="Volume master key: hex, '-' or '@FILE'.")
FvekOpt = typer.Option(None, "--fvek", help="Full volume encryption key (FVEK[:TWEAK]): hex, '-' or '@FILE'.")
ShowKeysOpt = typer.Option(False, "--show-keys", help="Print the VMK and FVEK (secrets; off by default).")


def _err(message: str) -> None:
    print(f"bitlocker-tools: {message}", file=sys.stderr)


def handle_errors(func: Callable) -> Callable:
    """Turn library exceptions into one line on stderr and the documented exit code.

    With ``--json`` the failure is also a JSON object (:func:`report.failure_document`) on
    stdout, or on stderr when stdout carries the plaintext (``-o -``), so a script always gets a
    document to parse.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..errors import BitLockerError

        def fail(message: str, code: int) -> typer.Exit:
            _err(message)
            if kwargs.get("as_json"):
                from ..report import failure_document

                _emit_json(failure_document(func.__name__, message, code),
                           sys.stderr if kwargs.get("output") == "-" else sys.stdout)
            return typer.Exit(code)

        try:
            return func(*args, **kwargs)
        except BitLockerError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise fail(f"I/O error{where}: {exc.strerror or exc}", 3) from None
        except typer.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
            if os.environ.get("BITLOCKER_TOOLS_DEBUG"):
                raise
            raise fail(f"internal error: {type(exc).__name__}: {exc} (set BITLOCKER_TOOLS_DEBUG=1 for details)",
                       3) from None

    return wrapper


def _emit_json(data: Any, stream: Any = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2)
    stream.write("\n")


def _credentials(recovery_password, password, bek, clear_key, vmk, fvek):
    from ..credentials import collect

    return collect(recovery_password=recovery_password, password=password, bek=bek,
                   clear_key=clear_key, vmk=vmk, fvek=fvek)


def _require_credential(vol, creds) -> None:
    """Every command that unlocks needs a credential, except on a fully decrypted volume."""
    from ..errors import UsageError
    from ..format.constants import EncryptionMethod

    if creds.is_empty() and vol.method != EncryptionMethod.NONE:
        raise UsageError("give a credential: --recovery-password, --password, --bek, --clear-key, --vmk or --fvek")


# --- commands ---------------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        from .. import __version__
        from .._core import backend_name, load

        print(f"bitlocker-tools {__version__} (core: {backend_name(load())})")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and the core in use (native or pure-python)."),
) -> None:
    """Find, inspect, unlock and decrypt BitLocker volumes offline. Evidence is only ever read."""


@app.command()
@handle_errors
def scan(
    sources: List[str] = typer.Argument(..., metavar="SOURCE...", help="Images, devices (\\\\.\\PhysicalDrive0, /dev/sdb) or volume files."),
    as_json: bool = JsonOpt,
) -> None:
    """List every partition and each BitLocker volume's metadata and key protectors."""
    from ..errors import BitLockerError
    from ..report import scan_document, source_record, unreadable_source
    from ..scan import scan as do_scan
    from ..sources import open_source
    from . import render

    reports, errors = [], []
    for path in sources:
        try:
            with open_source(path) as src:
                reports.append(source_record(do_scan(src)))
        except BitLockerError as exc:
            errors.append(exc)
            reports.append(unreadable_source(path, str(exc)))
    doc = scan_document(reports)
    if as_json:
        _emit_json(doc)
    else:
        render.scan(doc)
    for exc in errors:
        _err(str(exc))
    volume_errors = [v for r in reports for v in r["volumes"] if v.get("error")]
    for v in volume_errors:
        _err(v["error"])
    if errors or volume_errors:
        raise typer.Exit(3)
    if not any(v["bitlocker"] for r in reports for v in r["volumes"]):
        if not as_json:
            _err(f"no BitLocker volume found in {', '.join(sources)}")
        raise typer.Exit(1)


@app.command()
@handle_errors
def info(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Everything the metadata says about one volume: every entry, as a tree."""
    from ..report import info_document
    from ..scan import select
    from ..sources import open_source
    from . import render

    with open_source(source) as src:
        vol = select(src, volume, offset)
        data = info_document(vol)
        if as_json:
            _emit_json(data)
        else:
            render.info(vol, data)


@app.command()
@handle_errors
def verify(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    show_keys: bool = ShowKeysOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Prove a credential offline, without decrypting: which protector does it open? Exit 0 yes, 1 no."""
    from ..protectors import unlock
    from ..report import verify_document
    from ..scan import select
    from ..sources import open_source
    from . import render

    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    with open_source(source) as src:
        vol = select(src, volume, offset)
        _require_credential(vol, creds)
        data = verify_document(vol, unlock(vol, creds), show_keys)
        if as_json:
            _emit_json(data)
        else:
            render.verify(data)


@app.command()
@handle_errors
def decrypt(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    output: str = typer.Option(..., "--output", "-o", help="Output file; '-' writes to stdout."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run (OUT.part)."),
    show_keys: bool = ShowKeysOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write the decrypted volume (raw image) to a file or stdout, with SHA-256 and filesystem check."""
    from ..decrypt import decrypt_to
    from ..errors import UsageError
    from ..protectors import unlock
    from ..report import decrypt_document
    from ..scan import select
    from ..sources import open_source
    from ..stream import DecryptedStream
    from . import render

    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    if output != "-" and os.path.abspath(output) == os.path.abspath(source):
        raise UsageError("the output would overwrite the evidence")
    with open_source(source) as src:
        vol = select(src, volume, offset)
        _require_credential(vol, creds)
        result = unlock(vol, creds)
        stream = DecryptedStream(vol, result)
        with render.progress(stream.size, enabled=not as_json or output != "-") as advance:
            done = decrypt_to(stream, output, resume=resume, progress=advance, stdout=sys.stdout.buffer)
        data = decrypt_document(vol, result, done, show_keys)
        if as_json:  # with -o - stdout carries the plaintext: the summary goes to stderr
            _emit_json(data, sys.stderr if output == "-" else sys.stdout)
        else:
            render.decrypt(data)


def main() -> None:
    """Run the CLI. Usage errors (a missing option, an unknown flag) are one line, like every
    other error, instead of Typer's framed box."""
    try:
        from typer._click.exceptions import ClickException  # typer >= 0.26 vendors click
    except ImportError:  # pragma: no cover - older typer with click
        from click.exceptions import ClickException

    try:
        code = app(prog_name="bitlocker-tools", standalone_mode=False)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments at all: the help text
            exc.show()
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        _err(f"{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
