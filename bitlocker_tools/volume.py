"""One BitLocker volume: recognition by boot sector, the three metadata copies, the region map.

The volume is addressed by volume offsets (bytes from the first byte of the BitLocker partition);
the evidence handle underneath is read-only and shared, and every read here is positional, so
several volumes of one disk can be examined through the same handle.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import BinaryIO

from construct import ConstructError

from .boot_sector import BootSector, parse_boot_sector
from .eow import EowInfo, read_eow
from .errors import BadInputError, describe_parse_error
from .format.boot_sector import BOOT_SECTOR_SIZE
from .format.constants import (
    METADATA_BLOCK_AREA,
    VISTA_METADATA_BLOCK_AREA,
    EncryptionMethod,
    VolumeState,
)
from .format.metadata import VALIDATION_HEADER_SIZE
from .metadata import MetadataBlock, parse_block
from .sources import read_at, read_at_salvaging, read_error
from .unreadable import UnreadableRange, error_text, is_read_error

DEFAULT_SECTOR_SIZE = 512
BEYOND_EVIDENCE = "beyond the end of the evidence"
#: After a block's validation structure, the bytes :func:`.metadata.parse_block` looks in for the
#: validation entry: an unreadable sector there makes the copy unreadable, one further on does not.
_VALIDATION_ENTRY_WINDOW = 0x200


@dataclass
class MetadataCopy:
    """One of the three copies and what checking it found. ``valid``: it parses and its CRC-32
    matches; ``block`` is set whenever it parses, CRC or not."""

    offset: int
    valid: bool
    error: str | None = None
    block: MetadataBlock | None = None
    #: sectors of the copy could not be read (an I/O error): ``error`` says which
    unreadable: bool = False

    @property
    def crc_ok(self) -> bool | None:
        """The CRC-32 verdict; None where the copy did not parse or carries no CRC."""
        return self.block.crc_valid if self.block is not None else None


class BitLockerVolume:
    """A BitLocker volume inside evidence: boot sector, metadata copies and the region map.

    ``size`` is what the evidence holds for this volume (partition or image size); the metadata
    may describe a larger volume when an image was truncated, see :attr:`declared_size`.

    Damaged metadata is evidence, not a wall: when every copy fails its CRC-32 but one still
    parses, that copy is used and :attr:`warnings` says so (real volumes exist like this, and a
    credential that unwraps the keys proves the keys right). ``strict=True`` refuses instead.
    """

    def __init__(self, fh: BinaryIO, offset: int = 0, size: int | None = None, name: str = "volume",
                 strict: bool = False):
        self.fh = fh
        self.offset = offset
        self.name = name
        if size is None:
            fh.seek(0, 2)
            size = fh.tell() - offset
        self.size = size
        try:
            sector0 = read_at(fh, offset, BOOT_SECTOR_SIZE)
        except OSError as exc:
            raise read_error(name, "the boot sector", offset, exc) from None
        if len(sector0) < BOOT_SECTOR_SIZE:
            raise BadInputError(f"{name}: truncated: fewer than 512 bytes at offset {offset}")
        boot = parse_boot_sector(sector0)
        if boot is None:
            raise BadInputError(f"{name}: no BitLocker boot sector at offset {offset}")
        self.boot: BootSector = boot
        #: the sectors of this volume's structures that could not be read (volume offsets)
        self.unreadable: list[UnreadableRange] = []
        self.copies = self._read_copies()
        #: what is wrong but did not stop the volume from opening (one line each)
        self.warnings: list[str] = []
        valid = [c for c in self.copies if c.valid]
        parsed = [c for c in self.copies if c.block is not None]
        if not valid:
            if all(c.error == BEYOND_EVIDENCE for c in self.copies):
                where = ", ".join(f"{c.offset:#x}" for c in self.copies)
                raise BadInputError(f"{name}: truncated image: the metadata copies ({where}) lie beyond "
                                    f"the end of the evidence, which holds {size} bytes of this volume")
            detail = "; ".join(f"{c.offset:#x}: {c.error}" for c in self.copies)
            if strict or not parsed:
                refused = "; refused under --strict, although one parses" if parsed else ""
                raise BadInputError(f"{name}: all metadata copies are damaged ({detail}){refused}")
            valid = parsed[:1]
            self.warnings.append(f"{name}: every metadata copy fails its integrity check ({detail}); "
                                 f"using the copy at {parsed[0].offset:#x}, which parses (--strict refuses)")
        self.metadata: MetadataBlock = valid[0].block  # type: ignore[assignment]
        self.warnings += [f"{name}: metadata copy at {c.offset:#x} skipped: {c.error}; using the copy at "
                          f"{valid[0].offset:#x}" for c in self.copies if c.unreadable]
        differ = [c for c in valid[1:] if c.block is not None and c.block.covered != self.metadata.covered]
        if differ:
            where = ", ".join(f"{c.offset:#x}" for c in differ)
            self.warnings.append(f"{name}: the metadata copies at {valid[0].offset:#x} and {where} differ although "
                                 "each passes its CRC-32 (one may be tampered with); unlocking tells which "
                                 "passes its authenticated validation")
        self.strict = strict
        self.eow: EowInfo | None = None
        self.eow_error: str | None = None
        self.eow_copies: list[EowInfo] = []
        if boot.eow_offsets:
            self._read_eow()

    def use_copy(self, copy: MetadataCopy) -> None:
        """Read the volume by another parsed metadata copy (one that passes a check the first
        choice failed)."""
        assert copy.block is not None
        self.metadata = copy.block

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
        """Bytes each metadata block occupies (and reads back as zeros in the plaintext): 64 KiB,
        or on Vista 16 KiB rounded up to whole clusters."""
        if version == 1:
            cs = self.cluster_size
            return (cs + VISTA_METADATA_BLOCK_AREA - 1) & ~(cs - 1)
        ss = self.sector_size
        return (ss + METADATA_BLOCK_AREA - 1) & ~(ss - 1)

    def _read_block(self, offset: int) -> MetadataCopy:
        if offset <= 0 or offset >= self.size:
            return MetadataCopy(offset, False, BEYOND_EVIDENCE)
        length = min(METADATA_BLOCK_AREA, self.size - offset)  # no block is larger
        buf, bad = read_at_salvaging(self.fh, self.offset + offset, length, self.sector_size, self.offset)
        try:
            block = parse_block(buf, offset)
        except (BadInputError, ConstructError) as exc:
            if bad:  # what failed to parse is the zeros of sectors that could not be read
                return self._unreadable_copy(offset, bad)
            return MetadataCopy(offset, False, str(exc) if isinstance(exc, BadInputError) else describe_parse_error(exc))
        if bad:
            used = offset + len(block.covered) + VALIDATION_HEADER_SIZE + _VALIDATION_ENTRY_WINDOW
            if any(r.offset < used for r in bad):
                return self._unreadable_copy(offset, bad)
            self.unreadable += bad  # in the block's area, after what the block uses: harmless
        if block.crc_valid is False:
            return MetadataCopy(offset, False, "CRC32 mismatch", block)
        return MetadataCopy(offset, True, None, block)

    def _unreadable_copy(self, offset: int, bad: list[UnreadableRange]) -> MetadataCopy:
        self.unreadable += bad
        where = ", ".join(f"{r.length} bytes at volume offset {r.offset:#x}" for r in bad)
        return MetadataCopy(offset, False, f"unreadable: {bad[0].error} ({where})", unreadable=True)

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
                self.eow_copies.append(read_eow(self.fh, self.offset, off))
            except OSError as exc:
                if not is_read_error(exc):
                    raise
                errors.append(f"{off:#x}: unreadable: {error_text(exc)}")
                self.warnings.append(f"{self.name}: encrypt-on-write information at {off:#x} skipped: unreadable: "
                                     f"{error_text(exc)}")
            except BadInputError as exc:
                errors.append(f"{off:#x}: {exc}")
            except ConstructError as exc:
                errors.append(f"{off:#x}: {describe_parse_error(exc)}")
        if self.eow_copies:
            self.eow = self.eow_copies[0]
        else:
            self.eow_error = "; ".join(errors)

    @property
    def eow_unreadable(self) -> bool:
        """A used-space-only conversion is in progress, but no copy of its chunk map can be read:
        which chunks hold ciphertext is unknown."""
        return bool(self.boot.eow_offsets) and self.eow is None

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
