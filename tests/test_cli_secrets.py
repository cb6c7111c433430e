"""README.md: "Keys are never printed unless you pass --show-keys." docs/cli.md: "otherwise
secrets are never printed".

Every command (scan, info, verify, decrypt to a file, decrypt to stdout), human and --json, on
success and on failure, is searched for every secret the test knows of the volume and of the
credential given: the VMK and FVEK (hex, any case, also each half of the FVEK), the password, the
recovery password with and without dashes, the startup key's 32 bytes in hex, the clear key of a
suspended volume, and a wrong credential given on the command line. With ``-o -`` only stderr is
searched (stdout is the plaintext). A positive control proves that the search finds the VMK and
FVEK once --show-keys is given.

Where the secrets come from: the FVEKs in tests/corpus_manifest.json; the startup key from the
corpus .BEK file's bytes; the clear key from dissect.fve's reading of the volume; the VMK (and the
FVEK the manifest lacks) from ``verify --show-keys --json``, cross-checked against the manifest.
The forged fixture's VMK and FVEK come from fixtures/manifest.json (what the forger sealed into it).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest

PASSWORD = "password12!@"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"  # recovery_password.bin
OTHER_RP = "131450-120197-153989-250338-511368-495572-680944-381546"  # win7_partial.bin: valid, wrong here
MALFORMED_RP = RP.replace("514998", "514999")  # group 3 fails the check
WRONG_PASSWORD = "Wr0ng-Secret-Pass!"


# --- the search ------------------------------------------------------------------------------------


def _hex_needles(label: str, key: bytes) -> dict[str, str]:
    out = {label: key.hex()}
    if len(key) >= 32:  # each half on its own (XTS key1/key2, FVEK/TWEAK) is a secret too
        half = len(key) // 2
        out[f"{label}[:{half}]"] = key[:half].hex()
        out[f"{label}[{half}:]"] = key[half:].hex()
    return out


def leaks(text: str, hex_secrets: dict[str, str], text_secrets: dict[str, str]) -> list[str]:
    """The names of the secrets that occur in ``text``: hex in any case and with any separators
    between the digits (spaces, colons, dashes, line breaks), text secrets verbatim."""
    squashed = re.sub(r"[^0-9a-z]", "", text.lower())
    found = [name for name, h in hex_secrets.items() if h.lower() in squashed]
    found += [name for name, s in text_secrets.items() if s in text or s.lower() in text.lower()]
    return found


def test_the_search_finds_what_it_looks_for():
    key = bytes(range(32))
    hexes = _hex_needles("vmk", key)
    assert leaks(f"VMK: {key.hex().upper()}", hexes, {}) == list(hexes)
    assert leaks("key " + ":".join(f"{b:02X}" for b in key), hexes, {}) == list(hexes)
    assert leaks("nothing here", hexes, {"pw": PASSWORD}) == []
    assert leaks(f"'{PASSWORD}'", {}, {"pw": PASSWORD}) == ["pw"]
    assert leaks(RP.replace("-", ""), {"rp": RP.replace("-", "")}, {}) == ["rp"]


# --- what is known of each case -------------------------------------------------------------------


def _bek_key(path: Path) -> bytes:
    """The 32-byte external key of a corpus .BEK: the KEY entry (size 0x2c, value type 1) that
    ends the file; the .BEK's header gives the file's size."""
    raw = path.read_bytes()
    assert int.from_bytes(raw[0:4], "little") == len(raw)
    entry = raw[-0x2C:]
    assert int.from_bytes(entry[0:2], "little") == 0x2C and int.from_bytes(entry[4:6], "little") == 1
    return entry[-32:]


def _clear_key(path: Path) -> bytes:
    from dissect.fve.bde import BDE

    with open(path, "rb") as fh:
        vmk = BDE(fh).information.dataset.find_clear_vmk()
        assert vmk is not None
        return bytes(vmk.clear_key().data)


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if v["file"] == name + ".gz")


def _show_keys(run_cli, image, cred) -> tuple[bytes, bytes]:
    import json

    proc = run_cli("verify", image, *cred, "--show-keys", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return bytes.fromhex(doc["vmk"]), bytes.fromhex(doc["fvek"])


@pytest.fixture(scope="module")
def cases(corpus_dir, manifest, run_cli) -> dict[str, dict]:
    """name -> image, the credential, a wrong credential, and the secrets to look for."""
    c = corpus_dir
    bek = c / "recovery_key.bek"
    wrong_bek = c / "startup_key.bek"
    out: dict[str, dict] = {
        "recovery_password": {"image": c / "recovery_password.bin", "cred": ["-r", RP], "wrong": ["-r", OTHER_RP],
                              "text": {"password": PASSWORD}},
        "password": {"image": c / "aes_128.bin", "cred": ["-p", PASSWORD], "wrong": ["-p", WRONG_PASSWORD],
                     "text": {"password": PASSWORD}},
        "startup_key": {"image": c / "recovery_key.bin", "cred": ["--bek", bek], "wrong": ["--bek", wrong_bek],
                        "text": {"password": PASSWORD}},
        "clear_key": {"image": c / "suspended.bin", "cred": ["--clear-key"], "wrong": None, "text": {}},
        "vmk": {"image": c / "aes-xts_128.bin", "cred": None, "wrong": ["--vmk", os.urandom(32).hex()],
                "text": {"password": PASSWORD}},
        "fvek": {"image": c / "aes-xts_256.bin", "cred": None, "wrong": ["--fvek", os.urandom(64).hex()],
                 "text": {"password": PASSWORD}},
        "malformed_recovery_password": {"image": c / "recovery_password.bin", "cred": ["-r", RP],
                                        "wrong": ["-r", MALFORMED_RP], "text": {"password": PASSWORD}},
    }
    for case in out.values():
        case["hex"] = {}
    # recovery passwords: dashed (as text) and the bare 48 digits
    for name in ("recovery_password", "malformed_recovery_password"):
        out[name]["text"]["recovery password"] = RP
        out[name]["hex"]["recovery password digits"] = RP.replace("-", "")
    out["recovery_password"]["text"]["wrong recovery password"] = OTHER_RP
    out["recovery_password"]["hex"]["wrong recovery password digits"] = OTHER_RP.replace("-", "")
    out["malformed_recovery_password"]["text"]["malformed recovery password"] = MALFORMED_RP
    out["malformed_recovery_password"]["hex"]["malformed recovery password digits"] = MALFORMED_RP.replace("-", "")
    out["password"]["text"]["wrong password"] = WRONG_PASSWORD
    out["startup_key"]["hex"].update(_hex_needles("startup key", _bek_key(bek)))
    out["startup_key"]["hex"].update(_hex_needles("wrong startup key", _bek_key(wrong_bek)))
    out["clear_key"]["hex"].update(_hex_needles("clear key", _clear_key(c / "suspended.bin")))

    # the VMK and FVEK of each volume
    for name in ("recovery_password", "password", "startup_key", "clear_key", "malformed_recovery_password"):
        vmk, fvek = _show_keys(run_cli, out[name]["image"], out[name]["cred"])
        out[name]["hex"].update(_hex_needles("VMK", vmk))
        out[name]["hex"].update(_hex_needles("FVEK", fvek))
    assert out["password"]["hex"]["FVEK"] == _entry(manifest, "aes_128.bin")["credentials"]["fvek"]
    vmk, fvek = _show_keys(run_cli, c / "aes-xts_128.bin", ["-p", PASSWORD])
    assert fvek.hex() == _entry(manifest, "aes-xts_128.bin")["credentials"]["fvek"]
    out["vmk"]["cred"] = ["--vmk", vmk.hex()]
    out["vmk"]["hex"].update({**_hex_needles("VMK", vmk), **_hex_needles("FVEK", fvek)})
    fvek256 = _entry(manifest, "aes-xts_256.bin")["credentials"]["fvek"]
    vmk256, shown = _show_keys(run_cli, c / "aes-xts_256.bin", ["-p", PASSWORD])
    assert shown.hex() == fvek256
    out["fvek"]["cred"] = ["--fvek", fvek256]
    out["fvek"]["hex"].update({**_hex_needles("VMK", vmk256), **_hex_needles("FVEK", bytes.fromhex(fvek256))})
    for name in ("vmk", "fvek"):  # the wrong key given on the command line must not be echoed either
        out[name]["hex"]["wrong key given"] = out[name]["wrong"][1]
    return out


def _streams(proc, stdout_too: bool = True) -> str:
    def text(b):
        return b if isinstance(b, str) else b.decode("utf-8", "replace")

    return (text(proc.stdout) if stdout_too else "") + "\n" + text(proc.stderr)


def _assert_no_leak(proc, case: dict, what: str, stdout_too: bool = True) -> None:
    found = leaks(_streams(proc, stdout_too), case["hex"], case["text"])
    assert not found, f"{what}: {', '.join(found)} printed without --show-keys"


MODES = [[], ["--json"]]
MODE_IDS = ["human", "json"]
CASE_NAMES = ["recovery_password", "password", "startup_key", "clear_key", "vmk", "fvek"]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_scan_and_info_print_no_secret(name, mode, cases, run_cli):
    case = cases[name]
    for command in ("scan", "info"):
        proc = run_cli(command, case["image"], *mode)
        assert proc.returncode == 0, proc.stderr
        _assert_no_leak(proc, case, f"{command} {' '.join(mode)}")


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_verify_and_decrypt_print_no_secret(name, mode, cases, run_cli, tmp_path):
    case = cases[name]
    image, cred = case["image"], case["cred"]
    proc = run_cli("verify", image, *cred, *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"verify {' '.join(mode)}")

    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", image, *cred, "-o", out, *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"decrypt -o FILE {' '.join(mode)}")
    out.unlink()

    proc = run_cli("decrypt", image, *cred, "-o", "-", *mode, binary=True)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"decrypt -o - {' '.join(mode)} (stderr)", stdout_too=False)


FAILING = ["recovery_password", "password", "startup_key", "vmk", "fvek", "malformed_recovery_password"]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", FAILING)
def test_failures_print_no_secret(name, mode, cases, run_cli, tmp_path):
    """A wrong (or malformed) credential: the run fails, and neither the credential given nor any
    key of the volume appears in what it prints."""
    case = cases[name]
    image, wrong = case["image"], case["wrong"]
    expected = 2 if name == "malformed_recovery_password" else 1
    proc = run_cli("verify", image, *wrong, *mode)
    assert proc.returncode == expected, proc.stderr
    _assert_no_leak(proc, case, f"failing verify {' '.join(mode)}")

    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", image, *wrong, "-o", out, *mode)
    assert proc.returncode == expected, proc.stderr
    _assert_no_leak(proc, case, f"failing decrypt -o FILE {' '.join(mode)}")
    assert not out.exists()

    proc = run_cli("decrypt", image, *wrong, "-o", "-", *mode, binary=True)
    assert proc.returncode == expected, proc.stderr
    _assert_no_leak(proc, case, f"failing decrypt -o - {' '.join(mode)}")  # stdout must be empty anyway
    assert proc.stdout == b""


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_failure_after_the_unlock_prints_no_secret(name, mode, cases, run_cli, tmp_path):
    """The keys are in memory when decrypt finds its output already there (exit 2)."""
    case = cases[name]
    out = tmp_path / "exists.img"
    out.write_bytes(b"not to be overwritten")
    proc = run_cli("decrypt", case["image"], *case["cred"], "-o", out, *mode)
    assert proc.returncode == 2, proc.stderr
    _assert_no_leak(proc, case, f"decrypt onto an existing file {' '.join(mode)}")
    assert out.read_bytes() == b"not to be overwritten"


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_failing_scan_and_info_print_no_secret(mode, cases, run_cli, tmp_path):
    """The clear key is stored in the volume: failing scan and info runs must not show it."""
    case = cases["clear_key"]
    proc = run_cli("scan", case["image"], tmp_path / "missing.E01", *mode)
    assert proc.returncode == 3, proc.stderr
    _assert_no_leak(proc, case, f"failing scan {' '.join(mode)}")
    proc = run_cli("info", case["image"], "--volume", "9", *mode)
    assert proc.returncode == 1, proc.stderr
    _assert_no_leak(proc, case, f"failing info {' '.join(mode)}")


def test_wrong_password_from_stdin_is_not_echoed(cases, run_cli):
    case = cases["password"]
    for mode in MODES:
        proc = run_cli("verify", case["image"], "-p", "-", *mode, input=WRONG_PASSWORD + "\n")
        assert proc.returncode == 1, proc.stderr
        _assert_no_leak(proc, case, f"verify -p - {' '.join(mode)}")


# --- positive control --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["password", "startup_key", "clear_key"])
def test_show_keys_prints_the_keys_the_search_looks_for(name, cases, run_cli, tmp_path):
    case = cases[name]
    image, cred = case["image"], case["cred"]
    want = {"VMK", "FVEK"}
    for mode in MODES:
        proc = run_cli("verify", image, *cred, "--show-keys", *mode)
        assert proc.returncode == 0, proc.stderr
        found = set(leaks(_streams(proc), case["hex"], case["text"]))
        assert want <= found, f"verify --show-keys {mode}: the search found only {found}"
        out = tmp_path / f"plain{len(mode)}.img"
        proc = run_cli("decrypt", image, *cred, "-o", out, "--show-keys", *mode)
        assert proc.returncode == 0, proc.stderr
        assert want <= set(leaks(_streams(proc), case["hex"], case["text"])), f"decrypt --show-keys {mode}"
        proc = run_cli("decrypt", image, *cred, "-o", "-", "--show-keys", *mode, binary=True)
        assert proc.returncode == 0, proc.stderr
        assert want <= set(leaks(_streams(proc, stdout_too=False), case["hex"], case["text"])), \
            f"decrypt -o - --show-keys {mode} (stderr)"


# --- the commands that handle keys for a living: keys, match, hash, recover ------------------------


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_keys_prints_no_secret(name, mode, cases, run_cli):
    """keys recovers the recovery passwords and holds the VMK and FVEK: all masked or left out."""
    case = cases[name]
    proc = run_cli("keys", case["image"], *case["cred"], *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"keys {' '.join(mode)}")


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", [n for n in FAILING if n != "malformed_recovery_password"])
def test_failing_keys_prints_no_secret(name, mode, cases, run_cli):
    case = cases[name]
    proc = run_cli("keys", case["image"], *case["wrong"], *mode)
    assert proc.returncode == 1, proc.stderr
    _assert_no_leak(proc, case, f"failing keys {' '.join(mode)}")


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_match_prints_no_secret(mode, cases, run_cli, tmp_path):
    """The escrowed key that opens the volume, a broken LDIF line holding another key, a
    malformed key and a stale one: none is printed in full."""
    case = {**cases["recovery_password"]}
    stale = "000011-000022-000033-000044-000055-000066-000077-000088"
    case["text"] = {**case["text"], "stale key": stale, "malformed key": MALFORMED_RP}
    case["hex"] = {**case["hex"], "stale digits": stale.replace("-", ""),
                   "malformed digits": MALFORMED_RP.replace("-", "")}
    (tmp_path / "keys.txt").write_text(f"{RP}\nbad: {MALFORMED_RP}\n")
    (tmp_path / "ad.ldif").write_text(
        "dn: CN=2025-03-02T14:07:55-08:00{3C116B76-C67B-484E-B439-CE2ED68B561E},CN=PC,DC=corp\n"
        f"msFVE-RecoveryPassword: {stale}\n\n"
        f"dn: CN=x,DC=corp\nmsFVE-RecoveryPassword {OTHER_RP}\n")
    case["text"]["broken line's key"] = OTHER_RP
    proc = run_cli("match", case["image"], "--keys", tmp_path, *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"match {' '.join(mode)}")
    proc = run_cli("match", "--key-id", "3C116B76", "--keys", tmp_path, *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"match --key-id {' '.join(mode)}")


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", ["recovery_password", "password"])
def test_hash_prints_no_key(name, mode, cases, run_cli):
    """A hash line is meant to be shared: it holds no VMK, no FVEK, no credential."""
    case = cases[name]
    proc = run_cli("hash", case["image"], *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"hash {' '.join(mode)}")


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_recover_prints_no_secret(mode, cases, run_cli):
    case = cases["recovery_password"]
    pattern = RP.replace("596541", "5965?1")
    proc = run_cli("recover", case["image"], "--pattern", pattern, *mode)
    assert proc.returncode == 0, proc.stderr
    _assert_no_leak(proc, case, f"recover {' '.join(mode)}")


# --- #20: every credential route (-, @FILE, environment) on every command that unlocks ----------
#
# Each run goes through DRIVER: the CLI in a Python whose audit hook records every process it
# spawns (subprocess, exec, posix_spawn, system, fork) with its argv, and which writes, at exit,
# that list and its own /proc/self/cmdline and /proc/self/environ. The secret must appear in none
# of them, nor on stdout, stderr, in the JSON, or in any file the run leaves in its working
# directory or TMPDIR (other than the plaintext it was asked to write). The volume is the forged
# NTFS fixture (fixtures/xts128_recovery_password: a recovery password and a password), so that
# ls and extract have a filesystem to read.

import gzip  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from conftest import ROOT, assert_cli_error, unmount  # noqa: E402

DRIVER = r"""
import atexit, json, os, sys
log, args = sys.argv[1], sys.argv[2:]
events = []
SPAWNS = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork", "os.forkpty")

