"""The decrypted volume as one read-only file in a FUSE mount, for the tools that want a path:
ntfs-3g, The Sleuth Kit, ewfacquire, a loop device, a hex editor.

The mount holds a single regular file (``bitlocker.img`` unless named otherwise) whose bytes are
:class:`~bitlocker_tools.stream.DecryptedStream`'s; nothing is ever written (the mount is ``ro``,
the file ``0444``, and the filesystem object has no write operation at all), and the evidence stays
open read-only as the stream opened it.

FUSE (libfuse through ``mfusepy``, a ctypes binding imported only here and only when mounting)
calls the read operation on several threads at once, as the kernel's read-ahead keeps several
requests in flight. The stream's reads are positional and thread-safe (the evidence is read under
the stream's lock, decryption runs outside it with the GIL released), so every thread reads the
same stream; a large request is further cut into pieces decrypted on all cores.

Serving runs in the foreground (until Ctrl-C, SIGTERM or ``fusermount3 -u``, each of which makes
libfuse leave its loop and unmount) or in a child process that :func:`mount_in_background` forks
once the volume is unlocked, which returns when the file is visible in the mount. libfuse's own
messages (a refused mount) are captured until the mount is ready, so a failure is one line.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import stat
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from ctypes.util import find_library
from dataclasses import dataclass
from typing import Any, Callable

from .errors import BitLockerError, UnsupportedError, UsageError
from .filesystems import identify_filesystem
from .stream import DecryptedStream

#: The file's name inside the mount unless ``--name`` says otherwise.
DEFAULT_NAME = "bitlocker.img"
#: A read at least twice this large is decrypted in pieces on several threads; below it one
#: thread's run of the core is already shorter than handing work to another thread.
PIECE = 64 << 10
#: The read-ahead asked of the kernel for the mount: libfuse 3's largest request (256 pages).
READAHEAD_KB = 1024
#: How long :func:`mount_in_background` waits for the child to say the mount is ready.
READY_TIMEOUT = 60.0
_INSTALL_HINT = "install fuse3 (Debian/Ubuntu: apt install fuse3; Fedora: dnf install fuse3)"
_READY = b"\0bitlocker-tools mount ready\n"


@dataclass(frozen=True)
class Mounted:
    """A mount that is serving: where it is, the file in it, and who serves it."""

    mountpoint: str
    path: str  # the file inside the mount
    size: int
    foreground: bool
    pid: int  # the process serving the mount (this one in the foreground)
    filesystem: str | None  # what the plaintext's boot sector says it is (NTFS, FAT32, ...)


# --- checks before anything is unlocked ------------------------------------------------------------


def check_mountpoint(path: str) -> str:
    """The absolute mount point, which must be an existing, empty directory that is not itself a
    mount point (a mount over files would hide them; over another mount, stack on it)."""
    where = os.path.abspath(path)
    if not os.path.lexists(where):
        raise UsageError(f"{path}: mount point does not exist; create an empty directory first")
    if not os.path.isdir(where):
        raise UsageError(f"{path}: mount point is not a directory")
    if os.path.ismount(where) or _in_mount_table(where):
        raise UsageError(f"{path}: something is already mounted there")
    try:
        if os.listdir(where):
            raise UsageError(f"{path}: mount point is not empty; mount on an empty directory")
    except OSError as exc:
        raise UsageError(f"{path}: mount point cannot be read: {exc.strerror}") from None
    return where


def _in_mount_table(where: str) -> bool:
    """Whether ``where`` is a mount point per the kernel (also a FUSE mount whose server died,
    which ``os.path.ismount`` cannot stat)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            points = [line.split()[4] for line in fh if len(line.split()) > 4]
    except OSError:
        return False
    unescape = {"\\040": " ", "\\011": "\t", "\\012": "\n", "\\134": "\\"}
    for p in points:
        for code, char in unescape.items():
            p = p.replace(code, char)
        if p == where:
            return True
    return False


