"""Corpus volumes inside disk images that the test builds itself: GPT and MBR raw disks, and the
GPT disk as VHDX, VMDK, QCOW2, VHD, E01 and split raw. `scan` must find each BitLocker partition
at its number and byte offset with the same metadata as the bare volume, and report the FAT
partition as not BitLocker; `verify` must open a volume chosen by --volume or --offset."""

from __future__ import annotations

import json
from pathlib import Path

import diskbuild
import pytest
from conftest import assert_cli_error

VOLUMES = ["aes-xts_128.bin", "vista.bin"]
# keys of a scan record that describe where the volume lies, not what its metadata says
PLACEMENT = ("partition", "offset", "size")

# format -> (Debian tool it needs, how to make it from the GPT raw disk)
FORMATS = {
    "gpt-raw": "sgdisk",
    "mbr-raw": "sfdisk",
    "vhdx": "qemu-img",
    "vmdk": "qemu-img",
    "qcow2": "qemu-img",
    "vhd": "qemu-img",
    "e01": "ewfacquire",
    "split-raw": "split",
}


class Disks:
    """Builds each image once, on first use."""

    def __init__(self, workdir: Path, volumes: list[Path]):
        self.workdir = workdir
        self.volumes = volumes
        self.layouts: dict[str, diskbuild.Disk] = {}
        self.images: dict[str, Path] = {}

    def _need(self, tool: str) -> None:
        if not diskbuild.have(tool):
            pytest.skip(f"{tool} is not installed")

    def gpt(self) -> diskbuild.Disk:
        if "gpt" not in self.layouts:
            self._need("sgdisk")
            self.layouts["gpt"] = diskbuild.build_gpt(self.workdir / "gpt.raw", self.volumes)
        return self.layouts["gpt"]

    def image(self, fmt: str) -> tuple[Path, diskbuild.Disk]:
        if fmt == "mbr-raw":
            if "mbr" not in self.layouts:
                self._need("sfdisk")
                self.layouts["mbr"] = diskbuild.build_mbr(self.workdir / "mbr.raw", self.volumes)
            return self.layouts["mbr"].path, self.layouts["mbr"]
        gpt = self.gpt()
        if fmt not in self.images:
            self._need(FORMATS[fmt])
            raw = gpt.path
            if fmt == "gpt-raw":
                path = raw
            elif fmt in ("vhdx", "vmdk", "qcow2"):
                path = diskbuild.qemu_convert(raw, self.workdir / f"disk.{fmt}", fmt)
            elif fmt == "vhd":
                path = diskbuild.qemu_convert(raw, self.workdir / "disk.vhd", "vpc")
            elif fmt == "e01":
                path = diskbuild.ewf_acquire(raw, self.workdir / "disk")
            elif fmt == "split-raw":
                path = diskbuild.split_raw(raw, self.workdir / "split")[0]
            else:  # pragma: no cover
                raise AssertionError(fmt)
            self.images[fmt] = path
        return self.images[fmt], gpt


@pytest.fixture(scope="module")
def volumes(corpus_dir) -> list[Path]:
    return [corpus_dir / name for name in VOLUMES]


@pytest.fixture(scope="module")
def disks(tmp_path_factory, volumes) -> Disks:
    return Disks(tmp_path_factory.mktemp("disks"), volumes)


@pytest.fixture(scope="module")
def bare(volumes, run_cli) -> dict[Path, dict]:
    """The scan record of each bare volume image, the reference for the containers."""
    proc = run_cli("scan", "--json", *volumes)
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    return {vol: src["volumes"][0] for vol, src in zip(volumes, sources)}


def _metadata(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in PLACEMENT}


def _credential(manifest: dict, volume: Path) -> list[str]:
    entry = next(v for v in manifest["volumes"] if v["file"] == volume.name + ".gz")
    creds = entry["credentials"]
    if "password" in creds:
        return ["--password", creds["password"]]
    return ["--recovery-password", creds["recovery_password"]]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_scan_finds_volumes_in_disk_image(fmt, disks, bare, run_cli):
    image, layout = disks.image(fmt)
    proc = run_cli("scan", "--json", image)
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    assert len(sources) == 1
    source = sources[0]
    assert source["path"] == str(image)
    assert source["kind"] != "volume"
    by_number = {v["partition"]: v for v in source["volumes"]}
    assert set(by_number) == {p.number for p in layout.parts}, source["volumes"]

    for part in layout.parts:
        record = by_number[part.number]
        assert "error" not in record, record["error"]
        assert record["offset"] == part.offset, f"partition {part.number}"
        assert record["size"] == part.size, (
            f"partition {part.number}: size {record['size']}, the partition table says {part.size}"
        )
        if part.volume is None:
            assert record["bitlocker"] is False
            assert "volume_guid" not in record
        else:
            assert record["bitlocker"] is True
            reference = bare[part.volume]
            assert record["encryption_method"] == reference["encryption_method"]
            assert record["volume_guid"] == reference["volume_guid"]
            assert record["protectors"] == reference["protectors"]
            assert _metadata(record) == _metadata(reference)


