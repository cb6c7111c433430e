"""The FVE metadata block: header, entries (datums) and their typed values.

An entry is parsed into :class:`Entry` whose ``value`` is one of the small dataclasses below;
value types we do not understand are kept as :class:`RawValue`, so nothing on disk is hidden from
``info``. Entries nest (a VMK holds a stretch key which holds an AES-CCM blob), so every value
that can have children carries a ``children`` list. Each value describes itself twice: as the
fields of its JSON object (:meth:`as_dict`, never key bytes) and as one line for people
(:meth:`summary`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Union

from construct import ConstError, ConstructError

from .errors import BadInputError, describe_parse_error
from .format import metadata as fmt
from .format.constants import (
    EncryptionMethod,
    EntryType,
    ProtectorType,
    ValueType,
    VolumeState,
    backup_destinations,
    code_name,
)
from .format.types import filetime_to_datetime, iso_utc
from .secret import masked_repr

# --- typed values --------------------------------------------------------------------------------


@masked_repr("key")  # a clear key, or an unwrapped VMK/FVEK
@dataclass
class KeyValue:
    method: int
    key: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "key_size": len(self.key)}

    def summary(self) -> str:
        return f"method {self.method:#06x}, {len(self.key)}-byte key"


@dataclass
class UnicodeValue:
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text}

    def summary(self) -> str:
        return repr(self.text)


@dataclass
class StretchKeyValue:
    method: int
    salt: bytes
    children: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "salt": self.salt.hex()}

    def summary(self) -> str:
        return f"method {self.method:#06x}, salt {self.salt.hex()}"


@dataclass
class UseKeyValue:
    method: int
    children: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method}

    def summary(self) -> str:
        return f"method {self.method:#06x}"


@dataclass
class AesCcmValue:
    nonce: bytes  # 12 bytes: FILETIME || counter
    mac: bytes
    data: bytes

    @property
    def nonce_time(self) -> datetime | None:
        return filetime_to_datetime(fmt.CcmNonce.parse(self.nonce).time)

    @property
    def nonce_counter(self) -> int:
        return fmt.CcmNonce.parse(self.nonce).counter

    def as_dict(self) -> dict[str, Any]:
        return {"nonce": self.nonce.hex(), "mac": self.mac.hex(), "data_size": len(self.data)}

    def summary(self) -> str:
        return f"nonce {iso_utc(self.nonce_time)} #{self.nonce_counter}, {len(self.data)} bytes"


@dataclass
class TpmValue:
    blob: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"blob_size": len(self.blob)}

    def summary(self) -> str:
        return f"TPM blob, {len(self.blob)} bytes"


@dataclass
class VmkValue:
    guid: str
    creation_time: datetime | None
    protection: int
    children: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"guid": self.guid, "protection": self.protection, "creation_time": iso_utc(self.creation_time)}

    def summary(self) -> str:
        kind = ProtectorType.from_code(self.protection).value
        return f"{self.guid}  protection {self.protection:#06x} ({kind}), created {iso_utc(self.creation_time)}"


@dataclass
class ExternalKeyValue:
    guid: str
    creation_time: datetime | None
    children: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"guid": self.guid, "creation_time": iso_utc(self.creation_time)}

    def summary(self) -> str:
        return f"{self.guid}, created {iso_utc(self.creation_time)}"


@dataclass
class BackupInfoValue:
    """When and where a recovery password was backed up (value type 0x15)."""

    creation_time: datetime | None
    backup_time: datetime | None
    method: int
    flags: int

    @property
    def destinations(self) -> list[str]:
        return backup_destinations(self.method)

    def as_dict(self) -> dict[str, Any]:
        return {"creation_time": iso_utc(self.creation_time), "backup_time": iso_utc(self.backup_time),
                "method": self.method, "destinations": self.destinations, "flags": self.flags}

    def summary(self) -> str:
        return (f"backed up to {' and '.join(self.destinations)} at {iso_utc(self.backup_time)} "
                f"(method {self.method:#06x}, flags {self.flags:#06x})")


@dataclass
class OffsetSizeValue:
    offset: int
    size: int
    extra: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"offset_value": self.offset, "size_value": self.size, "extra": self.extra.hex()}

    def summary(self) -> str:
        return f"offset {self.offset:#x}, size {self.size}"


@dataclass
class RawValue:
    data: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data.hex()}

    def summary(self) -> str:
        return f"{len(self.data)} bytes: {self.data[:16].hex()}{'…' if len(self.data) > 16 else ''}"


Value = Union[
    KeyValue, UnicodeValue, StretchKeyValue, UseKeyValue, AesCcmValue, TpmValue, VmkValue,
    ExternalKeyValue, OffsetSizeValue, BackupInfoValue, RawValue,
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
        return code_name(EntryType, self.entry_type)

    def value_name(self) -> str:
        return code_name(ValueType, self.value_type)

    def as_dict(self) -> dict[str, Any]:
        """The entry as ``info --json`` shows it: header fields, value fields, children."""
        d: dict[str, Any] = {
            "offset": self.offset,
            "size": self.size,
            "entry_type": self.type_name().lower(),
            "value_type": self.value_name().lower(),
            "version": self.version,
            **self.value.as_dict(),
        }
        if self.children:
            d["children"] = [c.as_dict() for c in self.children]
        return d


#: How deep entries may nest. Windows nests three deep (VMK > stretch key > AES-CCM); 64 KiB of
#: crafted entries could nest 5,000 deep and exhaust Python's recursion limit instead.
MAX_NESTING = 16


def _nested(data: bytes, struct, base: int, depth: int) -> tuple[Any, list[Entry]]:
    """A value with a fixed part and nested entries after it."""
    fixed = struct.sizeof()
    return struct.parse(data[:fixed]), parse_entries(data, fixed, len(data), base, depth + 1)


def _parse_value(value_type: int, data: bytes, base: int, depth: int) -> Value:
    """Parse the bytes after an entry header; ``base`` locates them in the block for errors.
    A value too short for its type's fixed part is kept raw."""
    if value_type == ValueType.KEY and len(data) >= fmt.KEY_VALUE_FIXED:
        v = fmt.KeyValue.parse(data)
        return KeyValue(v.method, bytes(v.key))
    if value_type == ValueType.UNICODE:
        return UnicodeValue(data.decode("utf-16-le", "replace").rstrip("\x00"))
    if value_type == ValueType.STRETCH_KEY and len(data) >= fmt.StretchKeyValue.sizeof():
        v, children = _nested(data, fmt.StretchKeyValue, base, depth)
        return StretchKeyValue(v.method, bytes(v.salt), children)
    if value_type == ValueType.USE_KEY and len(data) >= fmt.UseKeyValue.sizeof():
        v, children = _nested(data, fmt.UseKeyValue, base, depth)
        return UseKeyValue(v.method, children)
    if value_type == ValueType.AES_CCM and len(data) >= fmt.AES_CCM_FIXED:
        v = fmt.AesCcmValue.parse(data)
        return AesCcmValue(bytes(v.nonce), bytes(v.mac), bytes(v.data))
    if value_type == ValueType.TPM_ENCODED and len(data) >= fmt.TPM_VALUE_FIXED:
        return TpmValue(bytes(fmt.TpmValue.parse(data).blob))
    if value_type == ValueType.VMK and len(data) >= fmt.VmkValue.sizeof():
        v, children = _nested(data, fmt.VmkValue, base, depth)
        return VmkValue(v.guid, filetime_to_datetime(v.creation_time), v.protection, children)
    if value_type == ValueType.EXTERNAL_KEY and len(data) >= fmt.ExternalKeyValue.sizeof():
        v, children = _nested(data, fmt.ExternalKeyValue, base, depth)
        return ExternalKeyValue(v.guid, filetime_to_datetime(v.creation_time), children)
    if value_type == ValueType.BACKUP_INFO and len(data) >= fmt.BackupInfoValue.sizeof():
        v = fmt.BackupInfoValue.parse(data)
        return BackupInfoValue(filetime_to_datetime(v.creation_time), filetime_to_datetime(v.backup_time),
                               v.method, v.flags)
    if value_type == ValueType.OFFSET_SIZE and len(data) >= fmt.OFFSET_SIZE_FIXED:
        v = fmt.OffsetSizeValue.parse(data)
        return OffsetSizeValue(v.offset, v.size, bytes(v.extra))
    return RawValue(bytes(data))


