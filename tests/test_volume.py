"""One volume, called directly: boot-sector recognition, the metadata copies, the regions that
read as zeros, and where ciphertext ends, against the facts of the corpus MANIFEST."""

from __future__ import annotations

import io

import pytest

from bitlocker_tools.boot_sector import parse_boot_sector
from bitlocker_tools.errors import BadInputError
from bitlocker_tools.format.constants import BITLOCKER_GUID, EOW_GUID
from bitlocker_tools.volume import BEYOND_EVIDENCE, BitLockerVolume

#: MANIFEST.md: win7_partial's ciphertext ends at byte 1,143,820,288 (sector 2,234,024).
WIN7_PARTIAL_BOUNDARY = 1_143_820_288


def _open(corpus_dir, name) -> BitLockerVolume:
    return BitLockerVolume((corpus_dir / name).open("rb"), name=name)


@pytest.mark.parametrize("name, variant, guid", [("vista.bin", "vista", None), ("aes_128.bin", "win7", BITLOCKER_GUID),
                                                 ("eow_partial.bin", "win7", EOW_GUID)])
def test_boot_sector_recognised(name, variant, guid, corpus_dir):
    with (corpus_dir / name).open("rb") as fh:
        boot = parse_boot_sector(fh.read(512))
    assert boot is not None and boot.variant == variant and boot.guid == guid
    assert boot.is_eow is (guid == EOW_GUID)
    assert len(boot.metadata_offsets) == (1 if variant == "vista" else 3)
    assert boot.bytes_per_sector == 512 and boot.sectors_per_cluster == 8


def test_boot_sector_not_recognised():
    ntfs = bytearray(512)
    ntfs[3:11] = b"NTFS    "
    ntfs[510:512] = b"\x55\xaa"
    assert parse_boot_sector(bytes(ntfs)) is None
    assert parse_boot_sector(bytes(512)) is None
    assert parse_boot_sector(b"-FVE-FS-") is None
    fve_unknown_guid = bytearray(ntfs)
    fve_unknown_guid[0:11] = b"\xeb\x58\x90-FVE-FS-"
    assert parse_boot_sector(bytes(fve_unknown_guid)) is None


def test_copies_of_a_volume_with_one_block_left(corpus_dir):
    """MANIFEST.md: win7_partial holds only one of its three metadata copies."""
    vol = _open(corpus_dir, "win7_partial.bin")
    assert [c.valid for c in vol.copies] == [True, False, False]
    assert all("no FVE metadata signature" in c.error for c in vol.copies[1:])
    assert vol.metadata is vol.copies[0].block


def test_vista_copies_beyond_the_evidence(corpus_dir):
    vol = _open(corpus_dir, "vista.bin")
    assert vol.version == 1 and vol.copies[0].valid
    assert [c.error for c in vol.copies[1:]] == [BEYOND_EVIDENCE, BEYOND_EVIDENCE]


@pytest.mark.parametrize("name, area", [("aes_128.bin", 0x10000), ("vista.bin", 0x4000), ("eow_partial.bin", 0x10000)])
def test_reserved_regions_cover_every_block(name, area, corpus_dir):
    vol = _open(corpus_dir, name)
    regions = vol.reserved_regions()
    assert regions == sorted(regions)
    assert all(a + la <= b for (a, la), (b, _) in zip(regions, regions[1:])), "regions overlap"
    for off in vol.metadata.metadata_offsets:
        assert (off, area) in regions
    if vol.version == 2:
        vh_off, vh_size = vol.volume_header
        assert vh_size == 8192 and any(o == vh_off for o, _ in regions)


def test_conversion_boundary(corpus_dir):
    vol = _open(corpus_dir, "win7_partial.bin")
    assert vol.metadata.encrypted_volume_size == WIN7_PARTIAL_BOUNDARY
    assert vol.state_run(WIN7_PARTIAL_BOUNDARY - 1024, 4096) == (True, 1024)
    assert vol.state_run(WIN7_PARTIAL_BOUNDARY, 4096) == (False, 4096)
    assert vol.state_run(0, 1 << 40) == (True, WIN7_PARTIAL_BOUNDARY)
    assert vol.declared_size is None  # not fully encrypted: the boundary is no volume size


def test_fully_decrypted_volume_holds_no_ciphertext(corpus_dir):
    vol = _open(corpus_dir, "decrypted.bin")
    assert vol.metadata.state == "DECRYPTED" and vol.metadata.protectors == []
    assert vol.state_run(0x2000, 1 << 20) == (False, 1 << 20)


def test_declared_size_of_a_truncated_image(corpus_dir):
    """MANIFEST.md: the metadata describes 65,994,752 bytes for the 51,032,064-byte files."""
    vol = _open(corpus_dir, "aes-xts_128.bin")
    assert (vol.size, vol.declared_size) == (51_032_064, 65_994_752)


def test_not_a_volume_and_truncated(corpus_dir):
    with pytest.raises(BadInputError, match="no BitLocker boot sector"):
        BitLockerVolume(io.BytesIO(bytes(4096)), name="zeros")
    with pytest.raises(BadInputError, match="truncated"):
        BitLockerVolume(io.BytesIO(b"\xeb\x58\x90-FVE-FS-"), name="cut")
    head = (corpus_dir / "aes_128.bin").read_bytes()[: 1 << 20]  # the boot sector, no metadata
    with pytest.raises(BadInputError, match="truncated image: the metadata copies"):
        BitLockerVolume(io.BytesIO(head), name="cut")


def test_all_copies_damaged_names_each(corpus_dir):
    raw = bytearray((corpus_dir / "aes_128.bin").read_bytes())
    vol = BitLockerVolume(io.BytesIO(bytes(raw)))
    for off in vol.metadata.metadata_offsets:
        raw[off : off + 8] = b"XXXXXXXX"
    with pytest.raises(BadInputError) as info:
        BitLockerVolume(io.BytesIO(bytes(raw)), name="damaged")
    text = str(info.value)
    assert "all metadata copies are damaged" in text
    assert all(f"{off:#x}" in text for off in vol.metadata.metadata_offsets)
