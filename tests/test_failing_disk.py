"""Failing disks: evidence whose bad sectors answer reads with EIO.

Two kinds of failure are injected. At the file-object level, a wrapper fails every read that
touches a chosen sector (as ``open_source`` hands it to every command); at the kernel level, a
FUSE file (``direct_io``, so the kernel passes each read through unchanged) answers EIO for chosen
byte ranges and the CLI reads it as an ordinary image file in a subprocess. Trust comes from the
corpus: a clean decrypt of the same volume must match the manifest's SHA-256, and the damaged
decrypt must equal it everywhere except the injected sectors, which must be zeros and be exactly
what the summary and the ``OUT.badranges.json`` sidecar name.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, STRICT, sha256_file, unmount
from typer.testing import CliRunner

from bitlocker_tools import sources as sources_module
from bitlocker_tools.cli import app
from bitlocker_tools.credentials import collect
from bitlocker_tools.decrypt import decrypt_to
from bitlocker_tools.devices import AlignedReader, DeviceGeometry
from bitlocker_tools.protectors import unlock
from bitlocker_tools.sources import Source
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.unreadable import EXIT_INCOMPLETE, UnreadableRange, read_salvaging
from bitlocker_tools.volume import BitLockerVolume

XTS = "aes-xts_128"
RP = "recovery_password"
MiB = 1 << 20
EIO_TEXT = "[Errno 5] Input/output error"


def entry(manifest: dict, name: str) -> dict:
    return next(v for v in manifest["volumes"] if v["file"] == name + ".bin.gz")


class FailingFile(io.RawIOBase):
    """A read-only image file whose ``bad`` ranges are bad sectors: any read touching one fails
    with EIO, as a failing disk answers (the whole request, not the good part of it)."""

    def __init__(self, path: str | os.PathLike, bad: list[tuple[int, int]]):
        super().__init__()
        self._fh = open(path, "rb", buffering=0)
        self.name = str(path)
        self.bad = bad
        self._pos = 0
        self.failed = 0  # reads answered with EIO

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._fh.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = len(buf)
        if any(self._pos < s + length and s < self._pos + n for s, length in self.bad):
            self.failed += 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        self._fh.seek(self._pos)
        got = self._fh.readinto(buf)
        self._pos += got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def failing_source(path, bad):
    return Source(str(path), io.BufferedReader(FailingFile(path, bad)), os.path.getsize(path), "volume")


@pytest.fixture
def bad_sectors(monkeypatch):
    """Make every command open its evidence through :class:`FailingFile` with the ranges given."""
    chosen: dict[str, list[tuple[int, int]]] = {}

    def open_failing(path):
        return failing_source(path, chosen.get(str(path), []))

    monkeypatch.setattr(sources_module, "open_source", open_failing)
    return chosen


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def zeroed(data: bytes, ranges) -> bytes:
    out = bytearray(data)
    for o, n in ranges:
        out[o : o + n] = bytes(n)
    return bytes(out)


@pytest.fixture(scope="module")
def clean(corpus_dir, manifest, tmp_path_factory) -> tuple[Path, Path, dict]:
    """The XTS corpus volume, its clean decrypt (checked against the manifest), its entry."""
    e = entry(manifest, XTS)
    image = corpus_dir / f"{XTS}.bin"
    out = tmp_path_factory.mktemp("clean") / "clean.img"
    code, stdout, _ = invoke("decrypt", image, "--fvek", e["credentials"]["fvek"], "-o", out, "--json")
    assert code == 0
    assert e["decrypted_prefix_bytes"] == out.stat().st_size
    assert sha256_file(out) == e["decrypted_prefix_sha256"] == json.loads(stdout)["sha256"]
    return image, out, e


def volume_header(image) -> tuple[int, int]:
    with open(image, "rb") as fh:
        return BitLockerVolume(fh, 0, None, "v").volume_header


def _bad_layout(image) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Bad sectors (volume offsets) and where their zeros land in the output: one in the
    relocated first sectors (stored at the volume-header offset, output offset 1024), one alone,
    a run across a 4 MiB chunk boundary, and a run of 9 sectors."""
    vh, _ = volume_header(image)
    bad = [(vh + 1024, 512), (3 * MiB + 7 * 512, 512), (8 * MiB - 1024, 2048), (20 * MiB + 4096, 9 * 512)]
    out = [(1024, 512)] + bad[1:]
    return bad, out


