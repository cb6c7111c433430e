"""The FVE metadata block: header, entries (datums) and their typed values.

An entry is parsed into :class:`Entry` whose ``value`` is one of the small dataclasses below;
value types we do not understand are kept as :class:`RawValue` so nothing on disk is hidden from
``info``. Entries nest (a VMK holds a stretch key which holds an AES-CCM blob), so every value
that can have children carries a ``children`` list.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator, Union

from construct import ConstructError

from .errors import BadInputError
from .format import structs
from .format.constants import (
    EncryptionMethod,
    EntryType,
    ProtectorType,
    ValueType,
    VolumeState,
)

_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)


def filetime(value: int) -> datetime | None:
    """FILETIME (100 ns since 1601) as an aware UTC datetime; None for 0 or absurd values."""
    if not value:
        return None
    try:
        return _EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def guid_from_bytes(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_to_bytes(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


# --- typed values --------------------------------------------------------------------------------


@dataclass
class KeyValue:
    method: int
    key: bytes


@dataclass
class UnicodeValue:
    text: str


@dataclass
class StretchKeyValue:
    method: int
    salt: bytes
    children: list[Entry] = field(default_factory=list)


@dataclass
class UseKeyValue:
    method: int
    children: list[Entry] = field(default_factory=list)


@dataclass
class AesCcmValue:
    nonce: bytes  # 12 bytes: FILETIME || counter
    mac: bytes
    data: bytes

    @property
    def nonce_time(self) -> datetime | None:
        return filetime(int.from_bytes(self.nonce[:8], "little"))

    @property
    def nonce_counter(self) -> int:
        return int.from_bytes(self.nonce[8:], "little")


@dataclass
class TpmValue:
    blob: bytes


@dataclass
class VmkValue:
    guid: str
    creation_time: datetime | None
    protection: int
    children: list[Entry] = field(default_factory=list)


@dataclass
class ExternalKeyValue:
    guid: str
    creation_time: datetime | None
    children: list[Entry] = field(default_factory=list)


@dataclass
class OffsetSizeValue:
    offset: int
    size: int
    extra: bytes


@dataclass
class RawValue:
    data: bytes


Value = Union[
    KeyValue, UnicodeValue, StretchKeyValue, UseKeyValue, AesCcmValue, TpmValue, VmkValue,
    ExternalKeyValue, OffsetSizeValue, RawValue,
]


@dataclass
class Entry:
    """One metadata entry ("datum"). ``offset`` is relative to the start of the metadata block."""

    offset: int
    size: int
    entry_type: int
    value_type: int
    version: int
    value: Value

    @property
    def children(self) -> list[Entry]:
        return getattr(self.value, "children", [])

    def walk(self) -> Iterator[Entry]:
        """This entry and all nested ones, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def child(self, value_type: ValueType) -> Entry | None:
        """The first direct child of a value type (the anchors search direct children only)."""
        return next((c for c in self.children if c.value_type == value_type), None)

    def type_name(self) -> str:
        try:
            return EntryType(self.entry_type).name
        except ValueError:
            return f"0x{self.entry_type:04x}"

    def value_name(self) -> str:
        try:
            return ValueType(self.value_type).name
        except ValueError:
            return f"0x{self.value_type:04x}"


def _parse_value(value_type: int, data: bytes, base: int) -> Value:
    """Parse the bytes after an entry header; ``base`` locates them in the block for errors."""
    if value_type == ValueType.KEY and len(data) >= 4:
        v = structs.KeyValue.parse(data)
        return KeyValue(v.method, bytes(v.key))
    if value_type == ValueType.UNICODE:
        return UnicodeValue(data.decode("utf-16-le", "replace").rstrip("\x00"))
    if value_type == ValueType.STRETCH_KEY and len(data) >= structs.STRETCH_KEY_FIXED:
        v = structs.StretchKeyValue.parse(data)
        children = parse_entries(data, structs.STRETCH_KEY_FIXED, len(data), base)
        return StretchKeyValue(v.method, bytes(v.salt), children)
    if value_type == ValueType.USE_KEY and len(data) >= structs.USE_KEY_FIXED:
        v = structs.UseKeyValue.parse(data)
        return UseKeyValue(v.method, parse_entries(data, structs.USE_KEY_FIXED, len(data), base))
    if value_type == ValueType.AES_CCM and len(data) >= 28:
        return AesCcmValue(bytes(data[:12]), bytes(data[12:28]), bytes(data[28:]))
    if value_type == ValueType.TPM_ENCODED and len(data) >= 4:
        return TpmValue(bytes(data[4:]))
    if value_type == ValueType.VMK and len(data) >= structs.VMK_FIXED:
        v = structs.VmkValue.parse(data)
        children = parse_entries(data, structs.VMK_FIXED, len(data), base)
        return VmkValue(guid_from_bytes(v.guid), filetime(v.creation_time), v.protection, children)
    if value_type == ValueType.EXTERNAL_KEY and len(data) >= structs.EXTERNAL_KEY_FIXED:
        v = structs.ExternalKeyValue.parse(data)
        children = parse_entries(data, structs.EXTERNAL_KEY_FIXED, len(data), base)
        return ExternalKeyValue(guid_from_bytes(v.guid), filetime(v.creation_time), children)
    if value_type == ValueType.OFFSET_SIZE and len(data) >= 16:
        v = structs.OffsetSizeValue.parse(data)
        return OffsetSizeValue(v.offset, v.size, bytes(v.extra))
    return RawValue(bytes(data))


