"""From a secret to the 32-byte key that opens a protector's VMK blob.

User password: SHA-256(SHA-256(UTF-16LE(password))); recovery password: SHA-256(key16); both
then go through the 1,048,576-round SHA-256 stretch with the protector's salt. The stretch runs
in the optimised core (C with SHA-NI, or the pure-Python twin).
"""

from __future__ import annotations

import hashlib
from types import ModuleType

from .._core import load
from ..format.constants import STRETCH_ROUNDS


def password_initial(password: str) -> bytes:
    return hashlib.sha256(hashlib.sha256(password.encode("utf-16-le")).digest()).digest()


def recovery_initial(key16: bytes) -> bytes:
    return hashlib.sha256(key16).digest()


def stretch(initial: bytes, salt: bytes, core: ModuleType | None = None) -> bytes:
    return (core or load()).stretch(initial, salt, STRETCH_ROUNDS)