# --- decrypt ---------------------------------------------------------------------------------------


def test_decrypt_zero_fills_exactly_the_bad_sectors_and_lists_them(clean, bad_sectors, tmp_path):
    image, clean_out, e = clean
    bad, where = _bad_layout(image)
    bad_sectors[str(image)] = bad
    out = tmp_path / "damaged.img"
    code, stdout, stderr = invoke("decrypt", image, "--fvek", e["credentials"]["fvek"], "-o", out, "--json")
    assert code == EXIT_INCOMPLETE == 4
    doc = json.loads(stdout)
    assert doc["complete"] is False and doc["exit_code"] == 4
    got = [(r["offset"], r["length"]) for r in doc["unreadable_ranges"]]
    assert sorted(got) == sorted(bad)
    assert sorted((r["output_offset"], r["length"]) for r in doc["unreadable_ranges"]) == sorted(where)
    assert all(r["error"] == EIO_TEXT and r["evidence_offset"] == r["offset"] for r in doc["unreadable_ranges"])
    assert doc["unreadable_bytes"] == sum(n for _, n in bad)
    # everywhere else the exact plaintext; the bad sectors zeros
    damaged = out.read_bytes()
    assert damaged == zeroed(clean_out.read_bytes(), where)
    assert any(clean_out.read_bytes()[o : o + n] != bytes(n) for o, n in where)  # zeros are a change
    assert doc["sha256"] == hashlib.sha256(damaged).hexdigest()
    # the sidecar, beside the output, names the same ranges and the output's digest
    side = json.loads((tmp_path / "damaged.img.badranges.json").read_text())
    assert doc["badranges_file"] == str(tmp_path / "damaged.img.badranges.json")
    assert side["unreadable_ranges"] == doc["unreadable_ranges"] and side["hashes"] == doc["hashes"]
    assert side["complete"] is False and side["volume_guid"] == e["volume_guid"]
    assert not list(tmp_path.glob("*.part*"))
    assert f"incomplete: {doc['unreadable_bytes']} bytes in 4 unreadable ranges" in stderr
    assert stderr.count("warning:") == 4


def test_a_clean_decrypt_is_complete_and_writes_no_sidecar(clean, tmp_path):
    image, _, e = clean
    out = tmp_path / "ok.img"
    code, stdout, _ = invoke("decrypt", image, "--fvek", e["credentials"]["fvek"], "-o", out, "--json")
    doc = json.loads(stdout)
    assert code == 0 and doc["complete"] is True and doc["unreadable_ranges"] == [] and doc["badranges_file"] is None
    assert "exit_code" not in doc and not (tmp_path / "ok.img.badranges.json").exists()


def test_decrypt_to_stdout_zero_fills_and_reports_on_stderr(clean, bad_sectors, tmp_path):
    image, clean_out, e = clean
    bad, where = _bad_layout(image)
    bad_sectors[str(image)] = bad
    result = CliRunner().invoke(app, ["decrypt", str(image), "--fvek", e["credentials"]["fvek"], "-o", "-", "--json"])
    assert result.exit_code == 4
    assert result.stdout_bytes == zeroed(clean_out.read_bytes(), where)
    doc = json.loads(result.stderr[result.stderr.index("{"): result.stderr.rindex("}") + 1])
    assert sorted((r["offset"], r["length"]) for r in doc["unreadable_ranges"]) == sorted(bad)
    assert doc["badranges_file"] is None


