"""The forge's only source of randomness: values derived from the spec's seed and a label.

Each value depends on the seed and its label only (SHAKE-256 of both), so a forged volume is a
pure function of its input and spec, and adding a protector does not change the keys of the
others. Labels name what a value is for: ``"fvek"``, ``"protector-0-salt"``, ``"togo-serial"``.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Union

_DOMAIN = b"bitlocker-tools forge\0"


class SeededRandom:
    """Labelled deterministic randomness."""

    def __init__(self, seed: Union[int, str, bytes]):
        self.seed = seed if isinstance(seed, bytes) else str(seed).encode()

    def bytes(self, label: str, n: int) -> bytes:
        return hashlib.shake_256(_DOMAIN + self.seed + b"\0" + label.encode()).digest(n)

    def guid(self, label: str) -> str:
        """A version-4 GUID in its lowercase text form."""
        return str(uuid.UUID(bytes=self.bytes(label, 16), version=4))
