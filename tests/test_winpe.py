"""WinPE and Windows drives, tested on Linux through the seams that stand for Windows.

- Raw devices: a fake device that refuses every read whose offset or length is not a whole
  number of sectors, as ``\\\\.\\PhysicalDriveN`` does, serves a corpus volume and GPT disks
  (512-byte and 4Kn); ``scan``, ``verify`` and ``decrypt`` through it must give the corpus
  manifest's plaintext SHA-256, which comes from dissect.fve, not from us. The decoding of
  the Windows size IOCTLs is fed the structures Windows returns.
- ``scan --all-drives``: a fake ``/sys/block`` tree, and a fake Windows opener and DOS-device list.
- The single-file build: ``scripts/build_zipapp.py`` once per session, run by a venv with
  nothing installed and by an interpreter isolated by a ``._pth`` file like the Windows
  embeddable package; its decrypt must give the manifest's SHA-256 too.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import random
import struct
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import diskbuild
import pytest
from conftest import ROOT, assert_cli_error, sha256_file
from typer.testing import CliRunner

from bitlocker_tools import devices, drives
from bitlocker_tools.cli import app
from bitlocker_tools.devices import (
    IOCTL_DISK_GET_DRIVE_GEOMETRY,
    IOCTL_DISK_GET_DRIVE_GEOMETRY_EX,
    IOCTL_DISK_GET_LENGTH_INFO,
    AlignedReader,
    DeviceGeometry,
    geometry_from_ioctls,
    no_media,
)

VOLUME = "recovery_password.bin"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"
GUID = "8e6909f1-6ba3-49ea-bf8d-ec83fab656cd"
MiB = 1 << 20


def win_error(cls, winerror: int, text: str) -> OSError:
    """An OSError as Python raises it on Windows (``winerror`` set; POSIX Python drops it)."""
    exc = cls(errno.EACCES if cls is PermissionError else errno.EIO, text)
    exc.winerror = winerror
    return exc


class StrictDevice:
    """A fake raw-device backend: files served as devices, refusing what Windows refuses
    (EINVAL for a read not on whole sectors, or past the end). ``open_errors`` and
    ``geometry_errors`` make a path fail the way a real drive does."""

    def __init__(self, files: dict[str, Path], sector_size: int = 512, open_errors=None, geometry_errors=None):
        self.files = files
        self.sector_size = sector_size
        self.open_errors = open_errors or {}
        self.geometry_errors = geometry_errors or {}
        self.reads: list[tuple[int, int]] = []
        self.opened: list[str] = []
        self._paths: dict[int, str] = {}

    def open(self, path: str) -> int:
        self.opened.append(path)
        if path in self.open_errors:
            raise self.open_errors[path]
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, "The system cannot find the file specified", path)
        fd = os.open(self.files[path], os.O_RDONLY)
        self._paths[fd] = path
        return fd

    def geometry(self, handle: int) -> DeviceGeometry:
        path = self._paths[handle]
        if path in self.geometry_errors:
            raise self.geometry_errors[path]
        size = os.fstat(handle).st_size
        assert size % self.sector_size == 0, "a device is a whole number of sectors"
        return DeviceGeometry(size, self.sector_size)

    def read(self, handle: int, offset: int, length: int) -> bytes:
        size = os.fstat(handle).st_size
        if offset % self.sector_size or length % self.sector_size or offset + length > size:
            raise OSError(errno.EINVAL, f"Invalid argument (read of {length} at {offset})")
        self.reads.append((offset, length))
        return os.pread(handle, length, offset)

    def close(self, handle: int) -> None:
        del self._paths[handle]
        os.close(handle)


def entry(manifest: dict, name: str) -> dict:
    return next(v for v in manifest["volumes"] if v["file"] == name + ".gz")


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# --- the aligned reader ----------------------------------------------------------------------------


@pytest.mark.parametrize("sector", [512, 4096])
def test_aligned_reader_serves_any_read_from_a_device_that_refuses_unaligned_ones(tmp_path, sector):
    size = 7 * 4096 + (3 * 512 if sector == 512 else 0)  # a 512-byte-sector disk need not end on 4 KiB
    data = random.Random(sector).randbytes(size)
    (tmp_path / "disk").write_bytes(data)
    dev = StrictDevice({"disk": tmp_path / "disk"}, sector)
    handle = dev.open("disk")
    with pytest.raises(OSError) as refused:  # the fake really refuses, as Windows does
        dev.read(handle, 100, sector)
    assert refused.value.errno == errno.EINVAL
    reader = AlignedReader(dev, handle, dev.geometry(handle))
    rng = random.Random(1)
    cases = [(0, 1), (1, 511), (511, 2), (4095, 4098), (size - 1, 1), (size - 700, 700), (size - 5, 50), (size, 10)]
    cases += [(rng.randrange(size), rng.randrange(1, 3 * 4096)) for _ in range(200)]
    for offset, length in cases:
        reader.seek(offset)
        buf = bytearray(length)
        n = reader.readinto(buf)
        assert bytes(buf[:n]) == data[offset : offset + length], (offset, length)
    assert all(o % sector == 0 and n % sector == 0 and o + n <= size for o, n in dev.reads)
    assert any(o + n == size for o, n in dev.reads), "the last sectors were read up to the end, not past it"
    reader.close()


def test_a_buffered_device_reads_like_the_file(tmp_path):
    data = random.Random(7).randbytes(64 * 1024)
    (tmp_path / "disk").write_bytes(data)
    dev = StrictDevice({r"\\.\PhysicalDrive3": tmp_path / "disk"})
    fh, geometry = devices.open_device(r"\\.\PhysicalDrive3", dev)
    assert geometry == DeviceGeometry(len(data), 512)
    with fh:
        fh.seek(1000)
        assert fh.read(3000) == data[1000:4000]
        fh.seek(-10, 2)
        assert fh.read() == data[-10:]


# --- Windows size and sector size (IOCTLs) ---------------------------------------------------------


def _geometry(bytes_per_sector: int, cylinders: int = 121601) -> bytes:
    return struct.pack("<qiIII", cylinders, 12, 255, 63, bytes_per_sector)  # 12: FixedMedia


def fake_ioctl(answers: dict):
    """DeviceIoControl as a handle answers it: bytes, or the error Windows gives."""

    def ioctl(code: int, out_size: int) -> bytes:
        answer = answers.get(code, win_error(OSError, 1, "Incorrect function"))
        if isinstance(answer, OSError):
            raise answer
        return answer[:out_size]

    return ioctl


def test_size_and_sector_size_of_a_4kn_disk():
    size = 1_000_204_886_016
    ioctl = fake_ioctl({IOCTL_DISK_GET_LENGTH_INFO: struct.pack("<q", size),
                        IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: _geometry(4096) + struct.pack("<q", size) + bytes(8)})
    assert geometry_from_ioctls(ioctl) == DeviceGeometry(size, 4096)


def test_a_volume_handle_answers_the_length_and_the_old_geometry():
    ioctl = fake_ioctl({IOCTL_DISK_GET_LENGTH_INFO: struct.pack("<q", 51032064),
                        IOCTL_DISK_GET_DRIVE_GEOMETRY: _geometry(512)})
    assert geometry_from_ioctls(ioctl) == DeviceGeometry(51032064, 512)


def test_without_the_length_ioctl_the_size_is_disk_size():
    ioctl = fake_ioctl({IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: _geometry(512) + struct.pack("<q", 8 * MiB)})
    assert geometry_from_ioctls(ioctl) == DeviceGeometry(8 * MiB, 512)


def test_an_empty_card_reader_says_no_media():
    not_ready = win_error(PermissionError, 21, "The device is not ready")  # Python maps 21 to EACCES
    with pytest.raises(OSError) as raised:
        geometry_from_ioctls(fake_ioctl({IOCTL_DISK_GET_LENGTH_INFO: not_ready}))
    assert no_media(raised.value)
    assert not no_media(win_error(PermissionError, 5, "Access is denied"))


def test_the_windows_backend_sizes_and_reads_through_its_ioctl_seam(tmp_path):
    """WindowsBackend as it runs in WinPE, but with DeviceIoControl answered by a fake: the size
    and sector size from the IOCTLs (never from seek or stat), extended DASD I/O asked for on
    a volume handle only."""
    data = random.Random(3).randbytes(16 * 4096)
    calls: list[tuple[str, int]] = []

    def ioctl(fd: int, code: int, out_size: int) -> bytes:
        calls.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), code))
        if code == devices.FSCTL_ALLOW_EXTENDED_DASD_IO:
            return b""
        return fake_ioctl({IOCTL_DISK_GET_LENGTH_INFO: struct.pack("<q", 8 * 4096),  # less than the file
                           IOCTL_DISK_GET_DRIVE_GEOMETRY_EX: _geometry(4096) + struct.pack("<q", 8 * 4096)})(code, out_size)

    for name in ("PhysicalDrive2", "D:"):
        (tmp_path / name).write_bytes(data)
        fh, geometry = devices.open_device(str(tmp_path / name), devices.WindowsBackend(ioctl))
        with fh:
            assert geometry == DeviceGeometry(8 * 4096, 4096)
            fh.seek(5000)
            assert fh.read(10**6) == data[5000 : 8 * 4096]
    assert [c for c in calls if c[1] == devices.FSCTL_ALLOW_EXTENDED_DASD_IO] == [("D:", devices.FSCTL_ALLOW_EXTENDED_DASD_IO)]


# --- scan / verify / decrypt through the fake device -----------------------------------------------


@pytest.fixture
def strict_device(monkeypatch):
    """Install a StrictDevice as the OS's device backend; returns a function to set it up."""

    def install(files: dict[str, Path], sector_size: int = 512, **errors) -> StrictDevice:
        dev = StrictDevice(files, sector_size, **errors)
        monkeypatch.setattr(devices, "platform_backend", lambda: dev)
        return dev

    return install