def test_resume_after_a_failing_run_keeps_the_ranges_recorded(clean, tmp_path):
    """A run over bad sectors is interrupted; the resumed run (on evidence whose first bad
    sector has since been read: a re-seated cable, say) keeps the range the first run recorded,
    because the part of the output it covers was written as zeros."""
    image, clean_out, e = clean
    bad, where = _bad_layout(image)
    creds = collect(fvek=e["credentials"]["fvek"])
    out = tmp_path / "r.img"

    def stream_over(ranges):
        src = failing_source(image, ranges)
        vol = BitLockerVolume(src.fh, 0, src.size, str(image))
        return src, DecryptedStream(vol, unlock(vol, creds))

    written = [0]

    def interrupt(n):
        written[0] += n
        if written[0] >= 12 * MiB:
            raise KeyboardInterrupt

    src, stream = stream_over(bad)
    with src, pytest.raises(KeyboardInterrupt):
        decrypt_to(stream, str(out), progress=interrupt)
    state = json.loads((tmp_path / "r.img.part.json").read_text())
    early = [(r["offset"], r["length"]) for r in state["unreadable_ranges"]]
    assert bad[0] in early and bad[1] in early  # recorded before their chunks were written
    assert not (tmp_path / "r.img").exists()

    src, stream = stream_over(bad[1:])  # the volume-header sector reads now
    with src:
        done = decrypt_to(stream, str(out), resume=True)
    assert done.resumed_from > 0
    assert sorted((r.offset, r.length) for r in done.unreadable) == sorted(bad)
    assert out.read_bytes() == zeroed(clean_out.read_bytes(), where)
    side = json.loads((tmp_path / "r.img.badranges.json").read_text())
    assert sorted((r["output_offset"], r["length"]) for r in side["unreadable_ranges"]) == sorted(where)
    assert done.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()


def test_an_existing_sidecar_is_never_overwritten(clean, tmp_path):
    image, _, e = clean
    (tmp_path / "x.img.badranges.json").write_text("{}")
    code, _, stderr = invoke("decrypt", image, "--fvek", e["credentials"]["fvek"], "-o", tmp_path / "x.img")
    assert code == 2 and "x.img.badranges.json: exists" in stderr


# --- the other commands: metadata copies and the boot sector ----------------------------------------


@pytest.fixture(scope="module")
def rp_volume(corpus_dir, manifest):
    e = entry(manifest, RP)
    image = corpus_dir / f"{RP}.bin"
    with open(image, "rb") as fh:
        copies = [c.offset for c in BitLockerVolume(fh, 0, None, "v").copies]
    return image, e, copies


def test_a_metadata_copy_on_a_bad_sector_is_skipped_for_a_good_one(rp_volume, bad_sectors, tmp_path):
    image, e, copies = rp_volume
    bad_sectors[str(image)] = [(copies[0] + 512, 512)]  # inside the first copy's metadata
    rp = e["credentials"]["recovery_password"]
    expect = f"metadata copy at {copies[0]:#x} skipped: unreadable: {EIO_TEXT}"
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"{e['protectors'][0]['id'].upper()}: {rp}\n")

    code, stdout, stderr = invoke("scan", image, "--json")
    assert code == 0 and expect in stderr
    vol = json.loads(stdout)["sources"][0]["volumes"][0]
    assert vol["metadata_copies"][0]["unreadable"] is True and vol["metadata_copies"][0]["valid"] is False
    assert all(c["valid"] for c in vol["metadata_copies"][1:])
    assert vol["unreadable_ranges"] == [{"offset": copies[0] + 512, "length": 512, "error": EIO_TEXT,
                                         "output_offset": None, "evidence_offset": copies[0] + 512}]
    assert vol["volume_guid"] == e["volume_guid"]

    code, stdout, stderr = invoke("info", image, "--json")
    assert code == 0 and expect in stderr and json.loads(stdout)["block_header"]["offset"] == copies[1]

    code, stdout, stderr = invoke("verify", image, "-r", rp, "--json")
    doc = json.loads(stdout)
    assert code == 0 and expect in stderr and doc["unlocked"] is True
    assert [i["validation_ok"] for i in doc["integrity"]] == [None, True, True]

    code, stdout, stderr = invoke("keys", image, "-r", rp, "--json")
    assert code == 0 and expect in stderr
    assert json.loads(stdout)["recovery_passwords"][0]["protector_id"] == e["protectors"][0]["id"]

    code, stdout, stderr = invoke("match", image, "--keys", keyfile, "--json")
    assert code == 0 and expect in stderr
    assert json.loads(stdout)["matches"][0]["protector_id"] == e["protectors"][0]["id"]


def test_bad_sectors_after_a_copy_in_its_area_do_not_spoil_it(rp_volume, bad_sectors):
    image, e, copies = rp_volume
    bad_sectors[str(image)] = [(copies[0] + 60 * 1024, 512)]  # in the 64 KiB area, past the block
    code, stdout, stderr = invoke("scan", image, "--json")
    vol = json.loads(stdout)["sources"][0]["volumes"][0]
    assert code == 0 and all(c["valid"] for c in vol["metadata_copies"])
    assert [r["offset"] for r in vol["unreadable_ranges"]] == [copies[0] + 60 * 1024]