def hook(event, detail):
    if event in SPAWNS:
        events.append([event, repr(detail)])

sys.addaudithook(hook)
me = os.getpid()

def dump():
    if os.getpid() != me:
        return
    out = {"events": events}
    for name in ("cmdline", "environ"):
        with open(f"/proc/self/{name}", "rb") as fh:
            out[name] = fh.read().decode("utf-8", "replace")
    with open(log, "w") as fh:
        json.dump(out, fh)

atexit.register(dump)
if os.environ.get("SPAWN_CONTROL"):  # the seam's positive control
    import subprocess
    subprocess.run(["true", os.environ["SPAWN_CONTROL"]])
if os.environ.get("FORCE_INTERNAL_ERROR"):  # an internal error whose message holds the reprs in reach
    import bitlocker_tools.protectors as protectors
    real = protectors.unlock

    def unlock(vol, creds, **kw):
        result = real(vol, creds, **kw)
        raise RuntimeError(f"forced internal error: {creds!r} {result!r} {result.protector!r} {vol.metadata!r}")

    protectors.unlock = unlock
sys.argv = ["bitlocker-tools", *args]
from bitlocker_tools.cli import main
main()
"""


def run_driven(args, cwd: Path, input=None, env=None, log_name="driver.json", timeout=300):
    """Run the CLI under DRIVER in ``cwd`` (TMPDIR ``cwd/tmp``); returns (proc, the driver's log)."""
    log = cwd.parent / f"{cwd.name}-{log_name}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BITLOCKER_")}
    full_env.update({"TMPDIR": str(cwd / "tmp"), "PYTHONPATH": str(ROOT), **(env or {})})
    (cwd / "tmp").mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(log), *map(str, args)], input=input,
                          capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    return proc, json.loads(log.read_text()) if log.exists() else None


