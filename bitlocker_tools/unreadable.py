"""Evidence that cannot be read: the record of an unreadable range, and the one policy for reading around it.

A failing disk (or an image file kept on one) answers a read that touches a bad sector with an
I/O error (EIO), and usually answers the sectors around it. Giving up on the first error would
lose a whole volume for one sector; ignoring it would pass zeros off as evidence. So a read that
fails is retried in smaller pieces down to the sector, only the sectors that still fail are
zero-filled, and each such range is recorded (where, how long, the error) for the examiner:
``decrypt`` lists them in its summary and a sidecar, and the metadata reader skips a copy that
lies on one. This module is the only place that decides how that is done.

Ranges are in *volume offsets* of the source: bytes from the first byte of the BitLocker volume
as the evidence stores it (``evidence_offset`` adds where the volume starts in the evidence, the
offset to give an imaging tool; ``output_offset`` is where the bytes land in the plaintext, which
differs from ``offset`` only for the relocated first sectors).
"""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass, replace
from typing import Callable

#: The exit code of a command whose output is incomplete because part of the evidence could not
#: be read (the output was written, with those ranges zero-filled; see docs/cli.md).
EXIT_INCOMPLETE = 4
#: A failing read is retried in this many pieces, each piece that fails again the same way, down
#: to one sector: about log8(chunk/sector) failing reads per bad sector, which is what costs time
#: on a failing disk (each failing read may take the drive seconds of retries).
SPLIT = 8


@dataclass(frozen=True)
class UnreadableRange:
    """``length`` bytes at volume ``offset`` that could not be read (read as zeros), and why."""

    offset: int
    length: int
    error: str
    #: where the volume starts in the evidence: ``offset + volume_start`` is the evidence offset
    volume_start: int = 0
    #: where these bytes land in the decrypted output (None: not part of the plaintext)
    output_offset: int | None = None

    @property
    def evidence_offset(self) -> int:
        return self.volume_start + self.offset

    @property
    def end(self) -> int:
        return self.offset + self.length

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("volume_start")
        d["evidence_offset"] = self.evidence_offset
        return d

    def describe(self) -> str:
        """One line: which bytes, where, and the error."""
        where = f"volume offset {self.offset} (evidence offset {self.evidence_offset})"
        return f"{self.length} bytes at {where} unreadable: {self.error}"


def error_text(exc: BaseException) -> str:
    """The error of a failed read, as the examiner should see it: ``[Errno 5] Input/output error``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def is_read_error(exc: BaseException) -> bool:
    """An error that means "these bytes cannot be read" (not: the evidence is gone or the call
    is wrong): an OSError from the OS (with an errno: EIO, ENXIO, ...), but not a missing file or
    a closed handle. A parser's ``IOError("...")`` without an errno (dissect's, for a damaged
    container) is damage, reported as such, not a bad sector."""
    return (isinstance(exc, OSError) and exc.errno is not None and exc.errno != errno.EBADF
            and not isinstance(exc, (FileNotFoundError, IsADirectoryError)))


def read_salvaging(read: Callable[[int, memoryview], int], offset: int, target: memoryview, sector: int,
                   volume_start: int = 0) -> tuple[int, list[UnreadableRange]]:
    """Fill ``target`` with the bytes at evidence ``offset``, reading around unreadable sectors.

    ``read(offset, view)`` fills ``view`` and returns how many bytes the evidence holds there
    (fewer only at its end), or raises OSError. Where it fails, the range is retried in
    :data:`SPLIT` sector-aligned pieces, recursively, down to ``sector`` bytes; a piece of one
    sector that still fails is zero-filled and recorded (in volume offsets: ``offset`` minus
    ``volume_start``). Returns (bytes the evidence holds, the unreadable ranges, merged).
    """
    bad: list[UnreadableRange] = []
    got = _salvage(read, offset, target, max(1, sector), volume_start, bad)
    return got, merge(bad)


def _salvage(read, offset: int, target: memoryview, sector: int, base: int, bad: list) -> int:
    try:
        return read(offset, target)
    except OSError as exc:
        if not is_read_error(exc):
            raise
        if len(target) <= sector:
            target[:] = bytes(len(target))
            bad.append(UnreadableRange(offset - base, len(target), error_text(exc), base))
            return len(target)
    piece = max(sector, -(-len(target) // SPLIT // sector) * sector)
    got = 0
    for at in range(0, len(target), piece):
        n = _salvage(read, offset + at, target[at : at + piece], sector, base, bad)
        got += n
        if n < len(target[at : at + piece]):
            break  # the end of the evidence
    return got


def merge(ranges: list[UnreadableRange]) -> list[UnreadableRange]:
    """Sorted, with neighbours that continue each other (in the volume and in the output, with the
    same error) joined into one range."""
    out: list[UnreadableRange] = []
    for r in sorted(ranges, key=lambda r: (r.offset, r.output_offset or 0)):
        last = out[-1] if out else None
        if (last is not None and last.end == r.offset and last.error == r.error
                and last.volume_start == r.volume_start
                and (last.output_offset is None) == (r.output_offset is None)
                and (last.output_offset is None or last.output_offset + last.length == r.output_offset)):
            out[-1] = replace(last, length=last.length + r.length)
        else:
            out.append(r)
    return out


def from_dict(d: dict) -> UnreadableRange:
    """A range as :meth:`UnreadableRange.as_dict` wrote it (a resumed run's sidecar)."""
    return UnreadableRange(int(d["offset"]), int(d["length"]), str(d["error"]),
                           int(d["evidence_offset"]) - int(d["offset"]),
                           None if d.get("output_offset") is None else int(d["output_offset"]))


def total(ranges: list[UnreadableRange]) -> int:
    return sum(r.length for r in ranges)