def test_every_copy_on_a_bad_sector_is_exit_3_naming_each(rp_volume, bad_sectors):
    image, e, copies = rp_volume
    bad_sectors[str(image)] = [(c + 1024, 512) for c in copies]
    code, _, stderr = invoke("info", image)
    assert code == 3
    assert "all metadata copies are damaged" in stderr
    assert all(f"{c:#x}: unreadable: {EIO_TEXT}" in stderr for c in copies)


def test_an_unreadable_boot_sector_is_exit_3_saying_where(rp_volume, bad_sectors, tmp_path):
    image, e, _ = rp_volume
    bad_sectors[str(image)] = [(0, 512)]
    rp = e["credentials"]["recovery_password"]
    for args in (["scan", image], ["info", image], ["verify", image, "-r", rp], ["keys", image, "-r", rp],
                 ["match", image, "--keys", tmp_path / "none.txt"],
                 ["decrypt", image, "-r", rp, "-o", tmp_path / "o.img"]):
        (tmp_path / "none.txt").write_text("")
        code, _, stderr = invoke(*args)
        assert code == 3, args
        assert (f"{image}: cannot read sector 0 (the boot sector or partition table) at offset 0: {EIO_TEXT}"
                in stderr), (args, stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["none.txt"]


def test_an_unreadable_partition_boot_sector_is_reported_where(rp_volume):
    """A partition whose first sector fails: neither BitLocker nor not; the error says where."""
    from bitlocker_tools.scan import examine
    from bitlocker_tools.sources import Partition

    image, _, _ = rp_volume
    with failing_source(image, [(MiB, 512)]) as src:
        report = examine(src, Partition(2, MiB, 8 * MiB))
    assert report.bitlocker is False
    assert report.error == f"{image} partition 2: cannot read the boot sector at offset {MiB}: {EIO_TEXT}"


def test_open_source_reports_an_unreadable_sector_0(tmp_path, monkeypatch):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(8192))
    real_open = Path.open

    def failing_open(self, mode="r", *a, **k):
        if self == image:
            return io.BufferedReader(FailingFile(self, [(0, 512)]))
        return real_open(self, mode, *a, **k)

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(Exception) as err:
        sources_module.open_source(image)
    assert err.value.exit_code == 3
    assert str(err.value) == f"{image}: cannot read sector 0 (the boot sector or partition table) at offset 0: {EIO_TEXT}"


# --- the policy and the device reader -------------------------------------------------------------


def test_the_policy_narrows_to_the_sector_with_few_failing_reads(tmp_path):
    data = os.urandom(4 * MiB)
    path = tmp_path / "d"
    path.write_bytes(data)
    bad = [(1 * MiB + 512 * 3, 512), (3 * MiB, 4096)]
    f = FailingFile(path, bad)
    buf = bytearray(len(data))

    def read(at, view):
        f.seek(at)
        return f.readinto(view)

    got, ranges = read_salvaging(read, 0, memoryview(buf), 512, 0)
    assert got == len(data)
    assert [(r.offset, r.length) for r in ranges] == bad
    assert all(isinstance(r, UnreadableRange) and r.error == EIO_TEXT for r in ranges)
    assert bytes(buf) == zeroed(data, bad)
    assert f.failed < 60  # by splitting eightfold, not one failing read per sector (8192 sectors)


class BadDevice:
    """A raw device (the :class:`.devices.Backend` seam) with bad sectors: a read touching one
    fails with EIO, as a disk answers."""

    def __init__(self, data: bytes, bad: list[tuple[int, int]], sector: int):
        self.data, self.bad, self.sector = data, bad, sector

    def geometry(self, handle):
        return DeviceGeometry(len(self.data), self.sector)

    def read(self, handle, offset, length):
        assert offset % self.sector == 0 and length % self.sector == 0
        if any(offset < s + n and s < offset + length for s, n in self.bad):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self.data[offset : offset + length]

    def close(self, handle):
        pass


