"""The metadata block, built: block header, metadata header, entries, validation.

The writing side of :func:`bitlocker_tools.metadata.parse_block` (docs/format.md section 2).
The three copies of a volume are identical: one block is built and written three times (a
damaged copy is made from it by :mod:`.damage`). Entries come in the order of the corpus
volumes: on Vista first an entry of type 0x000B, then the description, one VMK entry per
protector, the FVEK, and on Windows 7+ the volume-header entry. The validation structure follows
the covered bytes: their CRC-32 and their SHA-256 wrapped with the VMK.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import timedelta

from ..format.constants import EntryType, KeyMethod, ValueType
from ..format.metadata import (
    BLOCK_HEADER_SIZE,
    METADATA_HEADER_SIZE,
    BlockHeader,
    MetadataHeader,
    OffsetSizeValue,
    Validation,
)
from ..format.types import datetime_to_filetime
from .entries import CcmSealer, entry, unicode_entry
from .layout import Layout
from .protectors import ProtectorWriter
from .randomness import SeededRandom
from .result import ForgedProtector
from .spec import VMK_SIZE, VolumeSpec

#: Seconds after the volume's creation time at which its blobs are stamped (the protectors take
#: the seconds from 2 on, see :mod:`.protectors`).
VISTA_0X000B_SECONDS = 1
FVEK_SECONDS = 9
VALIDATION_SECONDS = 10
#: The validation covers the headers and entries padded to a multiple of 16 bytes.
COVERED_ALIGN = 16


def size_unit(version: int) -> int:
    """What the block header's size field counts: 16-byte units on v2, bytes on Vista's v1."""
    return 1 if version == 1 else 16


@dataclass
class VolumeKeys:
    """The keys and the GUID the metadata carries: given in the spec or derived from its seed."""

    fvek: bytes  # the FVEK datum's key
    vmk: bytes
    volume_guid: str

    @classmethod
    def of(cls, spec: VolumeSpec, rng: SeededRandom) -> VolumeKeys:
        return cls(fvek=spec.fvek or rng.bytes("fvek", spec.method.fvek_datum_size),
                   vmk=spec.vmk or rng.bytes("vmk", VMK_SIZE),
                   volume_guid=spec.volume_guid or rng.guid("volume-guid"))


def metadata_block(spec: VolumeSpec, keys: VolumeKeys, layout: Layout,
                   rng: SeededRandom) -> tuple[bytes, list[ForgedProtector]]:
    """One metadata block with its validation structure, and the protectors it holds."""
    ccm = CcmSealer()
    entries, protectors = _entries(spec, keys, layout, rng, ccm)
    metadata_size = METADATA_HEADER_SIZE + len(entries)
    covered = -(-(BLOCK_HEADER_SIZE + metadata_size) // COVERED_ALIGN) * COVERED_ALIGN
    # The validation blob is the last to be wrapped; its counter is below next_nonce too.
    next_nonce = ccm.next_counter + 1
    header = _metadata_header(spec, keys, metadata_size, next_nonce)
    block = (_block_header(spec, layout, covered) + header + entries).ljust(covered, b"\0")
    validation = _validation(spec, keys, layout, block, ccm)
    assert ccm.next_counter == next_nonce
    return block + validation, protectors


def _entries(spec: VolumeSpec, keys: VolumeKeys, layout: Layout, rng: SeededRandom,
             ccm: CcmSealer) -> tuple[bytes, list[ForgedProtector]]:
    v1, created = spec.is_v1, spec.created
    out = []
    if v1:
        # The corpus Vista volume starts with an entry of type 0x000B: a 32-byte key (method
        # 0x2002) wrapped with the VMK, made together with its startup key. Its use is unknown.
        out.append(ccm.wrapped_key(keys.vmk, KeyMethod.EXTERNAL_KEY, rng.bytes("vista-0x000b", 32),
                                   created + timedelta(seconds=VISTA_0X000B_SECONDS), EntryType.FVEK_BACKUP))
    if spec.description is not None:
        out.append(unicode_entry(spec.description, EntryType.DESCRIPTION))
    writer = ProtectorWriter(rng, ccm, keys.vmk, created, v1)
    protectors = []
    for i, p in enumerate(spec.protectors):
        raw, forged = writer.vmk_entry(i, p)
        out.append(raw)
        protectors.append(forged)
    out.append(ccm.wrapped_key(keys.vmk, int(spec.method), keys.fvek, created + timedelta(seconds=FVEK_SECONDS),
                               EntryType.FVEK))
    if not v1:  # v1 relocates nothing, so it has no volume-header entry
        out.append(entry(EntryType.VOLUME_HEADER_BLOCK, ValueType.OFFSET_SIZE, OffsetSizeValue.build(
            dict(offset=layout.header_offset, size=layout.header_size, extra=b""))))
    return b"".join(out), protectors


def _metadata_header(spec: VolumeSpec, keys: VolumeKeys, size: int, next_nonce: int) -> bytes:
    return MetadataHeader.build(dict(
        size=size, version=1, header_size=METADATA_HEADER_SIZE, size_copy=size,
        volume_guid=keys.volume_guid, next_nonce=next_nonce,
        # The Vista volume leaves the second copy of the method 0.
        encryption_method=int(spec.method), encryption_method_copy=0 if spec.is_v1 else int(spec.method),
        creation_time=datetime_to_filetime(spec.created),
    ))


def _block_header(spec: VolumeSpec, layout: Layout, covered: int) -> bytes:
    version = spec.metadata_version
    fields = dict(size=covered // size_unit(version), version=version, current_state=layout.state,
                  next_state=layout.next_state, convert_size=0, metadata_offsets=list(layout.offsets))
    if spec.is_v1:
        # v1: zeros where v2 has the boundary and header fields, and the NTFS MFT-mirror cluster
        # at 56 (the boot sector's field 56 holds block 1's cluster).
        assert layout.ntfs is not None
        fields.update(encrypted_volume_size=0, volume_header_sectors=0,
                      volume_header_offset=layout.ntfs.mft_mirror_cluster)
    else:
        fields.update(encrypted_volume_size=layout.encrypted_size, volume_header_sectors=layout.header_sectors,
                      volume_header_offset=layout.header_offset)
    return BlockHeader.build(fields)


def _validation(spec: VolumeSpec, keys: VolumeKeys, layout: Layout, block: bytes, ccm: CcmSealer) -> bytes:
    digest = hashlib.sha256(block).digest()
    wrapped = ccm.wrapped_key(keys.vmk, KeyMethod.VALIDATION_HASH, digest,
                              spec.created + timedelta(seconds=VALIDATION_SECONDS))
    # The first u16 is documented as a size; every real volume has the block area (64 KiB; 16 KiB
    # on Vista) minus the covered bytes. The Vista volume has the same CRC-32 and SHA-256, version 1.
    return Validation.build(dict(size=(layout.block_area - len(block)) & 0xFFFF, version=spec.metadata_version,
                                 crc32=zlib.crc32(block), entry=wrapped))
