"""Bad evidence and bad arguments: always ONE line on stderr starting ``bitlocker-tools: ``, never a
traceback, and the documented exit code (1 nothing found / wrong key, 2 usage, 3 bad input).
The evidence is never written to."""

from __future__ import annotations

import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import diskbuild
import pytest
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


NOT_EVIDENCE = {"random": "not a disk image or volume", "zeros": "not a disk image or volume", "empty": "empty"}


@pytest.fixture(params=sorted(NOT_EVIDENCE))
def not_bitlocker(request, tmp_path) -> tuple[Path, str]:
    """A file that is neither a disk image nor a volume, and what the error must say of it."""
    path = tmp_path / f"{request.param}.img"
    if request.param == "random":
        path.write_bytes(os.urandom(1 << 20))
    elif request.param == "zeros":
        with open(path, "wb") as fh:
            fh.truncate(4 << 20)
    else:
        path.write_bytes(b"")
    return path, NOT_EVIDENCE[request.param]


def test_scan_of_non_bitlocker_file(not_bitlocker, run_cli, unchanged):
    path, what = not_bitlocker
    with unchanged(path):
        proc = run_cli("scan", path)
    assert_cli_error(proc, 3, str(path), what)


def test_scan_json_of_non_bitlocker_file(not_bitlocker, run_cli):
    path, what = not_bitlocker
    proc = run_cli("scan", "--json", path)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    source = json.loads(proc.stdout)["sources"][0]
    assert source["path"] == str(path)
    assert not any(v["bitlocker"] for v in source["volumes"])
    assert what in source["volumes"][0]["error"]


@pytest.mark.parametrize("command", [["info"], ["verify", "-p", PASSWORD], ["decrypt", "-o", "-", "-p", PASSWORD]])
def test_info_verify_decrypt_of_non_bitlocker_file(not_bitlocker, run_cli, command):
    path, what = not_bitlocker
    proc = run_cli(*command, path)
    assert_cli_error(proc, 3, str(path), what)
    assert not proc.stdout


@pytest.fixture
def plain_ntfs(tmp_path, fixtures_dir) -> Path:
    """A readable NTFS volume image without BitLocker (the forge's plaintext fixture)."""
    path = tmp_path / "ntfs.img"
    path.write_bytes(gzip.decompress((fixtures_dir / "plain" / "ntfs.img.gz").read_bytes()))
    return path


def test_scan_of_a_volume_without_bitlocker_finds_nothing(plain_ntfs, run_cli):
    """Readable evidence that holds no BitLocker volume: nothing found (1), not bad input."""
    proc = run_cli("scan", plain_ntfs)
    assert_cli_error(proc, 1, "no BitLocker volume found")
    proc = run_cli("scan", "--json", plain_ntfs)
    assert proc.returncode == 1
    volume = json.loads(proc.stdout)["sources"][0]["volumes"][0]
    assert volume["bitlocker"] is False and "error" not in volume


@pytest.mark.parametrize("command", [["info"], ["verify", "-p", PASSWORD]])
def test_info_verify_of_a_volume_without_bitlocker(plain_ntfs, run_cli, command):
    """Asking to unlock something that is not BitLocker is unsupported input (3)."""
    assert_cli_error(run_cli(*command, plain_ntfs), 3, str(plain_ntfs), "not BitLocker")


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
    line = assert_cli_error(proc, 3, "truncated", "metadata", "beyond the end of the evidence", "4096 bytes")
    offsets = json.loads(run_cli("info", "--json", source_volume).stdout)["boot_sector"]["metadata_offsets"]
    for offset in offsets:
        assert f"{offset:#x}" in line, line


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


# --- truncated and damaged containers and disks ---------------------------------------------------


@pytest.fixture(scope="module")
def gpt_disk(tmp_path_factory, source_volume) -> diskbuild.Disk:
    if not diskbuild.have("sgdisk"):
        pytest.skip("sgdisk is not installed")
    return diskbuild.build_gpt(tmp_path_factory.mktemp("gpt") / "disk.raw", [source_volume])


def _head(src: Path, dst: Path, length: int) -> Path:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(fin.read(length))
    return dst