def test_scan_many_sources_at_once(disks, volumes, run_cli):
    """Bare volumes and disk images in one call: one source record each, in order."""
    image, _ = disks.image("gpt-raw")
    proc = run_cli("scan", "--json", volumes[0], image)
    assert proc.returncode == 0, proc.stderr
    sources = json.loads(proc.stdout)["sources"]
    assert [s["path"] for s in sources] == [str(volumes[0]), str(image)]
    assert [len(s["volumes"]) for s in sources] == [1, 3]


@pytest.mark.parametrize("fmt", ["gpt-raw", "qcow2", "e01"])
def test_verify_by_volume_number(fmt, disks, manifest, unchanged, run_cli):
    image, layout = disks.image(fmt)
    for part in layout.parts:
        if part.volume is None:
            continue
        with unchanged(image):
            proc = run_cli("verify", image, "--volume", part.number, *_credential(manifest, part.volume), "--json")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["unlocked"] is True
        entry = next(v for v in manifest["volumes"] if v["file"] == part.volume.name + ".gz")
        assert result["volume_guid"] == entry["volume_guid"]
        assert result["protector_id"] in {p["id"] for p in entry["protectors"]}


@pytest.mark.parametrize("fmt", ["gpt-raw", "mbr-raw", "vhdx"])
def test_verify_by_offset(fmt, disks, manifest, run_cli):
    image, layout = disks.image(fmt)
    part = layout.part_for(disks.volumes[0])
    proc = run_cli("verify", image, "--offset", part.offset, *_credential(manifest, part.volume))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_verify_wrong_password_in_container(disks, run_cli):
    image, layout = disks.image("gpt-raw")
    part = layout.part_for(disks.volumes[0])
    proc = run_cli("verify", image, "--volume", part.number, "--password", "not the password")
    assert_cli_error(proc, 1)


def test_several_bitlocker_volumes_need_a_choice(disks, run_cli):
    image, layout = disks.image("gpt-raw")
    proc = run_cli("verify", image, "--password", "password12!@")
    line = assert_cli_error(proc, 2, "--volume")
    for part in layout.parts:
        if part.volume is not None:
            assert f"partition {part.number}" in line
            assert str(part.offset) in line


def test_volume_of_a_non_bitlocker_partition(disks, run_cli):
    image, layout = disks.image("gpt-raw")
    proc = run_cli("info", image, "--volume", layout.parts[0].number)
    assert_cli_error(proc, 3, "not BitLocker", f"partition {layout.parts[0].number}")


def test_offset_that_is_not_a_volume(disks, run_cli):
    image, _ = disks.image("gpt-raw")
    proc = run_cli("info", image, "--offset", 12345 * 512)
    assert_cli_error(proc, 3, "not BitLocker", str(12345 * 512))


def test_gpt_with_4096_byte_sectors(tmp_path, volumes, bare, run_cli):
    """A 4Kn disk: its GPT header is at byte 4096, its LBAs are 4 KiB."""
    vol = volumes[0]
    disk = tmp_path / "4kn.raw"
    offset, size = 1 << 20, vol.stat().st_size
    with open(disk, "wb") as fh:
        fh.truncate(offset + size + (2 << 20))
        diskbuild.copy_sparse(vol, fh, offset)
    diskbuild.write_gpt(disk, disk.stat().st_size, [(offset, size)], sector=4096)
    proc = run_cli("scan", "--json", disk)
    assert proc.returncode == 0, proc.stderr
    found = [v for v in json.loads(proc.stdout)["sources"][0]["volumes"] if v["bitlocker"]]
    assert [(v["partition"], v["offset"], v["size"]) for v in found] == [(1, offset, size)]
    assert _metadata(found[0]) == _metadata(bare[vol])
