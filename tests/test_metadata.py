"""The metadata parser, called directly: blocks of real Windows volumes parse into what the
corpus manifest says, damage is one line naming where, and values describe themselves."""

from __future__ import annotations

import struct

import pytest
from conftest import volume_file

from bitlocker_tools.errors import BadInputError
from bitlocker_tools.format.constants import EncryptionMethod, EntryType, ProtectorType, ValueType, code_name
from bitlocker_tools.metadata import (
    AesCcmValue,
    KeyValue,
    RawValue,
    StretchKeyValue,
    UnicodeValue,
    VmkValue,
    parse_block,
    parse_entries,
)

BLOCK = 0x10000


def _first_block(path) -> tuple[int, bytes]:
    raw = path.read_bytes()
    offset = struct.unpack_from("<Q", raw, 176)[0]  # the Win7+ boot sector's first block offset
    return offset, raw[offset : offset + BLOCK]


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if volume_file(v) == name)


@pytest.mark.parametrize("name", ["recovery_password.bin", "aes_128_diffuser.bin", "suspended.bin", "startup_key.bin"])
def test_real_block_parses_to_the_manifest(name, corpus_dir, manifest):
    expected = _entry(manifest, name)
    offset, raw = _first_block(corpus_dir / name)
    md = parse_block(raw, offset)
    assert md.offset == offset and md.version == expected["metadata_version"] == 2
    assert md.volume_guid == expected["volume_guid"]
    assert md.method == EncryptionMethod[expected["method"]]
    assert md.description == expected["description"]
    assert {(p.guid, p.type.value) for p in md.protectors} == {(p["id"], p["type"]) for p in expected["protectors"]}
    assert md.crc_valid is True
    assert md.validation_entry is not None and isinstance(md.validation_entry.value, AesCcmValue)
    assert md.fvek_entry is not None
    # every protector has the wrapped VMK as a direct child
    for p in md.protectors:
        assert p.entry.child(ValueType.AES_CCM) is not None
        assert p.key_id == p.guid[:8].upper()


def test_recovery_password_protector_nests_its_stretch_key(corpus_dir):
    offset, raw = _first_block(corpus_dir / "recovery_password.bin")
    md = parse_block(raw, offset)
    (rp,) = [p for p in md.protectors if p.type == ProtectorType.RECOVERY_PASSWORD]
    assert rp.description == "DiskPassword"
    stretch = rp.entry.child(ValueType.STRETCH_KEY)
    assert isinstance(stretch.value, StretchKeyValue) and len(stretch.value.salt) == 16
    assert [c.value_type for c in stretch.children] == [ValueType.AES_CCM, ValueType.AES_CCM]
    assert [e.value_type for e in rp.entry.walk()][:2] == [ValueType.VMK, ValueType.UNICODE]


def test_crc_mismatch_is_seen(corpus_dir):
    offset, raw = _first_block(corpus_dir / "aes_128.bin")
    damaged = bytearray(raw)
    damaged[64 + 48 + 8] ^= 0x01  # inside the first entry, the CRC no longer matches
    md = parse_block(bytes(damaged), offset)
    assert md.crc_valid is False


@pytest.mark.parametrize(
    "patch, message",
    [
        ((0, b"-FVE-XX-"), "no FVE metadata signature at volume offset 0x"),
        ((10, struct.pack("<H", 3)), "unsupported version 3"),
        ((64, struct.pack("<I", 0xFFFFFF)), "does not fit the block"),
        ((8, struct.pack("<H", 1)), "block size field 1 disagrees"),
    ],
)
def test_damaged_header_is_one_line_naming_the_block(patch, message, corpus_dir):
    offset, raw = _first_block(corpus_dir / "aes_128.bin")
    buf = bytearray(raw)
    at, data = patch
    buf[at : at + len(data)] = data
    with pytest.raises(BadInputError) as info:
        parse_block(bytes(buf), offset)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert f"{offset:#x}" in text


def test_short_block_is_one_line():
    with pytest.raises(BadInputError) as info:
        parse_block(b"-FVE-FS-" + bytes(20), 0x1000)
    assert "\n" not in str(info.value) and "0x1000" in str(info.value)


def _entry_bytes(entry_type: int, value_type: int, payload: bytes, version: int = 1) -> bytes:
    return struct.pack("<4H", 8 + len(payload), entry_type, value_type, version) + payload


def test_entry_walk_stops_at_zero_size_and_keeps_unknown_types():
    unknown = _entry_bytes(0x0042, 0x0077, b"\x01\x02\x03")
    text = _entry_bytes(EntryType.DESCRIPTION, ValueType.UNICODE, "PC C:\0".encode("utf-16-le"))
    buf = unknown + text + bytes(8) + _entry_bytes(EntryType.DESCRIPTION, ValueType.UNICODE, b"x\0")
    entries = parse_entries(buf, 0, len(buf))
    assert [type(e.value) for e in entries] == [RawValue, UnicodeValue]
    assert entries[0].value.data == b"\x01\x02\x03" and entries[0].type_name() == "0x0042"
    assert entries[1].value.text == "PC C:" and entries[1].offset == len(unknown)


def test_entry_running_past_its_container_names_its_offset():
    buf = _entry_bytes(EntryType.DESCRIPTION, ValueType.UNICODE, b"a\0b\0") + struct.pack("<4H", 200, 7, 2, 1)
    with pytest.raises(BadInputError, match=r"block offset 0x1c \(?.*size 200"):
        parse_entries(buf, 0, len(buf), base=0x10)


def test_value_too_short_for_its_type_is_kept_raw():
    entries = parse_entries(_entry_bytes(0, ValueType.VMK, b"\x00" * 10), 0, 18)
    assert isinstance(entries[0].value, RawValue)


def test_values_describe_themselves_without_key_bytes():
    key = KeyValue(0x2003, bytes(range(32)))
    assert key.as_dict() == {"method": 0x2003, "key_size": 32}
    assert key.summary() == "method 0x2003, 32-byte key"
    assert bytes(range(32)).hex() not in str(key.as_dict()) + key.summary()
    ccm = AesCcmValue(bytes(8) + struct.pack("<I", 7), b"\xaa" * 16, b"\xbb" * 44)
    assert ccm.nonce_counter == 7 and ccm.nonce_time is None
    assert ccm.as_dict() == {"nonce": "00" * 8 + "07000000", "mac": "aa" * 16, "data_size": 44}
    assert ccm.summary() == "nonce None #7, 44 bytes"
    vmk = VmkValue("3c116b76-c67b-484e-b439-ce2ed68b561e", None, 0x0800)
    assert "recovery_password" in vmk.summary() and vmk.as_dict()["protection"] == 0x0800


def test_entry_as_dict_nests_children(corpus_dir):
    offset, raw = _first_block(corpus_dir / "recovery_password.bin")
    md = parse_block(raw, offset)
    vmk = next(e for e in md.entries if e.entry_type == EntryType.VMK)
    d = vmk.as_dict()
    assert d["entry_type"] == "vmk" and d["value_type"] == "vmk" and d["guid"] == vmk.value.guid
    assert [c["value_type"] for c in d["children"]] == [c.value_name().lower() for c in vmk.children]


def test_code_name_shows_unknown_codes():
    assert code_name(EntryType, 2) == "VMK"
    assert code_name(EntryType, 0x1234) == "0x1234"