@pytest.mark.parametrize("sector", [512, 4096])
def test_a_device_is_read_around_its_bad_sectors_at_its_sector_size(sector):
    data = os.urandom(3 * MiB)
    bad = [(MiB + 5 * sector, sector), (2 * MiB + 8 * sector, 3 * sector)]
    dev = BadDevice(data, bad, sector)
    fh = io.BufferedReader(AlignedReader(dev, 0, dev.geometry(0)), MiB)
    buf = bytearray(len(data))
    got, ranges = sources_module.salvage_into(fh, 0, memoryview(buf), sector)
    assert got == len(data) and [(r.offset, r.length) for r in ranges] == bad
    assert bytes(buf) == zeroed(data, bad)
    fh.seek(MiB)  # and the buffered reader is still right afterwards
    assert fh.read(5 * sector) == data[MiB : MiB + 5 * sector]


# --- kernel-level: a FUSE file that answers EIO --------------------------------------------------------

FUSE_SERVER = r'''
import errno, json, os, stat, sys
sys.path.insert(0, sys.argv[4])
from bitlocker_tools.mount import load_fuse

fuse = load_fuse()
image, mnt, bad = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
size = os.path.getsize(image)
name = os.path.basename(image)
fd = os.open(image, os.O_RDONLY)


class BadSectors:
    use_ns = True

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2}
        if path == "/" + name:
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": size}
        raise OSError(errno.ENOENT, "no such file")

    def readdir(self, path, fh):
        return [".", "..", name]

    def open(self, path, flags):
        return 0

    def read(self, path, length, offset, fh):
        if any(offset < s + n and s < offset + length for s, n in bad):
            raise OSError(errno.EIO, "bad sector")
        return os.pread(fd, length, offset)


# direct_io: the kernel passes each read through as asked, so a sector can fail alone
fuse.FUSE(BadSectors(), mnt, foreground=True, ro=True, direct_io=True)
'''


