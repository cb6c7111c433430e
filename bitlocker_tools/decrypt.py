"""Writing the decrypted volume out: to a file (atomically, resumable) or to a stream, at the speed
of the slowest stage rather than of their sum.

A file is written as ``OUT.part`` and renamed when complete, so a half-written image never
carries the final name. ``--resume`` continues a ``.part`` left by an interrupted run: a sidecar
``OUT.part.json`` records what is being decrypted (source, offset, size, method, a digest of the
key), and a resume is refused if it does not match. The digests cover the whole output, also on
resume.

The stages overlap: chunks are decrypted on all cores (in order), each digest (SHA-256 by default;
also SHA-1 and MD5, as E01 practice records them) runs on a thread of its own, and the writes run
on another, with a bounded pool of reusable chunk buffers between them, so one run costs about
its slowest stage. hashlib and the file writes release the GIL, so threads suffice. ``sparse``
turns chunks of zeros into holes (seeks) instead of writes, hashed as the zeros they read as.

A file's pages are handed to the disk as they are written (Linux ``sync_file_range``), not all at
the closing ``fsync``: the final flush then costs almost nothing, and the writer is not stalled
by the kernel throttling a page cache full of dirty pages (measured: 1 GiB to ext4 in 0.34-0.56 s
instead of 0.66-3.9 s; docs/performance.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import stat
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import BadInputError, UsageError
from .filesystems import identify_filesystem
from .outputs import replace_record, write_new_file
from .stream import DecryptedStream
from .unreadable import UnreadableRange, from_dict, merge

CHUNK = 4 << 20
#: The digests ``--hash`` offers, by their hashlib names.
HASHES = ("sha256", "sha1", "md5")
_ZERO = bytes(CHUNK)
#: ``--sparse`` looks for zeros in pieces this large (a multiple of every file system's block).
SPARSE_BLOCK = 64 << 10
_ZERO_BLOCK = bytes(SPARSE_BLOCK)
#: Linux's F_SETPIPE_SZ: a larger pipe buffer, so the reader and the writer of a pipe run apart.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20
#: Linux's SYNC_FILE_RANGE_WRITE: start writing these pages out, without waiting for them.
_SYNC_FILE_RANGE_WRITE = 2


@dataclass
class DecryptResult:
    output: str
    bytes_written: int
    filesystem: str | None
    missing_bytes: int
    resumed_from: int
    hashes: dict[str, str] = field(default_factory=dict)  # every digest asked for
    sparse_bytes: int = 0  # bytes left as holes (--sparse)
    #: ranges of the evidence that could not be read: their plaintext is written as zeros
    unreadable: list[UnreadableRange] = field(default_factory=list)
    #: the sidecar listing them beside the output (``OUT.badranges.json``; None: none written)
    badranges_file: str | None = None

    @property
    def sha256(self) -> str | None:
        """The output's SHA-256 (None with ``--hash none``, or when only other digests were asked for)."""
        return self.hashes.get("sha256")

    @property
    def complete(self) -> bool:
        """Every sector of the evidence the plaintext comes from was read."""
        return not self.unreadable


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


