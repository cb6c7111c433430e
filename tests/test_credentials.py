"""Credentials as the examiner gives them, called directly: literals, stdin, files, the
environment, Windows' own .TXT and .BEK files, and the FVEK file of dislocker."""

from __future__ import annotations

import io
import sys

import pytest

from bitlocker_tools.credentials import collect, decode_text, key_bytes_from
from bitlocker_tools.errors import BadInputError, CredentialFormatError
from bitlocker_tools.format.constants import EncryptionMethod
from bitlocker_tools.keyfiles import fvek_file, is_fvek_file, parse_bek, parse_fvek_file

RP = "284867-596541-514998-422114-660297-261613-215424-199408"
OTHER_RP = "517506-503998-044583-576191-587004-635965-501270-087802"
#: tests/corpus_manifest.json: the startup-key protectors of startup_key.bin and recovery_key.bin
STARTUP_KEY_PROTECTORS = {"startup_key.bek": "b3411a58-3400-420a-8b7e-9b5f706425c0",
                          "recovery_key.bek": "99b0081a-60b6-47e4-8482-dea46ee1891d"}


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return feed


def test_literal_stdin_and_file_give_the_same_password(tmp_path, stdin):
    (tmp_path / "pw").write_text("password12!@\n")
    stdin(b"password12!@\r\n")
    from_stdin = collect(password=["-"], use_env=False).passwords
    assert collect(password=["password12!@"], use_env=False).passwords == ["password12!@"]
    assert collect(password=["@" + str(tmp_path / "pw")], use_env=False).passwords == ["password12!@"]
    assert from_stdin == ["password12!@"]


def test_windows_recovery_key_txt_every_key(tmp_path):
    txt = tmp_path / "BitLocker Recovery Key 3C116B76-C67B-484E-B439-CE2ED68B561E.TXT"
    body = (f"BitLocker Drive Encryption recovery key\r\n\r\nIdentifier:\r\n\t3C116B76-C67B-484E-B439-CE2ED68B561E\r\n"
            f"Recovery Key:\r\n\t{OTHER_RP}\r\n\r\nSecond key:\r\n\t{RP}\r\n")
    txt.write_bytes(b"\xff\xfe" + body.encode("utf-16-le"))
    creds = collect(recovery_password=["@" + str(txt)], use_env=False)
    assert [str(rp) for rp in creds.recovery_passwords] == [OTHER_RP, RP]


def test_malformed_recovery_password_names_the_group():
    with pytest.raises(CredentialFormatError, match="group 8"):
        collect(recovery_password=[RP[:-1] + "0"], use_env=False)


def test_environment_only_without_options(monkeypatch):
    monkeypatch.setenv("BITLOCKER_RECOVERY_PASSWORD", RP)
    monkeypatch.setenv("BITLOCKER_PASSWORD", "from-env")
    both = collect()
    assert [str(r) for r in both.recovery_passwords] == [RP] and both.passwords == ["from-env"]
    explicit = collect(password=["given"])
    assert explicit.passwords == ["given"] and explicit.recovery_passwords == []
    monkeypatch.setenv("BITLOCKER_RECOVERY_PASSWORD", "garbage")
    with pytest.raises(CredentialFormatError, match="BITLOCKER_RECOVERY_PASSWORD"):
        collect()
    assert collect(use_env=False).is_empty()


@pytest.mark.parametrize("name", sorted(STARTUP_KEY_PROTECTORS))
def test_bek_files_of_the_corpus(name, corpus_dir, stdin):
    raw = (corpus_dir / name).read_bytes()
    key = parse_bek(raw, name)
    assert key.guid == STARTUP_KEY_PROTECTORS[name] and len(key.key) == 32
    assert collect(bek=[str(corpus_dir / name)], use_env=False).startup_keys[0].key == key.key
    stdin(raw)
    assert collect(bek=["-"], use_env=False).startup_keys[0].key == key.key


@pytest.mark.parametrize("raw, message", [(b"short", "too short"), (bytes(200), "no 48-byte"),
                                          (b"\x40\0\0\0\x01\0\0\0\x30\0\0\0" + bytes(52), "no 32-byte external key")])
def test_not_a_bek(raw, message):
    with pytest.raises(BadInputError, match=message):
        parse_bek(raw, "x.BEK")


def test_missing_bek_names_the_file(tmp_path):
    with pytest.raises(BadInputError, match="no-such.BEK"):
        collect(bek=[str(tmp_path / "no-such.BEK")], use_env=False)


def test_key_bytes_forms(tmp_path):
    key = bytes(range(32))
    assert key_bytes_from(key.hex(), "FVEK") == key
    assert key_bytes_from(key[:16].hex().upper() + ":" + key[16:].hex(), "FVEK") == key
    with pytest.raises(CredentialFormatError, match="odd number"):
        key_bytes_from("abc", "VMK")
    with pytest.raises(CredentialFormatError, match="hex"):
        key_bytes_from("not hex", "VMK")
    raw = tmp_path / "raw.key"
    raw.write_bytes(key)
    assert key_bytes_from("@" + str(raw), "VMK") == key
    with pytest.raises(CredentialFormatError, match="VMK: expected 32 bytes"):
        collect(vmk="00" * 16, use_env=False)


def test_fvek_file_of_dislocker(tmp_path):
    """dislocker's -k file: u16 method, then the key padded to 64 bytes (66 bytes)."""
    fvek = bytes(range(32))
    data = fvek_file(EncryptionMethod.AES_XTS_128, fvek)
    assert len(data) == 66 and data[:2] == b"\x04\x80" and data[2:34] == fvek and not any(data[34:])
    assert is_fvek_file(data) and not is_fvek_file(b"\x09\x80" + bytes(64)) and not is_fvek_file(fvek)
    assert parse_fvek_file(data) == (EncryptionMethod.AES_XTS_128, fvek)
    assert parse_fvek_file(b"\x04\x80" + fvek) == (EncryptionMethod.AES_XTS_128, fvek)  # unpadded, 34 bytes
    path = tmp_path / "fvek.bin"
    path.write_bytes(data)
    assert collect(fvek="@" + str(path), use_env=False).fvek == fvek


@pytest.mark.parametrize("raw", [b"\xff\xfeh\0i\0", b"\xef\xbb\xbfhi", b"h\0i\0", b"hi"])
def test_decode_text_of_windows_files(raw):
    assert decode_text(raw) == "hi"
