"""Sector 0 of a BitLocker volume, in its three layouts, field by field.

* Windows Vista keeps the NTFS boot sector: ``-FVE-FS-`` replaces the OEM name and the field at
  56, which NTFS uses for the MFT-mirror cluster, holds the cluster of metadata block 1.
* Windows 7 and later write an "FVE volume header" that mimics a FAT32 boot sector, with the
  BitLocker GUID at 160 and the three metadata-block offsets at 176.
* BitLocker To Go on FAT drives writes a real FAT32 boot sector (``MSWIN4.1``) for the plaintext
  "discovery volume", with the GUID at 424 and the offsets at 440.

Readers use a handful of these fields; the forge writes all of them, so each layout is spelled
out once here for both. Values in the comments are what Windows writes.
"""

from __future__ import annotations

from construct import Array, Bytes, Const, Int8ul, Int16ul, Int32ul, Int64ul, Struct

from .constants import BOOT_SIGNATURE
from .types import Guid

BOOT_SECTOR_SIZE = 512
#: Where every boot sector keeps 55 AA.
BOOT_SIGNATURE_OFFSET = 510

#: The start every layout shares: enough to recognise a BitLocker boot sector cut short.
BootSectorStart = Struct("jump" / Bytes(3), "oem" / Bytes(8))

#: The FAT32 BIOS parameter block from byte 3 to byte 90, shared by the Windows 7+ volume header
#: and the To Go discovery volume's boot sector.
_FAT32_BPB = (
    "oem" / Bytes(8),  # 3: -FVE-FS- (Win7+) or MSWIN4.1 (To Go)
    "bytes_per_sector" / Int16ul,  # 11; 0 on exFAT volumes of Windows 10 1903+
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

#: Windows 7 and later (NTFS and exFAT volumes, fixed and removable): the "FVE volume header".
#: Only bytes_per_sector, sectors_per_cluster, the GUID and the offsets matter to readers.
Win7BootSector = Struct(
    "jump" / Bytes(3),  # EB 58 90
    *_FAT32_BPB,
    "boot_code" / Bytes(70),  # 90
    "guid" / Guid,  # 160: BITLOCKER_GUID, or EOW_GUID while a used-space-only conversion runs
    "metadata_offsets" / Array(3, Int64ul),  # 176: volume offsets of the three blocks
    "eow_offsets" / Array(2, Int64ul),  # 200: the FVE-EOW structures (EOW_GUID volumes only)
    "boot_code2" / Bytes(294),  # 216
    "signature" / Const(BOOT_SIGNATURE),  # 510
)

#: BitLocker To Go on FAT: the discovery volume's boot sector. A real FAT32 boot sector for the
#: small plaintext filesystem at the start of the drive; the BitLocker fields sit in its boot code.
ToGoBootSector = Struct(
    "jump" / Bytes(3),  # EB 58 90
    *_FAT32_BPB,
    "boot_code" / Bytes(334),  # 90
    "guid" / Guid,  # 424
    "metadata_offsets" / Array(3, Int64ul),  # 440
    "eow_offsets" / Array(2, Int64ul),  # 464
    "boot_code2" / Bytes(30),  # 480
    "signature" / Const(BOOT_SIGNATURE),  # 510
)


def _ntfs_layout(field_56: str) -> Struct:
    """The NTFS boot sector; ``field_56`` names the u64 at 56, whose meaning Vista changes."""
    return Struct(
        "jump" / Bytes(3),  # EB 52 90
        "oem" / Bytes(8),  # "NTFS    "; "-FVE-FS-" on a Vista BitLocker volume
        "bytes_per_sector" / Int16ul,  # 11
        "sectors_per_cluster" / Int8ul,  # 13
        "reserved_sectors" / Int16ul,  # 14: 0
        "unused1" / Bytes(5),  # 16
        "media" / Int8ul,  # 21: F8
        "unused2" / Bytes(2),  # 22
        "sectors_per_track" / Int16ul,  # 24
        "heads" / Int16ul,  # 26
        "hidden_sectors" / Int32ul,  # 28
        "unused3" / Bytes(8),  # 32
        "total_sectors" / Int64ul,  # 40: volume sectors - 1 (the last one holds the backup)
        "mft_cluster" / Int64ul,  # 48
        field_56 / Int64ul,  # 56
        "clusters_per_mft_record" / Int8ul,  # 64 (signed: negative means 2**-n bytes)
        "unused4" / Bytes(3),  # 65
        "clusters_per_index_record" / Int8ul,  # 68
        "unused5" / Bytes(3),  # 69
        "volume_serial" / Int64ul,  # 72
        "checksum" / Int32ul,  # 80
        "boot_code" / Bytes(426),  # 84
        "signature" / Const(BOOT_SIGNATURE),  # 510
    )


#: An NTFS boot sector (the forge reads the input volume's).
NtfsBootSector = _ntfs_layout("mft_mirror_cluster")
#: Windows Vista's BitLocker boot sector: the same layout, block 1's cluster number at 56 (the
#: MFT-mirror cluster moves into the version-1 block header).
VistaBootSector = _ntfs_layout("metadata_lcn")
