"""Writing the decrypted volume out: to a file (atomically, resumable) or to a stream.

A file is written as ``OUT.part`` and renamed when complete, so a half-written image never
carries the final name. ``--resume`` continues a ``.part`` left by an interrupted run: a sidecar
``OUT.part.json`` records what is being decrypted (source, offset, size, method, protector), and
a resume is refused if it does not match. The SHA-256 covers the whole output, also on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from .errors import BadInputError, UsageError
from .filesystems import identify_filesystem
from .stream import DecryptedStream

CHUNK = 4 << 20


@dataclass
class DecryptResult:
    output: str
    bytes_written: int
    sha256: str
    filesystem: str | None
    missing_bytes: int
    resumed_from: int


def _identity(stream: DecryptedStream) -> dict:
    """What a ``.part`` is the plaintext of: the evidence, the volume, and the key. The key enters
    only as a short salted digest, which tells two keys apart but gives nothing away about
    either (the sidecar is a plain file beside the output)."""
    v = stream.volume
    key_check = hashlib.sha256(b"bitlocker-tools resume\0" + stream.unlocked.sector_key).hexdigest()[:16]
    return {
        "source": os.path.abspath(v.fh.name) if hasattr(v.fh, "name") and isinstance(v.fh.name, str) else v.name,
        "volume_offset": v.offset,
        "size": stream.size,
        "volume_guid": v.metadata.volume_guid,
        "method": int(stream.unlocked.method),
        "key_check": key_check,
    }


def parallel_chunks(stream: DecryptedStream, start: int, workers: int | None = None) -> Iterator[memoryview]:
    """The plaintext from ``start`` to the end in CHUNK pieces, in order, decrypted on all cores.

    Both cores release the GIL while decrypting (the C extension explicitly; pycryptodome and
    numpy inside their calls), so threads suffice. ``2 * workers`` buffers are allocated once
    and reused, which bounds memory whatever the volume size and spares the page faults of a
    fresh 4 MiB buffer per chunk. Each piece yielded is valid until the next one is asked for.
    """
    workers = workers or os.cpu_count() or 1
    offsets = iter(range(start, stream.size, CHUNK))
    if workers == 1:
        buf = bytearray(CHUNK)
        for pos in offsets:
            yield memoryview(buf)[: stream.read_into(pos, buf)]
        return
    free = [bytearray(CHUNK) for _ in range(2 * workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()

        def submit() -> None:
            pos = next(offsets, None)
            if pos is not None:
                buf = free.pop()
                pending.append((buf, pool.submit(stream.read_into, pos, buf)))

        for _ in range(len(free)):
            submit()
        while pending:
            buf, job = pending.popleft()
            n = job.result()
            yield memoryview(buf)[:n]
            free.append(buf)  # the consumer is done with it
            submit()


def _copy(stream: DecryptedStream, out: BinaryIO, start: int, digest, progress: Callable[[int], None] | None,
          name: str = "-") -> int:
    pos = start
    for data in parallel_chunks(stream, start):
        if not data:
            break
        try:
            out.write(data)
        except OSError as exc:  # a full disk, a file-size limit: name the file being written
            if exc.filename is None and not isinstance(exc, BrokenPipeError):
                raise OSError(exc.errno, exc.strerror, name) from None
            raise
        digest.update(data)
        pos += len(data)
        if progress:
            progress(len(data))
    return pos


def decrypt_to(stream: DecryptedStream, output: str, resume: bool = False,
               progress: Callable[[int], None] | None = None,
               stdout: BinaryIO | None = None) -> DecryptResult:
    """Write the whole plaintext to ``output`` (``-`` = ``stdout``)."""
    digest = hashlib.sha256()
    if output == "-":
        if resume:
            raise UsageError("--resume needs an output file, not stdout")
        assert stdout is not None
        written = _copy(stream, stdout, 0, digest, progress)
        stdout.flush()
        fs = identify_filesystem(stream.read_at(0, 512))
        return DecryptResult("-", written, digest.hexdigest(), fs, stream.missing_bytes, 0)

    final = Path(output)
    part = final.with_name(final.name + ".part")
    sidecar = final.with_name(final.name + ".part.json")
    identity = _identity(stream)
    start = 0
    if final.exists():  # never overwrite, --resume or not: it continues OUT.part only
        raise UsageError(f"{final}: exists; remove it or choose another output")
    if resume and part.exists():
        try:
            saved = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            raise BadInputError(f"{part}: cannot resume, {sidecar.name} is missing or unreadable") from None
        if saved != identity:
            raise BadInputError(f"{part}: cannot resume, it was started for a different volume or key")
        start = part.stat().st_size // CHUNK * CHUNK  # the last chunk may be torn: redo it
        with part.open("rb") as fh:
            remaining = start
            while remaining:
                block = fh.read(min(CHUNK, remaining))
                digest.update(block)
                remaining -= len(block)
        if progress and start:
            progress(start)
    sidecar.write_text(json.dumps(identity))
    mode = "r+b" if start else "wb"
    with part.open(mode) as out:
        out.seek(start)
        out.truncate()
        written = _copy(stream, out, start, digest, progress, str(part))
        out.flush()
        os.fsync(out.fileno())
    part.replace(final)
    sidecar.unlink(missing_ok=True)
    fs = identify_filesystem(stream.read_at(0, 512))
    return DecryptResult(str(final), written, digest.hexdigest(), fs, stream.missing_bytes, start)
