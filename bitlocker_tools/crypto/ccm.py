"""AES-CCM key blobs (value type 5): how every key in the metadata is wrapped.

RFC 3610 CCM with a 12-byte nonce and a 16-byte tag; on disk the tag precedes the ciphertext.
The tag is always verified: a wrong key and a damaged blob both fail here instead of yielding a
silently wrong key (libbde checks two header fields only). The cipher runs in the optimised core:
with the C core a key check imports no Python crypto package at all, which would cost more than
the unwrap itself. This module deals in bytes; what the plaintext means (usually a KEY entry) is
the caller's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core import load
from ..errors import AuthenticationError

if TYPE_CHECKING:
    from .._core import Core

NONCE_SIZE = 12
TAG_SIZE = 16


def unwrap(key: bytes, nonce: bytes, mac: bytes, data: bytes, core: Core | None = None) -> bytes:
    """Decrypt and authenticate a blob; return its plaintext or raise AuthenticationError."""
    if len(nonce) != NONCE_SIZE or len(mac) != TAG_SIZE:
        raise AuthenticationError("AES-CCM blob with a malformed nonce or tag")
    plain = (core or load()).ccm_decrypt(key, nonce, data, mac)
    if plain is None:
        raise AuthenticationError("AES-CCM tag mismatch")
    return plain


def wrap(key: bytes, nonce: bytes, plaintext: bytes, core: Core | None = None) -> tuple[bytes, bytes]:
    """Encrypt a plaintext (used by the fixture forge); returns (ciphertext, tag)."""
    return (core or load()).ccm_encrypt(key, nonce, plaintext)
