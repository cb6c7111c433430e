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
from dataclasses import dataclass
from types import ModuleType

from ._core import load
from .format.constants import EncryptionMethod
from .protectors import UnlockResult
from .volume import VISTA_PLAIN_HEADER, BitLockerVolume, read_at

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

    def __init__(self, volume: BitLockerVolume, unlocked: UnlockResult, core: ModuleType | None = None):
        super().__init__()
        self.volume = volume
        self.unlocked = unlocked
        self.core = core or load()
        self.size = volume.size
        self.sector_size = volume.sector_size
        self._pos = 0
        self._reserved = volume.reserved_regions()
        self._vh_offset, self._vh_size = volume.volume_header
        self.missing_bytes = 0
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
            if vista and pos < VISTA_PLAIN_HEADER:
                if pos < ss:
                    out.append(Segment(pos, ss, VISTA_BOOT, 0))
                    pos += ss
                else:
                    n = min(end, VISTA_PLAIN_HEADER) - pos
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

    def _read_physical(self, physical: int, length: int) -> bytes:
        avail = max(0, min(length, self.volume.size - physical))
        with self._io_lock:
            data = read_at(self.volume.fh, self.volume.offset + physical, avail) if avail else b""
            if len(data) < length:
                self.missing_bytes += length - len(data)
        if len(data) < length:
            data += bytes(length - len(data))
        return data

    def _decrypt(self, data: bytes, physical: int) -> bytes:
        method = self.unlocked.method
        if method == EncryptionMethod.NONE:
            return data
        return self.core.crypt_sectors(int(method), self.unlocked.key, data, physical, self.sector_size)

    def read_at(self, offset: int, length: int) -> bytes:
        """Plaintext of ``[offset, offset+length)``, clipped to the volume size."""
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        ss = self.sector_size
        start = offset // ss * ss
        stop = min(-(-(offset + length) // ss) * ss, -(-self.size // ss) * ss)
        parts = []
        for seg in self.segments(start, stop - start):
            if seg.kind == ZERO:
                parts.append(bytes(seg.length))
                continue
            data = self._read_physical(seg.physical, seg.length)
            if seg.kind == ENCRYPTED:
                data = self._decrypt(data, seg.physical)
            elif seg.kind == VISTA_BOOT:
                data = self._vista_boot_sector(data)
            parts.append(data)
        buf = b"".join(parts)
        return buf[offset - start : offset - start + length]

    def _vista_boot_sector(self, raw: bytes) -> bytes:
        """Vista leaves sector 0 in the clear with the BitLocker signature; rebuild the NTFS VBR."""
        patched = bytearray(raw)
        patched[3:11] = b"NTFS    "
        patched[0x38:0x40] = self.volume.metadata.volume_header_offset.to_bytes(8, "little")
        return bytes(patched)
