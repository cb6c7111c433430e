"""Key derivation: the stretch and its multi-core batch agree with a plain hashlib reference."""

from __future__ import annotations

import hashlib
import struct

import pytest

from bitlocker_tools._core import _pure, load
from bitlocker_tools.crypto import kdf
from bitlocker_tools.recovery_password import parse


def _reference(initial: bytes, salt: bytes, rounds: int) -> bytes:
    last = bytes(32)
    for i in range(rounds):
        last = hashlib.sha256(last + initial + salt + struct.pack("<Q", i)).digest()
    return last


@pytest.mark.parametrize("core", [_pure, load()], ids=["pure", "default"])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_stretch_batch_in_order_on_all_cores(core, workers):
    salt = bytes(range(16))
    initials = [hashlib.sha256(bytes([i])).digest() for i in range(11)]
    got = kdf.stretch_batch(initials, salt, core=core, workers=workers, rounds=300)
    assert got == [_reference(i, salt, 300) for i in initials]


def test_initial_hashes():
    # password: SHA-256(SHA-256(UTF-16LE)); recovery password: SHA-256(key16)
    assert kdf.password_initial("pässword") == hashlib.sha256(hashlib.sha256("pässword".encode("utf-16-le")).digest()).digest()
    rp = parse("111111-222222-333333-444444-555555-666666-111111-222222")
    assert kdf.recovery_initial(rp.key16) == hashlib.sha256(struct.pack("<8H", *(g // 11 for g in rp.groups))).digest()