def parse_entries(buf: bytes, start: int, end: int, base: int = 0, depth: int = 0) -> list[Entry]:
    """Walk entries in ``buf[start:end]`` (``depth``: how deeply they are nested).

    Walking stops at a zero-size entry or when fewer than 8 bytes are left (the format pads with
    zeros); an entry whose declared size runs past ``end``, or that nests more than
    :data:`MAX_NESTING` deep, is corrupt and raises, naming where.
    """
    if depth > MAX_NESTING and end - start >= fmt.ENTRY_HEADER_SIZE:
        raise BadInputError(f"metadata entry at block offset {base + start:#x} is nested more than "
                            f"{MAX_NESTING} deep")
    entries = []
    pos = start
    while end - pos >= fmt.ENTRY_HEADER_SIZE:
        hdr = fmt.EntryHeader.parse(buf[pos : pos + fmt.ENTRY_HEADER_SIZE])
        if hdr.size == 0:
            break
        if hdr.size < fmt.ENTRY_HEADER_SIZE or pos + hdr.size > end:
            raise BadInputError(
                f"metadata entry at block offset {base + pos:#x} has size {hdr.size}, "
                f"which runs past its container (ends at {base + end:#x})"
            )
        data = buf[pos + fmt.ENTRY_HEADER_SIZE : pos + hdr.size]
        try:
            value = _parse_value(hdr.value_type, data, base + pos + fmt.ENTRY_HEADER_SIZE, depth)
        except ConstructError as exc:
            raise BadInputError(f"metadata entry at block offset {base + pos:#x}: {describe_parse_error(exc)}") from None
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
    def backups(self) -> list[BackupInfoValue]:
        """Where Windows says this protector's key was backed up (recovery passwords only)."""
        return [c.value for c in self.entry.children if isinstance(c.value, BackupInfoValue)]

    @property
    def description(self) -> str | None:
        """The UNICODE property, e.g. ``DiskPassword`` or ``ExternalKey``."""
        child = self.entry.child(ValueType.UNICODE)
        return child.value.text if child else None  # type: ignore[union-attr]


