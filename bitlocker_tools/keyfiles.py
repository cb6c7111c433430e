"""Key files: the ``.BEK`` startup/recovery key and the 66-byte FVEK file.

A ``.BEK`` is what Windows writes to a USB stick for a startup-key protector (and for a "recovery
key" saved to a file): a header laid out as the metadata header, then an EXTERNAL KEY entry that
names its protector and holds the 32-byte key. The FVEK file is dislocker's ``-k`` input and what
memory-forensics plugins write: the encryption method, then the key material.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import ConstructError

from .errors import BadInputError, describe_parse_error
from .format.constants import EncryptionMethod, ValueType
from .format.keyfiles import FVEK_FILE_KEY_SIZE, FVEK_FILE_SIZE, BekHeader, FvekFile, FvekFileMethod
from .metadata import ExternalKeyValue, KeyValue, parse_entries
from .secret import masked_repr

BEK_HEADER_SIZE = BekHeader.sizeof()


@masked_repr("key")
@dataclass(frozen=True)
class StartupKey:
    """The 32-byte external key from a .BEK file, and the protector GUID it belongs to."""

    guid: str
    key: bytes
    path: str


def parse_bek(raw: bytes, path: str = "BEK file") -> StartupKey:
    """The startup key in a .BEK file; BadInputError naming ``path`` when it is not one."""
    if len(raw) < BEK_HEADER_SIZE + 8:
        raise BadInputError(f"{path}: not a .BEK file: too short ({len(raw)} bytes)")
    header = BekHeader.parse(raw[:BEK_HEADER_SIZE])
    if header.header_size != BEK_HEADER_SIZE:
        raise BadInputError(f"{path}: not a .BEK file: no 48-byte BitLocker key-file header")
    try:
        entries = parse_entries(raw, BEK_HEADER_SIZE, min(len(raw), header.size))
    except BadInputError as exc:
        raise BadInputError(f"{path}: not a usable .BEK file: {exc}") from None
    for entry in entries:
        if isinstance(entry.value, ExternalKeyValue):
            for child in entry.children:
                if child.value_type == ValueType.KEY and isinstance(child.value, KeyValue):
                    if len(child.value.key) == 32:
                        return StartupKey(entry.value.guid, child.value.key, path)
    raise BadInputError(f"{path}: no 32-byte external key in the .BEK file")


def is_fvek_file(raw: bytes) -> bool:
    """Whether ``raw`` has the FVEK file's layout: a known method, then the key (34 or 66 bytes:
    dislocker 0.7.3 writes 66, older tools wrote the key unpadded)."""
    if len(raw) not in (FvekFileMethod.sizeof() + 32, FVEK_FILE_SIZE):
        return False
    method = FvekFileMethod.parse(raw).method
    return method in {int(m) for m in EncryptionMethod if m != EncryptionMethod.NONE}


def parse_fvek_file(raw: bytes) -> tuple[EncryptionMethod, bytes]:
    """The method and the FVEK of an FVEK file (see :func:`is_fvek_file`), the padding dropped:
    the key is as long as the method's FVEK datum."""
    try:
        parsed = FvekFile.parse(raw.ljust(FVEK_FILE_SIZE, b"\0"))
    except ConstructError as exc:  # pragma: no cover - ljust makes every input long enough
        raise BadInputError(f"FVEK file: {describe_parse_error(exc)}") from None
    method = EncryptionMethod(parsed.method)
    if len(raw) - FvekFileMethod.sizeof() < method.key_material_size:
        raise BadInputError(f"FVEK file: {len(raw) - FvekFileMethod.sizeof()} bytes of key for {method.label}, which takes "
                            f"{method.key_material_size}")
    return method, bytes(parsed.key[: method.fvek_datum_size])


def fvek_file(method: EncryptionMethod, fvek: bytes) -> bytes:
    """The 66-byte FVEK file for ``method``: the method, then the FVEK datum's key zero-padded."""
    return FvekFile.build(dict(method=int(method), key=fvek.ljust(FVEK_FILE_KEY_SIZE, b"\0")))
