"""The encrypt-on-write chunk map of a used-space-only conversion in progress.

Such a volume is neither "encrypted below a boundary" nor wholly encrypted: each chunk of each
region is marked in a bitmap as ciphertext or as plaintext never yet written since the
conversion began. Reading the map wrongly decrypts plaintext (or the reverse) without any error,
so every structure's CRC is checked and the active bitmap record is chosen as Windows does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import BinaryIO

from .errors import BadInputError
from .format import eow as fmt
from .sources import read_at


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

    @property
    def encrypted_chunks(self) -> int:
        # counted in C: a damaged record may claim millions of chunks
        return (int.from_bytes(self.bits, "little") & ((1 << self.bit_count) - 1)).bit_count()


@dataclass
class EowInfo:
    """One copy of the FVE-EOW information: the chunk size and the bitmaps, by region."""

    offset: int
    size: int
    chunk_size: int
    conv_log_size: int
    bitmaps: list[EowBitmap]


def _crc_ok(raw: bytes, crc_offset: int, stored: int) -> bool:
    """CRC-32 of a structure computed with its own CRC field zeroed."""
    return zlib.crc32(raw[:crc_offset] + b"\0\0\0\0" + raw[crc_offset + 4 :]) == stored


def read_eow(fh: BinaryIO, base: int, offset: int) -> EowInfo:
    """Parse the EOW information at volume ``offset`` (``base``: the volume's offset in ``fh``)
    and its bitmaps. Raises BadInputError or a construct error on damage."""
    info = fmt.EowInformationHeader.parse(read_at(fh, base + offset, fmt.EOW_INFORMATION_HEADER_SIZE))
    raw = read_at(fh, base + offset, info.size)
    if not _crc_ok(raw, fmt.EOW_INFORMATION_CRC_OFFSET, info.crc32):
        raise BadInputError(f"EOW information at volume offset {offset:#x} fails its CRC32")
    bitmaps = [_read_bitmap(fh, base, bm_off) for bm_off in fmt.EowInformation.parse(raw).bitmap_offsets]
    bitmaps.sort(key=lambda b: b.region_offset)
    return EowInfo(offset, info.size, info.chunk_size, info.conv_log_size, bitmaps)


#: The largest bitmap structure read (its size field is a u32): one bit maps a chunk (8 MiB on
#: every volume seen), so 64 MiB of bits would map 4 PiB; a larger size is damage, and reading it
#: from a large disk would allocate up to 4 GiB.
MAX_BITMAP_SIZE = 64 << 20


def _read_bitmap(fh: BinaryIO, base: int, offset: int) -> EowBitmap:
    bm = fmt.EowBitmap.parse(read_at(fh, base + offset, fmt.EOW_BITMAP_HEADER_SIZE))
    if bm.size > MAX_BITMAP_SIZE:
        raise BadInputError(f"EOW bitmap at volume offset {offset:#x} declares {bm.size} bytes, "
                            f"more than any volume needs ({MAX_BITMAP_SIZE})")
    raw = read_at(fh, base + offset, bm.size)
    # the header's CRC covers everything before the first record (512 bytes on the corpus volumes)
    if not _crc_ok(raw[: min(bm.record_offsets)], fmt.EOW_BITMAP_CRC_OFFSET, bm.crc32):
        raise BadInputError(f"EOW bitmap at volume offset {offset:#x} fails its CRC32")
    records = []
    for rec_off in bm.record_offsets:
        rec = fmt.EowBitmapRecord.parse(raw[rec_off : rec_off + fmt.EOW_RECORD_HEADER_SIZE])
        raw_rec = raw[rec_off : rec_off + rec.size]
        valid = _crc_ok(raw_rec, fmt.EOW_RECORD_CRC_OFFSET, rec.crc32)
        records.append((valid, rec.sequence_number, rec, raw_rec[rec.header_size :]))
    # The active record is the valid one with the highest sequence number.
    valid = [r for r in records if r[0]]
    if not valid:
        raise BadInputError(f"EOW bitmap at volume offset {offset:#x}: neither of its records passes its CRC32")
    _, _, rec, bits = max(valid, key=lambda r: r[1])
    if rec.bitmap_size > 8 * len(bits):  # is_encrypted would index past the bits
        raise BadInputError(f"EOW bitmap at volume offset {offset:#x}: its record counts {rec.bitmap_size} "
                            f"chunks but holds {8 * len(bits)} bits")
    return EowBitmap(offset, bm.size, bm.region_offset, bm.region_size, bm.conv_log_offset, bytes(bits),
                     rec.bitmap_size)
