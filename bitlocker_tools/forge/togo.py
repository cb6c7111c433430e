"""BitLocker To Go's discovery volume: the small plaintext FAT32 filesystem a To Go drive starts
with (docs/format.md section 8).

It holds a README and the placeholder file ``COV 0000. ER`` whose clusters cover the rest of the
drive (the encrypted volume), so the FAT has no free cluster; its boot sector carries the
BitLocker GUID and the metadata offsets (see :func:`.boot_sectors.togo_boot_sector`). The
relocated volume header covers the whole discovery volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Union

from ..format.boot_sector import BOOT_SECTOR_SIZE
from ..format.fat import FatDirEntry, FsInfoSector
from .boot_sectors import FAT32_FS_TYPE, input_boot_sector, zero_field

#: The file-system type of a FAT12/16 boot sector, at offset 54 (FAT32 has its own at 82).
_FAT1X_FS_TYPE_AT = 54
_FAT1X_FS_TYPES = (b"FAT12   ", b"FAT16   ", b"FAT     ")

#: FAT file names of the discovery volume: the reader's note and the placeholder that covers the
#: encrypted part of the drive (docs/format.md section 8: ``COV 0000. ER``, split at 4 GiB - 32 KiB).
#: The README's text is part of the committed To Go fixture: it names the module the forge was
#: when the fixture was made, and changes only with the fixtures.
DISCOVERY_README = (
    b"This drive is protected by BitLocker To Go. It is a test volume forged by bitlocker-tools\r\n"
    b"(bitlocker_tools/forge.py); the files of the encrypted volume are in COV 0000. ER.\r\n"
)
COV_SPLIT = 4 * 1024**3 - 32 * 1024

#: FAT32 entries: the media descriptor entry, and end of chain.
_FAT_MEDIA = 0x0FFFFFF8
_FAT_END = 0x0FFFFFFF
_FAT_ENTRY_SIZE = 4
_README_CLUSTER = 3
#: Directory-entry attributes.
_ARCHIVE_READ_ONLY = 0x21
_READ_ONLY_HIDDEN_SYSTEM = 0x07


def check_fat(plain: bytes, ss: int) -> None:
    """BitLocker To Go's discovery volume goes over FAT drives; NTFS and exFAT ones use the Win7 header."""
    bs = input_boot_sector(plain)
    fs_type = plain[_FAT1X_FS_TYPE_AT : _FAT1X_FS_TYPE_AT + len(FAT32_FS_TYPE)]
    if bs is None or bs.bytes_per_sector != ss or not (fs_type in _FAT1X_FS_TYPES or bs.fs_type == FAT32_FS_TYPE):
        raise ValueError("the To Go layout needs a FAT12/16/32 image with the spec's sector size: Windows writes "
                         "the discovery volume on FAT drives only (NTFS and exFAT drives get the Windows 7 header)")


@dataclass
class Discovery:
    """Geometry of the small plaintext FAT32 "discovery volume" that starts a To Go drive."""

    #: The root directory's cluster (the first data cluster); the README follows it.
    ROOT_CLUSTER: ClassVar[int] = 2

    sectors_per_cluster: int
    reserved_sectors: int
    fat_sectors: int  # one FAT, as on the drive of dislocker issue #108
    total_sectors: int  # the whole drive
    clusters: int

    @property
    def data_start(self) -> int:  # sector of cluster 2
        return self.reserved_sectors + self.fat_sectors

    @property
    def sectors(self) -> int:
        """Sectors the discovery filesystem's own structures take: reserved, FAT, root dir, README."""
        return self.data_start + 2 * self.sectors_per_cluster


def discovery_geometry(size: int, ss: int, spc: Union[int, None]) -> Discovery:
    spc = spc or max(1, 4096 // ss)
    total = size // ss
    fat_sectors = -(-(total // spc + 2) * _FAT_ENTRY_SIZE // ss)
    # At least 8 reserved sectors (boot 0, FSInfo 1, backups 6 and 7); cluster 2 starts on a
    # cluster boundary, so the 4 KiB-aligned BitLocker areas line up with the COV file's clusters.
    reserved = 8 + (-(8 + fat_sectors)) % spc
    clusters = (total - reserved - fat_sectors) // spc
    if clusters < 3:
        raise ValueError("the image is too small for a To Go discovery volume")
    return Discovery(spc, reserved, fat_sectors, total, clusters)


def discovery_area(boot: bytes, d: Discovery, ss: int, created: datetime) -> bytes:
    """The plaintext FAT32 discovery volume: boot sector, FSInfo, their backups at 6 and 7, one
    FAT, a root directory with a README and ``COV 0000. ER``, the placeholder file whose
    clusters cover the rest of the drive (the encrypted volume), so the FAT has no free space."""
    cs = d.sectors_per_cluster * ss
    buf = bytearray(d.sectors * ss)
    fsinfo = FsInfoSector.build(dict(reserved=zero_field(FsInfoSector, "reserved"), free_count=0,
                                     next_free=0xFFFFFFFF, reserved2=zero_field(FsInfoSector, "reserved2")))
    for at, sector in ((0, boot), (1, fsinfo), (6, boot), (7, fsinfo)):
        buf[at * ss : at * ss + BOOT_SECTOR_SIZE] = sector
    root, fat = _root_directory(d, cs, created)
    fat_bytes = b"".join(v.to_bytes(_FAT_ENTRY_SIZE, "little") for v in fat)
    buf[d.reserved_sectors * ss : d.reserved_sectors * ss + len(fat_bytes)] = fat_bytes
    data = d.data_start * ss
    buf[data : data + len(root)] = root
    buf[data + cs : data + cs + len(DISCOVERY_README)] = DISCOVERY_README
    return bytes(buf)


def _root_directory(d: Discovery, cs: int, created: datetime) -> tuple[bytes, list[int]]:
    """The root directory's entries and the FAT: the README in cluster 3, then the COV files
    over every other cluster, each at most :data:`COV_SPLIT` bytes."""
    fat = [_FAT_MEDIA, _FAT_END, _FAT_END, _FAT_END]  # media, reserved, root dir, README
    date, time = fat_date_time(created)

    def dirent(name: bytes, attributes: int, cluster: int, length: int) -> bytes:
        return FatDirEntry.build(dict(
            name=name, attributes=attributes, nt_reserved=0, create_time_tenth=0, create_time=time,
            create_date=date, access_date=date, cluster_high=cluster >> 16, write_time=time,
            write_date=date, cluster_low=cluster & 0xFFFF, size=length))

    root = dirent(b"README  TXT", _ARCHIVE_READ_ONLY, _README_CLUSTER, len(DISCOVERY_README))
    first, last = _README_CLUSTER + 1, d.clusters + 1  # every cluster after the README
    per_file = COV_SPLIT // cs
    index = 0
    while first <= last:
        count = min(per_file, last - first + 1)
        fat += [c + 1 for c in range(first, first + count - 1)] + [_FAT_END]
        name = f"COV {index:04d}".encode() + b" ER"  # shown as "COV 0000. ER"
        root += dirent(name, _READ_ONLY_HIDDEN_SYSTEM, first, count * cs)
        first += count
        index += 1
    return root, fat


def fat_date_time(when: datetime) -> tuple[int, int]:
    """A time as FAT's (date, time) words (two-second resolution)."""
    return ((when.year - 1980) << 9 | when.month << 5 | when.day,
            when.hour << 11 | when.minute << 5 | when.second // 2)
