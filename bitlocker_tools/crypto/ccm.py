"""AES-CCM key blobs (value type 5): how every key in the metadata is wrapped.

RFC 3610 CCM with a 12-byte nonce and a 16-byte tag; on disk the tag precedes the ciphertext.
The tag is always verified: a wrong key and a damaged blob both fail here instead of yielding a
silently wrong key (libbde checks two header fields only).
"""

from __future__ import annotations

from Crypto.Cipher import AES

from ..metadata import AesCcmValue, KeyValue, parse_entries


class AuthenticationError(ValueError):
    """The AES-CCM tag did not verify: wrong key, or a damaged blob."""


def unwrap(key: bytes, blob: AesCcmValue) -> bytes:
    """Decrypt and authenticate a blob; return its plaintext."""
    cipher = AES.new(key, AES.MODE_CCM, nonce=blob.nonce, mac_len=16)
    try:
        return cipher.decrypt_and_verify(blob.data, blob.mac)
    except ValueError:
        raise AuthenticationError("AES-CCM tag mismatch") from None


def wrap(key: bytes, nonce: bytes, plaintext: bytes) -> AesCcmValue:
    """Encrypt a plaintext into a blob (used by the fixture forge)."""
    cipher = AES.new(key, AES.MODE_CCM, nonce=nonce, mac_len=16)
    data, mac = cipher.encrypt_and_digest(plaintext)
    return AesCcmValue(nonce, mac, data)


def unwrap_key(key: bytes, blob: AesCcmValue) -> KeyValue:
    """Unwrap a blob whose plaintext is a KEY entry (VMK, FVEK, validation hash, key16)."""
    plain = unwrap(key, blob)
    entries = parse_entries(plain, 0, len(plain))
    if not entries or not isinstance(entries[0].value, KeyValue):
        raise AuthenticationError("unwrapped blob does not hold a KEY entry")
    return entries[0].value
