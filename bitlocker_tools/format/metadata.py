"""The FVE metadata block, field by field: block header, metadata header, entries and the
values entries carry, and the validation structure that follows the block.

A block is ``BlockHeader`` (64 bytes), ``MetadataHeader`` (48), entries up to the header's size,
zero padding, then ``Validation``. Every entry starts with ``EntryHeader``; what follows depends
on its value type, and several value types nest further entries after a fixed part (whose size
is the structure's ``sizeof()``). All integers are little-endian.
"""

from __future__ import annotations

from construct import Array, Bytes, Const, GreedyBytes, Int16ul, Int32ul, Int64ul, Struct

from .constants import SIGNATURE
from .types import Guid

BlockHeader = Struct(
    "signature" / Const(SIGNATURE),
    "size" / Int16ul,  # bytes the validation covers: size * 16 on v2, size bytes on Vista's v1
    "version" / Int16ul,  # 1 Vista, 2 Windows 7 and later
    "current_state" / Int16ul,
    "next_state" / Int16ul,
    "encrypted_volume_size" / Int64ul,  # v2: the conversion boundary
    "convert_size" / Int32ul,  # v2: the conversion scratch area (state 2)
    "volume_header_sectors" / Int32ul,  # v2: sectors relocated from the volume's start
    "metadata_offsets" / Array(3, Int64ul),  # volume offsets of the three blocks
    "volume_header_offset" / Int64ul,  # v2: where they went; v1: the NTFS MFT-mirror cluster
)
BLOCK_HEADER_SIZE = BlockHeader.sizeof()

MetadataHeader = Struct(
    "size" / Int32ul,  # this header + entries
    "version" / Int32ul,  # 1
    "header_size" / Int32ul,  # 48
    "size_copy" / Int32ul,
    "volume_guid" / Guid,
    "next_nonce" / Int32ul,  # the counter the next AES-CCM nonce will carry
    "encryption_method" / Int16ul,
    "encryption_method_copy" / Int16ul,  # 0 on the Vista volume
    "creation_time" / Int64ul,  # FILETIME
)
METADATA_HEADER_SIZE = MetadataHeader.sizeof()

#: Follows the bytes the block header's size covers.
Validation = Struct(
    "size" / Int16ul,  # documented as 8 + the entry's size; real volumes disagree, see docs
    "version" / Int16ul,  # 2 (1 on Vista)
    "crc32" / Int32ul,  # zlib CRC-32 of the covered bytes
    "entry" / GreedyBytes,  # an AES-CCM entry under the VMK: SHA-256 of the covered bytes
)
VALIDATION_HEADER_SIZE = 8

EntryHeader = Struct(
    "size" / Int16ul,  # including these 8 bytes; 0 ends the list
    "entry_type" / Int16ul,  # EntryType; 0 for properties nested in another entry
    "value_type" / Int16ul,  # ValueType: what follows
    "version" / Int16ul,  # normally 1; 3 on clear-key VMKs; never rejected
)
ENTRY_HEADER_SIZE = EntryHeader.sizeof()

# --- values (what follows the entry header), by value type ------------------------------------

#: KEY: a key and the method it serves (an EncryptionMethod for the FVEK, a KeyMethod otherwise).
KeyValue = Struct("method" / Int16ul, "unknown" / Int16ul, "key" / GreedyBytes)
KEY_VALUE_FIXED = 4
#: STRETCH KEY: the salt of a password-derived key; nested entries follow (a recovery
#: password's holds its 16-byte key wrapped with the VMK).
StretchKeyValue = Struct("method" / Int32ul, "salt" / Bytes(16))
#: USE KEY: a startup key's property; the external key wrapped with the VMK is nested.
UseKeyValue = Struct("method" / Int32ul)
#: The 12-byte AES-CCM nonce: a FILETIME and a counter (the metadata header's next_nonce).
CcmNonce = Struct("time" / Int64ul, "counter" / Int32ul)
#: AES-CCM: an encrypted entry; on disk the tag precedes the ciphertext.
AesCcmValue = Struct("nonce" / Bytes(CcmNonce.sizeof()), "mac" / Bytes(16), "data" / GreedyBytes)
AES_CCM_FIXED = CcmNonce.sizeof() + 16
#: TPM ENCODED: a key sealed by the TPM, useless offline.
TpmValue = Struct("unknown" / Int32ul, "blob" / GreedyBytes)
TPM_VALUE_FIXED = 4
#: VMK: one key protector; its properties are nested.
VmkValue = Struct(
    "guid" / Guid,  # the protector ID, whose first 8 hex digits are the "Key ID"
    "creation_time" / Int64ul,  # FILETIME
    "unknown" / Int16ul,
    "protection" / Int16ul,  # the protector kind, see ProtectorType.from_code
)
#: EXTERNAL KEY: the entry of a .BEK file, naming its protector; properties nested.
ExternalKeyValue = Struct("guid" / Guid, "creation_time" / Int64ul)
#: BACKUP INFO (0x15): when and where a recovery-password protector was backed up. Nested as the
#: last property of recovery-password VMKs since Windows 10 (late 2019); see docs/format.md 3.7.
BackupInfoValue = Struct(
    "creation_time" / Int64ul,  # FILETIME
    "backup_time" / Int64ul,  # FILETIME
    "method" / Int16ul,  # BackupMethod: where the key went
    "flags" / Int16ul,  # meaning unknown (2 on every volume seen)
)
#: OFFSET AND SIZE: where the relocated volume header lives (Windows 8+ appends more).
OffsetSizeValue = Struct("offset" / Int64ul, "size" / Int64ul, "extra" / GreedyBytes)
OFFSET_SIZE_FIXED = 16
