"""Escrowed keys from every common source, as one record type with provenance.

``load_keys(paths)`` walks files and directories (``-`` is standard input), recognises each file's
format by its content, and returns every key record and every problem (a broken record never
stops the run). One importer module per source format; see :mod:`.record` for the record,
:mod:`.dispatch` for how a format is recognised, and docs/escrow.md for every format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from .dispatch import read_bytes
from .record import EscrowProblem, EscrowRecord, Locator
from .walk import Input, Opener, inputs


@dataclass(frozen=True)
class LoadedFile:
    """One file read: what it was taken for, and what it gave."""

    path: str
    format: str  # "windows_txt", "csv", "ldif", "json", "key_file", "text", "binary", ...
    records: int
    problems: int


@dataclass
class LoadResult:
    records: list[EscrowRecord] = field(default_factory=list)
    problems: list[EscrowProblem] = field(default_factory=list)
    files: list[LoadedFile] = field(default_factory=list)


def load_keys(paths: Iterable[str], opener: Optional[Opener] = None) -> LoadResult:
    """Every escrowed key in ``paths`` (files, directories walked recursively, ``-`` for stdin),
    in the order found, and every problem. ``opener`` opens a file for reading (tests use it to
    make a file unreadable); the default is ``open(path, "rb")``."""
    result = LoadResult()
    for item in inputs(list(paths), opener):
        if isinstance(item, EscrowProblem):
            result.problems.append(item)
            continue
        assert isinstance(item, Input)
        found = read_bytes(item.data, item.path, item.explicit)
        records = [f for f in found.items if isinstance(f, EscrowRecord)]
        problems = [f for f in found.items if isinstance(f, EscrowProblem)]
        result.records += records
        result.problems += problems
        if found.format != "binary" or problems:
            result.files.append(LoadedFile(item.path, found.format, len(records), len(problems)))
    return result


__all__ = ["EscrowProblem", "EscrowRecord", "LoadResult", "LoadedFile", "Locator", "load_keys"]