def check_name(name: str) -> str:
    """``--name``: one path component, so the file is the mount's only entry."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UsageError(f"--name {name!r}: give a file name (no '/'), e.g. {DEFAULT_NAME}")
    return name


def load_fuse() -> Any:
    """The ``mfusepy`` module over libfuse 3 (libfuse 2 where only it is installed), or
    :class:`UnsupportedError` (exit 3) saying what is missing and what to install.

    mfusepy picks ``libfuse.so.2`` before ``libfuse3`` when both are present (Debian keeps
    libfuse2 for older tools); its library choice is read from the environment once, at import,
    so the variable is set for the import only and the environment is left as it was.
    """
    if sys.platform.startswith("linux") and not os.path.exists("/dev/fuse"):
        raise UnsupportedError(f"no FUSE on this system (/dev/fuse is missing): load the fuse module "
                               f"(modprobe fuse) or {_INSTALL_HINT}")
    if "mfusepy" in sys.modules:
        return sys.modules["mfusepy"]
    chosen = None
    if "FUSE_LIBRARY_PATH" not in os.environ and "FUSE_LIBRARY_NAME" not in os.environ:
        chosen = find_library("fuse3")
        if chosen:
            os.environ["FUSE_LIBRARY_PATH"] = chosen
    try:
        import mfusepy
    except ImportError:
        raise UnsupportedError("mount needs the Python package mfusepy (pip install mfusepy) and libfuse; "
                               + _INSTALL_HINT) from None
    except (OSError, AttributeError) as exc:  # no libfuse, or one too old to use
        raise UnsupportedError(f"no usable libfuse on this system ({exc}): {_INSTALL_HINT}") from None
    finally:
        if chosen:
            os.environ.pop("FUSE_LIBRARY_PATH", None)
    return mfusepy


# --- the filesystem ---------------------------------------------------------------------------------


class VolumeFile:
    """The FUSE operations of a directory holding one file, the plaintext of ``stream``.

    Duck-typed for ``mfusepy.FUSE`` (which looks each operation up by name), so this module imports
    without mfusepy. Operations that are absent (write, truncate, mknod, ...) are never given to
    libfuse, and the read-only mount refuses them in the kernel before they could be asked.
    """

    use_ns = True  # mfusepy: timestamps in nanoseconds

    def __init__(self, stream: DecryptedStream, name: str = DEFAULT_NAME):
        self.stream = stream
        self.name = check_name(name)
        self.size = stream.size
        self.workers = os.cpu_count() or 1
        #: called once, on a thread of its own, when the file is visible in the mount
        self.on_ready: Callable[[], None] | None = None
        #: read now, before any fork: a child and its parent share the evidence's file offset,
        #: so once a background server runs, only it may read the evidence
        self.filesystem = identify_filesystem(bytes(stream.read_at(0, 512)))
        self.mountpoint: str | None = None
        self.ready = threading.Event()
        self.failure: str | None = None  # why a mount that came up was given up
        self._before_ready: Callable[[], None] | None = None  # serve(): stop capturing libfuse's stderr
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        now = time.time_ns()
        self._uid, self._gid, self._time = os.getuid(), os.getgid(), now

    # --- metadata -----------------------------------------------------------------------------------

    def _stat(self, mode: int, nlink: int, size: int) -> dict[str, int]:
        return {"st_mode": mode, "st_nlink": nlink, "st_size": size, "st_uid": self._uid, "st_gid": self._gid,
                "st_atime": self._time, "st_mtime": self._time, "st_ctime": self._time,
                "st_blocks": -(-size // 512), "st_blksize": 1 << 20, "st_ino": 2 if mode & stat.S_IFREG else 1}

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        if path == "/":
            return self._stat(stat.S_IFDIR | 0o555, 2, 0)
        if path == "/" + self.name:
            return self._stat(stat.S_IFREG | 0o444, 1, self.size)
        raise _fuse_error(errno.ENOENT)

    def readdir(self, path: str, fh: Any) -> list[str]:
        if path != "/":
            raise _fuse_error(errno.ENOTDIR)
        return [".", "..", self.name]

    def open(self, path: str, flags: int) -> int:
        if path != "/" + self.name:
            raise _fuse_error(errno.ENOENT)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise _fuse_error(errno.EROFS)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 1 << 20, "f_frsize": 512, "f_blocks": -(-self.size // 512), "f_bfree": 0,
                "f_bavail": 0, "f_files": 2, "f_ffree": 0, "f_favail": 0, "f_namemax": 255}

    # --- data ---------------------------------------------------------------------------------------

    def read(self, path: str, size: int, offset: int, fh: Any) -> Any:
        """What mfusepy copies into the kernel's buffer: a ctypes view of the decrypted bytes
        (``ctypes.memmove`` takes bytes or ctypes objects, and a view costs no copy)."""
        if path != "/" + self.name:
            raise _fuse_error(errno.ENOENT)
        buf, at, n = self.read_range(offset, size)
        return (ctypes.c_char * n).from_buffer(buf, at) if n else b""

    def read_range(self, offset: int, size: int) -> tuple[bytearray, int, int]:
        """``size`` bytes of plaintext at ``offset`` (fewer at the end), as (buffer, start in it,
        length): the sectors they touch are decrypted into one buffer, in pieces on several
        threads when the request is large."""
        end = min(offset + size, self.size)
        if end <= offset:
            return bytearray(), 0, 0
        ss = self.stream.sector_size
        start = offset // ss * ss
        stop = min(-(-end // ss) * ss, -(-self.size // ss) * ss)
        buf = self._buffer(stop - start)
        view = memoryview(buf)[: stop - start]
        n_pieces = min(self.workers, (stop - start) // PIECE)
        if n_pieces < 2:
            self.stream.read_into(start, view)
        else:  # the calling thread decrypts the first piece itself, the pool the others
            step = -(-(stop - start) // n_pieces // ss) * ss
            pieces = [(at, view[at - start : min(at + step, stop) - start]) for at in range(start, stop, step)]
            pool = self._executor()
            jobs = [pool.submit(self.stream.read_into, at, piece) for at, piece in pieces[1:]]
            self.stream.read_into(*pieces[0])
            for job in jobs:
                job.result()
        return buf, offset - start, end - offset

    def _buffer(self, size: int) -> bytearray:
        """This thread's buffer, at least ``size`` bytes. mfusepy copies a read's result into the
        kernel's buffer before the thread takes its next request, so one buffer per thread is
        never shared, and reusing it saves a fresh 1 MiB allocation (256 page faults) per read."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < size:
            buf = self._local.buf = bytearray(max(size, 1 << 20))
        return buf

    def _executor(self) -> ThreadPoolExecutor:
        # created on first use, in a FUSE worker thread: its threads inherit that thread's blocked
        # signals, so SIGINT/SIGTERM keep reaching the thread that runs libfuse's loop
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bitlocker-mount")
            return self._pool

    # --- life cycle ---------------------------------------------------------------------------------

    def init(self, path: str) -> None:
        """The kernel has sent INIT: the mount exists. Its answer follows this return, so the
        file's visibility is checked from another thread, which then reports readiness."""
        threading.Thread(target=self._confirm, name="bitlocker-mount-ready", daemon=True).start()

    def _confirm(self) -> None:
        assert self.mountpoint is not None
        path = os.path.join(self.mountpoint, self.name)
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size != self.size:
                raise OSError(errno.EIO, f"the mount shows {path} with size {st.st_size}, not {self.size}")
        except OSError as exc:
            self.failure = f"{path}: not visible in the new mount: {exc.strerror or exc}"
            os.kill(os.getpid(), signal.SIGTERM)  # libfuse's handler: leave the loop and unmount
            return
        _raise_readahead(self.mountpoint)
        if self._before_ready is not None:
            self._before_ready()
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def destroy(self, path: str) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def _raise_readahead(mountpoint: str) -> None:
    """Let the kernel read ahead :data:`READAHEAD_KB` on this mount instead of its default 128 KiB.

    Sequential readers (``dd``, ``ewfacquire``, a hash) are then served in 1 MiB requests, the
    largest libfuse 3 takes, instead of 128 KiB ones: FUSE's cost per request (two context
    switches, a ctypes call) is paid an eighth as often and each request has enough sectors for
    several threads, about doubling the throughput (docs/cli.md, mount). The setting belongs to
    this mount's own backing device and goes with it; only root may write it, so elsewhere the
    default stays, which is only slower.
    """
    try:
        dev = os.stat(mountpoint).st_dev
        knob = f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb"
        with open(knob, "r+") as fh:
            if int(fh.read().strip() or 0) < READAHEAD_KB:
                fh.seek(0)
                fh.write(str(READAHEAD_KB))
    except (OSError, ValueError):
        pass


