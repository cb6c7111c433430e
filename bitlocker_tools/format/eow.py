"""Encrypt-on-write (used-space-only conversion) structures.

While a used-space-only conversion runs, the Windows 7+ boot sector carries ``EOW_GUID`` and the
volume offsets of two ``FVE-EOW`` information copies. Each lists bitmaps, one per region of the
volume; each bitmap holds two records (the active one is the valid record with the highest
sequence number) whose bits mark the chunks that hold ciphertext. Every structure carries a
CRC-32 computed with its own CRC field zeroed; ``*_CRC_OFFSET`` says where that field is.
"""

from __future__ import annotations

from construct import Array, Const, Int16ul, Int32ul, Int64ul, Pointer, Struct, this

EowInformationHeader = Struct(
    "signature" / Const(b"FVE-EOW\x00"),
    "header_size" / Int16ul,  # the bitmap offsets (u64 each) follow, up to size
    "size" / Int16ul,
    "sector_size" / Int32ul,
    "unknown1" / Int32ul,
    "chunk_size" / Int32ul,  # bytes each bitmap bit covers (8 MiB seen)
    "conv_log_size" / Int32ul,
    "unknown2" / Int32ul,
    "region_count" / Int32ul,
    "crc32" / Int32ul,
    "eow_offsets" / Array(2, Int64ul),
)
EOW_INFORMATION_HEADER_SIZE = EowInformationHeader.sizeof()
EOW_INFORMATION_CRC_OFFSET = 36
#: The whole structure (``size`` bytes): the header, then one u64 volume offset per bitmap.
EowInformation = Struct(
    *EowInformationHeader.subcons,
    "bitmap_offsets" / Pointer(this.header_size, Array((this.size - this.header_size) // 8, Int64ul)),
)

EowBitmap = Struct(
    "signature" / Const(b"FVE-EOWBM\x00"),
    "header_size" / Int16ul,
    "size" / Int32ul,
    "unknown1" / Int32ul,
    "region_offset" / Int64ul,  # the region of the volume this bitmap maps
    "region_size" / Int64ul,
    "conv_log_offset" / Int64ul,
    "record_offsets" / Array(2, Int32ul),  # relative to this structure
    "record_size" / Int32ul,
    "crc32" / Int32ul,
)
EOW_BITMAP_HEADER_SIZE = EowBitmap.sizeof()
EOW_BITMAP_CRC_OFFSET = 56

EowBitmapRecord = Struct(
    "signature" / Const(b"FVE-EOWBR\x00"),
    "header_size" / Int16ul,  # the bits follow
    "size" / Int32ul,
    "bitmap_size" / Int32ul,  # in bits (chunks)
    "sequence_number" / Int64ul,
    "flags" / Int32ul,
    "crc32" / Int32ul,
)
EOW_RECORD_HEADER_SIZE = EowBitmapRecord.sizeof()
EOW_RECORD_CRC_OFFSET = 32
