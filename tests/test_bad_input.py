"""Bad evidence and bad arguments: always ONE line on stderr starting ``bitlocker-tools: ``, never a
traceback, and the documented exit code (1 nothing found / wrong key, 2 usage, 3 bad input).
The evidence is never written to."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

import diskbuild
from conftest import assert_cli_error

VOLUME = "aes-xts_128.bin"  # Windows 10, metadata v2, three copies, one password protector
PASSWORD = "password12!@"
RP_VOLUME = "recovery_password.bin"
RECOVERY_PASSWORD = "284867-596541-514998-422114-660297-261613-215424-199408"

FIRST_ENTRY = 64 + 48  # block header + metadata header: the first entry's header


@pytest.fixture(scope="module")
def source_volume(corpus_dir) -> Path:
    return corpus_dir / VOLUME


@pytest.fixture(scope="module")
def metadata_offsets(source_volume, run_cli) -> list[int]:
    proc = run_cli("info", "--json", source_volume)
    assert proc.returncode == 0, proc.stderr
    offsets = json.loads(proc.stdout)["boot_sector"]["metadata_offsets"]
    assert len(offsets) == 3
    return offsets


@pytest.fixture
def volume_copy(tmp_path, source_volume) -> Path:
    """A private, sparse copy of the volume that a test may damage."""
    path = tmp_path / "copy.bin"
    with open(path, "wb") as fh:
        fh.truncate(source_volume.stat().st_size)
        diskbuild.copy_sparse(source_volume, fh, 0)
    return path


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _scan_json(run_cli, path):
    proc = run_cli("scan", "--json", path)
    return proc, json.loads(proc.stdout)["sources"][0]


# --- files that are not (readable) BitLocker evidence ---------------------------------------------


@pytest.mark.parametrize("command", [["scan"], ["scan", "--json"], ["info"], ["verify", "-p", PASSWORD]])
def test_missing_file(tmp_path, run_cli, command):
    missing = tmp_path / "no-such-image.E01"
    proc = run_cli(*command, missing)
    assert_cli_error(proc, 3, str(missing), "no such file")
    assert "Traceback" not in proc.stdout


def test_directory_instead_of_image(tmp_path, run_cli):
    assert_cli_error(run_cli("info", tmp_path), 3, "directory")


@pytest.fixture(params=["random", "zeros", "empty"])
def not_bitlocker(request, tmp_path) -> Path:
    path = tmp_path / f"{request.param}.img"
    if request.param == "random":
        path.write_bytes(os.urandom(1 << 20))
    elif request.param == "zeros":
        with open(path, "wb") as fh:
            fh.truncate(4 << 20)
    else:
        path.write_bytes(b"")
    return path


def test_scan_of_non_bitlocker_file(not_bitlocker, run_cli, unchanged):
    with unchanged(not_bitlocker):
        proc = run_cli("scan", not_bitlocker)
    assert_cli_error(proc, 1, "no BitLocker volume found")


def test_scan_json_of_non_bitlocker_file(not_bitlocker, run_cli):
    proc = run_cli("scan", "--json", not_bitlocker)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) <= 1
    source = json.loads(proc.stdout)["sources"][0]
    assert source["path"] == str(not_bitlocker)
    assert not any(v["bitlocker"] for v in source["volumes"])


@pytest.mark.parametrize("command", [["info"], ["verify", "-p", PASSWORD]])
def test_info_verify_of_non_bitlocker_file(not_bitlocker, run_cli, command):
    proc = run_cli(*command, not_bitlocker)
    assert_cli_error(proc, 1, str(not_bitlocker), "no BitLocker volume")


@pytest.mark.parametrize("command", [["scan"], ["info"], ["verify", "-p", PASSWORD]])
def test_image_shorter_than_a_sector(tmp_path, source_volume, run_cli, command):
    """The first 256 bytes of a BitLocker volume: its boot sector is cut off -> bad input (3)."""
    path = tmp_path / "head256.bin"
    path.write_bytes(_read(source_volume, 0, 256))
    assert path.read_bytes()[3:11] == b"-FVE-FS-"
    proc = run_cli(*command, path)
    assert_cli_error(proc, 3, "truncated")


@pytest.mark.parametrize("command", [["scan"], ["info"], ["verify", "-p", PASSWORD]])
def test_image_cut_before_the_metadata(tmp_path, source_volume, run_cli, command):
    """A whole boot sector but none of the metadata blocks: bad input, naming each copy."""
    path = tmp_path / "head4k.bin"
    path.write_bytes(_read(source_volume, 0, 4096))
    proc = run_cli(*command, path)
    line = assert_cli_error(proc, 3, "metadata")
    assert line.count("beyond the end") == 3, line


# --- damaged metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["scan"], ["scan", "--json"], ["info"], ["verify", "-p", PASSWORD]])
def test_all_three_metadata_copies_corrupt(volume_copy, metadata_offsets, run_cli, command):
    for off in metadata_offsets:
        assert _read(volume_copy, off, 8) == b"-FVE-FS-"
        _patch(volume_copy, off, b"XXXXXXXX")
    proc = run_cli(*command, volume_copy)
    line = assert_cli_error(proc, 3, "metadata")
    for off in metadata_offsets:
        assert f"{off:#x}" in line, f"copy at {off:#x} not named in {line!r}"
    if "--json" in command:
        record = json.loads(proc.stdout)["sources"][0]["volumes"][0]
        assert record["bitlocker"] is True
        assert "error" in record


@pytest.mark.parametrize("which", [0, 1, 2])
def test_one_metadata_copy_corrupt(volume_copy, metadata_offsets, run_cli, which):
    _patch(volume_copy, metadata_offsets[which], b"XXXXXXXX")
    proc, source = _scan_json(run_cli, volume_copy)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    vol = source["volumes"][0]
    assert "error" not in vol
    assert vol["volume_guid"] == "19540fda-3072-4554-9ddc-9df7343ef068"
    copies = {c["offset"]: c for c in vol["metadata_copies"]}
    assert set(copies) == set(metadata_offsets)
    for i, off in enumerate(metadata_offsets):
        assert copies[off]["valid"] is (i != which), copies[off]
    assert copies[metadata_offsets[which]]["error"]
    # the volume still opens with the remaining copies
    proc = run_cli("verify", volume_copy, "-p", PASSWORD)
    assert proc.returncode == 0, proc.stderr


def test_one_metadata_copy_fails_its_crc(volume_copy, metadata_offsets, run_cli):
    """A flipped byte inside the entries of one copy: that copy is reported invalid (CRC)."""
    off = metadata_offsets[0]
    desc = _read(volume_copy, off, 0x10000).find("TestVolume".encode("utf-16-le"))
    assert desc > FIRST_ENTRY
    _patch(volume_copy, off + desc, "X".encode("utf-16-le"))
    proc, source = _scan_json(run_cli, volume_copy)
    assert proc.returncode == 0, proc.stderr
    vol = source["volumes"][0]
    assert [c["valid"] for c in vol["metadata_copies"]] == [False, True, True]
    assert "crc" in vol["metadata_copies"][0]["error"].lower()
    assert vol["description"] == "DESKTOP-QNI1MMF TestVolume 10/8/2021"  # from a good copy


def _oversize_first_entry(path: Path, offsets: list[int], fix_crc: bool) -> None:
    for off in offsets:
        block = bytearray(_read(path, off, 0x10000))
        old = struct.unpack_from("<H", block, FIRST_ENTRY)[0]
        assert 8 <= old < 0x400, old
        struct.pack_into("<H", block, FIRST_ENTRY, 0xFFF0)
        if fix_crc:
            covered = struct.unpack_from("<H", block, 8)[0] * 16
            struct.pack_into("<I", block, covered + 4, zlib.crc32(bytes(block[:covered])))
        _patch(path, off, bytes(block))


@pytest.mark.parametrize("fix_crc", [False, True], ids=["crc-stale", "crc-fixed"])
@pytest.mark.parametrize("command", [["scan"], ["info"]])
def test_entry_runs_past_its_block(volume_copy, metadata_offsets, run_cli, fix_crc, command):
    _oversize_first_entry(volume_copy, metadata_offsets, fix_crc)
    proc = run_cli(*command, volume_copy)
    line = assert_cli_error(proc, 3)
    for off in metadata_offsets:
        assert f"{off:#x}" in line, line
    if fix_crc:
        # the CRC passes, so the parser gets to the entry walk and names the bad entry
        assert "entry" in line and f"{FIRST_ENTRY:#x}" in line, line
        assert "65520" in line or "0xfff0" in line.lower(), line


def test_entry_past_block_in_one_copy_only(volume_copy, metadata_offsets, run_cli):
    _oversize_first_entry(volume_copy, metadata_offsets[:1], fix_crc=True)
    proc, source = _scan_json(run_cli, volume_copy)
    assert proc.returncode == 0, proc.stderr
    copies = source["volumes"][0]["metadata_copies"]
    assert [c["valid"] for c in copies] == [False, True, True]
    assert "entry" in copies[0]["error"]


# --- bad arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [1, 3, 8])
def test_recovery_password_group_fails_checksum(corpus_dir, run_cli, group):
    groups = RECOVERY_PASSWORD.split("-")
    g = int(groups[group - 1])
    groups[group - 1] = f"{(g + 1) % 1000000:06d}"  # a typo: no longer a multiple of 11
    proc = run_cli("verify", corpus_dir / RP_VOLUME, "--recovery-password", "-".join(groups))
    assert_cli_error(proc, 2, f"group {group}")


def test_recovery_password_too_short(corpus_dir, run_cli):
    proc = run_cli("verify", corpus_dir / RP_VOLUME, "--recovery-password", RECOVERY_PASSWORD[:-7])
    assert_cli_error(proc, 2, "recovery password")


def test_recovery_password_from_env_with_bad_group(corpus_dir, run_cli):
    bad = RECOVERY_PASSWORD.replace("514998", "514999")
    proc = run_cli("verify", corpus_dir / RP_VOLUME, env={"BITLOCKER_RECOVERY_PASSWORD": bad})
    assert_cli_error(proc, 2, "group 3")


def test_good_recovery_password_still_works(corpus_dir, run_cli):
    proc = run_cli("verify", corpus_dir / RP_VOLUME, "--recovery-password", RECOVERY_PASSWORD)
    assert proc.returncode == 0, proc.stderr


def test_wrong_password(source_volume, run_cli):
    assert_cli_error(run_cli("verify", source_volume, "-p", "wrong password"), 1)


@pytest.mark.parametrize("command", [["info"], ["verify", "-p", PASSWORD]])
def test_volume_number_that_does_not_exist(source_volume, run_cli, command):
    proc = run_cli(*command, source_volume, "--volume", "9")
    assert_cli_error(proc, 1, "9")


@pytest.mark.parametrize("command", [["info"], ["verify", "-p", PASSWORD]])
def test_volume_and_offset_together(source_volume, run_cli, command):
    proc = run_cli(*command, source_volume, "--volume", "1", "--offset", "0")
    assert_cli_error(proc, 2, "--volume", "--offset")


def test_verify_without_credential(source_volume, run_cli):
    assert_cli_error(run_cli("verify", source_volume), 2, "credential")


def test_scan_with_one_missing_source(tmp_path, source_volume, run_cli):
    """A bad source among good ones: the good ones are still reported, the run exits 3."""
    missing = tmp_path / "gone.vhdx"
    proc = run_cli("scan", "--json", source_volume, missing)
    assert_cli_error(proc, 3, str(missing))
    sources = json.loads(proc.stdout)["sources"]
    assert sources[0]["volumes"][0]["bitlocker"] is True
    assert sources[1]["path"] == str(missing) and "error" in sources[1]


# --- the evidence is never written ----------------------------------------------------------------


def test_evidence_is_never_written(volume_copy, run_cli, unchanged):
    os.chmod(volume_copy, 0o644)
    with unchanged(volume_copy):
        assert run_cli("scan", volume_copy).returncode == 0
        assert run_cli("scan", "--json", volume_copy).returncode == 0
        assert run_cli("info", "--json", volume_copy).returncode == 0
        assert run_cli("verify", volume_copy, "-p", PASSWORD).returncode == 0
        assert run_cli("verify", volume_copy, "-p", "wrong").returncode == 1
        assert run_cli("verify", volume_copy, "--volume", "9", "-p", PASSWORD).returncode == 1


def test_corrupt_evidence_is_not_repaired(volume_copy, metadata_offsets, run_cli, unchanged):
    """Reading a damaged copy must not 'fix' it from the good ones."""
    _patch(volume_copy, metadata_offsets[1], b"XXXXXXXX")
    with unchanged(volume_copy):
        assert run_cli("scan", volume_copy).returncode == 0
        assert run_cli("verify", volume_copy, "-p", PASSWORD).returncode == 0