def test_volume_on_a_raw_device_scans_verifies_and_decrypts(tmp_path, corpus_dir, manifest, strict_device):
    dev = strict_device({r"\\.\D:": corpus_dir / VOLUME})
    code, out, err = invoke("scan", "--json", r"\\.\D:")
    assert code == 0, err
    (src,) = json.loads(out)["sources"]
    assert (src["kind"], src["size"]) == ("device", 51032064)
    assert [v["volume_guid"] for v in src["volumes"]] == [GUID]
    code, out, err = invoke("verify", r"\\.\D:", "-r", RP)
    assert code == 0, err
    code, out, err = invoke("decrypt", r"\\.\D:", "-r", RP, "-o", tmp_path / "plain.img")
    assert code == 0, err
    want = entry(manifest, VOLUME)
    assert (tmp_path / "plain.img").stat().st_size == int(want["decrypted_prefix_bytes"])
    assert sha256_file(tmp_path / "plain.img") == want["decrypted_prefix_sha256"]
    assert dev.reads, "the reads went through the device backend"


@pytest.mark.parametrize("sector", [512, 4096])
def test_partitioned_disk_on_a_raw_device(tmp_path, corpus_dir, manifest, strict_device, sector):
    vol = corpus_dir / VOLUME
    disk = tmp_path / "disk.raw"
    if sector == 512:
        if not diskbuild.have("sgdisk"):
            pytest.skip("sgdisk is not installed")
        layout = diskbuild.build_gpt(disk, [vol])
        part = layout.part_for(vol)
        number, offset = part.number, part.offset
    else:  # 4Kn: the GPT header at byte 4096, LBAs of 4 KiB
        number, offset = 1, MiB
        with open(disk, "wb") as fh:
            fh.truncate(offset + vol.stat().st_size + 2 * MiB)
            diskbuild.copy_sparse(vol, fh, offset)
        diskbuild.write_gpt(disk, disk.stat().st_size, [(offset, vol.stat().st_size)], sector=4096)
    dev = strict_device({r"\\.\PhysicalDrive1": disk}, sector)
    code, out, err = invoke("scan", "--json", r"\\.\PhysicalDrive1")
    assert code == 0, err
    found = [v for v in json.loads(out)["sources"][0]["volumes"] if v["bitlocker"]]
    assert [(v["partition"], v["offset"], v["volume_guid"]) for v in found] == [(number, offset, GUID)]
    code, out, err = invoke("decrypt", r"\\.\PhysicalDrive1", "--volume", number, "-r", RP, "-o", tmp_path / "p.img")
    assert code == 0, err
    assert sha256_file(tmp_path / "p.img") == entry(manifest, VOLUME)["decrypted_prefix_sha256"]
    assert dev.reads and all(o % sector == 0 and n % sector == 0 for o, n in dev.reads)


