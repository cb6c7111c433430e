"""What the forge hands back: the volume, its credentials, and the key files the peers take.

:class:`ForgedVolume` carries everything a test needs to open the volume (passwords, .BEK files,
keys) and to judge a reader (the expected plaintext), in the forms each peer wants: the
dislocker FVEK file (``-k``), libbde's ``-k`` string, ``.BEK`` files, and a JSON manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Union

from ..format.constants import EncryptionMethod, EntryType, KeyMethod, ProtectorType, ValueType
from ..format.keyfiles import BekHeader
from ..format.metadata import ExternalKeyValue
from ..format.types import datetime_to_filetime
from ..keyfiles import BEK_HEADER_SIZE, fvek_file
from .entries import entry, key_entry, unicode_entry
from .spec import VolumeSpec


@dataclass
class ForgedProtector:
    type: ProtectorType
    guid: str
    code: int
    recovery_password: Union[str, None] = None
    password: Union[str, None] = None
    startup_key: Union[bytes, None] = None  # the 32-byte external key
    bek_name: Union[str, None] = None
    bek: Union[bytes, None] = None  # the .BEK file
    clear_key: Union[bytes, None] = None

    def manifest(self) -> dict:
        d: dict = {"type": self.type.value, "guid": self.guid, "code": f"0x{self.code:04x}"}
        if self.recovery_password:
            d["recovery_password"] = self.recovery_password
        if self.password is not None:
            d["password"] = self.password
        if self.bek_name:
            d["bek"] = self.bek_name
            d["startup_key"] = self.startup_key.hex() if self.startup_key else None
        if self.clear_key:
            d["clear_key"] = self.clear_key.hex()
        return d


@dataclass
class ForgedVolume:
    """A forged volume and everything a test needs to open it."""

    data: bytes
    spec: VolumeSpec
    volume_guid: str
    fvek: bytes  # the FVEK datum's key bytes (what the metadata wraps)
    key_material: bytes  # the sector-crypto key (crypto.sector_key): CBC FVEK, XTS key1||key2, FVEK||TWEAK
    vmk: bytes
    metadata_offsets: tuple[int, int, int]
    volume_header_offset: int
    volume_header_size: int
    encrypted_size: int
    state: int
    next_state: int
    protectors: list[ForgedProtector]
    reserved_regions: list[tuple[int, int]]  # (offset, length) read as zeros, sorted
    expected_sha256: str  # of the plaintext a reader must produce (size bytes)
    _plain: bytes = field(repr=False, default=b"")

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def method(self) -> EncryptionMethod:
        return self.spec.method

    @property
    def sector_size(self) -> int:
        return self.spec.sector_size

    @property
    def variant(self) -> str:
        """The boot-sector layout: "win7", "vista" or "togo" (as ``scan`` reports it)."""
        return str(self.spec.variant)

    @property
    def recovery_passwords(self) -> list[str]:
        return [p.recovery_password for p in self.protectors if p.recovery_password]

    @property
    def passwords(self) -> list[str]:
        return [p.password for p in self.protectors if p.password is not None]

    @property
    def bek_files(self) -> dict[str, bytes]:
        """``{GUID}.BEK`` file name -> file bytes, one per startup-key protector."""
        return {p.bek_name: p.bek for p in self.protectors if p.bek_name and p.bek}

    def expected_plaintext(self) -> bytes:
        """The input image with the reserved regions zeroed: what a reader must return."""
        return zeroed(self._plain, self.reserved_regions)

    @property
    def fvek_hex(self) -> str:
        return self.fvek.hex()

    @property
    def dislocker_fvek_file(self) -> bytes:
        """dislocker's ``-k`` FVEK file: u16 method + key, zero-padded to 66 bytes (0.7.3)."""
        return fvek_file(self.method, self.fvek)

    @property
    def libbde_keys(self) -> str:
        """libbde's ``-k`` argument: ``FVEK[:TWEAK]`` in hex (XTS-128: the 32-byte FVEK alone).
        For the diffuser methods, the key material's two halves."""
        if self.method.has_diffuser:
            half = len(self.key_material) // 2
            return f"{self.key_material[:half].hex()}:{self.key_material[half:].hex()}"
        return self.fvek.hex()

    def write(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path

    def write_bek_files(self, folder: Union[str, os.PathLike]) -> list[Path]:
        out = []
        for name, raw in self.bek_files.items():
            p = Path(folder) / name
            p.write_bytes(raw)
            out.append(p)
        return out

    def manifest(self) -> dict:
        """JSON-friendly description: credentials, layout, and the expected plaintext hash."""
        return {
            "method": self.method.name,
            "method_label": self.method.label,
            "sector_size": self.sector_size,
            "metadata_version": self.spec.metadata_version,
            "variant": self.variant,
            "size": self.size,
            "volume_guid": self.volume_guid,
            "description": self.spec.description,
            "state": self.state,
            "next_state": self.next_state,
            "encrypted_size": self.encrypted_size,
            "metadata_offsets": list(self.metadata_offsets),
            "volume_header_offset": self.volume_header_offset,
            "volume_header_size": self.volume_header_size,
            "damaged_copy": self.spec.damage_copy,
            "damage": self.spec.damage if self.spec.damage_copy is not None else None,
            "protectors": [p.manifest() for p in self.protectors],
            "fvek": self.fvek.hex(),
            "vmk": self.vmk.hex(),
            "expected_plaintext_sha256": self.expected_sha256,
        }


def zeroed(plain: bytes, regions: list[tuple[int, int]]) -> bytes:
    """``plain`` with each ``(offset, length)`` region read as zeros: the expected plaintext,
    computed from the input alone, never by a reader."""
    buf = bytearray(plain)
    for off, length in regions:
        buf[off : off + length] = bytes(min(length, len(buf) - off))
    return bytes(buf)


def bek_file(guid: str, key: bytes, created: datetime) -> bytes:
    """A ``.BEK`` startup-key file (docs/format.md section 3.5): the metadata-style header, then
    the EXTERNAL KEY entry naming protector ``guid``, with its name and the 32-byte key nested."""
    ft = datetime_to_filetime(created)
    ext = ExternalKeyValue.build(dict(guid=guid, creation_time=ft))
    body = entry(EntryType.STARTUP_KEY, ValueType.EXTERNAL_KEY,
                 ext + unicode_entry("ExternalKey") + key_entry(KeyMethod.EXTERNAL_KEY, key))
    size = BEK_HEADER_SIZE + len(body)
    header = BekHeader.build(dict(
        size=size, version=1, header_size=BEK_HEADER_SIZE, size_copy=size,
        volume_guid=guid, next_nonce=1, encryption_method=0, encryption_method_copy=0,
        creation_time=ft,
    ))
    return header + body
