"""VMKs and FVEKs written as hex: what SPI sniffers, bitpixie, memory-forensics plugins and
examiners' notes give.

Accepted shapes (one per line, anywhere in a text file), the label required:

* ``VMK: <64 hex>``, ``VMK = 0x<hex>``, ``Volume Master Key <hex>``: a 32-byte VMK;
* ``FVEK: <hex>`` (16, 32 or 64 bytes), libbde's ``FVEK: <fvek>:<tweak>``, and the Volatility
  plugins' ``FVEK:`` line followed within two lines by ``TWEAK:`` (joined: FVEK then TWEAK,
  what ``--fvek`` takes for the diffuser methods);
* the hex contiguous, or as bytes separated by spaces or colons.

An unlabelled hex string is never read as a key (a SHA-256 looks the same); a file that holds
nothing else is one only when it is named ``*.vmk`` or ``*.fvek`` (:func:`bare_file`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from . import patterns
from .record import FVEK, VMK, EscrowProblem, EscrowRecord, Found, Locator

SOURCE = "hex_key"
VMK_SIZE = 32
FVEK_SIZES = (16, 32, 64)
TWEAK_DISTANCE = 2  # lines


def _bytes(value: str) -> bytes | None:
    parts = value.split(":")
    if len(parts) == 2 and all(len(p) >= 32 for p in parts):  # FVEK:TWEAK
        text = "".join(parts)
    else:
        text = value.replace(" ", "").replace(":", "")
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def read_lines(norm_lines: list[str], file: str) -> Iterator[Found]:
    """Every labelled hex key in (normalised) lines."""
    out: list[Found] = []
    last_fvek: tuple[int, EscrowRecord] | None = None
    for number, line in enumerate(norm_lines, 1):
        for m in patterns.HEX_KEY.finditer(line):
            label = m.group(1).lower().replace("_", " ")
            secret = _bytes(m.group(2))
            locator = Locator(file, line=number)
            if secret is None:
                out.append(EscrowProblem(locator, f"{m.group(1)}: not hex"))
                continue
            if label == "tweak":
                if last_fvek is not None and number - last_fvek[0] <= TWEAK_DISTANCE and last_fvek[1].secret is not None \
                        and len(last_fvek[1].secret) == len(secret) and len(secret) in (16, 32):
                    record = last_fvek[1]
                    record.secret = (record.secret or b"") + secret
                    record.notes.append(f"the TWEAK key of line {number} appended (FVEK then TWEAK)")
                    last_fvek = None
                else:
                    out.append(EscrowProblem(locator, "a TWEAK key without its FVEK on the lines before it"))
                continue
            kind = VMK if label in ("vmk", "volume master key") else FVEK
            if kind == VMK and len(secret) != VMK_SIZE:
                out.append(EscrowProblem(locator, f"VMK of {len(secret)} bytes; a VMK has {VMK_SIZE}"))
                continue
            if kind == FVEK and len(secret) not in FVEK_SIZES:
                out.append(EscrowProblem(locator, f"FVEK of {len(secret)} bytes; 16, 32 or 64 expected"))
                continue
            record = EscrowRecord(kind, SOURCE, locator, secret=secret)
            out.append(record)
            last_fvek = (number, record) if kind == FVEK else None
    yield from out


def bare_file(text: str, file: str) -> Iterator[Found]:
    """A file holding one unlabelled hex key: a key if its name says which (``.vmk``,
    ``.fvek``), otherwise a problem that says how to label it."""
    m = patterns.BARE_HEX.match(text)
    if not m:
        return
    secret = bytes.fromhex(m.group(1))
    ext = os.path.splitext(file)[1].lower()
    kind = {".vmk": VMK, ".fvek": FVEK}.get(ext)
    if kind == VMK and len(secret) == VMK_SIZE or kind == FVEK and len(secret) in FVEK_SIZES:
        record = EscrowRecord(kind, SOURCE, Locator(file, line=1), secret=secret)
        record.notes.append(f"an unlabelled hex key, a {kind.upper()} by its file name")
        yield record
        return
    yield EscrowProblem(Locator(file, line=1), f"an unlabelled hex key of {len(secret)} bytes: write 'VMK: <hex>' or "
                                               "'FVEK: <hex>' so that it can be used")