def test_a_device_without_permission_is_one_line(strict_device):
    strict_device({}, open_errors={r"\\.\PhysicalDrive0": win_error(PermissionError, 5, "Access is denied")})
    code, out, err = invoke("info", r"\\.\PhysicalDrive0")
    assert code == 3
    assert err.strip().splitlines() == [r"bitlocker-tools: \\.\PhysicalDrive0: cannot open device: Access is "
                                        "denied (raw devices need root, or an elevated prompt on Windows)"]


# --- listing the drives ----------------------------------------------------------------------------


def _sys_block(root: Path, devices_: dict[str, int], slaves: dict[str, list[str]] | None = None) -> Path:
    """A /sys/block tree: one folder per device with ``size`` (512-byte sectors) and ``slaves``,
    and a partition folder below each disk, as the kernel has them."""
    sys_block = root / "sys" / "block"
    for name, sectors in devices_.items():
        d = sys_block / name
        (d / "slaves").mkdir(parents=True)
        (d / "size").write_text(f"{sectors}\n")
        for s in (slaves or {}).get(name, []):
            (d / "slaves" / s).mkdir()
        if sectors and not name.startswith(("loop", "dm-", "sr")):
            (d / f"{name}1").mkdir()
            (d / f"{name}1" / "size").write_text(f"{sectors // 2}\n")
    return sys_block


