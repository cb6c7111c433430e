"""The FAT32 pieces of BitLocker To Go's discovery volume besides its boot sector (which is in
:mod:`.boot_sector`): the FSInfo sector and the short directory entry. Only the forge writes them;
readers see them as the plaintext they are."""

from __future__ import annotations

from construct import Bytes, Const, Int8ul, Int16ul, Int32ul, Struct

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