class _Pipeline:
    """Decrypt → (digests, write), each stage on its own threads, in order, with bounded buffers.

    A buffer goes back to the pool when the writer and every digest are done with it; so at most
    ``pool`` chunks are in flight whatever the volume size, and memory stays flat.
    """

    def __init__(self, stream: DecryptedStream, out: BinaryIO | None, fd: int | None, digests: list,
                 sparse: bool, name: str, workers: int | None = None,
                 on_unreadable: Callable[[list[UnreadableRange]], None] | None = None,
                 unreadable: list[UnreadableRange] | None = None):
        self.stream = stream
        #: given every range found so far (merged) each time a chunk adds some, before that chunk
        #: is written, so that a record of them is never behind the output it describes
        self.on_unreadable = on_unreadable
        #: the unreadable ranges, merged; a resumed run starts from those its predecessor kept
        self.unreadable: list[UnreadableRange] = list(unreadable or [])
        self.out, self.fd = out, fd
        self.digests = digests
        self.sparse = sparse
        self.name = name
        self.workers = workers or os.cpu_count() or 1
        self.pool: queue.Queue[bytearray] = queue.Queue()
        for _ in range(2 * self.workers + 4):
            self.pool.put(bytearray(CHUNK))
        self.error: BaseException | None = None
        self.holes = 0
        self.done = 0  # bytes written (or left as holes), in order
        self.done_lock = threading.Lock()
        self.writeback = _writeback(out) if out is not None and fd is None else None

    # -- the consumers ---------------------------------------------------------------------------

    def _release(self, item: list) -> None:
        item[2] -= 1
        if item[2] == 0:
            self.pool.put(item[0])

    def _hash(self, digest, q: queue.Queue) -> None:
        try:
            while (item := q.get()) is not None:
                buf, n = item[0], item[1]
                digest.update(memoryview(buf)[:n])
                with self.done_lock:
                    self._release(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = self.error or exc
            self._drain(q)

    def _write(self, q: queue.Queue) -> None:
        try:
            while (item := q.get()) is not None:
                buf, n = item[0], item[1]
                if self.sparse and self.out is not None:
                    self._write_sparse(buf, n)
                else:
                    self._write_all(memoryview(buf)[:n])
                if self.writeback is not None:
                    self.writeback(self.out.tell() - n, n)
                with self.done_lock:
                    self.done += n
                    self._release(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = self.error or exc
            self._drain(q)

    def _write_sparse(self, buf: bytearray, n: int) -> None:
        """Write the pieces that hold data; seek over the runs of zero pieces (holes)."""
        assert self.out is not None
        if n == CHUNK and buf == _ZERO:
            self.out.seek(n, os.SEEK_CUR)
            self.holes += n
            return
        view = memoryview(buf)

        def zero(at: int) -> bool:
            stop = min(at + SPARSE_BLOCK, n)
            return buf[at:stop] == _ZERO_BLOCK[: stop - at]

        pos = 0
        while pos < n:
            end = pos
            while end < n and zero(end):
                end = min(end + SPARSE_BLOCK, n)
            if end > pos:  # a run of zeros
                self.out.seek(end - pos, os.SEEK_CUR)
                self.holes += end - pos
                pos = end
                continue
            while end < n and not zero(end):
                end = min(end + SPARSE_BLOCK, n)
            self._write_all(view[pos:end])
            pos = end

    def _write_all(self, view: memoryview) -> None:
        try:
            if self.fd is not None:  # a pipe or a terminal: straight to the descriptor, no copy
                while view:
                    view = view[os.write(self.fd, view):]
            else:
                assert self.out is not None
                self.out.write(view)
        except OSError as exc:  # a full disk, a file-size limit: name the file being written
            if exc.filename is None and not isinstance(exc, BrokenPipeError):
                raise OSError(exc.errno, exc.strerror, self.name) from None
            raise

    def _drain(self, q: queue.Queue) -> None:
        """After a failure: keep taking items, so the producer never blocks on a full queue."""
        while (item := q.get()) is not None:
            with self.done_lock:
                self._release(item)

    # -- the producer ----------------------------------------------------------------------------

    def run(self, start: int, progress: Callable[[int], None] | None) -> int:
        queues = [queue.Queue() for _ in range(len(self.digests) + 1)]
        threads = [threading.Thread(target=self._hash, args=(d, q), daemon=True)
                   for d, q in zip(self.digests, queues)]
        threads.append(threading.Thread(target=self._write, args=(queues[-1],), daemon=True))
        for t in threads:
            t.start()
        reported = 0
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as decrypting:
                offsets = iter(range(start, self.stream.size, CHUNK))
                pending: deque = deque()

                def submit() -> bool:
                    pos = next(offsets, None)
                    if pos is None:
                        return False
                    buf = self.pool.get()
                    bad: list[UnreadableRange] = []
                    pending.append((buf, bad, decrypting.submit(self.stream.read_into, pos, buf, bad)))
                    return True

                for _ in range(self.workers * 2):
                    if not submit():
                        break
                while pending:
                    buf, bad, job = pending.popleft()
                    n = job.result()
                    if self.error is not None:
                        raise self.error
                    if bad:  # adjacent ranges as one: the record stays as short as the damage
                        self.unreadable = merge(self.unreadable + bad)
                        if self.on_unreadable is not None:
                            self.on_unreadable(self.unreadable)
                    item = [buf, n, len(queues)]
                    for q in queues:
                        q.put(item)
                    reported = self._progress(progress, reported)
                    submit()
        finally:
            for q in queues:
                q.put(None)
            for t in threads:
                t.join()
        if self.error is not None:
            raise self.error
        self._progress(progress, reported)
        return start + self.done

    def _progress(self, progress: Callable[[int], None] | None, reported: int) -> int:
        """Tell ``progress`` of the bytes written since last time (from the main thread, so that
        an exception it raises, an interrupt, stops the run cleanly)."""
        with self.done_lock:
            done = self.done
        if progress and done > reported:
            progress(done - reported)
        return done


def _writeback(out: BinaryIO) -> Callable[[int, int], None] | None:
    """A function that starts the write-out of a file's range now (Linux ``sync_file_range``), or
    None where there is none (Windows, macOS, a C library ctypes cannot load): there the closing
    ``fsync`` does all of it, as before."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
        sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        fd = out.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
    except (AttributeError, ImportError, OSError, ValueError):
        return None

    def start(offset: int, length: int) -> None:
        sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: its failure changes nothing

    return start


def check_hashes(names: Iterable[str]) -> tuple[str, ...]:
    """The digests ``--hash`` asks for, lower case, each once, ``none`` dropped; a name not in
    :data:`HASHES` is a usage error (said before any work, by the CLI)."""
    wanted = tuple(dict.fromkeys(n.lower() for n in names if n.lower() != "none"))
    for n in wanted:
        if n not in HASHES:
            raise UsageError(f"--hash {n}: one of {', '.join(HASHES)} or none")
    return wanted


def _enlarge_pipe(fd: int) -> None:
    """A pipe's buffer as large as the system allows a user (Linux); nothing elsewhere."""
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            import fcntl

            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    except (OSError, ImportError, ValueError):
        pass


def decrypt_to(stream: DecryptedStream, output: str, resume: bool = False,
               progress: Callable[[int], None] | None = None,
               stdout: BinaryIO | None = None, hashes: tuple[str, ...] = ("sha256",),
               sparse: bool = False) -> DecryptResult:
    """Write the whole plaintext to ``output`` (``-`` = ``stdout``), with the ``hashes`` asked for
    (any of :data:`HASHES`; empty for none) and, with ``sparse``, zero chunks left as holes."""
    names = list(check_hashes(hashes))
    digests = [hashlib.new(n) for n in names]
    if output == "-":
        if resume:
            raise UsageError("--resume needs an output file, not stdout")
        if sparse:
            raise UsageError("--sparse needs an output file: a stream has no holes")
        assert stdout is not None
        stdout.flush()
        fd = _stdout_fd(stdout)
        if fd is not None:
            _enlarge_pipe(fd)
        pipeline = _Pipeline(stream, None if fd is not None else stdout, fd, digests, False, "stdout")
        written = pipeline.run(0, progress)
        stdout.flush()
        return _result("-", written, digests, names, stream, 0, 0, pipeline.unreadable)

    final = Path(output)
    part = final.with_name(final.name + ".part")
    sidecar = final.with_name(final.name + ".part.json")
    badranges = final.with_name(final.name + BADRANGES_SUFFIX)
    identity = _identity(stream)
    start = 0
    if resume and final.exists() and sidecar.exists() and not part.exists():
        done = _finished_earlier(stream, final, sidecar, identity, digests, names, progress)
        if done is not None:
            return done
    for existing in (final, badranges):  # never overwrite, --resume or not: it continues OUT.part only
        if existing.exists():
            raise UsageError(f"{existing}: exists; remove it or choose another output")
    kept: list[UnreadableRange] = []  # what a resumed run's predecessor could not read
    if resume and part.exists():
        state = _read_state(sidecar)
        if state is None:
            raise BadInputError(f"{part}: cannot resume, {sidecar.name} is missing or unreadable")
        saved, recorded = state
        if saved != identity:
            raise BadInputError(f"{part}: cannot resume, it was started for a different volume or key")
        start = part.stat().st_size // CHUNK * CHUNK  # the last chunk may be torn: redo it
        # the ranges of the chunks kept; those of the chunks redone are found again
        kept = [r for r in recorded if r.output_offset is not None and r.output_offset + r.length <= start]
        _hash_file(part, start, digests)
        if progress and start:
            progress(start)
    _write_state(sidecar, identity, kept)
    mode = "r+b" if start else "wb"
    with part.open(mode, buffering=0) as out:
        out.seek(start)
        out.truncate()
        pipeline = _Pipeline(stream, out, None, digests, sparse, str(part), unreadable=kept,
                             on_unreadable=lambda found: _write_state(sidecar, identity, found))
        written = pipeline.run(start, progress)
        out.truncate(written)  # a volume that ends in a hole still has its full size
        os.fsync(out.fileno())
    unreadable = pipeline.unreadable
    result = _result(str(final), written, digests, names, stream, start, pipeline.holes, unreadable)
    if unreadable:  # beside the output before the output has its name, so never one without the other
        from .report import badranges_document

        doc = badranges_document(stream, str(final), unreadable, result.hashes)
        result.badranges_file = str(write_new_file(badranges, (json.dumps(doc, indent=2) + "\n").encode(),
                                                   secret=False))
    part.replace(final)
    sidecar.unlink(missing_ok=True)
    return result


#: The sidecar beside an output that could not be read in full: ``OUT.badranges.json``.
BADRANGES_SUFFIX = ".badranges.json"
#: Where a ``.part.json`` keeps the ranges found so far, for ``--resume``.
_UNREADABLE_KEY = "unreadable_ranges"


def _finished_earlier(stream: DecryptedStream, final: Path, sidecar: Path, identity: dict, digests: list,
                      names: list[str], progress: Callable[[int], None] | None) -> DecryptResult | None:
    """A run killed between renaming its finished output and removing ``OUT.part.json`` leaves
    both. ``--resume`` then reads the output back for its digests (as it reads a ``.part`` it
    continues) and removes the job file, instead of refusing an output that is complete; None
    when the job file is not this job's or the output is not the volume's full size."""
    state = _read_state(sidecar)
    if state is None or state[0] != identity or final.stat().st_size != stream.size:
        return None
    recorded = state[1]
    _hash_file(final, stream.size, digests)
    if progress:
        progress(stream.size)
    sidecar.unlink()
    unreadable = recorded  # written merged
    result = _result(str(final), stream.size, digests, names, stream, stream.size, 0, unreadable)
    badranges = final.with_name(final.name + BADRANGES_SUFFIX)
    result.badranges_file = str(badranges) if unreadable and badranges.exists() else None
    return result


def _read_state(sidecar: Path) -> tuple[dict, list[UnreadableRange]] | None:
    """The resume record: what was being decrypted, and the ranges found unreadable so far;
    None when it is missing or not one :func:`_write_state` wrote."""
    try:
        saved = json.loads(sidecar.read_text())
        return saved, [from_dict(r) for r in saved.pop(_UNREADABLE_KEY, [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _hash_file(path: Path, length: int, digests: list) -> None:
    """Feed the first ``length`` bytes of ``path`` (output already written) to ``digests``."""
    with path.open("rb") as fh:
        while length > 0 and (block := fh.read(min(CHUNK, length))):
            for d in digests:
                d.update(block)
            length -= len(block)


def _write_state(sidecar: Path, identity: dict, unreadable: list[UnreadableRange]) -> None:
    """The resume record: what is being decrypted, and what could not be read so far."""
    state = dict(identity)
    if unreadable:
        state[_UNREADABLE_KEY] = [r.as_dict() for r in unreadable]
    replace_record(sidecar, json.dumps(state))


def _stdout_fd(stdout: BinaryIO) -> int | None:
    """The descriptor to write the plaintext to directly, when stdout is the process's own."""
    try:
        fd = stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stdout is getattr(sys.stdout, "buffer", None) else None


def _result(output: str, written: int, digests: list, names: list[str], stream: DecryptedStream, start: int,
            holes: int, unreadable: list[UnreadableRange] | None = None) -> DecryptResult:
    values = {n: d.hexdigest() for n, d in zip(names, digests)}
    first = bytearray(max(512, stream.sector_size))
    n = stream.read_into(0, first, [])  # as written: an unreadable boot sector reads as zeros
    fs = identify_filesystem(bytes(first[: min(n, 512)]))
    return DecryptResult(output, written, fs, stream.missing_bytes, start, values, holes,
                         list(unreadable or []))
