"""Damaged metadata never escapes as anything but BadInputError (one line, exit 3): random byte
and field corruptions of a real metadata block, parsed directly and through a whole volume."""

from __future__ import annotations

import io
import random
import struct
import zlib

from bitlocker_tools.errors import BadInputError
from bitlocker_tools.metadata import parse_block
from bitlocker_tools.volume import BitLockerVolume

BLOCK = 0x10000


def _volume_bytes(corpus_dir, name="recovery_password.bin") -> bytearray:
    return bytearray((corpus_dir / name).read_bytes())


def test_random_corruptions_of_a_block(corpus_dir):
    raw = _volume_bytes(corpus_dir)
    first = struct.unpack_from("<Q", raw, 176)[0]
    block = bytes(raw[first : first + BLOCK])
    parse_block(block, first)  # the pristine block parses
    rng = random.Random(1234)
    parsed = failed = 0
    for _ in range(1500):
        buf = bytearray(block)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(0, 1200)  # header, entries and validation live here
            buf[pos] = rng.randrange(256)
        try:
            parse_block(bytes(buf), first)
            parsed += 1
        except BadInputError:
            failed += 1
    assert parsed and failed  # both outcomes occur: the corruptions reach the parser's checks


def test_corrupt_entries_behind_a_valid_crc(corpus_dir):
    """Entries corrupted and the CRC recomputed (as a buggy writer or a forger would leave them):
    the volume either opens and renders (scan and info) or fails as bad input."""
    from bitlocker_tools.report import info_document, volume_record
    from bitlocker_tools.scan import VolumeReport

    raw = _volume_bytes(corpus_dir)
    offsets = struct.unpack_from("<3Q", raw, 176)
    rng = random.Random(99)
    opened = 0
    for _ in range(150):
        buf = bytearray(raw)
        for off in offsets:
            for _ in range(rng.randint(1, 6)):
                buf[off + 112 + rng.randrange(0, 800)] = rng.randrange(256)
            covered = struct.unpack_from("<H", buf, off + 8)[0] * 16
            struct.pack_into("<I", buf, off + covered + 4, zlib.crc32(bytes(buf[off : off + covered])))
        try:
            vol = BitLockerVolume(io.BytesIO(bytes(buf)))
        except BadInputError:
            continue
        opened += 1
        volume_record(VolumeReport(None, 0, vol.size, True, vol))
        info_document(vol)
    assert opened
