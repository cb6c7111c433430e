"""`decrypt`'s ``missing_bytes`` and ``declared_size`` (docs/cli.md), and what the human summary
says of them.

``missing_bytes`` counts plaintext whose ciphertext lies beyond the end of the evidence: on a
Windows 7+ volume the first 8 KiB of the plaintext are stored relocated, at the volume-header
offset, so an image cut inside or before that area misses them. The cases:

* a forged volume whose relocated header is the last 8 KiB of the volume, cut 512 bytes into that
  area (7,680 bytes missing) and cut at its start (all 8,192 missing);
* the same volume as partition 2 of a GPT disk that is cut off there (the partition is then
  shorter than its table entry);
* the real Windows volume aes_128.bin cut 512 bytes into its relocated header (35,651,584);
* the truncated corpus volumes as they come (suspended.bin: the metadata declares 65,994,752
  bytes, the file holds 51,032,064): every relocated sector is present, so ``missing_bytes`` is 0
  while ``declared_size`` says what is absent.

The expected plaintext is built here from the plain input image (or, for the corpus, from
MANIFEST.md's known answer for sector 0 and the full decryption checked against its SHA-256).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import resource
import subprocess
import sys
from pathlib import Path

import diskbuild
import pytest
from conftest import ROOT, sha256_file

from bitlocker_tools.forge import ProtectorSpec, VolumeSpec, forge
from bitlocker_tools.format.constants import EncryptionMethod

PASSWORD = "Cut-Off-1"
VH_SIZE = 8192
METADATA_AREA = 0x10000
CORPUS_DECLARED = 65_994_752  # MANIFEST.md: dislocker's decrypted size of the truncated volumes


def _copy_head(src: Path, dst: Path, length: int) -> Path:
    """The first ``length`` bytes of ``src`` as a sparse file."""
    zero = bytes(1 << 20)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.truncate(length)
        pos = 0
        while pos < length and (chunk := fin.read(min(1 << 20, length - pos))):
            if chunk != zero[: len(chunk)]:
                fout.seek(pos)
                fout.write(chunk)
            pos += len(chunk)
    assert dst.stat().st_size == length
    return dst


def same(got: bytes, want: bytes, what: str) -> None:
    """Compare without dumping megabytes: the length and the first differing offset."""
    assert len(got) == len(want), f"{what}: {len(got)} bytes, expected {len(want)}"
    if got != want:
        first = next(i for i in range(len(got)) if got[i] != want[i])
        raise AssertionError(f"{what}: differs first at offset {first} "
                             f"(got {got[first:first + 8].hex()}, expected {want[first:first + 8].hex()})")


def zeros(got: bytes, what: str) -> None:
    nonzero = len(got) - got.count(0)
    assert nonzero == 0, f"{what}: {nonzero} of {len(got)} bytes are not zero (they must read as zeros)"


@pytest.fixture(scope="module")
def forged(fixtures_dir):
    """An XTS-128 NTFS volume laid out as metadata, metadata, metadata, relocated header: the
    relocated first 8 KiB are the volume's last 8 KiB."""
    plain = gzip.decompress((fixtures_dir / "plain" / "ntfs.img.gz").read_bytes())
    size = len(plain)
    md = (size - 3 * METADATA_AREA - VH_SIZE, size - 2 * METADATA_AREA - VH_SIZE, size - METADATA_AREA - VH_SIZE)
    vh = size - VH_SIZE
    vol = forge(plain, VolumeSpec(method=EncryptionMethod.AES_XTS_128, protectors=[ProtectorSpec("password", PASSWORD)],
                                  seed="missing-bytes", metadata_offsets=md, volume_header_offset=vh))
    assert vol.volume_header_offset == vh and vol.volume_header_size == VH_SIZE and vol.size == size
    # the plaintext a reader must produce, from the input: the reserved areas read as zeros
    expected = bytearray(plain)
    for off in md:
        expected[off : off + METADATA_AREA] = bytes(METADATA_AREA)
    expected[vh : vh + VH_SIZE] = bytes(VH_SIZE)
    assert hashlib.sha256(expected).hexdigest() == vol.expected_sha256
    return vol, bytes(expected)


def _decrypt_json(run_cli, path, *args) -> dict:
    proc = run_cli("decrypt", path, *args, "-o", "-", "--json", binary=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stderr)
    assert doc["sha256"] == hashlib.sha256(proc.stdout).hexdigest()
    doc["_plain"] = proc.stdout
    return doc


def _human_summary(run_cli, path, out: Path, *args) -> str:
    proc = run_cli("decrypt", path, *args, "-o", out)
    assert proc.returncode == 0, proc.stderr
    out.unlink()
    return proc.stdout