def _utf16(s: str) -> bytes:
    return s.encode("utf-16-le")


def file_leaks(data: bytes, case: dict) -> list[str]:
    """leaks() over a file's bytes, read as Latin-1 and as UTF-16LE (how Windows writes keys)."""
    found = set(leaks(data.decode("latin-1"), case["hex"], case["text"]))
    if len(data) > 1:
        found |= set(leaks(data[len(data) % 2:].decode("utf-16-le", "replace"), case["hex"], case["text"]))
        found |= set(leaks(data[1 - len(data) % 2:][:len(data) - 1].decode("utf-16-le", "replace") if len(data) > 2
                           else "", case["hex"], case["text"]))
    return sorted(found)


def files_under(root: Path, skip: set[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p not in skip}


@pytest.fixture(scope="module")
def forged_case(tmp_path_factory, run_cli) -> dict:
    """The forged NTFS volume, its credentials, its keys, one file in it, and the search needles."""
    entry = json.loads((ROOT / "fixtures" / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    image = tmp_path_factory.mktemp("forged") / "volume.bin"
    image.write_bytes(gzip.decompress((ROOT / "fixtures" / entry["file"]).read_bytes()))
    rp = next(p["recovery_password"] for p in entry["protectors"] if p["type"] == "recovery_password")
    pw = next(p["password"] for p in entry["protectors"] if p["type"] == "password")
    vmk, fvek = _show_keys(run_cli, image, ["-p", pw])
    assert _show_keys(run_cli, image, ["-r", rp]) == (vmk, fvek)  # both routes open the same keys
    # the keys the forger sealed into the volume (and handed libbde's -k): the leak tests search for
    # keys known independently of our unlock, not merely for what verify --show-keys printed
    assert vmk.hex() == entry["vmk"]
    assert fvek.hex() == entry["fvek"] == entry["libbde_keys"].replace(":", "")
    listing = json.loads(run_cli("ls", image, "-p", pw, "--json").stdout)
    member = next(e["path"] for e in listing["entries"] if e["type"] == "file" and e["size"])
    hexes = {**_hex_needles("VMK", vmk), **_hex_needles("FVEK", fvek), "recovery password digits": rp.replace("-", ""),
             "recovery password UTF-16 hex": _utf16(rp).hex(), "password UTF-16 hex": _utf16(pw).hex(),
             "password hex": pw.encode().hex()}
    return {"image": image, "rp": rp, "pw": pw, "vmk": vmk, "fvek": fvek, "member": member, "hex": hexes,
            "text": {"recovery password": rp, "password": pw}}


BOM = b"\xff\xfe"
NL = b"\n"

ROUTES = {
    "rp-stdin": lambda c, d: (["-r", "-"], c["rp"] + "\n", {}),
    "rp-file-utf16": lambda c, d: (["-r", "@" + str(_write(d / "key.TXT", BOM + _utf16("Recovery key: " + c["rp"])))],
                                   None, {}),
    "rp-env": lambda c, d: ([], None, {"BITLOCKER_RECOVERY_PASSWORD": c["rp"]}),
    "pw-stdin": lambda c, d: (["-p", "-"], c["pw"] + "\n", {}),
    "pw-file": lambda c, d: (["-p", "@" + str(_write(d / "pw.txt", c["pw"].encode() + NL))], None, {}),
    "pw-env": lambda c, d: ([], None, {"BITLOCKER_PASSWORD": c["pw"]}),
    "vmk-file": lambda c, d: (["--vmk", "@" + str(_write(d / "vmk.hex", c["vmk"].hex().encode()))], None, {}),
    "fvek-stdin": lambda c, d: (["--fvek", "-"], c["fvek"].hex(), {}),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _command(name: str, case: dict, cwd: Path) -> tuple[list, set[Path]]:
    """The command line (before the credential) and the plaintext outputs it writes."""
    if name == "decrypt":
        return ["decrypt", case["image"], "-o", cwd / "plain.img"], {cwd / "plain.img"}
    if name == "extract":
        return ["extract", case["image"], case["member"], "-o", cwd / "member.bin"], {cwd / "member.bin"}
    if name == "keys":
        return ["keys", case["image"]], set()
    return [name, case["image"]], set()


def _assert_clean(proc, log, case, what, cwd: Path, outputs: set[Path], inputs: set[Path]) -> None:
    found = leaks(proc.stdout + "\n" + proc.stderr, case["hex"], case["text"])
    assert not found, f"{what}: {found} on stdout/stderr"
    assert log is not None, f"{what}: the driver wrote no log: {proc.stderr}"
    for event, detail in log["events"]:
        assert not leaks(detail, case["hex"], case["text"]), f"{what}: a child's argv ({event}) holds a secret"
    assert not leaks(log["cmdline"], case["hex"], case["text"]), f"{what}: /proc/self/cmdline holds a secret"
    assert not leaks(log["environ"], case["hex"], case["text"]), f"{what}: /proc/self/environ holds a secret"
    for path, data in files_under(cwd, outputs | inputs).items():
        assert not file_leaks(data, case), f"{what}: {path.relative_to(cwd)} holds {file_leaks(data, case)}"


# human and --json where the output differs most (verify, keys); --json for the rest (CI time)
COMMAND_MODES = [("verify", []), ("verify", ["--json"]), ("keys", []), ("keys", ["--json"]),
                 ("decrypt", ["--json"]), ("ls", ["--json"]), ("extract", ["--json"])]


@pytest.mark.parametrize(("command", "mode"), COMMAND_MODES, ids=[f"{c}-{'json' if m else 'human'}" for c, m in COMMAND_MODES])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_credential_route_leaves_no_secret(route, command, mode, forged_case, tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    cred, stdin, env = ROUTES[route](forged_case, tmp_path)
    args, outputs = _command(command, forged_case, cwd)
    proc, log = run_driven([*args, *cred, *mode], cwd, input=stdin, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not log["events"], f"{command} spawned {log['events']}"  # nothing: no child has an argv at all
    if mode:
        json.loads(proc.stdout)
    _assert_clean(proc, log, forged_case, f"{command} {route} {' '.join(mode)}", cwd, outputs, set())
    assert all(p.exists() for p in outputs)


def test_the_spawn_seam_records_a_child_argv(forged_case, tmp_path):
    """Positive control: a child started with the secret in its argv is seen, and named."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    proc, log = run_driven(["verify", forged_case["image"], "-p", "-"], cwd, input=forged_case["pw"],
                           env={"SPAWN_CONTROL": forged_case["pw"]})
    assert proc.returncode == 0, proc.stderr
    assert any(e == "subprocess.Popen" and forged_case["pw"] in d for e, d in log["events"]), log["events"]


@pytest.mark.parametrize("route", ["literal-rp", "literal-pw", "literal-rp=", "literal-pw-joined"])
def test_a_secret_typed_on_the_command_line_is_hidden_from_ps(route, forged_case, tmp_path):
    """-r KEY on the command line: sys.argv still parses, but /proc/PID/cmdline (what ps shows
    every local user) has '*' in its place from the CLI's start on."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    rp, pw = forged_case["rp"], forged_case["pw"]
    cred = {"literal-rp": ["-r", rp], "literal-pw": ["--password", pw], "literal-rp=": [f"--recovery-password={rp}"],
            "literal-pw-joined": [f"-p{pw}"]}[route]
    proc, log = run_driven(["verify", forged_case["image"], *cred, "--json"], cwd)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["unlocked"] is True
    assert "*" * 8 in log["cmdline"]
    assert not leaks(log["cmdline"], forged_case["hex"], forged_case["text"]), log["cmdline"]


def test_secret_spans():
    from bitlocker_tools.secret import secret_spans

    argv = ["python3", "-m", "bitlocker_tools", "verify", "img", "-r", "KEY", "--password=PW", "-pJOINED",
            "--vmk", "-", "--fvek", "@f", "-P", "12345?", "-R", "--name", "x", "--", "-r", "AFTER"]
    assert [argv[i][lo:hi] for i, lo, hi in secret_spans(argv)] == ["KEY", "PW", "JOINED", "12345?"]


INTERNAL = [(route, command, debug) for command in ("verify", "keys", "decrypt", "ls", "extract", "mount")
            for route, debug in (("rp-stdin", True), ("pw-env", False), ("fvek-stdin", True))]


@pytest.mark.parametrize(("route", "command", "debug"), INTERNAL,
                         ids=[f"{c}-{r}-{'debug' if d else 'one-line'}" for r, c, d in INTERNAL])
def test_an_internal_error_after_the_unlock_shows_no_secret(route, command, debug, forged_case, tmp_path):
    """A bug that puts everything in reach (the credentials, the unlock result, the protector,
    the metadata) into an exception message: the one-line error, and with BITLOCKER_TOOLS_DEBUG=1
    the traceback, name the objects but show no key (their reprs are masked)."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    cred, stdin, env = ROUTES[route](forged_case, tmp_path)
    args, outputs = _command(command, forged_case, cwd)
    if command == "mount":
        (cwd / "mnt").mkdir()
        args = ["mount", forged_case["image"], cwd / "mnt"]
    env = {**env, "FORCE_INTERNAL_ERROR": "1", **({"BITLOCKER_TOOLS_DEBUG": "1"} if debug else {})}
    proc, log = run_driven([*args, *cred, "--json"], cwd, input=stdin, env=env)
    assert proc.returncode != 0
    assert "forced internal error" in proc.stderr and ("Credentials(" in proc.stderr)
    assert ("Traceback" in proc.stderr) == debug, proc.stderr
    if debug:  # handle_errors re-raises: the exception leaves main, Python's own exit status for it is 1
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout == ""  # no JSON document: the run never reached handle_errors' fail()
    else:  # handle_errors' contract: one line, exit 3, and the JSON failure document
        assert_cli_error(proc, 3, "internal error", "forced internal error", "BITLOCKER_TOOLS_DEBUG=1")
        doc = json.loads(proc.stdout)
        assert doc["exit_code"] == 3 and doc["error"].startswith("internal error: RuntimeError: forced"), doc
    _assert_clean(proc, log, forged_case, f"{command} {route} internal error", cwd, outputs, set())


def _mounted_pid(doc: dict) -> int:
    return int(doc["pid"])


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")
@pytest.mark.parametrize("route", ["rp-stdin", "rp-file-utf16", "pw-env", "fvek-stdin", "literal"])
def test_mount_and_its_background_server_show_no_secret(route, forged_case, tmp_path):
    """mount: its JSON and stderr, and the server it leaves running (a fork of the CLI: the same
    argv memory, the same environment) show no secret in /proc/PID/cmdline or /proc/PID/environ,
    and it has started no child."""
    cwd = tmp_path / "work"
    (cwd / "mnt").mkdir(parents=True)
    if route == "literal":
        cred, stdin, env = ["-r", forged_case["rp"]], None, {}
    else:
        cred, stdin, env = ROUTES[route](forged_case, tmp_path)
    proc, log = run_driven(["mount", forged_case["image"], cwd / "mnt", *cred, "--json"], cwd, input=stdin, env=env)
    try:
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        pid = _mounted_pid(doc)
        server = {}
        for name in ("cmdline", "environ"):
            with open(f"/proc/{pid}/{name}", "rb") as fh:
                server[name] = fh.read().decode("utf-8", "replace")
        children = "".join(Path(f"/proc/{pid}/task/{t}/children").read_text() for t in os.listdir(f"/proc/{pid}/task"))
        assert "bitlocker_tools" in server["cmdline"]  # it is our server
        for name, text in server.items():
            assert not leaks(text, forged_case["hex"], forged_case["text"]), f"server's /proc/{pid}/{name}"
        assert children.split() == [], "the server started a child"
        # the server (a fork, not an exec), and ctypes.util.find_library's `ldconfig -p` (mfusepy
        # looking for libfuse, before any credential is read; its argv and environment are fixed)
        spawned = [(e, d) for e, d in log["events"] if e != "os.fork"]
        assert [e for e, _ in log["events"]].count("os.fork") == 1, log["events"]
        assert all(e == "subprocess.Popen" and "ldconfig" in d and "'LC_ALL': 'C'" in d for e, d in spawned), spawned
        _assert_clean(proc, log, forged_case, f"mount {route}", cwd, set(), set())
    finally:
        unmount(cwd / "mnt")


def test_recover_state_file_holds_no_key(forged_case, tmp_path):
    """recover's state file (written after every batch, kept when the search is killed) holds
    counts and a digest of the search, never the pattern's digits or a candidate."""
    rp = forged_case["rp"]
    groups = rp.split("-")
    pattern = "-".join(groups[:5] + ["??????"] + groups[6:])  # a space far too big to finish here
    cwd = tmp_path / "work"
    (cwd / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITLOCKER_")}
    proc = subprocess.Popen([sys.executable, "-m", "bitlocker_tools", "recover", forged_case["image"], "--pattern",
                             pattern, "--max-time", "30d", "--workers", "1"], cwd=cwd, env={**env, "TMPDIR": str(cwd / "tmp"),
                                                                                             "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(cwd.glob("recover-*.state")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        # still running (an exited process's cmdline is empty, and would pass the check below)
        assert proc.poll() is None, f"recover ended early ({proc.returncode})"
        with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:  # the pattern, most of the key, hidden from ps
            title = fh.read().decode()
        assert proc.poll() is None  # the title read was the live process's
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    states = list(cwd.glob("recover-*.state"))
    assert states, "no state file was written"
    case = {**forged_case, "text": {**forged_case["text"], **{f"group {i + 1}": g for i, g in enumerate(groups)}}}
    for path, data in files_under(cwd, set()).items():
        assert not file_leaks(data, case), f"{path.name} holds {file_leaks(data, case)}"
    words = title.split("\0")
    assert "bitlocker_tools" in words and "recover" in words, title  # our live process's title, not an empty one
    assert words[words.index("--pattern") + 1] == "*" * len(pattern), title  # the pattern's place, starred
    assert pattern not in title and groups[0] not in title, title


def test_decrypt_resume_sidecar_holds_no_key(forged_case):
    """The .part.json beside an interrupted decrypt names the key only by a short salted digest."""
    from bitlocker_tools.credentials import collect
    from bitlocker_tools.decrypt import _identity
    from bitlocker_tools.protectors import unlock
    from bitlocker_tools.scan import select
    from bitlocker_tools.sources import open_source
    from bitlocker_tools.stream import DecryptedStream

    with open_source(str(forged_case["image"])) as src:
        vol = select(src, None, None, False)
        result = unlock(vol, collect(password=[forged_case["pw"]], use_env=False))
        text = json.dumps(_identity(DecryptedStream(vol, result)))
    assert "key_check" in text and not leaks(text, forged_case["hex"], forged_case["text"])


def test_reprs_of_the_objects_that_hold_secrets_are_masked(forged_case, corpus_dir):
    from bitlocker_tools.credentials import collect
    from bitlocker_tools.keyfiles import parse_bek
    from bitlocker_tools.keys import volume_keys
    from bitlocker_tools.protectors import unlock
    from bitlocker_tools.scan import select
    from bitlocker_tools.sources import open_source

    bek = corpus_dir / "recovery_key.bek"
    startup = parse_bek(bek.read_bytes(), str(bek))
    assert not leaks(repr(startup), _hex_needles("startup key", _bek_key(bek)), {}), repr(startup)
    with open_source(str(forged_case["image"])) as src:
        vol = select(src, None, None, False)
        creds = collect(recovery_password=[forged_case["rp"]], password=[forged_case["pw"]], use_env=False)
        result = unlock(vol, creds)
        found = volume_keys(vol, result)
        for obj in (creds, creds.recovery_passwords[0], result, result.protector, found, vol.metadata):
            text = repr(obj)
            assert not leaks(text, forged_case["hex"], forged_case["text"]), text[:300]
        assert str(creds.recovery_passwords[0]) == forged_case["rp"]  # str() is still the key, for --show-keys
    with open_source(str(corpus_dir / "suspended.bin")) as src:  # the clear key is in the metadata itself
        vol = select(src, None, None, False)
        clear = _hex_needles("clear key", _clear_key(corpus_dir / "suspended.bin"))
        result = unlock(vol, collect(clear_key=True, use_env=False))
        for obj in (vol.metadata, result, result.protector, vol):
            assert not leaks(repr(obj), clear, {}), type(obj).__name__


def test_a_recovered_key_is_masked_in_the_search_result():
    """recover's result holds the key it found: its repr (what an internal error or a log line
    would show) must not, while the key itself stays usable."""
    from bitlocker_tools.recover import SearchResult

    groups = "284867-596541-514998-422114-660297-261613-215424-199408".split("-")
    key16 = struct.pack("<8H", *(int(g) // 11 for g in groups))  # the key the groups encode
    result = SearchResult(key16, None, 1, 1, 1, 0, 0.1)
    text = repr(result)
    assert repr(key16)[2:-1] not in text and not leaks(text, {"the recovered key": key16.hex()}, {}), text
    assert result.key16 == key16


def test_every_secret_option_of_the_cli_is_hidden_from_the_process_title():
    """secret.SECRET_OPTIONS is written by hand: every spelling of every option that takes a
    credential, on every command, must be in it, or ps shows that one."""
    import typer.main

    from bitlocker_tools.cli import app
    from bitlocker_tools.secret import SECRET_OPTIONS

    secret_params = {"recovery_password", "password", "vmk", "fvek", "pattern"}
    group = typer.main.get_command(app)
    seen = set()
    for name, command in group.commands.items():
        for param in command.params:
            if param.name in secret_params:
                seen.add(param.name)
                missing = [o for o in param.opts + param.secondary_opts if o not in SECRET_OPTIONS]
                assert not missing, f"{name} {param.name}: {missing} not hidden"
    assert seen == secret_params, f"no command has {secret_params - seen}: the check looked at the wrong names"