def test_linux_drives_are_the_whole_disks_with_media(tmp_path):
    sys_block = _sys_block(tmp_path, {
        "sda": 2048, "sdb": 2048, "nvme10n1": 2048, "nvme2n1": 2048, "mmcblk0": 2048,
        "loop0": 0, "loop1": 2048, "ram0": 8192, "zram0": 8192, "sr0": 0, "dm-0": 2048, "cciss!c0d0": 2048,
    }, slaves={"dm-0": ["sda"]})
    dev = tmp_path / "dev"
    files = {}
    for name in ("sda", "sdb", "nvme2n1", "nvme10n1", "mmcblk0", "loop1", "cciss/c0d0"):
        (dev / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / name).write_bytes(bytes(2048 * 512))
        files[str(dev / name)] = dev / name
    backend = StrictDevice(files, open_errors={str(dev / "sdb"): PermissionError(errno.EACCES, "Permission denied")})
    found = drives.list_drives("linux", backend=backend, sys_block=str(sys_block), dev=str(dev))
    assert [(Path(d.path).relative_to(dev).as_posix(), d.size, d.error is None) for d in found] == [
        ("cciss/c0d0", MiB, True), ("loop1", MiB, True), ("mmcblk0", MiB, True),
        ("nvme2n1", MiB, True), ("nvme10n1", MiB, True), ("sda", MiB, True), ("sdb", None, False)]
    assert "Permission denied" in found[-1].error and found[-1].path in found[-1].error


def test_windows_drives_from_the_dos_device_list(tmp_path):
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(4096))
    names = ["C:", "PhysicalDrive0", "CdRom0", "PhysicalDrive2", "PhysicalDrive10", "HarddiskVolume1", "PhysicalDrive4"]
    backend = StrictDevice(
        {r"\\.\PhysicalDrive0": disk, r"\\.\PhysicalDrive2": disk, r"\\.\PhysicalDrive10": disk},
        open_errors={r"\\.\PhysicalDrive4": win_error(PermissionError, 5, "Access is denied")},
        geometry_errors={r"\\.\PhysicalDrive2": win_error(PermissionError, 21, "The device is not ready")})
    found = drives.list_drives("win32", backend=backend, dos_devices=lambda: names)
    assert [(d.path, d.error is None) for d in found] == [
        (r"\\.\PhysicalDrive0", True), (r"\\.\PhysicalDrive4", False), (r"\\.\PhysicalDrive10", True)]
    assert sorted(backend.opened) == sorted(rf"\\.\PhysicalDrive{n}" for n in (0, 2, 4, 10))