@pytest.mark.parametrize("into_header", [512, 0], ids=["cut-after-the-boot-sector", "cut-at-the-header"])
def test_relocated_header_beyond_the_evidence(into_header, forged, run_cli, tmp_path):
    vol, expected = forged
    full = vol.write(tmp_path / "full.bin")
    cut_at = vol.volume_header_offset + into_header
    cut = _copy_head(full, tmp_path / "cut.bin", cut_at)
    missing = VH_SIZE - into_header

    doc = _decrypt_json(run_cli, cut, "-p", PASSWORD)
    assert doc["missing_bytes"] == missing
    assert doc["bytes_written"] == cut_at
    assert doc["declared_size"] == vol.size
    assert doc["filesystem"] == ("NTFS" if into_header else None)

    summary = _human_summary(run_cli, cut, tmp_path / "plain.img", "-p", PASSWORD)
    assert f"{missing} bytes of relocated sectors lie beyond the evidence" in summary, summary
    assert f"the metadata describes {vol.size} bytes" in summary, summary


@pytest.mark.parametrize("into_header", [512, 0], ids=["cut-after-the-boot-sector", "cut-at-the-header"])
def test_missing_relocated_bytes_read_as_zeros(into_header, forged, run_cli, tmp_path):
    """What the summary says of them ("... lie beyond the evidence and read as zeros"), and what
    the stream promises: the plaintext there is zeros, not the decryption of zeros; everything
    else is the input image."""
    vol, expected = forged
    cut_at = vol.volume_header_offset + into_header
    cut = _copy_head(vol.write(tmp_path / "full.bin"), tmp_path / "cut.bin", cut_at)
    doc = _decrypt_json(run_cli, cut, "-p", PASSWORD)
    plain = doc["_plain"]
    assert len(plain) == cut_at
    same(plain[:into_header], expected[:into_header], "the plaintext before the missing bytes")
    same(plain[VH_SIZE:], expected[VH_SIZE:cut_at], "the plaintext after the relocated area")
    zeros(plain[into_header:VH_SIZE], "the missing relocated bytes")


def test_the_whole_forged_volume_misses_nothing(forged, run_cli, tmp_path):
    vol, expected = forged
    path = vol.write(tmp_path / "full.bin")
    doc = _decrypt_json(run_cli, path, "-p", PASSWORD)
    assert doc["missing_bytes"] == 0 and doc["bytes_written"] == vol.size and doc["declared_size"] == vol.size
    same(doc["_plain"], expected, "the plaintext")
    summary = _human_summary(run_cli, path, tmp_path / "plain.img", "-p", PASSWORD)
    assert "beyond the evidence" not in summary and "ends early" not in summary, summary


def test_partition_cut_off_inside_its_relocated_header(forged, run_cli, tmp_path):
    """A GPT disk cut 512 bytes into partition 2's relocated header: the partition holds less
    than its table entry says, and the plaintext of --volume 2 misses 7,680 bytes."""
    if not diskbuild.have("sgdisk"):
        pytest.skip("sgdisk is not installed")
    vol, expected = forged
    volume = vol.write(tmp_path / "vol.bin")
    disk = diskbuild.build_gpt(tmp_path / "disk.raw", [volume])
    part = disk.part_for(volume)
    assert part.number == 2
    cut_in_volume = vol.volume_header_offset + 512
    cut = _copy_head(disk.path, tmp_path / "cut.raw", part.offset + cut_in_volume)
    doc = _decrypt_json(run_cli, cut, "--volume", "2", "-p", PASSWORD)
    assert doc["missing_bytes"] == VH_SIZE - 512
    assert doc["bytes_written"] == cut_in_volume
    assert doc["declared_size"] == vol.size
    same(doc["_plain"][:512], expected[:512], "the boot sector")
    same(doc["_plain"][VH_SIZE:], expected[VH_SIZE:cut_in_volume], "the plaintext after the relocated area")


