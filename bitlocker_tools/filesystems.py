"""Which filesystem a boot sector belongs to: the check that a decryption produced a volume and
that a scanned source is a volume at all."""

from __future__ import annotations


def identify_filesystem(sector0: bytes) -> str | None:
    """Name the filesystem whose boot sector this is (NTFS, exFAT, ReFS, FAT12/16/32)."""
    if len(sector0) < 512:
        return None
    if sector0[3:11] == b"NTFS    ":
        return "NTFS"
    if sector0[3:11] == b"EXFAT   ":
        return "exFAT"
    if sector0[3:7] == b"ReFS":
        return "ReFS"
    if sector0[82:87] == b"FAT32":
        return "FAT32"
    if sector0[54:59] == b"FAT12":
        return "FAT12"
    if sector0[54:59] == b"FAT16":
        return "FAT16"
    return None