def test_windows_drives_probed_when_the_dos_device_list_fails(tmp_path):
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(4096))
    backend = StrictDevice({rf"\\.\PhysicalDrive{n}": disk for n in (0, 1, 3, 4 + drives.PROBE_MISSES)})

    def no_list():
        raise OSError("QueryDosDevice failed")

    found = drives.list_drives("win32", backend=backend, dos_devices=no_list)
    # a gap (2) is passed over; PROBE_MISSES missing in a row end the probing
    assert [d.path for d in found] == [rf"\\.\PhysicalDrive{n}" for n in (0, 1, 3)]
    assert len(backend.opened) == 4 + drives.PROBE_MISSES


def test_scan_all_drives_reports_an_unreadable_drive_and_goes_on(tmp_path, corpus_dir, monkeypatch, strict_device):
    vol = corpus_dir / VOLUME
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as fh:
        fh.truncate(MiB + vol.stat().st_size + 2 * MiB)
        diskbuild.copy_sparse(vol, fh, MiB)
    diskbuild.write_gpt(disk, disk.stat().st_size, [(MiB, vol.stat().st_size)], sector=512)
    denied = win_error(PermissionError, 5, "Access is denied")
    dev = strict_device({r"\\.\PhysicalDrive0": disk, r"\\.\PhysicalDrive2": disk},
                        open_errors={r"\\.\PhysicalDrive1": denied},
                        geometry_errors={r"\\.\PhysicalDrive2": win_error(PermissionError, 21, "The device is not ready")})
    names = ["PhysicalDrive0", "PhysicalDrive1", "PhysicalDrive2"]
    monkeypatch.setattr(drives, "list_drives", lambda: drives.windows_drives(dev, lambda: names))
    code, out, err = invoke("scan", "--all-drives", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["path"] for s in doc["sources"]] == [r"\\.\PhysicalDrive0", r"\\.\PhysicalDrive1"]
    assert [v["volume_guid"] for v in doc["sources"][0]["volumes"] if v["bitlocker"]] == [GUID]
    assert "Access is denied" in doc["sources"][1]["error"] and "error" not in doc
    assert err.strip().splitlines() == [f"bitlocker-tools: warning: {doc['sources'][1]['error']}"]
    # nothing readable at all: that is the failure
    monkeypatch.setattr(drives, "list_drives", lambda: drives.windows_drives(dev, lambda: names[1:]))
    code, out, err = invoke("scan", "--all-drives", "--json")
    assert code == 3 and json.loads(out)["exit_code"] == 3
    assert "Access is denied" in json.loads(out)["error"]


def test_scan_needs_a_source_or_all_drives(run_cli):
    assert_cli_error(run_cli("scan"), 2, "--all-drives")


