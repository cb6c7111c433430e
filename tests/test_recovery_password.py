"""The 48-digit recovery password: forms accepted, groups checked, key16 exact."""

from __future__ import annotations

import struct

import pytest

from bitlocker_tools.credentials import recovery_passwords_from
from bitlocker_tools.errors import CredentialFormatError
from bitlocker_tools.recovery_password import RecoveryPassword, group_is_valid, parse

RP = "284867-596541-514998-422114-660297-261613-215424-199408"


def test_key16_is_the_eight_words():
    rp = parse(RP)
    words = struct.unpack("<8H", rp.key16)
    assert [w * 11 for w in words] == [int(g) for g in RP.split("-")]
    assert str(RecoveryPassword.from_key16(rp.key16)) == RP


@pytest.mark.parametrize("text", [RP, RP.replace("-", " "), RP.replace("-", ""), f"  {RP}\n"])
def test_accepted_forms(text):
    assert str(parse(text)) == RP


@pytest.mark.parametrize(
    "text, message",
    [
        ("123456-231453-284867-596541-514998-422114-660297-261613", "groups 1, 2"),
        (RP[:-1] + "9", "group 8"),
        ("720896-596541-514998-422114-660297-261613-215424-199408", "group 1"),  # 11*65536: too big
        (RP[:-7], "42 digits"),
        (RP + "-111111", "54 digits"),
        ("3C116B76", "only digits"),
    ],
)
def test_rejected_with_reason(text, message):
    with pytest.raises(CredentialFormatError, match=message):
        parse(text)


def test_group_check_boundaries():
    assert group_is_valid(0) and group_is_valid(720885)
    assert not group_is_valid(720896) and not group_is_valid(1)


def test_all_keys_in_a_text_file(tmp_path):
    other = "517506-503998-044583-576191-587004-635965-501270-087802"
    f = tmp_path / "keys.txt"
    f.write_text(f"Key ID 3C116B76\n{RP}\nsecond: {other}\nagain {RP}\n")
    assert [str(k) for k in recovery_passwords_from("@" + str(f))] == [RP, other]
