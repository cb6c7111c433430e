"""Builder-friendly structure definitions used only by the writer (the fixture forge).

:mod:`bitlocker_tools.format.structs` describes what the reader needs and skips the rest with
``Padding``; building a realistic boot sector needs every BPB field, so the complete Win7+ boot
sector is spelled out here. Everything else the forge writes is built with the reader's own
definitions in :mod:`structs`.
"""

from __future__ import annotations

from construct import Array, Bytes, Const, Int8ul, Int16ul, Int32ul, Int64ul, Struct

from .structs import Guid

#: The Windows 7+ "FVE volume header" (sector 0), field by field. It mimics a FAT32 boot sector;
#: only bytes_per_sector, sectors_per_cluster, the GUID and the three offsets matter to readers.
Win7BootSectorFull = Struct(
    "jump" / Bytes(3),  # EB 58 90
    "oem" / Bytes(8),  # -FVE-FS-
    "bytes_per_sector" / Int16ul,  # 11
    "sectors_per_cluster" / Int8ul,  # 13
    "reserved_sectors" / Int16ul,  # 14
    "fat_count" / Int8ul,  # 16
    "root_entries" / Int16ul,  # 17
    "total_sectors_16" / Int16ul,  # 19
    "media" / Int8ul,  # 21: F8
    "sectors_per_fat_16" / Int16ul,  # 22
    "sectors_per_track" / Int16ul,  # 24: 0x3F
    "heads" / Int16ul,  # 26: 0xFF
    "hidden_sectors" / Int32ul,  # 28: the partition's start sector
    "total_sectors_32" / Int32ul,  # 32: 0 on Windows-written NTFS volumes
    "sectors_per_fat_32" / Int32ul,  # 36: 0x1FE0 on every volume seen
    "fat_flags" / Int16ul,  # 40
    "fs_version" / Int16ul,  # 42
    "root_cluster" / Int32ul,  # 44
    "fsinfo_sector" / Int16ul,  # 48: 1
    "backup_boot_sector" / Int16ul,  # 50: 6
    "reserved" / Bytes(12),  # 52
    "drive_number" / Int8ul,  # 64: 0x80
    "reserved1" / Int8ul,  # 65
    "extended_signature" / Int8ul,  # 66: 0x29
    "volume_serial" / Int32ul,  # 67
    "volume_label" / Bytes(11),  # 71: "NO NAME    "
    "fs_type" / Bytes(8),  # 82: "FAT32   "
    "boot_code" / Bytes(70),  # 90 (zero-filled by the forge)
    "guid" / Guid,  # 160
    "metadata_offsets" / Array(3, Int64ul),  # 176
    "eow_offsets" / Array(2, Int64ul),  # 200
    "boot_code2" / Bytes(294),  # 216 (zero-filled by the forge)
    "signature" / Const(b"\x55\xaa"),  # 510
)
WIN7_BOOT_SECTOR_SIZE = 512
