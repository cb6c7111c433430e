"""Every credential by value, by ``-`` (stdin) and by ``@FILE``, as README.md and docs/cli.md
promise: --recovery-password, --password, --bek (``--bek -`` reads the .BEK from stdin), --vmk,
--fvek (hex text and dislocker's 66-byte FVEK file), the BITLOCKER_* environment variables, and
Windows' own UTF-16 recovery-key .TXT holding several keys, of which every one is tried.

Success is judged by the protector the manifest names and, where the plaintext is written, by the
manifest's SHA-256 of it; the 66-byte FVEK file is built here by hand from its layout (u16 method,
then the key zero-padded to 64 bytes), not by the project's writer.
"""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from conftest import assert_cli_error

PASSWORD = "password12!@"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"  # recovery_password.bin
RP_PROTECTOR = "3c116b76-c67b-484e-b439-ce2ed68b561e"
PW_PROTECTOR_OF_RP_VOLUME = "6dd54bcd-633d-4836-9ebc-44fa02f1776d"
OTHER_RP = "131450-120197-153989-250338-511368-495572-680944-381546"  # win7_partial's: valid, wrong here
BEK_PROTECTOR = "99b0081a-60b6-47e4-8482-dea46ee1891d"  # recovery_key.bin's startup key
XTS128_PROTECTOR = "55faeded-603a-459f-8f6b-325cf781f971"  # aes-xts_128.bin's password

# dislocker's encryption-method codes (the FVEK file's first two bytes, little endian)
METHOD_CODE = {"AES_128_DIFFUSER": 0x8000, "AES_256_DIFFUSER": 0x8001, "AES_128": 0x8002, "AES_256": 0x8003,
               "AES_XTS_128": 0x8004, "AES_XTS_256": 0x8005}


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if v["file"] == name + ".gz")


def _verified(proc, protector_id=None, via=None) -> dict:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr!r}"
    doc = json.loads(proc.stdout)
    assert doc["unlocked"] is True
    if protector_id is not None:
        assert doc["protector_id"] == protector_id, doc
    if via is not None:
        assert doc["via"] == via, doc
    return doc