@pytest.mark.parametrize("fmt", ["qcow2", "vhdx", "vmdk"])
def test_truncated_container_among_good_sources(fmt, tmp_path, gpt_disk, source_volume, run_cli):
    """A container cut short names itself, the good source beside it is still reported, exit 3."""
    if not diskbuild.have("qemu-img"):
        pytest.skip("qemu-img is not installed")
    full = diskbuild.qemu_convert(gpt_disk.path, tmp_path / f"disk.{fmt}", fmt)
    cut = _head(full, tmp_path / f"cut.{fmt}", full.stat().st_size // 2)
    proc = run_cli("scan", "--json", source_volume, cut)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.splitlines()
    assert errors and all(line.startswith(f"bitlocker-tools: {cut}") for line in errors), proc.stderr
    assert all(("truncated" in line or "damaged" in line) for line in errors), proc.stderr
    good, bad = json.loads(proc.stdout)["sources"]
    assert good["volumes"][0]["bitlocker"] is True and "error" not in good["volumes"][0]
    assert bad["path"] == str(cut)
    assert bad.get("error") or any(v.get("error") for v in bad["volumes"])
    for command in (["info"], ["verify", "-p", PASSWORD]):
        assert_cli_error(run_cli(*command, cut), 3, str(cut))


def test_truncated_e01(tmp_path, gpt_disk, run_cli):
    if not diskbuild.have("ewfacquire"):
        pytest.skip("ewfacquire is not installed")
    full = diskbuild.ewf_acquire(gpt_disk.path, tmp_path / "disk")
    cut = _head(full, tmp_path / "cut.E01", full.stat().st_size // 2)
    assert_cli_error(run_cli("scan", cut), 3, str(cut))


@pytest.mark.parametrize("where", ["before the partition", "in the boot sector", "before the metadata"])
def test_truncated_partitioned_disk(where, tmp_path, gpt_disk, run_cli):
    """A disk image cut inside or before its BitLocker partition is a truncated image (3), not a
    disk without BitLocker (1)."""
    part = gpt_disk.part_for(gpt_disk.parts[1].volume)
    length = {"before the partition": part.offset - 4096, "in the boot sector": part.offset + 100,
              "before the metadata": part.offset + 4 * diskbuild.MiB}[where]
    cut = _head(gpt_disk.path, tmp_path / "cut.raw", length)
    for command in (["scan"], ["verify", "-p", PASSWORD]):
        proc = run_cli(*command, cut)
        assert proc.returncode == 3, proc.stderr
        assert "Traceback" not in proc.stderr
        assert any("truncated" in line and f"partition {part.number}" in line for line in proc.stderr.splitlines()), proc.stderr


@pytest.mark.parametrize("offset", ["-5", "999999999999"])
def test_offset_outside_the_source(offset, source_volume, run_cli):
    assert_cli_error(run_cli("info", source_volume, "--offset", offset), 2, "--offset", offset)


def test_bek_file_that_is_not_one(tmp_path, source_volume, run_cli):
    junk = tmp_path / "random.BEK"
    junk.write_bytes(os.urandom(4096))
    assert_cli_error(run_cli("verify", source_volume, "--bek", junk), 3, str(junk), "not a .BEK file")


def test_at_without_a_file_name(source_volume, run_cli):
    assert_cli_error(run_cli("verify", source_volume, "-p", "@"), 2, "file name")


def test_usage_errors_are_one_line(source_volume, run_cli):
    assert_cli_error(run_cli("decrypt", source_volume, "-p", PASSWORD), 2, "--output")
    assert_cli_error(run_cli("scan", "--bogus", source_volume), 2, "--bogus")
    assert_cli_error(run_cli("info", source_volume, "--volume", "abc"), 2, "--volume")


def test_json_failure_is_a_document(tmp_path, run_cli):
    """With --json a failed command still prints one JSON object a script can parse."""
    junk = tmp_path / "random.img"
    junk.write_bytes(os.urandom(1 << 16))
    proc = run_cli("verify", junk, "-p", PASSWORD, "--json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["unlocked"] is False and doc["exit_code"] == 3 and str(junk) in doc["error"]
    proc = run_cli("info", junk, "--json")
    assert json.loads(proc.stdout)["exit_code"] == 3
