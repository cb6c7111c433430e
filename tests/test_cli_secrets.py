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
"""

from __future__ import annotations

import os
import re
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