@pytest.fixture
def fuse_disk(tmp_path):
    """Start a FUSE server for an image with bad byte ranges; yields a function (image, bad) ->
    the path of the file that fails there. Needs /dev/fuse (CI has it: nothing skips under CI)."""
    if not os.path.exists("/dev/fuse") and not STRICT:
        pytest.skip("no /dev/fuse on this machine")
    servers = []

    def serve(image, bad):
        mnt = tmp_path / f"mnt{len(servers)}"
        mnt.mkdir()
        script = tmp_path / "fuse_eio.py"
        script.write_text(FUSE_SERVER)
        proc = subprocess.Popen([sys.executable, str(script), str(image), str(mnt), json.dumps(bad), str(ROOT)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        servers.append((proc, mnt))
        target = mnt / Path(image).name
        deadline = time.monotonic() + 20
        while not target.exists():
            if proc.poll() is not None:
                pytest.fail(f"the FUSE server did not start: {proc.stdout.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail("the FUSE mount did not appear in 20 s")
            time.sleep(0.05)
        return target

    yield serve
    for proc, mnt in servers:
        unmount(mnt)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_kernel_eio_from_a_fuse_file(clean, fuse_disk, tmp_path):
    """The CLI reads a file whose bad ranges the kernel answers with EIO, in a process of its
    own: the output is the clean plaintext with zeros exactly there, and exit 4."""
    image, clean_out, e = clean
    bad, where = _bad_layout(image)
    disk = fuse_disk(image, bad)
    with pytest.raises(OSError) as refused:  # the kernel really fails the read
        with open(disk, "rb", buffering=0) as fh:
            os.pread(fh.fileno(), 512, bad[1][0])
    assert refused.value.errno == errno.EIO
    out = tmp_path / "fuse.img"
    proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", str(disk), "--fvek",
                           e["credentials"]["fvek"], "-o", str(out), "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 4, proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted((r["offset"], r["length"]) for r in doc["unreadable_ranges"]) == sorted(bad)
    assert out.read_bytes() == zeroed(clean_out.read_bytes(), where)
    side = json.loads((tmp_path / "fuse.img.badranges.json").read_text())
    assert side["unreadable_ranges"] == doc["unreadable_ranges"]
    assert all(r["error"] == EIO_TEXT for r in side["unreadable_ranges"])


def test_kernel_eio_through_a_read_only_loop_device(clean, fuse_disk, tmp_path):
    """The same bad sectors behind a read-only loop device over the FUSE file: the CLI opens a
    raw block device (aligned reads, the size from BLKGETSIZE64), whose page cache would fail a
    whole page for one bad sector; the O_DIRECT retry narrows it down to the very sectors."""
    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("loop devices need root and losetup")
    image, clean_out, e = clean
    bad, where = _bad_layout(image)
    disk = fuse_disk(image, bad)
    attach = subprocess.run(["losetup", "-r", "-f", "--show", str(disk)], capture_output=True, text=True)
    assert attach.returncode == 0, attach.stderr
    loop = attach.stdout.strip()
    try:
        out = tmp_path / "loop.img"
        proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", loop, "--fvek",
                               e["credentials"]["fvek"], "-o", str(out), "--json"], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)
    assert proc.returncode == 4, proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted((r["offset"], r["length"]) for r in doc["unreadable_ranges"]) == sorted(bad)
    assert out.read_bytes() == zeroed(clean_out.read_bytes(), where)


# --- inside a disk and a container: evidence offsets are not volume offsets ----------------------------


@pytest.fixture(scope="module")
def gpt_disk(clean, tmp_path_factory):
    """The XTS volume as partition 2 of a GPT disk (at 16 MiB), and that disk as a VHDX."""
    import diskbuild

    for tool in ("sgdisk", "qemu-img"):
        if not diskbuild.have(tool):
            pytest.skip(f"{tool} is not installed")
    image = clean[0]
    work = tmp_path_factory.mktemp("gpt")
    disk = diskbuild.build_gpt(work / "disk.raw", [image])
    part = next(p for p in disk.parts if p.volume is not None)
    return disk.path, part.offset, diskbuild.qemu_convert(disk.path, work / "disk.vhdx", "vhdx")


def test_ranges_in_a_partition_are_volume_offsets_with_the_evidence_offset_beside(clean, gpt_disk, bad_sectors,
                                                                                   tmp_path):
    image, clean_out, e = clean
    disk, start, _ = gpt_disk
    bad, where = _bad_layout(image)
    bad_sectors[str(disk)] = [(start + o, n) for o, n in bad]
    out = tmp_path / "p2.img"
    code, stdout, _ = invoke("decrypt", disk, "--volume", 2, "--fvek", e["credentials"]["fvek"], "-o", out, "--json")
    assert code == 4
    got = json.loads(stdout)["unreadable_ranges"]
    assert sorted((r["offset"], r["length"], r["evidence_offset"], r["output_offset"]) for r in got) == sorted(
        (o, n, start + o, w) for (o, n), (w, _) in zip(bad, where))
    assert out.read_bytes() == zeroed(clean_out.read_bytes(), where)


def test_a_container_file_with_a_bad_sector_through_dissect(clean, gpt_disk, fuse_disk, tmp_path):
    """A VHDX on a failing disk: dissect reads it, the I/O error passes through the container
    reader as an I/O error (not "damaged container"), and only what holds that sector is lost.
    The bad sector is placed where the VHDX stores the sector 1024 bytes into the relocated
    first sectors (found by its bytes, which occur once in the file)."""
    image, clean_out, e = clean
    _, start, vhdx = gpt_disk
    vh, _ = volume_header(image)
    sector = image.read_bytes()[vh + 1024 : vh + 1536]
    data = vhdx.read_bytes()
    at = data.find(sector)
    assert any(sector) and at > 0 and data.find(sector, at + 1) < 0
    served = fuse_disk(vhdx, [(at, 512)])
    out = tmp_path / "vhdx.img"
    proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", str(served), "--volume", "2",
                           "--fvek", e["credentials"]["fvek"], "-o", str(out), "--json"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 4, proc.stderr
    (r,) = json.loads(proc.stdout)["unreadable_ranges"]
    # dissect reads a VHDX in aligned units of its own, so what is lost is the unit that holds the
    # bad sector (8 KiB here), not the sector alone; it is named exactly and nothing else is lost
    assert r["offset"] <= vh + 1024 and vh + 1536 <= r["offset"] + r["length"] <= r["offset"] + 64 * 1024
    assert r["offset"] % 512 == 0 and r["length"] % 512 == 0 and r["error"] == EIO_TEXT
    assert r["evidence_offset"] == start + r["offset"] and r["output_offset"] == r["offset"] - vh
    assert out.read_bytes() == zeroed(clean_out.read_bytes(), [(r["output_offset"], r["length"])])