@pytest.fixture(scope="module")
def aes_128_plain(corpus_dir, manifest, tmp_path_factory) -> bytes:
    """The full plaintext of aes_128.bin, checked against the manifest's SHA-256."""
    from conftest import run_bitlocker_tools

    proc = run_bitlocker_tools("decrypt", corpus_dir / "aes_128.bin", "-p", "password12!@", "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr
    entry = next(v for v in manifest["volumes"] if v["file"] == "aes_128.bin.gz")
    assert hashlib.sha256(proc.stdout).hexdigest() == entry["decrypted_prefix_sha256"]
    return proc.stdout


def test_real_volume_cut_inside_its_relocated_header(corpus_dir, aes_128_plain, run_cli, tmp_path):
    info = run_cli("info", "--json", corpus_dir / "aes_128.bin")
    vh = json.loads(info.stdout)["block_header"]["volume_header_offset"]
    assert vh == 35_651_584  # 0x2200000, after the first metadata copy at 35,586,048
    cut = _copy_head(corpus_dir / "aes_128.bin", tmp_path / "aes_128-cut.bin", vh + 512)
    doc = _decrypt_json(run_cli, cut, "-p", "password12!@")
    assert doc["missing_bytes"] == VH_SIZE - 512
    assert doc["bytes_written"] == vh + 512
    assert doc["declared_size"] == CORPUS_DECLARED
    plain = doc["_plain"]
    # MANIFEST.md's known answer for decrypted sector 0 of aes_128
    assert hashlib.sha256(plain[:512]).hexdigest() == "330ae9824fdd919fbe5c0eb7f48c9f9df2a002557eb5daa2f8be93d25f4dccc5"
    same(plain[VH_SIZE:], aes_128_plain[VH_SIZE : vh + 512], "the plaintext after the relocated area")
    summary = _human_summary(run_cli, cut, tmp_path / "plain.img", "-p", "password12!@")
    assert f"{VH_SIZE - 512} bytes of relocated sectors lie beyond the evidence" in summary, summary
    zeros(plain[512:VH_SIZE], "the missing relocated bytes")


def test_resumed_run_counts_the_missing_bytes_of_the_whole_output(corpus_dir, run_cli, tmp_path):
    """``missing_bytes`` describes the output, like ``sha256``: a run resumed past the relocated
    header must still report the 7,680 bytes its first part could not read. The first run is
    cut off by the file-size limit once its .part holds 12 MiB (three 4 MiB chunks)."""
    vh = 35_651_584
    cut = _copy_head(corpus_dir / "aes_128.bin", tmp_path / "aes_128-cut.bin", vh + 512)
    out = tmp_path / "plain.img"
    limit = 12 << 20

    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    first = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", str(cut), "-p", "password12!@",
                            "-o", str(out)], capture_output=True, text=True, cwd=ROOT, preexec_fn=preexec, timeout=120)
    assert first.returncode != 0, first.stderr
    assert (tmp_path / "plain.img.part").stat().st_size == limit
    proc = run_cli("decrypt", cut, "-p", "password12!@", "-o", out, "--resume", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["resumed_from"] > 0
    assert doc["bytes_written"] == vh + 512
    assert doc["missing_bytes"] == VH_SIZE - 512, f"missing_bytes {doc['missing_bytes']} after resuming from {doc['resumed_from']}"


CORPUS_TRUNCATED = {
    "aes_128.bin": ["-p", "password12!@"],
    "aes-xts_256.bin": ["-p", "password12!@"],
    "aes_256_diffuser.bin": ["-p", "password12!@"],
    "recovery_key.bin": ["--bek", "{corpus}/recovery_key.bek"],
    "suspended.bin": ["--clear-key"],
}


@pytest.mark.parametrize("name", list(CORPUS_TRUNCATED))
def test_truncated_corpus_volumes_miss_no_relocated_bytes(name, corpus_dir, manifest, run_cli, tmp_path):
    args = [a.format(corpus=corpus_dir) for a in CORPUS_TRUNCATED[name]]
    entry = next(v for v in manifest["volumes"] if v["file"] == name + ".gz")
    size = (corpus_dir / name).stat().st_size
    assert size == entry["decrypted_prefix_bytes"] < CORPUS_DECLARED
    doc = _decrypt_json(run_cli, corpus_dir / name, *args)
    assert doc["missing_bytes"] == 0
    assert doc["declared_size"] == CORPUS_DECLARED
    assert doc["bytes_written"] == size
    assert doc["sha256"] == entry["decrypted_prefix_sha256"]
    summary = _human_summary(run_cli, corpus_dir / name, tmp_path / "plain.img", *args)
    assert "beyond the evidence" not in summary, summary
    assert f"the metadata describes {CORPUS_DECLARED} bytes, {CORPUS_DECLARED - size} are missing" in summary, summary


def test_suspended_to_a_file(corpus_dir, manifest, run_cli, tmp_path):
    """The same through a file: missing_bytes 0, declared 65,994,752, written 51,032,064."""
    out = tmp_path / "suspended.img"
    proc = run_cli("decrypt", corpus_dir / "suspended.bin", "--clear-key", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["missing_bytes"], doc["declared_size"], doc["bytes_written"]) == (0, 65_994_752, 51_032_064)
    assert sha256_file(out) == next(v for v in manifest["volumes"] if v["file"] == "suspended.bin.gz")[
        "decrypted_prefix_sha256"]
