"""Sector 0 in the three layouts, built field by field (docs/format.md section 1).

* Windows 7+: the ``-FVE-FS-`` "volume header", a FAT32-like boot sector with zero-filled boot
  code, the BitLocker GUID and the three metadata-block offsets; some BPB fields copied from
  the input.
* Vista: the input's NTFS boot sector with ``-FVE-FS-`` as OEM name and block 1's cluster number
  where NTFS keeps the MFT-mirror cluster.
* To Go: the discovery volume's real FAT32 boot sector (``MSWIN4.1``), with the GUID and the
  offsets in its boot code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from construct import ConstructError, Container

from ..format.boot_sector import BOOT_SECTOR_SIZE, ToGoBootSector, VistaBootSector, Win7BootSector
from ..format.constants import BITLOCKER_GUID, FAT32_JUMP, NTFS_OEM, SIGNATURE, TOGO_OEM
from .randomness import SeededRandom
from .spec import VolumeSpec

if TYPE_CHECKING:
    from .layout import Layout
    from .togo import Discovery

FAT32_FS_TYPE = b"FAT32   "
NO_NAME = b"NO NAME    "
#: Sectors per cluster when neither the spec nor the input gives one.
DEFAULT_SECTORS_PER_CLUSTER = 8
#: Sectors per FAT in the Windows 7+ header: 0x1FE0 on every Win7+ volume seen.
WIN7_SECTORS_PER_FAT = 0x1FE0


def input_boot_sector(plain: bytes) -> Union[Container, None]:
    """The input's sector 0 read with the FAT32 BPB layout, or None without ``55 AA``. The
    fields the forge reads from it (OEM name at 3, bytes per sector at 11, sectors per cluster
    at 13, hidden sectors at 28) sit at the same offsets in every DOS boot sector, FAT12/16 and
    NTFS included."""
    try:
        return Win7BootSector.parse(plain[:BOOT_SECTOR_SIZE])
    except ConstructError:
        return None


def zero_field(struct: Any, name: str) -> bytes:
    """Zeros the size of ``struct``'s field ``name`` (boot code and reserved bytes the forge
    leaves empty)."""
    return bytes(next(sc for sc in struct.subcons if sc.name == name).sizeof())


def boot_sector(plain: bytes, spec: VolumeSpec, layout: Layout, rng: SeededRandom) -> bytes:
    """Sector 0 of the forged volume (its first 512 bytes)."""
    if spec.variant == "vista":
        return vista_boot_sector(plain, layout)
    if spec.variant == "togo":
        assert layout.discovery is not None
        return togo_boot_sector(plain, spec, layout.offsets, layout.discovery, rng)
    return win7_boot_sector(plain, spec, layout.offsets)


def _fat32_boot_sector(struct: Any, **fields: Any) -> bytes:
    """``struct`` (the Windows 7+ or the To Go boot sector) built with the FAT32 BPB fields both
    write as Windows does, zero-filled boot code, the BitLocker GUID, and ``fields``."""
    return struct.build(dict(
        jump=FAT32_JUMP, root_entries=0, total_sectors_16=0, media=0xF8, sectors_per_fat_16=0,
        sectors_per_track=0x3F, heads=0xFF, fat_flags=0, fs_version=0, fsinfo_sector=1, backup_boot_sector=6,
        reserved=zero_field(struct, "reserved"), drive_number=0x80, reserved1=0, extended_signature=0x29,
        volume_label=NO_NAME, fs_type=FAT32_FS_TYPE, boot_code=zero_field(struct, "boot_code"),
        guid=BITLOCKER_GUID, eow_offsets=[0, 0], boot_code2=zero_field(struct, "boot_code2"), **fields))


def win7_boot_sector(plain: bytes, spec: VolumeSpec, offsets: tuple[int, int, int]) -> bytes:
    """The Windows 7+ header. Bytes per sector are the spec's; sectors per cluster and hidden
    sectors are the spec's, else the input's where its BPB has this sector size."""
    ss, size = spec.sector_size, len(plain)
    src = input_boot_sector(plain)
    valid_bpb = src is not None and src.bytes_per_sector == ss
    is_ntfs = plain[3 : 3 + len(NTFS_OEM)] == NTFS_OEM  # as the OEM name says, 55 AA or not
    spc = spec.sectors_per_cluster or (src.sectors_per_cluster if valid_bpb and src.sectors_per_cluster
                                       else DEFAULT_SECTORS_PER_CLUSTER)
    hidden = spec.hidden_sectors if spec.hidden_sectors is not None else (src.hidden_sectors if valid_bpb else 0)
    fill_total = spec.header_total_sectors if spec.header_total_sectors is not None else not is_ntfs
    return _fat32_boot_sector(
        Win7BootSector, oem=SIGNATURE, bytes_per_sector=ss, sectors_per_cluster=spc, reserved_sectors=0,
        fat_count=0, hidden_sectors=hidden, total_sectors_32=size // ss - 1 if fill_total else 0,
        sectors_per_fat_32=WIN7_SECTORS_PER_FAT, root_cluster=0, volume_serial=0, metadata_offsets=list(offsets))


def vista_boot_sector(plain: bytes, layout: Layout) -> bytes:
    """The NTFS boot sector with two changes, as on the corpus Vista volume (whose boot code,
    BPB and serial are NTFS's): ``-FVE-FS-`` at 3 and block 1's cluster number at 56, where
    NTFS keeps the MFT-mirror cluster (that one moves to the v1 block header)."""
    assert layout.ntfs is not None
    sector = VistaBootSector.parse(plain[:BOOT_SECTOR_SIZE])
    sector.oem = SIGNATURE
    sector.metadata_lcn = layout.offsets[0] // layout.ntfs.cluster_size
    return VistaBootSector.build(sector)


def togo_boot_sector(plain: bytes, spec: VolumeSpec, offsets: tuple[int, int, int], d: Discovery,
                     rng: SeededRandom) -> bytes:
    """The discovery volume's FAT32 boot sector (``MSWIN4.1``), with the BitLocker GUID at 424
    and the three block offsets at 440. Field values follow the To Go drive of dislocker issue
    #108 (one FAT, root cluster 2, FSInfo 1, backup 6); the total covers the whole drive."""
    src = input_boot_sector(plain)
    assert src is not None  # togo.check_fat has seen a FAT boot sector
    hidden = spec.hidden_sectors if spec.hidden_sectors is not None else src.hidden_sectors
    return _fat32_boot_sector(
        ToGoBootSector, oem=TOGO_OEM, bytes_per_sector=spec.sector_size, sectors_per_cluster=d.sectors_per_cluster,
        reserved_sectors=d.reserved_sectors, fat_count=1, hidden_sectors=hidden,
        total_sectors_32=d.total_sectors if spec.header_total_sectors is not False else 0,
        sectors_per_fat_32=d.fat_sectors, root_cluster=d.ROOT_CLUSTER,
        volume_serial=int.from_bytes(rng.bytes("togo-serial", 4), "little"), metadata_offsets=list(offsets))