def parse_entries(buf: bytes, start: int, end: int, base: int = 0) -> list[Entry]:
    """Walk entries in ``buf[start:end]``.

    Walking stops at a zero-size entry or when fewer than 8 bytes are left (the format pads with
    zeros); an entry whose declared size runs past ``end`` is corrupt and raises, naming where.
    """
    entries = []
    pos = start
    while end - pos >= structs.ENTRY_HEADER_SIZE:
        hdr = structs.EntryHeader.parse(buf[pos : pos + structs.ENTRY_HEADER_SIZE])
        if hdr.size == 0:
            break
        if hdr.size < structs.ENTRY_HEADER_SIZE or pos + hdr.size > end:
            raise BadInputError(
                f"metadata entry at block offset {base + pos:#x} has size {hdr.size}, "
                f"which runs past its container (ends at {base + end:#x})"
            )
        data = buf[pos + structs.ENTRY_HEADER_SIZE : pos + hdr.size]
        try:
            value = _parse_value(hdr.value_type, data, base + pos + structs.ENTRY_HEADER_SIZE)
        except ConstructError as exc:
            raise BadInputError(f"metadata entry at block offset {base + pos:#x}: {exc}") from None
        entries.append(Entry(base + pos, hdr.size, hdr.entry_type, hdr.value_type, hdr.version, value))
        pos += hdr.size
    return entries


# --- the block -------------------------------------------------------------------------------------


@dataclass
class Protector:
    """A VMK entry: one way (credential) to obtain the volume master key."""

    guid: str
    type: ProtectorType
    code: int
    creation_time: datetime | None
    entry: Entry

    @property
    def key_id(self) -> str:
        """The "Key ID" on the Windows recovery screen: the first 8 hex digits, upper case."""
        return self.guid.split("-")[0].upper()

    @property
    def description(self) -> str | None:
        """The UNICODE property, e.g. ``DiskPassword`` or ``ExternalKey``."""
        child = self.entry.child(ValueType.UNICODE)
        return child.value.text if child else None  # type: ignore[union-attr]


@dataclass
class MetadataBlock:
    """One parsed copy of the FVE metadata block."""

    offset: int  # volume offset of the block
    version: int
    current_state: int
    next_state: int
    encrypted_volume_size: int
    convert_size: int
    volume_header_sectors: int
    metadata_offsets: tuple[int, int, int]
    volume_header_offset: int  # v1: the MFT-mirror cluster
    volume_guid: str
    next_nonce: int
    encryption_method: int
    creation_time: datetime | None
    entries: list[Entry]
    covered: bytes  # the bytes the validation structure's CRC32/SHA-256 cover
    crc_stored: int | None
    validation_entry: Entry | None

    @property
    def crc_valid(self) -> bool | None:
        """True/False where the format has a CRC (v2); None for v1."""
        if self.crc_stored is None:
            return None
        return zlib.crc32(self.covered) == self.crc_stored

    @property
    def method(self) -> EncryptionMethod | None:
        try:
            return EncryptionMethod(self.encryption_method)
        except ValueError:
            return None

    @property
    def state(self) -> str:
        return _state_name(self.current_state)

    @property
    def next_state_name(self) -> str:
        return _state_name(self.next_state)

    @property
    def description(self) -> str | None:
        for e in self.entries:
            if e.entry_type == EntryType.DESCRIPTION and isinstance(e.value, UnicodeValue):
                return e.value.text
        return None

    @property
    def protectors(self) -> list[Protector]:
        out = []
        for e in self.entries:
            if e.entry_type == EntryType.VMK and isinstance(e.value, VmkValue):
                v = e.value
                out.append(Protector(v.guid, ProtectorType.from_code(v.protection), v.protection,
                                     v.creation_time, e))
        return out

    @property
    def fvek_entry(self) -> Entry | None:
        for e in self.entries:
            if e.entry_type == EntryType.FVEK and isinstance(e.value, AesCcmValue):
                return e
        return None

    @property
    def volume_header_entry(self) -> OffsetSizeValue | None:
        for e in self.entries:
            if e.entry_type == EntryType.VOLUME_HEADER_BLOCK and isinstance(e.value, OffsetSizeValue):
                return e.value
        return None