@masked_repr("covered")  # holds a suspended volume's clear key
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
        """True/False where the block has a validation structure; None where it has none."""
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
        return code_name(VolumeState, self.current_state)

    @property
    def next_state_name(self) -> str:
        return code_name(VolumeState, self.next_state)

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


def parse_block(buf: bytes, offset: int) -> MetadataBlock:
    """Parse one metadata block read at volume ``offset``. Raises BadInputError naming the problem."""
    where = f"metadata block at volume offset {offset:#x}"
    try:
        hdr = fmt.BlockHeader.parse(buf[: fmt.BLOCK_HEADER_SIZE])
        mh = fmt.MetadataHeader.parse(buf[fmt.BLOCK_HEADER_SIZE : fmt.BLOCK_HEADER_SIZE + fmt.METADATA_HEADER_SIZE])
    except ConstError:
        raise BadInputError(f"no FVE metadata signature at volume offset {offset:#x}") from None
    except ConstructError as exc:
        raise BadInputError(f"{where}: {describe_parse_error(exc)}") from None
    if hdr.version not in (1, 2):
        raise BadInputError(f"{where}: unsupported version {hdr.version}")
    start = fmt.BLOCK_HEADER_SIZE
    end = start + mh.size
    if mh.size < fmt.METADATA_HEADER_SIZE or end > len(buf):
        raise BadInputError(f"{where}: metadata size {mh.size} does not fit the block")
    entries = parse_entries(buf, start + fmt.METADATA_HEADER_SIZE, end)

    crc_stored = None
    validation_entry = None
    covered = bytes(buf[:end])
    # The validation structure (CRC-32, then the block's SHA-256 wrapped with the VMK) follows
    # the bytes the header's size field covers: 16-byte units on v2, bytes on Vista's v1 (the
    # corpus Vista volume: 0x310 for metadata ending at 0x304). A v1 field that does not fit is
    # taken as "no validation" rather than as damage: v1 was never documented to carry one.
    covered_len = hdr.size * 16 if hdr.version == 2 else hdr.size
    fits = end <= covered_len and covered_len + fmt.VALIDATION_HEADER_SIZE <= len(buf)
    if hdr.version == 2 and not fits:
        raise BadInputError(f"{where}: block size field {hdr.size} disagrees with the metadata size")
    if fits:
        covered = bytes(buf[:covered_len])
        val = fmt.Validation.parse(buf[covered_len : covered_len + fmt.VALIDATION_HEADER_SIZE])
        crc_stored = val.crc32
        # The size field is not a reliable size on real volumes; the entry carries its own.
        try:
            found = parse_entries(buf, covered_len + fmt.VALIDATION_HEADER_SIZE,
                                  min(len(buf), covered_len + fmt.VALIDATION_HEADER_SIZE + 0x200))
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
        volume_guid=mh.volume_guid,
        next_nonce=mh.next_nonce,
        encryption_method=mh.encryption_method,
        creation_time=filetime_to_datetime(mh.creation_time),
        entries=entries,
        covered=covered,
        crc_stored=crc_stored,
        validation_entry=validation_entry,
    )