def _decrypted_sha(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return hashlib.sha256(proc.stdout).hexdigest()


def windows_recovery_txt(blocks: list[tuple[str, str]]) -> bytes:
    """A recovery-key text file as Windows saves it (UTF-16LE with a BOM, CRLF), one block per
    (protector GUID, recovery password)."""
    text = ""
    for guid, key in blocks:
        text += (
            "BitLocker Drive Encryption recovery key\r\n\r\n"
            "To verify that this is the correct recovery key, compare the start of the following identifier "
            "with the identifier value displayed on your PC.\r\n\r\n"
            f"Identifier:\r\n\r\n\t{guid.upper()}\r\n\r\n"
            "If the above identifier matches the one displayed by your PC, then use the following key to "
            "unlock your drive.\r\n\r\n"
            f"Recovery Key:\r\n\r\n\t{key}\r\n\r\n"
            "If the above identifier doesn't match the one displayed by your PC, then this isn't the right key "
            "to unlock your drive.\r\nTry another recovery key, or refer to "
            "https://go.microsoft.com/fwlink/?LinkID=260589 for additional assistance.\r\n\r\n"
        )
    return b"\xff\xfe" + text.encode("utf-16-le")


@pytest.fixture(scope="module")
def keys(corpus_dir, run_cli) -> dict:
    """The VMK of aes-xts_128.bin, from --show-keys (its FVEK there must equal the manifest's)."""
    proc = run_cli("verify", corpus_dir / "aes-xts_128.bin", "-p", PASSWORD, "--show-keys", "--json")
    return _verified(proc)


# --- recovery password ------------------------------------------------------------------------------


def test_recovery_password_from_stdin_decrypts(corpus_dir, manifest, run_cli):
    proc = run_cli("decrypt", corpus_dir / "recovery_password.bin", "-r", "-", "-o", "-",
                   input=(RP + "\n").encode(), binary=True)
    assert _decrypted_sha(proc) == _entry(manifest, "recovery_password.bin")["decrypted_prefix_sha256"]


def test_recovery_password_from_plain_file(corpus_dir, run_cli, tmp_path):
    f = tmp_path / "rp.txt"
    f.write_text(RP.replace("-", " ") + "\n")
    _verified(run_cli("verify", corpus_dir / "recovery_password.bin", "-r", f"@{f}", "--json"), RP_PROTECTOR)


@pytest.mark.parametrize("order", ["wrong-first", "right-first"])
def test_windows_txt_with_several_keys_tries_each(order, corpus_dir, run_cli, tmp_path):
    """The first key in the file has a valid checksum but belongs to another volume; the second
    opens this one."""
    blocks = [("8f716353-9c42-4c8e-a3bc-768def089e9d", OTHER_RP), (RP_PROTECTOR, RP)]
    if order == "right-first":
        blocks.reverse()
    txt = tmp_path / "BitLocker Recovery Keys.TXT"
    txt.write_bytes(windows_recovery_txt(blocks))
    image = corpus_dir / "recovery_password.bin"
    _verified(run_cli("verify", image, "-r", f"@{txt}", "--json"), RP_PROTECTOR, "recovery_password")
    # the same file through stdin
    proc = run_cli("verify", image, "-r", "-", "--json", input=txt.read_bytes(), binary=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["protector_id"] == RP_PROTECTOR


def test_windows_txt_with_several_keys_decrypts(corpus_dir, manifest, run_cli, tmp_path):
    txt = tmp_path / "BitLocker Recovery Key 8F716353.TXT"
    txt.write_bytes(windows_recovery_txt([("8f716353-9c42-4c8e-a3bc-768def089e9d", OTHER_RP), (RP_PROTECTOR, RP)]))
    proc = run_cli("decrypt", corpus_dir / "recovery_password.bin", "-r", f"@{txt}", "-o", "-", binary=True)
    assert _decrypted_sha(proc) == _entry(manifest, "recovery_password.bin")["decrypted_prefix_sha256"]


def test_windows_txt_with_only_wrong_keys_is_a_wrong_key(corpus_dir, run_cli, tmp_path):
    txt = tmp_path / "other.TXT"
    txt.write_bytes(windows_recovery_txt([("8f716353-9c42-4c8e-a3bc-768def089e9d", OTHER_RP)]))
    assert_cli_error(run_cli("verify", corpus_dir / "recovery_password.bin", "-r", f"@{txt}"), 1)


def test_recovery_password_from_environment_decrypts(corpus_dir, manifest, run_cli):
    proc = run_cli("decrypt", corpus_dir / "recovery_password.bin", "-o", "-", binary=True,
                   env={"BITLOCKER_RECOVERY_PASSWORD": RP, "BITLOCKER_PASSWORD": ""})
    assert _decrypted_sha(proc) == _entry(manifest, "recovery_password.bin")["decrypted_prefix_sha256"]


# --- password --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["ascii-lf", "ascii-crlf", "ascii-no-newline", "utf16-bom-crlf", "utf8-bom"])
def test_password_from_file(encoding, corpus_dir, run_cli, tmp_path):
    f = tmp_path / "pw.txt"
    f.write_bytes({
        "ascii-lf": (PASSWORD + "\n").encode(),
        "ascii-crlf": (PASSWORD + "\r\n").encode(),
        "ascii-no-newline": PASSWORD.encode(),
        "utf16-bom-crlf": b"\xff\xfe" + (PASSWORD + "\r\n").encode("utf-16-le"),
        "utf8-bom": b"\xef\xbb\xbf" + (PASSWORD + "\n").encode(),
    }[encoding])
    _verified(run_cli("verify", corpus_dir / "aes-xts_128.bin", "-p", f"@{f}", "--json"), XTS128_PROTECTOR, "password")


def test_password_from_stdin(corpus_dir, manifest, run_cli, tmp_path):
    _verified(run_cli("verify", corpus_dir / "aes-xts_128.bin", "-p", "-", "--json", input=PASSWORD + "\n"),
              XTS128_PROTECTOR, "password")
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-p", "-", "-o", out, "--json", input=PASSWORD + "\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sha256"] == _entry(manifest, "aes-xts_128.bin")["decrypted_prefix_sha256"]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == _entry(manifest, "aes-xts_128.bin")["decrypted_prefix_sha256"]


def test_password_from_environment_decrypts(corpus_dir, manifest, run_cli):
    proc = run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-o", "-", binary=True,
                   env={"BITLOCKER_PASSWORD": PASSWORD, "BITLOCKER_RECOVERY_PASSWORD": ""})
    assert _decrypted_sha(proc) == _entry(manifest, "aes-xts_128.bin")["decrypted_prefix_sha256"]


def test_a_password_file_is_not_the_password(corpus_dir, run_cli, tmp_path):
    """``@FILE`` reads the file: the literal text "@FILE" is not tried as the password."""
    f = tmp_path / "pw.txt"
    f.write_text("not the password\n")
    assert_cli_error(run_cli("verify", corpus_dir / "aes-xts_128.bin", "-p", f"@{f}"), 1)
    missing = tmp_path / "absent.txt"
    assert_cli_error(run_cli("verify", corpus_dir / "aes-xts_128.bin", "-p", f"@{missing}"), 3, str(missing))


# --- .BEK ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "at-path", "stdin"])
def test_bek_forms(form, corpus_dir, run_cli):
    bek = corpus_dir / "recovery_key.bek"
    image = corpus_dir / "recovery_key.bin"
    if form == "stdin":
        proc = run_cli("verify", image, "--bek", "-", "--json", input=bek.read_bytes(), binary=True)
        proc.stdout = proc.stdout.decode()
        proc.stderr = proc.stderr.decode()
    else:
        proc = run_cli("verify", image, "--bek", f"@{bek}" if form == "at-path" else bek, "--json")
    _verified(proc, BEK_PROTECTOR, "startup_key")


def test_bek_from_stdin_decrypts(corpus_dir, manifest, run_cli, tmp_path):
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", corpus_dir / "recovery_key.bin", "--bek", "-", "-o", out, "--json",
                   input=(corpus_dir / "recovery_key.bek").read_bytes(), binary=True)
    assert proc.returncode == 0, proc.stderr
    expected = _entry(manifest, "recovery_key.bin")["decrypted_prefix_sha256"]
    assert json.loads(proc.stdout)["sha256"] == expected
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected


