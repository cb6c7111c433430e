"""One BitLocker volume: recognition by boot sector, the three metadata copies, the region map.

The volume is addressed by volume offsets (bytes from the first byte of the BitLocker partition);
the evidence handle underneath is read-only and shared, and every read here is positional, so
several volumes of one disk can be examined through the same handle.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from construct import ConstructError

from .errors import BadInputError
from .format import structs
from .format.constants import (
    BITLOCKER_GUID,
    EOW_GUID,
    SIGNATURE,
    TOGO_OEM,
    EncryptionMethod,
    VolumeState,
)
from .metadata import MetadataBlock, guid_from_bytes, parse_block

#: Bytes of the first, unencrypted-in-Vista sectors that hold the volume header.
VISTA_PLAIN_HEADER = 0x2000
DEFAULT_SECTOR_SIZE = 512
BEYOND_EVIDENCE = "beyond the end of the evidence"


def read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    """Read up to ``length`` bytes at ``offset``; shorter only at the end of the evidence."""
    fh.seek(offset)
    out = bytearray()
    while len(out) < length:
        chunk = fh.read(length - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


@dataclass
class BootSector:
    """What the boot sector tells: which layout, and where the metadata lives."""

    variant: str  # "vista", "win7" or "togo"
    guid: str | None  # the identification GUID (None on Vista)
    bytes_per_sector: int  # 0 on exFAT-formatted volumes; see BitLockerVolume.sector_size
    sectors_per_cluster: int
    metadata_offsets: list[int]  # Vista: block 1 only
    eow_offsets: list[int] = field(default_factory=list)

    @property
    def is_eow(self) -> bool:
        return self.guid == EOW_GUID


def parse_boot_sector(buf: bytes) -> BootSector | None:
    """Recognise a BitLocker boot sector; None when the sector is not one."""
    if len(buf) < 512 or buf[510:512] != b"\x55\xaa":
        return None
    oem = buf[3:11]
    known = {BITLOCKER_GUID, EOW_GUID}
    if oem == SIGNATURE:
        guid = guid_from_bytes(buf[160:176])
        if guid in known:
            bs = structs.Win7BootSector.parse(buf)
            eow = [o for o in bs.eow_offsets if o] if guid == EOW_GUID else []
            return BootSector("win7", guid, bs.bytes_per_sector, bs.sectors_per_cluster,
                              list(bs.metadata_offsets), eow)
        if buf[0:3] == b"\xeb\x52\x90":
            vs = structs.VistaBootSector.parse(buf)
            offset = vs.metadata_lcn * vs.sectors_per_cluster * vs.bytes_per_sector
            return BootSector("vista", None, vs.bytes_per_sector, vs.sectors_per_cluster, [offset])
        return None
    if oem == TOGO_OEM:
        guid = guid_from_bytes(buf[424:440])
        if guid in known:
            bs = structs.ToGoBootSector.parse(buf)
            eow = [o for o in bs.eow_offsets if o] if guid == EOW_GUID else []
            return BootSector("togo", guid, bs.bytes_per_sector, bs.sectors_per_cluster,
                              list(bs.metadata_offsets), eow)
    return None


@dataclass
class MetadataCopy:
    """One of the three copies and what checking it found."""

    offset: int
    valid: bool
    error: str | None = None
    block: MetadataBlock | None = None


@dataclass
class EowBitmap:
    """The encrypted/plain chunk map of one region of a used-space-only volume."""

    offset: int
    size: int
    region_offset: int
    region_size: int
    conv_log_offset: int
    bits: bytes
    bit_count: int

    def is_encrypted(self, chunk: int) -> bool:
        if chunk < 0 or chunk >= self.bit_count:
            return False
        return bool(self.bits[chunk >> 3] >> (chunk & 7) & 1)


@dataclass
class EowInfo:
    offset: int
    size: int
    chunk_size: int
    conv_log_size: int
    bitmaps: list[EowBitmap]


def _crc_ok(raw: bytes, crc_offset: int, stored: int) -> bool:
    return zlib.crc32(raw[:crc_offset] + b"\0\0\0\0" + raw[crc_offset + 4 :]) == stored


def _parse_eow(fh: BinaryIO, base: int, offset: int) -> EowInfo:
    head = read_at(fh, base + offset, structs.EOW_INFORMATION_HEADER_SIZE)
    info = structs.EowInformation.parse(head)
    raw = read_at(fh, base + offset, info.size)
    if not _crc_ok(raw, structs.EOW_INFORMATION_CRC_OFFSET, info.crc32):
        raise BadInputError(f"EOW information at volume offset {offset:#x} fails its CRC32")
    count = (info.size - info.header_size) // 8
    offsets = [int.from_bytes(raw[info.header_size + 8 * i : info.header_size + 8 * i + 8], "little")
               for i in range(count)]
    bitmaps = []
    for bm_off in offsets:
        head = read_at(fh, base + bm_off, structs.EOW_BITMAP_HEADER_SIZE)
        bm = structs.EowBitmap.parse(head)
        raw_bm = read_at(fh, base + bm_off, bm.size)
        records = []
        for rec_off in bm.record_offsets:
            rec = structs.EowBitmapRecord.parse(raw_bm[rec_off : rec_off + structs.EOW_RECORD_HEADER_SIZE])
            raw_rec = raw_bm[rec_off : rec_off + rec.size]
            records.append((_crc_ok(raw_rec, structs.EOW_RECORD_CRC_OFFSET, rec.crc32), rec.sequence_number,
                            rec, raw_rec[rec.header_size :]))
        # The active record is the valid one with the highest sequence number.
        valid_records = [r for r in records if r[0]] or records
        _, _, rec, bits = max(valid_records, key=lambda r: r[1])
        bitmaps.append(EowBitmap(bm_off, bm.size, bm.region_offset, bm.region_size, bm.conv_log_offset,
                                 bytes(bits), rec.bitmap_size))
    bitmaps.sort(key=lambda b: b.region_offset)
    return EowInfo(offset, info.size, info.chunk_size, info.conv_log_size, bitmaps)


class BitLockerVolume:
    """A BitLocker volume inside evidence: boot sector, metadata copies and the region map.

    ``size`` is what the evidence holds for this volume (partition or image size); the metadata
    may describe a larger volume when an image was truncated, see :attr:`declared_size`.
    """

    def __init__(self, fh: BinaryIO, offset: int = 0, size: int | None = None, name: str = "volume"):
        self.fh = fh
        self.offset = offset
        self.name = name
        if size is None:
            fh.seek(0, 2)
            size = fh.tell() - offset
        self.size = size
        sector0 = read_at(fh, offset, 512)
        if len(sector0) < 512:
            raise BadInputError(f"{name}: truncated: fewer than 512 bytes at offset {offset}")
        boot = parse_boot_sector(sector0)
        if boot is None:
            raise BadInputError(f"{name}: no BitLocker boot sector at offset {offset}")
        self.boot = boot
        self.copies = self._read_copies()
        valid = [c for c in self.copies if c.valid]
        if not valid:
            if all(c.error == BEYOND_EVIDENCE for c in self.copies):
                where = ", ".join(f"{c.offset:#x}" for c in self.copies)
                raise BadInputError(f"{name}: truncated image: the metadata copies ({where}) lie beyond "
                                    f"the end of the evidence, which holds {size} bytes of this volume")
            detail = "; ".join(f"{c.offset:#x}: {c.error}" for c in self.copies)
            raise BadInputError(f"{name}: all metadata copies are damaged ({detail})")
        self.metadata: MetadataBlock = valid[0].block  # type: ignore[assignment]
        self.eow: EowInfo | None = None
        self.eow_error: str | None = None
        self.eow_copies: list[EowInfo] = []
        if boot.eow_offsets:
            self._read_eow()

    # --- reading the metadata ------------------------------------------------------------------

    @property
    def sector_size(self) -> int:
        """Bytes per sector; exFAT BitLocker volumes leave the BPB field 0, so default to 512."""
        bps = self.boot.bytes_per_sector
        return bps if bps in (512, 1024, 2048, 4096) else DEFAULT_SECTOR_SIZE

    @property
    def cluster_size(self) -> int:
        return self.sector_size * max(1, self.boot.sectors_per_cluster)

    def _block_area(self, version: int) -> int:
        """Bytes each metadata block occupies (and reads back as zeros in the plaintext)."""
        if version == 1:
            cs = self.cluster_size
            return (cs + 0x3FFF) & ~(cs - 1)
        ss = self.sector_size
        return (ss + 0xFFFF) & ~(ss - 1)

    def _read_block(self, offset: int) -> MetadataCopy:
        if offset <= 0 or offset >= self.size:
            return MetadataCopy(offset, False, BEYOND_EVIDENCE)
        length = min(0x10000, self.size - offset)
        buf = read_at(self.fh, self.offset + offset, length)
        try:
            block = parse_block(buf, offset)
        except (BadInputError, ConstructError) as exc:
            return MetadataCopy(offset, False, str(exc))
        if block.crc_valid is False:
            return MetadataCopy(offset, False, "CRC32 mismatch", block)
        return MetadataCopy(offset, True, None, block)

    def _read_copies(self) -> list[MetadataCopy]:
        offsets = list(self.boot.metadata_offsets)
        if self.boot.variant == "vista":
            first = self._read_block(offsets[0])
            copies = [first]
            if first.block is not None:
                copies += [self._read_block(o) for o in first.block.metadata_offsets[1:]]
            return copies
        return [self._read_block(o) for o in offsets]

    def _read_eow(self) -> None:
        """Parse the EOW information copies; the first valid one maps the chunks, and every
        valid copy (with its bitmaps and conversion log) reads as zeros in the plaintext."""
        errors = []
        for off in self.boot.eow_offsets:
            try:
                self.eow_copies.append(_parse_eow(self.fh, self.offset, off))
            except (BadInputError, ConstructError) as exc:
                errors.append(f"{off:#x}: {exc}")
        if self.eow_copies:
            self.eow = self.eow_copies[0]
        else:
            self.eow_error = "; ".join(errors)

    # --- what the metadata says ----------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.metadata.version

    @property
    def method(self) -> EncryptionMethod:
        method = self.metadata.method
        if method is None:
            raise BadInputError(f"{self.name}: unsupported encryption method {self.metadata.encryption_method:#06x}")
        return method

    @property
    def volume_header(self) -> tuple[int, int]:
        """(volume offset, byte size) of the relocated first sectors; (0, 0) on Vista.

        Taken from the block header (the 0x000F entry is optional on new volumes and may lie
        outside the declared metadata); the entry is used only when it declares a larger area,
        which BitLocker To Go does.
        """
        md = self.metadata
        if md.version == 1:
            return (0, 0)
        size = md.volume_header_sectors * self.sector_size
        entry = md.volume_header_entry
        if entry is not None and entry.offset == md.volume_header_offset and entry.size > size:
            size = entry.size
        return (md.volume_header_offset, size)

    @property
    def declared_size(self) -> int | None:
        """The volume size the metadata implies (None when it does not say)."""
        md = self.metadata
        if md.version == 2 and md.current_state == VolumeState.ENCRYPTED and not self.eow:
            return md.encrypted_volume_size or None
        return None

    def reserved_regions(self) -> list[tuple[int, int]]:
        """Byte ranges that the plaintext presents as zeros, sorted: (start, length)."""
        md = self.metadata
        area = self._block_area(md.version)
        regions = [(o, area) for o in md.metadata_offsets if o]
        if md.version >= 2:
            vh_off, vh_size = self.volume_header
            regions.append((vh_off, max(vh_size, self.sector_size)))
            if md.current_state == VolumeState.SWITCHING_DIRTY and md.convert_size:
                regions.append((md.encrypted_volume_size, md.convert_size))
        ss = self.sector_size
        for eow in self.eow_copies:
            regions.append((eow.offset, (eow.size + ss - 1) // ss * ss))
            for bm in eow.bitmaps:
                regions.append((bm.offset, bm.size))
                regions.append((bm.conv_log_offset, eow.conv_log_size))
        return sorted(set(r for r in regions if r[1] > 0))

    def state_run(self, physical: int, length: int) -> tuple[bool, int]:
        """Whether the sectors stored from volume offset ``physical`` hold ciphertext, and for how
        many bytes (at most ``length``) that stays so.

        Conversion works front to back, so on a partially converted volume everything below
        ``encrypted_volume_size`` is ciphertext; used-space-only volumes mark each chunk in the
        encrypt-on-write bitmaps, whose chunks are aligned to each bitmap's region.
        """
        md = self.metadata
        if md.encryption_method == EncryptionMethod.NONE:
            return False, length
        if self.eow is not None:
            return self._eow_run(physical, length)
        if md.version >= 2 and md.encrypted_volume_size:
            if physical < md.encrypted_volume_size:
                return True, min(length, md.encrypted_volume_size - physical)
            return False, length
        return md.current_state != VolumeState.DECRYPTED, length

    def _eow_run(self, physical: int, length: int) -> tuple[bool, int]:
        assert self.eow is not None
        bitmaps = self.eow.bitmaps
        idx = bisect.bisect_right([b.region_offset for b in bitmaps], physical) - 1
        if idx < 0:
            return False, min(length, bitmaps[0].region_offset - physical)
        bm = bitmaps[idx]
        chunk_size = self.eow.chunk_size
        limit = physical + length
        if idx + 1 < len(bitmaps):
            limit = min(limit, bitmaps[idx + 1].region_offset)
        chunk = (physical - bm.region_offset) // chunk_size
        encrypted = bm.is_encrypted(chunk)
        end = bm.region_offset + (chunk + 1) * chunk_size
        while end < limit and bm.is_encrypted(chunk + 1) == encrypted and chunk + 1 < bm.bit_count:
            chunk += 1
            end += chunk_size
        return encrypted, min(end, limit) - physical