# --- the single-file build -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    """bitlocker-tools.pyz, built once per session, for this interpreter and win_amd64/3.12."""
    out = tmp_path_factory.mktemp("pyz") / "bitlocker-tools.pyz"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), "-o", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{out}: {out.stat().st_size} bytes" in proc.stdout
    return out


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """A venv's python with nothing installed (not even pip), and no view of the checkout."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print([m for m in "
                            "('numpy', 'Crypto', 'typer', 'dissect', 'bitlocker_tools') if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd=venv, env=_clean_env(venv), check=True)
    assert probe.stdout.strip() == "[]", "the venv must see none of the dependencies"
    return python


@pytest.fixture(scope="session")
def embeddable_python(tmp_path_factory) -> Path:
    """This interpreter isolated by a ``._pth`` file beside it, as the Windows embeddable package
    is: sys.path is exactly the stdlib, no site, no environment variables (3.11+ read ._pth on
    every OS)."""
    if sys.version_info < (3, 11):
        pytest.skip("._pth files are read on POSIX from Python 3.11 on")
    home = tmp_path_factory.mktemp("embed")
    python = home / "python3"
    python.symlink_to(os.path.realpath(sys.executable))
    paths = sysconfig.get_paths()
    (home / "python3._pth").write_text(f"{paths['stdlib']}\n{paths['platstdlib']}\n"
                                       f"{Path(paths['stdlib']) / 'lib-dynload'}\n")
    probe = subprocess.run([str(python), "-c", "import sys; print(sys.flags.isolated, sys.flags.no_site)"],
                           capture_output=True, text=True, cwd=home, check=True)
    assert probe.stdout.split() == ["1", "1"], "the ._pth file must isolate the interpreter"
    return python


def _clean_env(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BITLOCKER_"))}
    env["XDG_CACHE_HOME"] = str(cache / "cache")
    env["LOCALAPPDATA"] = str(cache / "cache")
    return env


def run_pyz(python: Path, pyz: Path, *args, binary: bool = False, **kwargs) -> subprocess.CompletedProcess:
    workdir = pyz.parent
    return subprocess.run([str(python), str(pyz), *map(str, args)], capture_output=True, text=not binary,
                          cwd=workdir, env=_clean_env(workdir), timeout=600, **kwargs)


def test_pyz_carries_the_windows_wheels_and_no_c_extension(pyz):
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("_pyz/manifest.json"))
        for w in manifest["wheels"]:  # the hash the cache folder is named by is the wheel's
            assert hashlib.sha256(zf.read("_pyz/wheels/" + w["file"])).hexdigest() == w["sha256"]
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dll", ".dylib"))]
    assert compiled == [], "compiled files outside the wheels cannot be loaded from a zip"
    assert "bitlocker_tools/_core/_pure.py" in names and "__main__.py" in names

    def for_embeddable_312(w: dict) -> bool:  # python-3.12-embed-amd64, what docs/winpe.md names
        abi3 = "abi3" in w["abi"] and any(int(py[3:]) <= 12 for py in w["python"] if py.startswith("cp3"))
        return w["platform"] == ["win_amd64"] and ("cp312" in w["abi"] or abi3)

    assert {w["project"] for w in manifest["wheels"] if for_embeddable_312(w)} == {"numpy", "pycryptodome"}
    assert {"typer", "rich", "construct", "dissect-target", "dissect-volume"} <= {p.split("==")[0] for p in manifest["pure"]}


def test_pyz_runs_in_a_bare_venv(pyz, bare_python, corpus_dir, manifest, tmp_path):
    proc = run_pyz(bare_python, pyz, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("(core: pure-python)")
    proc = run_pyz(bare_python, pyz, "scan", "--json", corpus_dir / VOLUME)
    assert proc.returncode == 0, proc.stderr
    assert [v["volume_guid"] for v in json.loads(proc.stdout)["sources"][0]["volumes"]] == [GUID]
    key = tmp_path / "key.txt"
    key.write_text(f"Recovery key:\r\n{RP}\r\n")
    proc = run_pyz(bare_python, pyz, "verify", "--json", corpus_dir / VOLUME, "--recovery-password", f"@{key}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["unlocked"] is True
    out = tmp_path / "plain.img"
    proc = run_pyz(bare_python, pyz, "decrypt", corpus_dir / VOLUME, "-r", RP, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(out) == entry(manifest, VOLUME)["decrypted_prefix_sha256"]
    # the wheels were unpacked once, into folders named by their SHA-256
    with zipfile.ZipFile(pyz) as zf:
        wheels = json.loads(zf.read("_pyz/manifest.json"))["wheels"]
    unpacked = sorted(p.name for p in (pyz.parent / "cache" / "bitlocker-tools" / "pyz").iterdir())
    here = [w for w in wheels if any(w["sha256"][:16] in name for name in unpacked)]
    assert sorted(w["project"] for w in here) == ["numpy", "pycryptodome"]
    assert not [n for n in unpacked if ".part-" in n], "no half-unpacked folder left"


def test_pyz_on_an_embeddable_style_python_decrypts_to_stdout(pyz, embeddable_python, corpus_dir, manifest):
    """The WinPE recipe: decrypt -o - into a pipe (ewfacquirestream reads it there)."""
    proc = run_pyz(embeddable_python, pyz, "--version")
    assert proc.returncode == 0, proc.stderr
    assert "(core: pure-python)" in proc.stdout
    proc = run_pyz(embeddable_python, pyz, "decrypt", corpus_dir / VOLUME, "-r", RP, "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(proc.stdout).hexdigest() == entry(manifest, VOLUME)["decrypted_prefix_sha256"]


def test_pyz_decrypt_pipes_into_ewfacquirestream(pyz, bare_python, corpus_dir, manifest, tmp_path):
    """docs/winpe.md's E01 recipe, with its options: libewf's digest of what it read from the
    pipe must be the manifest's SHA-256, and ewfverify must accept the E01."""
    if not (diskbuild.have("ewfacquirestream") and diskbuild.have("ewfverify")):
        pytest.skip("ewf-tools is not installed")
    workdir = pyz.parent
    decrypt = subprocess.Popen([str(bare_python), str(pyz), "decrypt", str(corpus_dir / VOLUME), "-r", RP, "-o", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=_clean_env(workdir))
    target = tmp_path / "volume"
    ewf = subprocess.run(["ewfacquirestream", "-t", str(target), "-C", "42", "-E", "1",
                          "-D", "PhysicalDrive0 partition 3, BitLocker decrypted", "-e", "J. Examiner",
                          "-N", "bitlocker-tools decrypt", "-f", "encase6", "-c", "deflate:fast", "-m", "fixed",
                          "-M", "logical", "-d", "sha256", "-l", str(tmp_path / "volume.log"), "-q"],
                         stdin=decrypt.stdout, capture_output=True, text=True, timeout=600)
    decrypt.stdout.close()
    assert decrypt.wait(timeout=600) == 0, decrypt.stderr.read().decode()
    decrypt.stderr.close()
    assert ewf.returncode == 0, ewf.stdout + ewf.stderr
    digests = dict(line.split(" hash calculated over data:") for line in ewf.stdout.splitlines()
                   if " hash calculated over data:" in line)
    assert digests["SHA256"].strip() == entry(manifest, VOLUME)["decrypted_prefix_sha256"]
    verify = subprocess.run(["ewfverify", "-q", str(target) + ".E01"], capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _bootstrap():
    spec = importlib.util.spec_from_file_location("zipapp_main", ROOT / "scripts" / "zipapp_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bootstrap_picks_the_wheel_this_python_can_load():
    boot = _bootstrap()
    assert boot.platform_ok("win_amd64", "win-amd64")
    assert not boot.platform_ok("win_amd64", "win-arm64")
    assert not boot.platform_ok("win_amd64", "linux-x86_64", (2, 36))
    assert boot.platform_ok("manylinux_2_28_x86_64", "linux-x86_64", (2, 36))
    assert not boot.platform_ok("manylinux_2_28_x86_64", "linux-x86_64", (2, 17))
    assert boot.platform_ok("manylinux2014_x86_64", "linux-x86_64", (2, 17))
    assert not boot.platform_ok("manylinux2014_aarch64", "linux-x86_64", (2, 36))
    own = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    other = f"cp{sys.version_info[0]}{sys.version_info[1] + 1}"
    assert boot.python_ok(own, own) and boot.python_ok("cp39", "abi3")
    assert not boot.python_ok(other, other) and not boot.python_ok(other, "abi3")
    here = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    wheels = [{"project": "nosuch-project", "file": "nosuch_project-1-cp312-cp312-win_arm64.whl",
               "python": ["cp312"], "abi": ["cp312"], "platform": ["win_arm64"]},
              {"project": "other", "file": "other-1-cp39-abi3-x.whl", "python": ["cp39"], "abi": ["abi3"],
               "platform": [here]}]
    with pytest.raises(boot.BootError, match="--target"):
        boot.choose(wheels)
    assert [w["project"] for w in boot.choose(wheels[1:])] == ["other"]
