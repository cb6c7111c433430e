"""AES-CCM key blobs (value type 5): how every key in the metadata is wrapped.

RFC 3610 CCM with a 12-byte nonce and a 16-byte tag; on disk the tag precedes the ciphertext.
The tag is always verified: a wrong key and a damaged blob both fail here instead of yielding a
silently wrong key (libbde checks two header fields only). The cipher runs in the optimised core:
with the C core a key check imports no Python crypto package at all, which would cost more than
the unwrap itself.
"""

from __future__ import annotations

from types import ModuleType

from .._core import load
from ..metadata import AesCcmValue, KeyValue, parse_entries


class AuthenticationError(ValueError):
    """The AES-CCM tag did not verify: wrong key, or a damaged blob."""


def unwrap(key: bytes, blob: AesCcmValue, core: ModuleType | None = None) -> bytes:
    """Decrypt and authenticate a blob; return its plaintext."""
    if len(blob.nonce) != 12 or len(blob.mac) != 16:
        raise AuthenticationError("AES-CCM blob with a malformed nonce or tag")
    plain = (core or load()).ccm_decrypt(key, blob.nonce, blob.data, blob.mac)
    if plain is None:
        raise AuthenticationError("AES-CCM tag mismatch")
    return plain


def wrap(key: bytes, nonce: bytes, plaintext: bytes, core: ModuleType | None = None) -> AesCcmValue:
    """Encrypt a plaintext into a blob (used by the fixture forge)."""
    data, mac = (core or load()).ccm_encrypt(key, nonce, plaintext)
    return AesCcmValue(nonce, mac, data)


def unwrap_key(key: bytes, blob: AesCcmValue, core: ModuleType | None = None) -> KeyValue:
    """Unwrap a blob whose plaintext is a KEY entry (VMK, FVEK, validation hash, key16)."""
    plain = unwrap(key, blob, core)
    entries = parse_entries(plain, 0, len(plain))
    if not entries or not isinstance(entries[0].value, KeyValue):
        raise AuthenticationError("unwrapped blob does not hold a KEY entry")
    return entries[0].value
