"""Small output files (a keychain, an exported FVEK): never over an existing file, written under a
temporary name and renamed when complete, and readable by their owner only, since they hold keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError


def write_new_file(path: str | os.PathLike, data: bytes, secret: bool = True) -> Path:
    """Write ``data`` to ``path``, which must not exist; return the path."""
    final = Path(path)
    if final.exists():
        raise UsageError(f"{final}: exists; remove it or choose another output")
    part = final.with_name(final.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600 if secret else 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():  # created meanwhile by someone else: keep theirs
            raise UsageError(f"{final}: exists; remove it or choose another output")
        part.replace(final)
    finally:
        part.unlink(missing_ok=True)
    return final
