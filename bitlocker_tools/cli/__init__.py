"""The ``bitlocker-tools`` command line (Typer). Thin: parse, call the library, render, map errors.

Exit codes: 0 ok, 1 wrong key or nothing found, 2 usage, 3 bad or unsupported input. Every
command takes ``--json``. Heavy modules are imported inside the commands so that a ``verify``
on a volume image starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
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
AssumeEncryptedOpt = typer.Option(
    False, "--assume-encrypted",
    help="A used-space-only volume whose chunk map is unreadable: decrypt every chunk anyway "
    "(the summary lists the uncertain ranges).")
StrictOpt = typer.Option(False, "--strict", help="Refuse metadata that fails its CRC-32 or authenticated "
                         "validation on every copy, instead of opening it with a warning.")


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
    from ..secret import scrub_environment

    creds = collect(recovery_password=recovery_password, password=password, bek=bek,
                    clear_key=clear_key, vmk=vmk, fvek=fvek)
    scrub_environment()  # read once: no child (mount's server) inherits or shows them
    return creds


def _warn(*warnings: str) -> None:
    """What is wrong but did not stop the command: on stderr, one line each."""
    for line in warnings:
        _err(f"warning: {line}")


@contextlib.contextmanager
def _unlocked(source: str, volume: Optional[int], offset: Optional[int], creds, strict: bool, warn: bool = True):
    """Open the evidence, pick the volume, unlock it: what every command with a credential does
    first. Yields (volume, unlock result) with the evidence open; the warnings of both reach
    stderr once the command is done (``warn=False``: the command says them itself, earlier)."""
    from ..protectors import unlock
    from ..scan import select
    from ..sources import open_source

    with open_source(source) as src:
        vol = select(src, volume, offset, strict)
        _require_credential(vol, creds)
        result = unlock(vol, creds, strict=strict)
        yield vol, result
        if warn:
            _warn(*vol.warnings, *result.warnings)


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
    sources: Optional[List[str]] = typer.Argument(None, metavar="[SOURCE]...", help="Images, devices (\\\\.\\PhysicalDrive0, /dev/sdb) or volume files."),
    all_drives: bool = typer.Option(False, "--all-drives", help="Also every physical drive of this machine "
                                    "(Windows/WinPE: \\\\.\\PhysicalDriveN; Linux: the disks in /sys/block). "
                                    "One that cannot be opened is reported and skipped."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List every partition and each BitLocker volume's metadata and key protectors."""
    from ..drives import Drive, list_drives
    from ..errors import BitLockerError, NotFoundError, UsageError
    from ..report import failure_document, scan_document, source_record, unreadable_source
    from ..scan import scan as do_scan
    from ..sources import open_source
    from . import render

    targets = [Drive(path) for path in sources or []]
    if all_drives:
        targets += list_drives()
        if not targets:
            raise NotFoundError("--all-drives: no drive with a medium found")
    if not targets:
        raise UsageError("give a SOURCE, or --all-drives")
    reports, errors, warnings = [], [], []
    unreadable = [t.error for t in targets if t.error]
    for target in targets:
        path = target.path
        if target.error:  # a drive that cannot be opened: reported, not fatal
            reports.append(unreadable_source(path, target.error))
            continue
        try:
            with open_source(path) as src:
                found = do_scan(src, strict)
                reports.append(source_record(found))
                warnings += [w for v in found.volumes if v.volume for w in v.volume.warnings]
        except BitLockerError as exc:
            errors.append(exc)
            reports.append(unreadable_source(path, str(exc)))
    volume_errors = [v["error"] for r in reports for v in r["volumes"] if v.get("error")]
    problems = [str(exc) for exc in errors] + volume_errors
    code, message = 0, None
    if problems:
        code, message = 3, problems[0]
    elif not any(v["bitlocker"] for r in reports for v in r["volumes"]):
        code, message = 1, f"no BitLocker volume found in {', '.join(t.path for t in targets)}"
        if unreadable:  # it may be on a drive that could not be read
            code, message, unreadable = 3, unreadable[0], unreadable[1:]
    warnings += unreadable
    doc = scan_document(reports, failure_document("scan", message, code) if message else None)
    if as_json:
        _emit_json(doc)
    else:
        render.scan(doc)
    _warn(*warnings)
    for line in problems or ([message] if message else []):
        _err(line)
    if code:
        raise typer.Exit(code)


