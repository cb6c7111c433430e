"""Small output files (a keychain, an exported FVEK, a case CSV): never over an existing file,
written under a temporary name and put in place when complete, and readable by their owner only
when they hold keys.

The temporary file is made with ``mkstemp`` in the output's folder (a fresh name, created
exclusively, mode 0600, never a link someone left there) and linked to the final name, which
fails rather than replace a file that appeared meanwhile.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import UsageError


def write_new_file(path: str | os.PathLike, data: bytes, secret: bool = True) -> Path:
    """Write ``data`` to ``path``, which must not exist; return the path."""
    return write_new_file_from(path, (data,), secret)


def write_new_file_from(path: str | os.PathLike, chunks: Iterable[bytes], secret: bool = True) -> Path:
    """Write the ``chunks`` to ``path``, which must not exist, in the same way (a file extracted
    from a volume is streamed, not held in memory); return the path. Nothing is left at ``path``
    when the chunks fail part way."""
    final = Path(path)
    if final.exists() or final.is_symlink():
        raise UsageError(f"{final}: exists; remove it or choose another output")
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for data in chunks:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not secret:
            os.chmod(tmp, 0o644)
        try:
            os.link(tmp, final)  # no-clobber: fails when the name exists
        except FileExistsError:
            raise UsageError(f"{final}: exists; remove it or choose another output") from None
        except OSError:  # a file system without hard links
            if final.exists():
                raise UsageError(f"{final}: exists; remove it or choose another output") from None
            os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def replace_record(path: Path, text: str) -> None:
    """Replace the job record ``path`` (a resume state: ours to overwrite, never evidence) with
    ``text`` atomically and durably: written to ``PATH.tmp``, flushed to the disk, renamed over
    the old one, so that a run killed, or a machine that loses power, part way leaves the old
    record or the new, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
