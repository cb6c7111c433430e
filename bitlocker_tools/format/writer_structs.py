"""Builder-friendly structure definitions used only by the writer (the fixture forge).

:mod:`bitlocker_tools.format.structs` describes what the reader needs and skips the rest with
``Padding``; building a realistic boot sector needs every BPB field, so the complete Win7+ and
To Go boot sectors are spelled out here, with the FAT32 pieces of the To Go discovery volume and
the NTFS boot-sector fields the Vista writer reads. Everything else the forge writes is built with
the reader's own definitions in :mod:`structs`.
"""

from __future__ import annotations

from construct import Array, Bytes, Const, Int8ul, Int16ul, Int32ul, Int64ul, Struct

from .structs import Guid

#: The FAT32 BIOS parameter block from byte 3 to byte 90, shared by the Windows 7+ "FVE volume
#: header" and the To Go discovery volume's boot sector (values noted as the forge writes them).
_FAT32_BPB = (
    "oem" / Bytes(8),  # 3: -FVE-FS- (Win7+) or MSWIN4.1 (To Go)
    "bytes_per_sector" / Int16ul,  # 11
    "sectors_per_cluster" / Int8ul,  # 13
    "reserved_sectors" / Int16ul,  # 14
    "fat_count" / Int8ul,  # 16: 1 on To Go (the drive of dislocker #108)
    "root_entries" / Int16ul,  # 17
    "total_sectors_16" / Int16ul,  # 19
    "media" / Int8ul,  # 21: F8
    "sectors_per_fat_16" / Int16ul,  # 22
    "sectors_per_track" / Int16ul,  # 24: 0x3F
    "heads" / Int16ul,  # 26: 0xFF
    "hidden_sectors" / Int32ul,  # 28: the partition's start sector
    "total_sectors_32" / Int32ul,  # 32: 0 on Windows-written NTFS volumes; the drive on To Go
    "sectors_per_fat_32" / Int32ul,  # 36: 0x1FE0 on every Win7+ volume seen
    "fat_flags" / Int16ul,  # 40
    "fs_version" / Int16ul,  # 42
    "root_cluster" / Int32ul,  # 44: 2 on To Go
    "fsinfo_sector" / Int16ul,  # 48: 1
    "backup_boot_sector" / Int16ul,  # 50: 6
    "reserved" / Bytes(12),  # 52
    "drive_number" / Int8ul,  # 64: 0x80
    "reserved1" / Int8ul,  # 65
    "extended_signature" / Int8ul,  # 66: 0x29
    "volume_serial" / Int32ul,  # 67
    "volume_label" / Bytes(11),  # 71: "NO NAME    " on Win7+
    "fs_type" / Bytes(8),  # 82: "FAT32   "
)

#: The Windows 7+ "FVE volume header" (sector 0), field by field. It mimics a FAT32 boot sector;
#: only bytes_per_sector, sectors_per_cluster, the GUID and the three offsets matter to readers.
Win7BootSectorFull = Struct(
    "jump" / Bytes(3),  # EB 58 90
    *_FAT32_BPB,
    "boot_code" / Bytes(70),  # 90 (zero-filled by the forge)
    "guid" / Guid,  # 160
    "metadata_offsets" / Array(3, Int64ul),  # 176
    "eow_offsets" / Array(2, Int64ul),  # 200
    "boot_code2" / Bytes(294),  # 216 (zero-filled by the forge)
    "signature" / Const(b"\x55\xaa"),  # 510
)
WIN7_BOOT_SECTOR_SIZE = 512

#: BitLocker To Go on FAT: the boot sector of the "discovery volume". It is a real FAT32 boot
#: sector (``MSWIN4.1``) describing the small plaintext FAT32 filesystem that Windows writes at the
#: start of the drive; the BitLocker GUID and the three metadata offsets sit in its boot-code area.
ToGoBootSectorFull = Struct(
    "jump" / Bytes(3),  # EB 58 90
    *_FAT32_BPB,
    "boot_code" / Bytes(334),  # 90 (zero-filled by the forge)
    "guid" / Guid,  # 424
    "metadata_offsets" / Array(3, Int64ul),  # 440
    "eow_offsets" / Array(2, Int64ul),  # 464
    "boot_code2" / Bytes(30),  # 480 (zero-filled by the forge)
    "signature" / Const(b"\x55\xaa"),  # 510
)

#: FAT32 FSInfo sector (sector 1 of the discovery volume, and its backup at 7).
FsInfoSector = Struct(
    "lead_signature" / Const(b"RRaA"),  # 0: 0x41615252
    "reserved" / Bytes(480),
    "struct_signature" / Const(b"rrAa"),  # 484: 0x61417272
    "free_count" / Int32ul,  # 488
    "next_free" / Int32ul,  # 492
    "reserved2" / Bytes(12),
    "trail_signature" / Const(b"\x00\x00\x55\xaa"),  # 508
)

#: FAT short directory entry (32 bytes).
FatDirEntry = Struct(
    "name" / Bytes(11),
    "attributes" / Int8ul,
    "nt_reserved" / Int8ul,
    "create_time_tenth" / Int8ul,
    "create_time" / Int16ul,
    "create_date" / Int16ul,
    "access_date" / Int16ul,
    "cluster_high" / Int16ul,
    "write_time" / Int16ul,
    "write_date" / Int16ul,
    "cluster_low" / Int16ul,
    "size" / Int32ul,
)

#: The NTFS boot sector fields the Vista writer reads (it keeps the sector itself, see forge.py).
NtfsBootSector = Struct(
    "jump" / Bytes(3),  # EB 52 90
    "oem" / Bytes(8),  # "NTFS    "
    "bytes_per_sector" / Int16ul,  # 11
    "sectors_per_cluster" / Int8ul,  # 13
    Bytes(40 - 14),
    "total_sectors" / Int64ul,  # 40: volume sectors - 1 (the last one holds the backup)
    "mft_cluster" / Int64ul,  # 48
    "mft_mirror_cluster" / Int64ul,  # 56: Vista moves it into the v1 block header
)
