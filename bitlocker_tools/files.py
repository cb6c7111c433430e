"""The files of a decrypted volume: the filesystem inside, read through :mod:`dissect.ntfs` and
:mod:`dissect.fat`, for ``ls`` and ``extract``.

Only the decrypted stream is read, and nothing is ever written: the examiner gets a file's
bytes and a listing without a decrypted image on disk or a mount. Which reader opens the volume
is decided by its boot sector (:func:`.filesystems.identify_filesystem`), so a volume that is not
NTFS, FAT12/16/32 or exFAT is refused by name instead of failing inside a parser.

Paths are given from the root with ``/`` or ``\\`` and matched without regard to case, as
Windows matches them on these filesystems. Each :class:`FileEntry` carries the canonical
spelling the filesystem stores, so a listing shows names as Windows does.

Timestamps: NTFS stores UTC (``$STANDARD_INFORMATION``, what Explorer shows); exFAT stores
local time with its offset from UTC, converted to UTC here when the offset is recorded; FAT
stores local time with no zone at all, so its times are naive (ISO 8601 without ``Z``) and FAT's
last-access time is a date. A time the filesystem does not record (zero) is ``None``.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Union

from construct import ConstructError

from .errors import BadInputError, BitLockerError, NotFoundError, UnsupportedError, UsageError
from .filesystems import identify_filesystem
from .format.boot_sector import BOOT_SECTOR_SIZE, NtfsBootSector
from .sources import read_at

if TYPE_CHECKING:
    from .stream import DecryptedStream

#: What ``ls`` and ``extract`` read (``identify_filesystem``'s names).
SUPPORTED = ("NTFS", "FAT12", "FAT16", "FAT32", "exFAT")

Timestamp = Union[datetime, date, None]

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
#: The namespace of a $FILE_NAME that holds only the DOS 8.3 alias of a long name.
_FILE_NAME_DOS = 2


@dataclass(frozen=True)
class FileEntry:
    """One file or directory as ``ls`` lists it.

    ``path`` is absolute, ``/``-separated, in the filesystem's own spelling. ``size`` is the
    file's data length in bytes (its unnamed ``$DATA`` stream on NTFS) and ``None`` for a
    directory. ``mft_record`` is the NTFS file record number, ``None`` elsewhere.
    """

    name: str
    path: str
    is_dir: bool
    size: int | None
    created: Timestamp
    modified: Timestamp
    accessed: Timestamp
    mft_record: int | None = None

    @property
    def type(self) -> str:
        return "directory" if self.is_dir else "file"


def split_path(path: str) -> list[str]:
    """The components of a path typed with ``/`` or ``\\`` (``.`` dropped, ``..`` resolved)."""
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


# --- the readers ------------------------------------------------------------------------------------
# Each adapts one dissect filesystem to the same five questions; a node is whatever that reader
# needs to answer them, paired with the name it was reached by (an NTFS record has one name per
# hard link, so the name belongs to the directory entry, not to the record).


class _Ntfs:
    name = "NTFS"

    def __init__(self, fh: BinaryIO):
        from dissect.ntfs import NTFS

        self.fs = NTFS(fh)

    def root(self) -> Any:
        return self.fs.mft.root

    def lookup(self, directory: Any, name: str) -> tuple[str, Any] | None:
        from dissect.ntfs.exceptions import FileNotFoundError as NtfsNotFound

        try:  # the $I30 index is collated upper-case: its search is the case-insensitive one
            entry = directory.index("$I30").search(name)
        except (KeyError, NtfsNotFound):
            return None
        record = entry.dereference()
        if entry.attribute.flags == _FILE_NAME_DOS:  # an 8.3 alias typed: show the name it stands for
            from dissect.ntfs.c_ntfs import ATTRIBUTE_TYPE_CODE
            from dissect.ntfs.util import segment_reference

            for fn in record.attributes[ATTRIBUTE_TYPE_CODE.FILE_NAME]:
                parent = segment_reference(fn.attribute.attr.ParentDirectory)
                if fn.flags != _FILE_NAME_DOS and parent == directory.segment:
                    return fn.file_name, record
        return entry.attribute.file_name, record

    def children(self, directory: Any) -> Iterator[tuple[str, Any]]:
        for entry in directory.iterdir(ignore_dos=True):
            name = entry.attribute.file_name
            if name == "." and directory.segment == self.root().segment:
                continue  # the root lists itself
            yield name, entry.dereference()

    def is_dir(self, node: Any) -> bool:
        return node.is_dir()

    def key(self, node: Any) -> Any:
        return node.segment

    def entry(self, name: str, node: Any, path: str) -> FileEntry:
        from dissect.ntfs.c_ntfs import ATTRIBUTE_TYPE_CODE

        info = node.attributes[ATTRIBUTE_TYPE_CODE.STANDARD_INFORMATION]
        si = info[0].attribute.attr if info else None  # the raw fields: FILETIMEs, 100 ns since 1601 UTC
        is_dir = node.is_dir()
        size = None if is_dir else (node.size() if node.has_stream("") else 0)
        return FileEntry(name=name, path=path, is_dir=is_dir, size=size,
                         created=_filetime(si.CreationTime) if si else None,
                         modified=_filetime(si.LastModificationTime) if si else None,
                         accessed=_filetime(si.LastAccessTime) if si else None,
                         mft_record=node.segment)

    def open(self, node: Any) -> BinaryIO:
        return node.open() if node.has_stream("") else io.BytesIO(b"")


class _Fat:
    def __init__(self, fh: BinaryIO):
        from dissect.fat.fat import FATFS

        self.fs = FATFS(fh)
        self.name = self.fs.type.name  # what the cluster count makes it, which decides the FAT's width

    def root(self) -> Any:
        return self.fs.root

    def lookup(self, directory: Any, name: str) -> tuple[str, Any] | None:
        wanted = name.upper()
        for child_name, child in self.children(directory):
            if wanted in (child_name.upper(), child.short_name.upper()):  # the long or the 8.3 name
                return child_name, child
        return None

    def children(self, directory: Any) -> Iterator[tuple[str, Any]]:
        for child in directory.iterdir():
            if child.is_volume_id() or child.name in (".", ".."):
                continue
            yield (child.name if child.ldirents else _short_name_case(child)), child

    def is_dir(self, node: Any) -> bool:
        return node.is_directory()

    def key(self, node: Any) -> Any:
        return node.cluster

    def entry(self, name: str, node: Any, path: str) -> FileEntry:
        if node is self.fs.root:
            return FileEntry(name="/", path="/", is_dir=True, size=None, created=None, modified=None, accessed=None)
        d = node.dirent
        is_dir = node.is_directory()
        return FileEntry(name=name, path=path, is_dir=is_dir, size=None if is_dir else d.DIR_FileSize,
                         created=_dos_time(d.DIR_CrtDate, d.DIR_CrtTime, d.DIR_CrtTimeTenth),
                         modified=_dos_time(d.DIR_WrtDate, d.DIR_WrtTime),
                         accessed=_dos_date(d.DIR_LstAccDate))

    def open(self, node: Any) -> BinaryIO:
        return node.open()


def _short_name_case(child: Any) -> str:
    """An 8.3 name without a long name, in the case Windows shows: bits 3 and 4 of the entry's
    NT byte say that the base name and the extension were typed in lower case (Windows stores
    ``readme.txt`` so, with no long-name entries)."""
    flags = child.dirent.DIR_NTRes
    base, dot, ext = child.short_name.partition(".")
    return (base.lower() if flags & 0x08 else base) + dot + (ext.lower() if flags & 0x10 else ext)


class _Exfat:
    name = "exFAT"

    def __init__(self, fh: BinaryIO):
        from dissect.fat.exfat import ExFAT

        self.fs = ExFAT(fh)

    def root(self) -> Any:
        return self.fs.files["/"]

    def lookup(self, directory: Any, name: str) -> tuple[str, Any] | None:
        wanted = name.upper()
        return next(((n, c) for n, c in self.children(directory) if n.upper() == wanted), None)

    def children(self, directory: Any) -> Iterator[tuple[str, Any]]:
        yield from (directory[1] or {}).items()

    def is_dir(self, node: Any) -> bool:
        return bool(node[0].metadata.attributes.directory)

    def key(self, node: Any) -> Any:
        return node[0].stream.location

    def entry(self, name: str, node: Any, path: str) -> FileEntry:
        if node is self.root():  # the reader builds the root: it has no times of its own
            return FileEntry(name="/", path="/", is_dir=True, size=None, created=None, modified=None, accessed=None)
        m, stream = node[0].metadata, node[0].stream
        is_dir = self.is_dir(node)
        return FileEntry(name=name, path=path, is_dir=is_dir, size=None if is_dir else stream.data_length,
                         created=_exfat_time(m.create_time, m.create_offset, m.create_timezone),
                         modified=_exfat_time(m.modified_time, m.modified_offset, m.modified_timezone),
                         accessed=_exfat_time(m.access_time, 0, m.access_timezone))

    def open(self, node: Any) -> BinaryIO:
        from dissect.util.stream import RunlistStream

        stream = node[0].stream
        size = stream.data_length
        if size == 0 or stream.location < 2:
            return io.BytesIO(b"")
        contiguous = bool(stream.flags.not_fragmented)  # then the FAT holds no chain for it
        runs = self.fs.runlist(stream.location, contiguous, size if contiguous else None)
        data = RunlistStream(self.fs.filesystem, runs, size, self.fs.sector_size)  # runs count sectors
        valid = stream.valid_data_length
        return _ZeroTail(data, valid) if valid < size else data


class _ZeroTail(io.RawIOBase):
    """An exFAT file whose valid data length is below its size (space Windows allocated ahead):
    the bytes past it read as zeros, whatever the clusters hold."""

    def __init__(self, fh: BinaryIO, valid: int):
        super().__init__()
        self.fh, self.valid, self.pos = fh, valid, 0
        self.size = fh.seek(0, io.SEEK_END)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = min(len(buf), max(0, self.size - self.pos))
        keep = max(0, min(n, self.valid - self.pos))
        if keep:
            self.fh.seek(self.pos)
            buf[:keep] = self.fh.read(keep)
        buf[keep:n] = bytes(n - keep)
        self.pos += n
        return n


_READERS = {"NTFS": _Ntfs, "FAT12": _Fat, "FAT16": _Fat, "FAT32": _Fat, "exFAT": _Exfat}


# --- times ----------------------------------------------------------------------------------------


def _filetime(value: int) -> datetime | None:
    if not value:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def _dos_fields(day: int, clock: int) -> tuple[int, int, int, int, int, int]:
    return (1980 + (day >> 9), day >> 5 & 0xF, day & 0x1F, clock >> 11, clock >> 5 & 0x3F, (clock & 0x1F) * 2)


def _dos_time(day: int, clock: int, hundredths: int = 0) -> datetime | None:
    """A FAT date and time: local time, no zone (``hundredths`` 0-199 adds up to 1.99 s)."""
    if not day:
        return None
    try:
        return datetime(*_dos_fields(day, clock)) + timedelta(milliseconds=10 * hundredths)
    except ValueError:  # a field out of range: not a time a formatter wrote
        return None


def _dos_date(day: int) -> date | None:
    if not day:
        return None
    try:
        return date(*_dos_fields(day, 0)[:3])
    except ValueError:
        return None


def _exfat_time(stamp: int, hundredths: int, zone: int) -> datetime | None:
    """An exFAT timestamp: a DOS date and time (the date in the high half), local; when bit 7 of
    the zone byte is set, its low 7 bits are the signed offset from UTC in 15-minute steps."""
    local = _dos_time(stamp >> 16, stamp & 0xFFFF, hundredths)
    if local is None or not zone & 0x80:
        return local
    steps = zone & 0x7F
    steps = steps - 0x80 if steps & 0x40 else steps
    return (local - timedelta(minutes=15 * steps)).replace(tzinfo=timezone.utc)


# --- the view -------------------------------------------------------------------------------------

def _parse_errors() -> tuple[type[BaseException], ...]:
    """What the dissect readers raise on a structure they cannot parse (imported when needed)."""
    from dissect.fat.exceptions import Error as FatError
    from dissect.ntfs.exceptions import Error as NtfsError

    return (FatError, NtfsError, EOFError, struct.error, OverflowError, IndexError, KeyError, ValueError)


class VolumeFiles:
    """The filesystem inside a decrypted volume: :meth:`stat`, :meth:`list` and :meth:`open`.

    Raises :class:`UnsupportedError` (exit 3) when the boot sector names a filesystem this
    cannot read or none at all; each method raises :class:`NotFoundError` (exit 1) for a path
    the volume lacks and :class:`BadInputError` (exit 3) for a structure its reader cannot parse.
    """

    def __init__(self, stream: DecryptedStream | BinaryIO, name: str = "the volume"):
        self.where = name
        head = read_at(stream, 0, BOOT_SECTOR_SIZE)
        seen = identify_filesystem(bytes(head))
        if seen not in _READERS:
            what = f"{seen}, which ls and extract do not read" if seen else "no filesystem that identify_filesystem knows"
            raise UnsupportedError(f"{name}: the decrypted boot sector shows {what} "
                                   f"(they read {', '.join(SUPPORTED)})")
        stream.seek(0)
        try:
            self._fs = _READERS[seen](stream)
        except _parse_errors() as exc:
            raise BadInputError(f"{name}: the boot sector says {seen}, but {seen} cannot be opened: {exc}"
                                f"{_mft_hint(bytes(head), getattr(stream, 'size', None)) if seen == 'NTFS' else ''}"
                                ) from None

    @property
    def filesystem(self) -> str:
        return self._fs.name

    def _guard(self, path: str, work):
        try:
            return work()
        except BitLockerError:
            raise
        except _parse_errors() as exc:
            raise BadInputError(f"{path}: the {self.filesystem} structures cannot be read: "
                                f"{type(exc).__name__}: {exc}") from None

    def _resolve(self, path: str) -> tuple[str, Any, str]:
        """(name, node, canonical path) of ``path``."""
        fs = self._fs
        name, node, where = "/", fs.root(), "/"
        for part in split_path(path):
            if not fs.is_dir(node):
                raise NotFoundError(f"{path}: no such file or directory on {self.where} ({where} is a file)")
            found = fs.lookup(node, part)
            if found is None:
                raise NotFoundError(f"{path}: no such file or directory on {self.where}'s {self.filesystem}")
            name, node = found
            where = _join(where, name)
        return name, node, where

    def stat(self, path: str) -> FileEntry:
        def work() -> FileEntry:
            name, node, where = self._resolve(path)
            return self._fs.entry(name, node, where)

        return self._guard(path, work)

    def list(self, path: str = "/", recursive: bool = False) -> tuple[FileEntry, list[FileEntry]]:
        """The entry of ``path`` itself (its canonical path) and the entries of that directory
        (sorted by name, case-insensitively); with ``recursive`` each subdirectory's entries
        follow its own. A file lists itself."""

        def work() -> tuple[FileEntry, list[FileEntry]]:
            name, node, where = self._resolve(path)
            fs = self._fs
            listed = fs.entry(name, node, where)
            if not listed.is_dir:
                return listed, [listed]
            out: list[FileEntry] = []
            seen = {fs.key(node)}  # a damaged directory that holds an ancestor is listed once

            def walk(directory: Any, at: str) -> None:
                kids = sorted(fs.children(directory), key=lambda c: (c[0].casefold(), c[0]))
                for child_name, child in kids:
                    child_path = _join(at, child_name)
                    entry = fs.entry(child_name, child, child_path)
                    out.append(entry)
                    if recursive and entry.is_dir and (key := fs.key(child)) not in seen:
                        seen.add(key)
                        walk(child, child_path)

            walk(node, where)
            return listed, out

        return self._guard(path, work)

    def open(self, path: str) -> tuple[FileEntry, BinaryIO]:
        """The entry of the file ``path`` and its content; a directory is refused (exit 2)."""

        def work() -> tuple[FileEntry, BinaryIO]:
            name, node, where = self._resolve(path)
            entry = self._fs.entry(name, node, where)
            if entry.is_dir:
                raise UsageError(f"{path}: is a directory on {self.where}; extract takes a file (ls lists it)")
            return entry, self._fs.open(node)

        return self._guard(path, work)

    def read_chunks(self, entry: FileEntry, fh: BinaryIO, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The content of ``entry`` opened as ``fh``, in chunks; what its reader fails to parse on
        the way (a broken run list) is bad input that names the path, and so is a content that
        ends short of the size the directory entry records: never a silent truncation."""
        got = 0
        while True:
            data = self._guard(entry.path, lambda: fh.read(chunk))
            if not data:
                break
            got += len(data)
            yield data
        if entry.size is not None and got != entry.size:
            raise BadInputError(f"{entry.path}: {got} of its {entry.size} bytes could be read")


def _mft_hint(boot: bytes, size: int | None) -> str:
    """Where the boot sector puts the $MFT, for the message of a volume whose $MFT is unreadable:
    an image cut short (or a test image with its data regions left out) ends before it."""
    try:
        bs = NtfsBootSector.parse(boot)
    except ConstructError:  # no boot signature: nothing to point at
        return ""
    spc = bs.sectors_per_cluster
    at = bs.mft_cluster * bs.bytes_per_sector * ((1 << (256 - spc)) if spc > 0x80 else spc)
    if size is not None and at >= size:
        return f" (the $MFT starts at byte {at}, beyond the {size} bytes of the volume the evidence holds)"
    return f" (the $MFT starts at byte {at}: no FILE record there)"
