"""On-disk structures of BitLocker (FVE), as construct definitions and nothing else.

Logic lives in :mod:`bitlocker_tools.volume`, :mod:`bitlocker_tools.metadata` and friends; the
writer (the fixture forge) builds the same structures, so both directions share one definition.
All integers are little-endian; GUIDs are stored in Windows mixed-endian order.
"""

from __future__ import annotations

from construct import (
    Array,
    Bytes,
    Const,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Padding,
    Struct,
)

Guid = Bytes(16)

# --- boot sectors (sector 0 of the volume) -------------------------------------------------------

#: Fields shared by every variant: the DOS BPB prefix.
BootSectorCommon = Struct(
    "jump" / Bytes(3),
    "oem" / Bytes(8),
    "bytes_per_sector" / Int16ul,  # 11; 0 on exFAT volumes of Win10 1903+
    "sectors_per_cluster" / Int8ul,  # 13
    Padding(510 - 14),
    "boot_signature" / Bytes(2),  # 510: 55 AA
)

#: Vista: one metadata block, addressed by cluster number.
VistaBootSector = Struct(
    Padding(11),
    "bytes_per_sector" / Int16ul,
    "sectors_per_cluster" / Int8ul,
    Padding(40 - 14),
    "total_sectors" / Int64ul,  # 40
    "mft_cluster" / Int64ul,  # 48
    "metadata_lcn" / Int64ul,  # 56
)

#: Windows 7 and later (NTFS/exFAT, fixed and removable): GUID at 160, three offsets at 176.
Win7BootSector = Struct(
    Padding(11),
    "bytes_per_sector" / Int16ul,
    "sectors_per_cluster" / Int8ul,
    Padding(160 - 14),
    "guid" / Guid,  # 160
    "metadata_offsets" / Array(3, Int64ul),  # 176
    "eow_offsets" / Array(2, Int64ul),  # 200, only meaningful with the EOW GUID
)

#: BitLocker To Go on FAT: the discovery volume, GUID at 424, three offsets at 440.
ToGoBootSector = Struct(
    Padding(11),
    "bytes_per_sector" / Int16ul,
    "sectors_per_cluster" / Int8ul,
    Padding(424 - 14),
    "guid" / Guid,  # 424
    "metadata_offsets" / Array(3, Int64ul),  # 440
    "eow_offsets" / Array(2, Int64ul),  # 464
)

# --- FVE metadata block ----------------------------------------------------------------------------

BlockHeader = Struct(
    "signature" / Const(b"-FVE-FS-"),
    "size" / Int16ul,  # v2: bytes covered by the validation = size * 16
    "version" / Int16ul,
    "current_state" / Int16ul,
    "next_state" / Int16ul,
    "encrypted_volume_size" / Int64ul,  # v2: conversion boundary
    "convert_size" / Int32ul,
    "volume_header_sectors" / Int32ul,
    "metadata_offsets" / Array(3, Int64ul),
    "volume_header_offset" / Int64ul,  # v1: MFT-mirror cluster number
)
BLOCK_HEADER_SIZE = 64

MetadataHeader = Struct(
    "size" / Int32ul,  # 48 + entries
    "version" / Int32ul,
    "header_size" / Int32ul,
    "size_copy" / Int32ul,
    "volume_guid" / Guid,
    "next_nonce" / Int32ul,
    "encryption_method" / Int16ul,
    "encryption_method_copy" / Int16ul,
    "creation_time" / Int64ul,  # FILETIME
)
METADATA_HEADER_SIZE = 48

#: Follows the block at block offset + size*16 (v2 only).
Validation = Struct(
    "unknown" / Int16ul,  # documented as a size, but real volumes disagree
    "version" / Int16ul,
    "crc32" / Int32ul,
    "entry" / GreedyBytes,
)
VALIDATION_HEADER_SIZE = 8

EntryHeader = Struct(
    "size" / Int16ul,
    "entry_type" / Int16ul,
    "value_type" / Int16ul,
    "version" / Int16ul,
)
ENTRY_HEADER_SIZE = 8

# --- entry values (what follows the 8-byte entry header), by value type ----------------------------

KeyValue = Struct("method" / Int16ul, "unknown" / Int16ul, "key" / GreedyBytes)
StretchKeyValue = Struct("method" / Int32ul, "salt" / Bytes(16))
STRETCH_KEY_FIXED = 20
UseKeyValue = Struct("method" / Int32ul)
USE_KEY_FIXED = 4
AesCcmValue = Struct(
    "nonce_time" / Int64ul,
    "nonce_counter" / Int32ul,
    "mac" / Bytes(16),
    "data" / GreedyBytes,
)
TpmValue = Struct("unknown" / Int32ul, "blob" / GreedyBytes)
VmkValue = Struct(
    "guid" / Guid,
    "creation_time" / Int64ul,
    "unknown" / Int16ul,
    "protection" / Int16ul,
)
VMK_FIXED = 28
ExternalKeyValue = Struct("guid" / Guid, "creation_time" / Int64ul)
EXTERNAL_KEY_FIXED = 24
OffsetSizeValue = Struct("offset" / Int64ul, "size" / Int64ul, "extra" / GreedyBytes)

# --- encrypt-on-write (used-space-only conversion) structures ------------------------------------

EowInformation = Struct(
    "signature" / Const(b"FVE-EOW\x00"),
    "header_size" / Int16ul,
    "size" / Int16ul,
    "sector_size" / Int32ul,
    "unknown1" / Int32ul,
    "chunk_size" / Int32ul,
    "conv_log_size" / Int32ul,
    "unknown2" / Int32ul,
    "region_count" / Int32ul,
    "crc32" / Int32ul,
    "eow_offsets" / Array(2, Int64ul),
)
EOW_INFORMATION_HEADER_SIZE = 56
EOW_INFORMATION_CRC_OFFSET = 36

EowBitmap = Struct(
    "signature" / Const(b"FVE-EOWBM\x00"),
    "header_size" / Int16ul,
    "size" / Int32ul,
    "unknown1" / Int32ul,
    "region_offset" / Int64ul,
    "region_size" / Int64ul,
    "conv_log_offset" / Int64ul,
    "record_offsets" / Array(2, Int32ul),
    "record_size" / Int32ul,
    "crc32" / Int32ul,
)
EOW_BITMAP_HEADER_SIZE = 60
EOW_BITMAP_CRC_OFFSET = 56

EowBitmapRecord = Struct(
    "signature" / Const(b"FVE-EOWBR\x00"),
    "header_size" / Int16ul,
    "size" / Int32ul,
    "bitmap_size" / Int32ul,  # in bits (chunks)
    "sequence_number" / Int64ul,
    "flags" / Int32ul,
    "crc32" / Int32ul,
)
EOW_RECORD_HEADER_SIZE = 36
EOW_RECORD_CRC_OFFSET = 32
