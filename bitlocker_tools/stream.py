"""The decrypted volume as a seekable, read-only file object.

Each logical sector comes from one of four places: zeros (the metadata blocks, the relocated
header area and the conversion structures, which Windows presents as zero-filled files),
the relocated copy of the first sectors, plaintext (beyond the conversion boundary, or the
regions the encrypt-on-write bitmaps mark plain), or ciphertext decrypted with the sector
cipher at the offset where it is physically stored. :meth:`DecryptedStream.segments` computes
that map for a byte range; reads decrypt whole runs in one core call.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ._core import load
from .errors import BadInputError
from .format.boot_sector import NtfsBootSector, VistaBootSector
from .format.constants import NTFS_BOOT_AREA, NTFS_OEM, EncryptionMethod
from .protectors import UnlockResult
from .sources import read_into_at, salvage_into
from .unreadable import UnreadableRange, is_read_error
from .volume import BitLockerVolume

if TYPE_CHECKING:
    from ._core import Core

ZERO, PLAIN, ENCRYPTED, VISTA_BOOT = "zero", "plain", "encrypted", "vista-boot"


@dataclass(frozen=True)
class Segment:
    """``length`` bytes of plaintext at logical ``offset``, sourced as ``kind`` from ``physical``."""

    offset: int
    length: int
    kind: str
    physical: int


class DecryptedStream(io.RawIOBase):
    """Random-access plaintext of an unlocked volume (file-like; dissect.ntfs can open it).

    ``size`` is the volume size the evidence holds; bytes whose ciphertext lies beyond the end of
    a truncated image read as zeros and are counted in :attr:`missing_bytes`.
    """

    def __init__(self, volume: BitLockerVolume, unlocked: UnlockResult, core: Core | None = None,
                 assume_encrypted: bool = False):
        super().__init__()
        #: byte ranges whose plaintext is a guess: with ``assume_encrypted``, a used-space-only
        #: volume without a readable chunk map is decrypted as if every chunk held ciphertext
        self.uncertain: list[tuple[int, int]] = []
        if volume.eow_unreadable and unlocked.method != EncryptionMethod.NONE:
            if not assume_encrypted:
                raise BadInputError(
                    f"{volume.name}: the encrypt-on-write information is unreadable on every copy "
                    f"({volume.eow_error}): which chunks of this used-space-only volume hold ciphertext "
                    "is unknown; --assume-encrypted decrypts them all, and chunks never written since the "
                    "conversion began then read as noise")
            self.uncertain = [(0, min(volume.size, volume.metadata.encrypted_volume_size or volume.size))]
        self.volume = volume
        self.unlocked = unlocked
        self.core = core or load()
        self.size = volume.size
        self.sector_size = volume.sector_size
        self._pos = 0
        self._reserved = volume.reserved_regions()
        self._vh_offset, self._vh_size = volume.volume_header
        self._missing: int | None = None
        # Reads of the evidence are serialised (a seek+read pair on a shared handle); the
        # decryption that follows runs outside the lock, so threads decrypt in parallel.
        self._io_lock = threading.Lock()

    # --- io.RawIOBase ------------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:  # type: ignore[override]
        length = min(len(buf), max(0, self.size - self._pos))
        if length <= 0:
            return 0
        data = self.read_at(self._pos, length)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)

    # --- the region map ---------------------------------------------------------------------------

    def _reserved_at(self, pos: int) -> tuple[int, int] | None:
        """(start, end) of the reserved region holding ``pos``, else of the next one, else None."""
        for start, length in self._reserved:
            if pos < start + length:
                return start, start + length
        return None

    def segments(self, offset: int, length: int) -> list[Segment]:
        """The source of each part of ``[offset, offset+length)``; both must be sector aligned."""
        out: list[Segment] = []
        pos, end = offset, offset + length
        vista = self.volume.version == 1
        ss = self.sector_size
        while pos < end:
            if vista and pos < NTFS_BOOT_AREA:
                if pos < ss:
                    out.append(Segment(pos, ss, VISTA_BOOT, 0))
                    pos += ss
                else:
                    n = min(end, NTFS_BOOT_AREA) - pos
                    out.append(Segment(pos, n, PLAIN, pos))
                    pos += n
                continue
            region = self._reserved_at(pos)
            if region is not None and region[0] <= pos:
                n = min(end, region[1]) - pos
                out.append(Segment(pos, n, ZERO, pos))
                pos += n
                continue
            stop = min(end, region[0]) if region is not None else end
            if not vista and pos < self._vh_size:
                stop = min(stop, self._vh_size)
                physical = self._vh_offset + pos
            else:
                physical = pos
            encrypted, n = self.volume.state_run(physical, stop - pos)
            out.append(Segment(pos, n, ENCRYPTED if encrypted else PLAIN, physical))
            pos += n
        return out

    # --- reading ----------------------------------------------------------------------------------

    @property
    def missing_bytes(self) -> int:
        """Bytes of the plaintext whose stored sectors lie beyond the end of the evidence (the
        relocated first sectors of a cut-off image); they read as zeros. A property of the
        volume's layout, not of what was read, so a resumed or repeated read counts the same."""
        if self._missing is None:
            end = self.volume.size
            ss = self.sector_size
            self._missing = sum(max(0, seg.physical + seg.length - max(end, seg.physical))
                                for seg in self.segments(0, -(-self.size // ss) * ss) if seg.kind != ZERO)
            self._missing = min(self._missing, self.size)
        return self._missing

    def _read_physical_into(self, physical: int, target: memoryview,
                            unreadable: list[UnreadableRange] | None = None) -> int:
        """Fill ``target`` with the evidence bytes at volume offset ``physical``; return how many
        there were (fewer only where the evidence ends; the rest of ``target`` is untouched).

        A read that fails with an I/O error raises OSError naming the range, unless the caller
        collects ``unreadable``: then the bytes that cannot be read are zero-filled (see
        :mod:`.unreadable`, the one policy for that) and their ranges appended to it."""
        avail = max(0, min(len(target), self.volume.size - physical))
        if not avail:
            return 0
        start = self.volume.offset
        with self._io_lock:
            if unreadable is not None:  # its first read is the whole range: split only where that fails
                got, bad = salvage_into(self.volume.fh, start + physical, target[:avail], self.sector_size, start)
                unreadable.extend(bad)
                return got
            try:
                return read_into_at(self.volume.fh, start + physical, target[:avail])
            except OSError as exc:
                if not is_read_error(exc):
                    raise
                raise OSError(exc.errno, f"{exc.strerror or exc} (reading {avail} bytes at volume offset "
                              f"{physical} of {self.volume.name})") from None

    def read_at(self, offset: int, length: int) -> bytearray:
        """Plaintext of ``[offset, offset+length)``, clipped to the volume size."""
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return bytearray()
        ss = self.sector_size
        start = offset // ss * ss
        stop = min(-(-(offset + length) // ss) * ss, -(-self.size // ss) * ss)
        buf = bytearray(stop - start)
        self._fill(start, memoryview(buf), fresh=True)
        if start == offset and len(buf) == length:
            return buf
        return buf[offset - start : offset - start + length]

    def read_into(self, offset: int, buf: bytearray | memoryview,
                  unreadable: list[UnreadableRange] | None = None) -> int:
        """Decrypt the plaintext at sector-aligned ``offset`` into ``buf``; return how many bytes
        are valid (``len(buf)``, less at the end of the volume).

        For callers that reuse their buffers (``decrypt`` does): no allocation and no page faults
        per chunk. ``buf`` must hold the request rounded up to whole sectors. ``unreadable``: see
        :meth:`_read_physical_into`; the plaintext of unreadable sectors is zeros, not the
        decryption of zeros, and each range records where it lands in the output.
        """
        ss = self.sector_size
        if offset % ss:
            raise ValueError(f"offset {offset} is not a multiple of the sector size {ss}")
        length = max(0, min(len(buf), self.size - offset))
        stop = min(-(-(offset + length) // ss) * ss, -(-self.size // ss) * ss)
        if stop - offset > len(buf):
            raise ValueError("buf must hold whole sectors")
        if length:
            self._fill(offset, memoryview(buf)[: stop - offset], fresh=False, unreadable=unreadable)
        return length

    def _fill(self, start: int, view: memoryview, fresh: bool,
              unreadable: list[UnreadableRange] | None = None) -> None:
        """Plaintext of the sector-aligned ``[start, start+len(view))`` into ``view``.

        The evidence is read straight into the buffer and each encrypted run is decrypted in
        place, so a chunk costs one copy out of the page cache and one pass of the cipher.
        ``fresh``: the buffer is known to be zeroed, so the regions that read as zeros are skipped.
        """
        ss = self.sector_size
        method = int(self.unlocked.method)
        for seg in self.segments(start, len(view)):
            target = view[seg.offset - start : seg.offset - start + seg.length]
            if seg.kind == ZERO:
                if not fresh:
                    target[:] = bytes(seg.length)
                continue
            bad: list[UnreadableRange] | None = [] if unreadable is not None else None
            got = self._read_physical_into(seg.physical, target, bad)
            encrypted = seg.kind == ENCRYPTED and method != EncryptionMethod.NONE
            if encrypted:
                self.core.crypt_sectors_into(method, self.unlocked.sector_key, target, seg.physical, ss, True, target)
            elif seg.kind == VISTA_BOOT and not bad:
                target[:] = self._vista_boot_sector(bytes(target))
            for r in bad or ():
                at = r.offset - seg.physical  # zeros, not the decryption of the zeros read
                target[at : at + r.length] = bytes(r.length)
                assert unreadable is not None
                unreadable.append(replace(r, output_offset=seg.offset + at))
            if got < seg.length:
                # beyond the evidence: zeros, not the decryption of whatever the buffer held (a
                # sector cut in the middle cannot be decrypted at all)
                keep = got // ss * ss if encrypted else got
                target[keep:] = bytes(seg.length - keep)

    def _vista_boot_sector(self, raw: bytes) -> bytes:
        """Vista leaves sector 0 in the clear with the BitLocker signature and block 1's cluster;
        rebuild the NTFS boot sector, whose MFT-mirror cluster the v1 block header kept."""
        fields = dict(VistaBootSector.parse(raw[: VistaBootSector.sizeof()]))
        for name in ("_io", "metadata_lcn"):
            fields.pop(name, None)
        fields.update(oem=NTFS_OEM, mft_mirror_cluster=self.volume.metadata.volume_header_offset)
        return NtfsBootSector.build(fields) + raw[NtfsBootSector.sizeof() :]
