"""Which filesystem a boot sector belongs to: the check that a decryption produced a volume and
that a scanned source is a volume at all."""

from __future__ import annotations

#: (offset, signature, name), in the order checked: the OEM names of NTFS, exFAT and ReFS at 3,
#: the FAT32 file-system type at 82 and the FAT12/16 one at 54 (FAT's are informational fields,
#: but every formatter writes them).
_SIGNATURES = (
    (3, b"NTFS    ", "NTFS"),
    (3, b"EXFAT   ", "exFAT"),
    (3, b"ReFS", "ReFS"),
    (82, b"FAT32", "FAT32"),
    (54, b"FAT12", "FAT12"),
    (54, b"FAT16", "FAT16"),
)


def identify_filesystem(sector0: bytes) -> str | None:
    """Name the filesystem whose boot sector this is (NTFS, exFAT, ReFS, FAT12/16/32)."""
    if len(sector0) < 512:
        return None
    return next((name for at, magic, name in _SIGNATURES if sector0[at : at + len(magic)] == magic), None)