def _fuse_error(code: int) -> OSError:
    # mfusepy turns any OSError with an errno into -errno for the kernel (its FuseOSError is one)
    return OSError(code, os.strerror(code))


# --- serving ----------------------------------------------------------------------------------------


def mount_options() -> dict[str, Any]:
    """The FUSE options: read-only; in the foreground of the process that calls (a background
    server is a child forked for it); the plaintext never changes while mounted, so the kernel
    may keep its pages and attributes (``kernel_cache``, long timeouts)."""
    return {
        "foreground": True,
        "ro": True,
        "fsname": "bitlocker-tools",
        "subtype": "bitlocker",
        "kernel_cache": True,
        "attr_timeout": 3600,
        "entry_timeout": 3600,
    }


class _Stderr:
    """File descriptor 2 into a scratch file from ``with`` until :meth:`release`: libfuse writes
    why a mount failed there (as several lines, amid notices), and the caller makes one line of it."""

    def __enter__(self) -> _Stderr:
        self._file = tempfile.TemporaryFile()
        sys.stderr.flush()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self._lock = threading.Lock()
        self._live = True
        self.text = ""
        return self

    def release(self) -> None:
        with self._lock:
            if self._live:
                self._live = False
                os.dup2(self._saved, 2)

    def __exit__(self, *exc: object) -> None:
        self.release()
        os.close(self._saved)
        self._file.seek(0)
        lines = [line.strip() for line in self._file.read().decode(errors="replace").splitlines() if line.strip()]
        self._file.close()
        said = [line.removeprefix("fuse: ") for line in lines if line.startswith("fuse:")]
        self.text = "; ".join(said or lines)


