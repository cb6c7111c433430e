"""The files behind the paths the examiner gives: files, directories walked recursively, and
``-`` for standard input.

Nothing that cannot be read stops the walk: a file that cannot be opened, a directory that
cannot be listed, a path that does not exist, a special file (a FIFO would block the read) is
a problem naming it. Directories are walked in name order (so runs are repeatable) without
following symbolic links to directories (a link loop would never end); links to files are
read.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Callable, Union

from .record import EscrowProblem, Locator

STDIN = "-"
MAX_FILE_SIZE = 256 * 1024 * 1024  # an escrow export of a million keys is under 100 MiB


@dataclass(frozen=True)
class Input:
    """One file's bytes. ``explicit``: named by the user (not found in a directory)."""

    path: str
    data: bytes
    explicit: bool


Opener = Callable[[str], BinaryIO]


def _read(path: str, opener: Opener) -> bytes | str:
    """The file's bytes, or why they cannot be read."""
    try:
        with opener(path) as fh:
            data = fh.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if len(data) > MAX_FILE_SIZE:
        return f"larger than {MAX_FILE_SIZE >> 20} MiB: not read as a key export"
    return data


def _file(path: str, explicit: bool, opener: Opener) -> Union[Input, EscrowProblem]:
    data = _read(path, opener)
    if isinstance(data, str):
        return EscrowProblem(Locator(path), data)
    return Input(path, data, explicit)


def _walk(directory: str, opener: Opener) -> Iterator[Union[Input, EscrowProblem]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield EscrowProblem(Locator(directory), f"cannot list the directory: {exc.strerror or exc}")
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file()
            is_link = entry.is_symlink()
        except OSError as exc:
            yield EscrowProblem(Locator(entry.path), f"cannot read: {exc.strerror or exc}")
            continue
        if is_dir:
            yield from _walk(entry.path, opener)
        elif is_link and os.path.isdir(entry.path):
            yield EscrowProblem(Locator(entry.path), "a symbolic link to a directory: not followed")
        elif is_file or is_link:  # a dangling link is read, and fails, as a problem
            yield _file(entry.path, False, opener)
        else:
            yield EscrowProblem(Locator(entry.path), "not a regular file: skipped")


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def inputs(paths: list[str], opener: Opener | None = None) -> Iterator[Union[Input, EscrowProblem]]:
    """Every file behind ``paths``, in order, or a problem for each that cannot be read."""
    opener = opener or (lambda p: open(p, "rb"))
    for path in paths:
        if path == STDIN:
            yield Input(STDIN, sys.stdin.buffer.read(), True)
        elif os.path.isdir(path):
            yield from _walk(path, opener)
        elif os.path.lexists(path):
            if os.path.exists(path) and not (os.path.isfile(path) or _is_fifo(path)):
                yield EscrowProblem(Locator(path), "not a regular file: skipped")
            else:  # a pipe named on the command line (``<(...)``) is read: the user gave it
                yield _file(path, True, opener)
        else:
            yield EscrowProblem(Locator(path), "no such file or directory")
