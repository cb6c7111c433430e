"""Damage to one metadata copy, so that readers must notice it and use another copy.

Every mode leaves the copy's CRC-32 wrong (the point of the exercise) and finds what it changes
through the block's own structures:

* ``"fvek"``: four bytes of the FVEK entry's ciphertext flipped (its AES-CCM tag fails too);
* ``"signature"``: the block header's signature erased, so the copy is no block at all;
* ``"crc"``: only the stored CRC-32 changed; the block itself is intact;
* ``"description"``: one bit of the first entry's value flipped, which keeps the block parsing
  everywhere. On Windows 7+ blocks with a description that is its first character; a Vista
  block starts with its 0x000B entry, and a block without a description with a VMK entry.
"""

from __future__ import annotations

from ..format.constants import SIGNATURE, EntryType
from ..format.metadata import (
    AES_CCM_FIXED,
    BLOCK_HEADER_SIZE,
    ENTRY_HEADER_SIZE,
    METADATA_HEADER_SIZE,
    BlockHeader,
    EntryHeader,
    MetadataHeader,
    Validation,
)
from .block import size_unit

#: Where a block's entries start.
_ENTRIES_AT = BLOCK_HEADER_SIZE + METADATA_HEADER_SIZE


def damage(block: bytes, mode: str) -> bytes:
    """A damaged copy of ``block`` (a block with its validation structure, as the forge built it)."""
    buf = bytearray(block)
    if mode == "fvek":
        at = _entry_at(buf, EntryType.FVEK) + ENTRY_HEADER_SIZE + AES_CCM_FIXED  # past nonce and MAC
        for i in range(4):
            buf[at + i] ^= 0xA5
    elif mode == "signature":
        buf[0 : len(SIGNATURE)] = bytes(len(SIGNATURE))
    elif mode == "crc":
        header = BlockHeader.parse(buf)
        at = header.size * size_unit(header.version)
        validation = Validation.parse(buf[at:])
        validation.crc32 ^= 0xFF
        buf[at:] = Validation.build(validation)
    elif mode == "description":
        buf[_ENTRIES_AT + ENTRY_HEADER_SIZE] ^= 0x01
    else:
        raise ValueError(f"unknown damage mode {mode!r}")
    return bytes(buf)


def _entry_at(buf: bytearray, entry_type: int) -> int:
    """Block offset of the first top-level entry of ``entry_type``."""
    end = BLOCK_HEADER_SIZE + MetadataHeader.parse(buf[BLOCK_HEADER_SIZE:]).size
    at = _ENTRIES_AT
    while at + ENTRY_HEADER_SIZE <= end:
        header = EntryHeader.parse(buf[at:])
        if header.entry_type == entry_type:
            return at
        if not header.size:
            break
        at += header.size
    raise ValueError(f"the block has no entry of type {entry_type:#06x}")