def serve(fs: VolumeFile, mountpoint: str) -> None:
    """Mount ``fs`` at ``mountpoint`` and serve it in this process until it is unmounted
    (``fusermount3 -u``) or a SIGINT/SIGTERM/SIGHUP makes libfuse unmount it; then return.

    libfuse installs its handlers for those signals while it serves (mfusepy hands it SIGINT), and
    its worker threads block them, so Ctrl-C reaches the loop, which unmounts before returning.
    A mount that does not come up raises :class:`UnsupportedError` (exit 3) with libfuse's reason.
    """
    fuse = load_fuse()
    mountpoint = os.path.abspath(mountpoint)
    fs.mountpoint = mountpoint
    error: RuntimeError | None = None
    with _Stderr() as libfuse_says:
        fs._before_ready = libfuse_says.release
        try:
            fuse.FUSE(fs, mountpoint, **mount_options())
        except RuntimeError as exc:  # mfusepy: fuse_main's non-zero return
            error = exc
        finally:
            fs._before_ready = None
    if not fs.ready.is_set():
        why = fs.failure or libfuse_says.text or (f"libfuse returned {error}" if error else "unmounted before ready")
        raise UnsupportedError(f"{mountpoint}: cannot mount: {why}")


def mount_in_background(fs: VolumeFile, mountpoint: str) -> int:
    """Fork a child that serves ``fs`` at ``mountpoint`` (in a session of its own, detached from
    the terminal, its output discarded once the mount is ready) and return its pid once the file
    is visible in the mount. A child that fails tells why through a pipe; that becomes the error.

    Call this before any thread is started (a fork copies only the calling thread).
    """
    load_fuse()  # its failures belong to this process's error, not the child's
    mountpoint = os.path.abspath(mountpoint)  # the child leaves the working directory
    fs.mountpoint = mountpoint
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            os.close(read_end)
            os.setsid()
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(write_end, 2)  # libfuse's messages and ours reach the parent until ready

            also = fs.on_ready

            def ready() -> None:
                os.write(2, _READY)
                os.dup2(null, 2)  # the parent stops listening: later messages go nowhere
                if also is not None:
                    also()

            fs.on_ready = ready
            os.close(write_end)
            serve(fs, mountpoint)
        except BitLockerError as exc:
            os.write(2, f"{exc}\n".encode(errors="replace"))
            code = exc.exit_code
        except BaseException as exc:  # noqa: BLE001 - the parent reports it; a child must not unwind
            os.write(2, f"internal error in the mount's server: {type(exc).__name__}: {exc}\n".encode(errors="replace"))
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    said = b""
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while _READY not in said:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                raise UnsupportedError(f"{mountpoint}: the mount was not ready within {READY_TIMEOUT:.0f} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            said += chunk
    finally:
        os.close(read_end)
    if _READY not in said:
        _, status = os.waitpid(pid, 0)
        message = " ".join(line.strip() for line in said.decode(errors="replace").splitlines() if line.strip())
        code = os.waitstatus_to_exitcode(status)
        error = BitLockerError(message or f"{mountpoint}: the mount's server exited ({code}) before it was ready")
        error.exit_code = code if code > 0 else 3
        raise error
    return pid  # the child said ready once its _confirm saw the file, at its size, in the mount


def describe(fs: VolumeFile, foreground: bool, pid: int) -> Mounted:
    """What a mount serves, for the report (it reads nothing from the evidence)."""
    assert fs.mountpoint is not None
    return Mounted(fs.mountpoint, os.path.join(fs.mountpoint, fs.name), fs.size, foreground, pid, fs.filesystem)
