"""`decrypt` through the containers an examiner receives: a GPT disk holding two corpus volumes
(partitions 2 and 3 after a FAT partition 1), made by sgdisk and turned into E01 by ewfacquire
and into VHDX by qemu-img. The plaintext written for ``--volume N`` must hash to the manifest's
SHA-256 of that volume (an independent known answer), and the evidence is never written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import diskbuild
import pytest
from conftest import sha256_file

PASSWORD = "password12!@"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"
VOLUMES = {"aes_128.bin": ["-p", PASSWORD], "recovery_password.bin": ["-r", RP]}
FORMATS = {"e01": "ewfacquire", "vhdx": "qemu-img"}


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if v["file"] == name + ".gz")


@pytest.fixture(scope="module")
def disk(tmp_path_factory, corpus_dir) -> diskbuild.Disk:
    if not diskbuild.have("sgdisk"):
        pytest.skip("sgdisk is not installed")
    work = tmp_path_factory.mktemp("containers-decrypt")
    layout = diskbuild.build_gpt(work / "disk.raw", [corpus_dir / name for name in VOLUMES])
    assert [p.number for p in layout.parts] == [1, 2, 3]
    return layout


@pytest.fixture(scope="module")
def images() -> dict[str, Path]:
    """The containers built so far (each once per module, on first use)."""
    return {}


def _image(fmt: str, disk: diskbuild.Disk, images: dict[str, Path]) -> Path:
    if fmt not in images:
        if not diskbuild.have(FORMATS[fmt]):
            pytest.skip(f"{FORMATS[fmt]} is not installed")
        if fmt == "e01":
            images[fmt] = diskbuild.ewf_acquire(disk.path, disk.path.with_name("disk"))
        else:
            images[fmt] = diskbuild.qemu_convert(disk.path, disk.path.with_name("disk.vhdx"), "vhdx")
    return images[fmt]


@pytest.mark.parametrize("name", list(VOLUMES))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_decrypt_partition_to_file(fmt, name, disk, images, corpus_dir, manifest, run_cli, unchanged, tmp_path):
    image = _image(fmt, disk, images)
    part = disk.part_for(corpus_dir / name)
    expected = _entry(manifest, name)["decrypted_prefix_sha256"]
    out = tmp_path / f"p{part.number}.img"
    with unchanged(image):
        proc = run_cli("decrypt", image, "--volume", part.number, *VOLUMES[name], "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["volume_guid"] == _entry(manifest, name)["volume_guid"]
    assert doc["bytes_written"] == part.size == out.stat().st_size
    assert doc["filesystem"] == "NTFS"
    assert doc["missing_bytes"] == 0
    assert sha256_file(out) == expected, f"{fmt} partition {part.number}: plaintext differs from the manifest"
    assert doc["sha256"] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no .part left behind


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_decrypt_partition_to_stdout(fmt, disk, images, corpus_dir, manifest, run_cli):
    image = _image(fmt, disk, images)
    part = disk.part_for(corpus_dir / "recovery_password.bin")
    proc = run_cli("decrypt", image, "--volume", part.number, "-r", RP, "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(proc.stdout).hexdigest() == _entry(manifest, "recovery_password.bin")["decrypted_prefix_sha256"]


def test_decrypt_by_offset_in_e01(disk, images, corpus_dir, manifest, run_cli, tmp_path):
    image = _image("e01", disk, images)
    part = disk.part_for(corpus_dir / "aes_128.bin")
    out = tmp_path / "by-offset.img"
    proc = run_cli("decrypt", image, "--offset", part.offset, "-p", PASSWORD, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(out) == _entry(manifest, "aes_128.bin")["decrypted_prefix_sha256"]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_the_wrong_partition_number_refuses_the_credential(fmt, disk, images, corpus_dir, run_cli, tmp_path):
    """The recovery password of partition 3 does not open partition 2: nothing is written."""
    image = _image(fmt, disk, images)
    other = disk.part_for(corpus_dir / "aes_128.bin")
    out = tmp_path / "wrong.img"
    proc = run_cli("decrypt", image, "--volume", other.number, "-r", RP, "-o", out)
    assert proc.returncode == 1, proc.stderr
    assert list(tmp_path.iterdir()) == []