def test_wrong_bek_from_stdin(corpus_dir, run_cli):
    """startup_key.bek does NOT unlock recovery_key.bin (MANIFEST.md)."""
    proc = run_cli("verify", corpus_dir / "recovery_key.bin", "--bek", "-",
                   input=(corpus_dir / "startup_key.bek").read_bytes(), binary=True)
    assert_cli_error(proc, 1)


# --- VMK -------------------------------------------------------------------------------------------


def test_vmk_forms(corpus_dir, keys, run_cli, tmp_path):
    image = corpus_dir / "aes-xts_128.bin"
    vmk = keys["vmk"]
    assert len(vmk) == 64
    f = tmp_path / "vmk.txt"
    f.write_text(vmk.upper() + "\n")
    for args, stdin in ((["--vmk", vmk], None), (["--vmk", "-"], vmk + "\n"), (["--vmk", f"@{f}"], None)):
        _verified(run_cli("verify", image, *args, "--json", input=stdin), via="vmk")
    proc = run_cli("decrypt", image, "--vmk", "-", "-o", "-", input=(vmk + "\n").encode(), binary=True)
    assert proc.returncode == 0, proc.stderr


# --- FVEK ------------------------------------------------------------------------------------------


def _dislocker_fvek_file(method: str, key_hex: str) -> bytes:
    key = bytes.fromhex(key_hex)
    assert len(key) <= 64
    return struct.pack("<H", METHOD_CODE[method]) + key.ljust(64, b"\0")


@pytest.mark.parametrize("name", ["aes-xts_128.bin", "aes-xts_256.bin", "aes_128_diffuser.bin", "aes_128.bin", "aes_256.bin"])
def test_fvek_forms_decrypt_to_the_manifest_hash(name, corpus_dir, manifest, run_cli, tmp_path):
    entry = _entry(manifest, name)
    fvek = entry["credentials"]["fvek"]
    image = corpus_dir / name
    expected = entry["decrypted_prefix_sha256"]
    hex_file = tmp_path / "fvek.hex"
    hex_file.write_text(fvek + "\n")
    dis_file = tmp_path / "fvek.dislocker"
    dis_file.write_bytes(_dislocker_fvek_file(entry["method"], fvek))
    assert dis_file.stat().st_size == 66
    forms = {
        "literal": (["--fvek", fvek], None),
        "stdin-hex": (["--fvek", "-"], (fvek + "\n").encode()),
        "file-hex": (["--fvek", f"@{hex_file}"], None),
        "file-dislocker-66": (["--fvek", f"@{dis_file}"], None),
        "stdin-dislocker-66": (["--fvek", "-"], dis_file.read_bytes()),
    }
    for form, (args, stdin) in forms.items():
        proc = run_cli("verify", image, *args, "--json", input=stdin, binary=True)
        assert proc.returncode == 0, f"{form}: {proc.stderr!r}"
        assert json.loads(proc.stdout)["via"] == "fvek", form
    # the plaintext itself, through both file forms
    for form in ("file-hex", "file-dislocker-66"):
        args, _ = forms[form]
        proc = run_cli("decrypt", image, *args, "-o", "-", binary=True)
        assert _decrypted_sha(proc) == expected, form


def test_fvek_file_of_the_wrong_volume_is_a_wrong_key(corpus_dir, manifest, run_cli, tmp_path):
    other = _entry(manifest, "aes-xts_256.bin")["credentials"]["fvek"][:64]  # 32 bytes, XTS-128 sized
    f = tmp_path / "wrong.fvek"
    f.write_bytes(_dislocker_fvek_file("AES_XTS_128", other))
    assert_cli_error(run_cli("verify", corpus_dir / "aes-xts_128.bin", "--fvek", f"@{f}"), 1)