def _state_name(code: int) -> str:
    try:
        return VolumeState(code).name
    except ValueError:
        return f"0x{code:04x}"


def parse_block(buf: bytes, offset: int) -> MetadataBlock:
    """Parse one metadata block read at volume ``offset``. Raises BadInputError naming the problem."""
    if buf[:8] != b"-FVE-FS-":
        raise BadInputError(f"no FVE metadata signature at volume offset {offset:#x}")
    try:
        hdr = structs.BlockHeader.parse(buf[: structs.BLOCK_HEADER_SIZE])
        mh = structs.MetadataHeader.parse(
            buf[structs.BLOCK_HEADER_SIZE : structs.BLOCK_HEADER_SIZE + structs.METADATA_HEADER_SIZE]
        )
    except ConstructError as exc:
        raise BadInputError(f"metadata block at volume offset {offset:#x}: {exc}") from None
    if hdr.version not in (1, 2):
        raise BadInputError(f"metadata block at volume offset {offset:#x}: unsupported version {hdr.version}")
    start = structs.BLOCK_HEADER_SIZE
    end = start + mh.size
    if mh.size < structs.METADATA_HEADER_SIZE or end > len(buf):
        raise BadInputError(
            f"metadata block at volume offset {offset:#x}: metadata size {mh.size} does not fit the block"
        )
    entries = parse_entries(buf, start + structs.METADATA_HEADER_SIZE, end)

    crc_stored = None
    validation_entry = None
    covered = bytes(buf[:end])
    # The validation structure (CRC-32, then the block's SHA-256 wrapped with the VMK) follows
    # the bytes the header's size field covers: 16-byte units on v2, bytes on Vista's v1 (the
    # corpus Vista volume: 0x310 for metadata ending at 0x304). A v1 field that does not fit is
    # taken as "no validation" rather than as damage: v1 was never documented to carry one.
    covered_len = hdr.size * 16 if hdr.version == 2 else hdr.size
    fits = end <= covered_len and covered_len + structs.VALIDATION_HEADER_SIZE <= len(buf)
    if hdr.version == 2 and not fits:
        raise BadInputError(
            f"metadata block at volume offset {offset:#x}: block size field {hdr.size} "
            "disagrees with the metadata size"
        )
    if fits:
        covered = bytes(buf[:covered_len])
        val = structs.Validation.parse(buf[covered_len : covered_len + 8])
        crc_stored = val.crc32
        # The first u16 is not a reliable size on real volumes; the entry carries its own.
        try:
            found = parse_entries(buf, covered_len + 8, min(len(buf), covered_len + 8 + 0x200))
        except BadInputError:
            found = []
        validation_entry = found[0] if found else None

    return MetadataBlock(
        offset=offset,
        version=hdr.version,
        current_state=hdr.current_state,
        next_state=hdr.next_state,
        encrypted_volume_size=hdr.encrypted_volume_size,
        convert_size=hdr.convert_size,
        volume_header_sectors=hdr.volume_header_sectors,
        metadata_offsets=tuple(hdr.metadata_offsets),  # type: ignore[arg-type]
        volume_header_offset=hdr.volume_header_offset,
        volume_guid=guid_from_bytes(mh.volume_guid),
        next_nonce=mh.next_nonce,
        encryption_method=mh.encryption_method,
        creation_time=filetime(mh.creation_time),
        entries=entries,
        covered=covered,
        crc_stored=crc_stored,
        validation_entry=validation_entry,
    )
