"""Metadata entries, built: the writing side of :mod:`bitlocker_tools.metadata`'s entry parser.

Every entry is an :data:`~bitlocker_tools.format.metadata.EntryHeader` and a value laid out by
the value structures of :mod:`bitlocker_tools.format.metadata`; values that nest entries (stretch
key, use key, VMK, external key) take the nested entries' bytes after their fixed part. Keys are
wrapped by :class:`CcmSealer`, which numbers the AES-CCM nonces as Windows does.
"""

from __future__ import annotations

from datetime import datetime

from ..crypto.ccm import wrap
from ..format.constants import EntryType, KeyMethod, ValueType
from ..format.metadata import (
    ENTRY_HEADER_SIZE,
    AesCcmValue,
    CcmNonce,
    EntryHeader,
    KeyValue,
    StretchKeyValue,
)
from ..format.types import datetime_to_filetime

#: The entry header's size field is a u16.
MAX_ENTRY_SIZE = 0xFFFF


def entry(entry_type: int, value_type: int, value: bytes, version: int = 1) -> bytes:
    """An entry: the header, then ``value`` (a value structure and any nested entries)."""
    size = ENTRY_HEADER_SIZE + len(value)
    if size > MAX_ENTRY_SIZE:
        raise ValueError("metadata entry too large")
    header = EntryHeader.build(dict(size=size, entry_type=entry_type, value_type=value_type, version=version))
    return header + value


def key_entry(method: int, key: bytes, entry_type: int = EntryType.PROPERTY) -> bytes:
    """A KEY entry: ``key`` for ``method`` (an EncryptionMethod for the FVEK, else a KeyMethod)."""
    return entry(entry_type, ValueType.KEY, KeyValue.build(dict(method=method, unknown=0, key=key)))


def unicode_entry(text: str, entry_type: int = EntryType.PROPERTY) -> bytes:
    """A UNICODE entry: NUL-terminated UTF-16LE text."""
    return entry(entry_type, ValueType.UNICODE, (text + "\0").encode("utf-16-le"))


def stretch_key_entry(method: KeyMethod, salt: bytes, nested: bytes = b"") -> bytes:
    """A STRETCH KEY property: the salt of a password-derived key, then ``nested`` entries."""
    return entry(EntryType.PROPERTY, ValueType.STRETCH_KEY,
                 StretchKeyValue.build(dict(method=method, salt=salt)) + nested)


class CcmSealer:
    """Wraps plaintexts into AES-CCM entries, numbering the nonces.

    The nonce is a FILETIME and a counter, as Windows makes them; the counter goes up by one for
    each blob of a block, and the metadata header's ``next_nonce`` is the one after the last.
    """

    def __init__(self) -> None:
        self.counter = 0  # the counter of the last nonce used

    @property
    def next_counter(self) -> int:
        """The counter the next blob's nonce will carry."""
        return self.counter + 1

    def wrapped_key(self, kek: bytes, method: int, key: bytes, when: datetime,
                    entry_type: int = EntryType.PROPERTY) -> bytes:
        """An AES-CCM entry whose plaintext is the KEY entry of ``key`` for ``method``, wrapped
        with ``kek`` under a nonce of time ``when``: how the metadata stores every key (VMK,
        FVEK, key16, validation hash)."""
        self.counter += 1
        nonce = CcmNonce.build(dict(time=datetime_to_filetime(when), counter=self.counter))
        data, mac = wrap(kek, nonce, key_entry(method, key))
        return entry(entry_type, ValueType.AES_CCM, AesCcmValue.build(dict(nonce=nonce, mac=mac, data=data)))