@app.command()
@handle_errors
def info(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Everything the metadata says about one volume: every entry, as a tree."""
    from ..report import info_document
    from ..scan import select
    from ..sources import open_source
    from . import render

    with open_source(source) as src:
        vol = select(src, volume, offset, strict)
        data = info_document(vol)
        if as_json:
            _emit_json(data)
        else:
            render.info(vol, data)
        _warn(*vol.warnings)


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
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Prove a credential offline, without decrypting: which protector does it open? Exit 0 yes, 1 no."""
    from ..report import verify_document
    from . import render

    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    with _unlocked(source, volume, offset, creds, strict) as (vol, result):
        if result.fvek_proved is False:  # verify proves, or fails: an unproven key is no answer
            from ..errors import WrongKeyError
            from ..protectors import UNPROVEN_FVEK

            raise WrongKeyError(f"{vol.name}: {UNPROVEN_FVEK}; decrypt uses it anyway, with a warning")
        data = verify_document(vol, result, show_keys)
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
    assume_encrypted: bool = AssumeEncryptedOpt,
    sparse: bool = typer.Option(False, "--sparse", help="Leave chunks of zeros as holes in the output file "
                                "(hashed as the zeros they read as)."),
    hash_names: Optional[List[str]] = typer.Option(
        None, "--hash", help="Digest of the output: sha256 (default), sha1, md5, or none; repeat for several."),
    show_keys: bool = ShowKeysOpt,
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write the decrypted volume (raw image) to a file or stdout, with SHA-256 and filesystem check."""
    from ..decrypt import check_hashes, decrypt_to
    from ..errors import UsageError
    from ..report import decrypt_document
    from ..stream import DecryptedStream
    from . import render

    hashes = check_hashes(hash_names or ["sha256"])  # a usage error before a key is stretched
    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    if output != "-" and os.path.abspath(output) == os.path.abspath(source):
        raise UsageError("the output would overwrite the evidence")
    with _unlocked(source, volume, offset, creds, strict) as (vol, result):
        stream = DecryptedStream(vol, result, assume_encrypted=assume_encrypted)
        with render.progress(stream.size, enabled=not as_json or output != "-") as advance:
            done = decrypt_to(stream, output, resume=resume, progress=advance, stdout=sys.stdout.buffer,
                              hashes=hashes, sparse=sparse)
        data = decrypt_document(vol, result, done, show_keys, stream.uncertain, evidence=source)
        if as_json:  # with -o - stdout carries the plaintext: the summary goes to stderr
            _emit_json(data, sys.stderr if output == "-" else sys.stdout)
        else:
            render.decrypt(data)
    if "exit_code" in data:  # written, but part of the evidence could not be read: exit 4
        _warn(*_unreadable_lines(done.unreadable))
        _err(data["error"])
        raise typer.Exit(data["exit_code"])


def _unreadable_lines(ranges, limit: int = 20) -> list[str]:
    """One warning per unreadable range, the first ``limit`` of them (the sidecar and the JSON
    summary list them all)."""
    lines = [r.describe() + (f", output offset {r.output_offset}" if r.output_offset is not None else "")
             for r in ranges[:limit]]
    if len(ranges) > limit:
        lines.append(f"... and {len(ranges) - limit} more unreadable ranges")
    return lines


@app.command()
@handle_errors
def keys(
    source: str = typer.Argument(..., metavar="SOURCE", help="Image, device or volume file."),
    volume: Optional[int] = VolumeOpt,
    offset: Optional[int] = OffsetOpt,
    recovery_password: Optional[List[str]] = RecoveryOpt,
    password: Optional[List[str]] = PasswordOpt,
    bek: Optional[List[str]] = BekOpt,
    clear_key: bool = ClearKeyOpt,
    vmk: Optional[str] = VmkOpt,
    fvek: Optional[str] = FvekOpt,
    keychain: Optional[str] = typer.Option(
        None, "--keychain", help="Write the keys that open this volume as dissect.target keychain rows "
        "(target-query -K FILE)."),
    export_fvek: Optional[str] = typer.Option(
        None, "--export-fvek", help="Write the FVEK as the 66-byte file of dislocker (-k) and memory-forensics tools."),
    show_keys: bool = typer.Option(False, "--show-keys", help="Print the recovery passwords, VMK and FVEK in full."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """From one unlock, every key the volume holds: its protectors and the 48-digit recovery passwords."""
    from ..keyfiles import fvek_file
    from ..keys import keychain_rows, volume_keys
    from ..outputs import write_new_file
    from ..report import keys_document
    from . import render

    creds = _credentials(recovery_password, password, bek, clear_key, vmk, fvek)
    with _unlocked(source, volume, offset, creds, strict) as (vol, result):
        found = volume_keys(vol, result)
        exported = written = None
        if export_fvek is not None:
            if not result.fvek:
                from ..errors import UsageError

                raise UsageError("--export-fvek: the volume is not encrypted; it has no FVEK")
            exported = str(write_new_file(export_fvek, fvek_file(result.method, result.fvek)))
        if keychain is not None:
            rows = keychain_rows(found)
            written = (str(write_new_file(keychain, _csv(rows).encode())), len(rows))
        data = keys_document(vol, found, show_keys, exported, written)
        if as_json:
            _emit_json(data)
        else:
            render.keys(data)


@app.command()
@handle_errors
def match(
    sources: Optional[List[str]] = typer.Argument(None, metavar="SOURCE...", help="Evidence: images, devices or volume files."),
    keys: List[str] = typer.Option(..., "--keys", "-k", help="Escrowed keys: files or directories (walked), '-' for stdin."),
    key_id: Optional[str] = typer.Option(None, "--key-id", help="No evidence: the escrowed keys under this Key ID "
                                                                "(8 or more hex digits of the protector GUID)."),
    csv_out: Optional[str] = typer.Option(None, "--csv", help="Also write one row per volume to this CSV file."),
    keychain: Optional[str] = typer.Option(None, "--keychain", help="Write every proved key as dissect.target keychain rows."),
    try_all: bool = typer.Option(False, "--try-all", help="Try keys without an identifier however many stretches it takes."),
    try_limit: int = typer.Option(5000, "--try-limit", help="Stretches the identifier-less phase may run without --try-all."),
    show_keys: bool = typer.Option(False, "--show-keys", help="Print the keys in full."),
    strict: bool = StrictOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Prove which escrowed key opens which volume: by Key ID first, then by crypto. Exit 0 all opened, 1 some locked."""
    from ..errors import BitLockerError, UsageError
    from ..escrow import load_keys
    from ..matching import VolumeRef, keys_for_key_id, match_keys
    from ..outputs import write_new_file
    from ..report import failure_document, key_id_document, match_document
    from ..scan import scan as do_scan
    from ..sources import open_source
    from . import render

    loaded = load_keys(keys)
    if key_id is not None:
        if sources:
            raise UsageError("--key-id looks keys up without evidence; give SOURCE or --key-id, not both")
        wanted = key_id.strip().strip("{}")
        if len(re.sub(r"[^0-9A-Fa-f]", "", wanted)) < 8 or re.search(r"[^0-9A-Fa-f-]", wanted):
            raise UsageError(f"--key-id {key_id!r}: give the Key ID the recovery screen shows, 8 hex digits or more")
        found = keys_for_key_id(wanted, loaded.records)
        message = None if found else f"no escrowed key has a Key ID starting {key_id} ({len(loaded.records)} keys read)"
        doc = key_id_document(key_id, found, show_keys, failure_document("match", message, 1) if message else None)
        _emit_json(doc) if as_json else render.key_id(doc)
        if message:
            _err(message)
            raise typer.Exit(1)
        return
    if not sources:
        raise UsageError("give the evidence (SOURCE...) or --key-id")
    refs, errors, warnings = [], [], []
    opened = []
    try:
        for path in sources:
            try:
                src = open_source(path)
            except BitLockerError as exc:
                errors.append(str(exc))
                continue
            opened.append(src)
            for r in do_scan(src, strict).volumes:
                if r.error:
                    errors.append(r.error)
                elif r.volume is not None:
                    refs.append(VolumeRef(src.path, r.partition, r.offset, r.volume))
                    warnings += r.volume.warnings

        with render.progress(0, enabled=not as_json, label="keys without an identifier", unit="stretches") as advance:
            def announce(cost) -> None:
                if cost.ran:
                    _err(f"trying {cost.keys} keys without an identifier on {cost.protectors} recovery-password "
                         f"protectors: {cost.stretches} stretches")
                    advance(0, total=cost.stretches)
                else:
                    _err(f"warning: {cost.reason}")

            result = match_keys(refs, loaded.records, try_all=try_all, try_limit=try_limit, announce=announce,
                                progress=advance)
        code, message = 0, None
        if errors:
            code, message = 3, errors[0]
        elif not refs:
            code, message = 1, f"no BitLocker volume found in {', '.join(sources)}"
        elif result.locked:
            code, message = 1, f"{len(result.locked)} of {len(refs)} BitLocker volumes stay locked"
        written = None
        if keychain is not None:
            rows = _match_keychain(result)
            written = (str(write_new_file(keychain, _csv(rows).encode())), len(rows))
        doc = match_document(result, loaded.problems, show_keys, written,
                             failure_document("match", message, code) if message else None)
        if csv_out is not None:
            write_new_file(csv_out, _csv([["source", "partition", "offset", "volume_guid", "description", "status",
                                           "protector_id", "protector_type", "key_file", "key_locator", "matched_by"]]
                                         + _match_rows(doc)).encode(), secret=False)
        if as_json:
            _emit_json(doc)
        else:
            render.match(doc)
    finally:
        for src in opened:
            src.close()
    _warn(*warnings)
    for line in errors or ([message] if message and not result.locked else []):
        _err(line)
    if code:
        raise typer.Exit(code)


def _match_rows(doc: dict) -> list[list]:
    """``match --csv``: one row per volume, for a case report."""
    by_volume = {(m["source"], m["offset"]): m for m in doc["matches"]}
    rows = []
    for v in doc["volumes"]:
        m = by_volume.get((v["source"], v["offset"]), {})
        src = m.get("key_source", {})
        at = src.get("line") or src.get("row") or src.get("dn") or src.get("json_path") or ""
        rows.append([v["source"], "" if v["partition"] is None else v["partition"], v["offset"], v["volume_guid"],
                     v["description"] or "", v["status"], m.get("protector_id") or "", m.get("protector_type", ""),
                     src.get("file", ""), at, m.get("matched_by", "")])
    return rows


def _match_keychain(result) -> list[tuple[str, str, str, str]]:
    """dissect.target keychain rows of every proved key (never an unproved one)."""
    rows = []
    for m in result.matches:
        r = m.record
        if r.recovery_password is not None and m.protector is not None:
            rows.append(("bitlocker", "recovery_key", m.protector.guid, str(r.recovery_password)))
        elif r.kind == "startup_key" and m.protector is not None and r.locator.file != "-":
            rows.append(("bitlocker", "file", m.protector.guid, os.path.abspath(r.locator.file)))
        elif r.kind == "fvek" and r.secret is not None:
            protectors = m.ref.volume.metadata.protectors
            rows.append(("bitlocker", "raw", protectors[0].guid if protectors else "", r.secret.hex()))
    return rows


def _csv(rows) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


# The commands kept in modules of their own register themselves on `app` when imported.
from . import files_command, hash_command, mount_command, recover_command  # noqa: E402,F401


def _plaintext_to_stdout(argv: list[str]) -> bool:
    """``-o -`` among unparsed arguments: stdout is the plaintext's, a JSON document goes to stderr."""
    return any(a in ("-o-", "--output=-") or (a in ("-o", "--output") and argv[i + 1 : i + 2] == ["-"])
               for i, a in enumerate(argv))


def main() -> None:
    """Run the CLI. Usage errors (a missing option, an unknown flag) are one line, like every
    other error, instead of Typer's framed box."""
    from ..secret import hide_arguments

    hide_arguments()  # a key typed on the command line: '*' in ps from here on (secret.py)
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
        message = f"{exc.format_message()}{hint}"
        _err(message)
        if "--json" in sys.argv[1:]:  # the options were not parsed, but a script asked for JSON
            from ..report import failure_document

            command = ctx.info_name if ctx is not None and ctx.parent is not None else "bitlocker-tools"
            _emit_json(failure_document(command, message, exc.exit_code),
                       sys.stderr if _plaintext_to_stdout(sys.argv[1:]) else sys.stdout)
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
