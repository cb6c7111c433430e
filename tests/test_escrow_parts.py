"""The escrow importers' building blocks, called directly: the lenient key finder and its
verdicts, identifiers in every spelling, times, volume types, the column heuristic, decoding,
and the JSON and CSV shapes the samples do not cover."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bitlocker_tools.escrow import load_keys
from bitlocker_tools.escrow.columns import identify_source, map_columns, role_of
from bitlocker_tools.escrow.dispatch import read_bytes
from bitlocker_tools.escrow.record import Locator, guid_from_mixed_endian, normalise_key_id, normalise_volume_type
from bitlocker_tools.escrow.text import decode, find_keys, normalise
from bitlocker_tools.escrow.times import NAIVE_NOTE, parse_time

KEY = "004928-064196-198671-670659-705903-234575-631961-612106"  # the facts file's dummy key


def verdicts(line: str) -> list[tuple[str, str | None, list[int], str | None]]:
    return [(line[k.start:k.end], str(k.password) if k.password else None, k.bad_groups, k.defect)
            for k in find_keys(normalise(line))]


@pytest.mark.parametrize("written", [
    KEY, KEY.replace("-", " "), KEY.replace("-", ""), KEY.replace("-", "."), KEY.replace("-", " - "),
    KEY.replace("-", "\u2013"), KEY.replace("-", "\u2011"), KEY.replace("-", "\u00a0"), KEY.replace("-", "\u2212"),
    "004928064196-198671-670659-705903-234575-631961-612106",  # a dash lost
    "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in KEY),  # full-width digits
])
def test_a_key_however_it_is_written(written):
    [(_, password, bad, defect)] = verdicts(f"key: {written}.")
    assert (password, bad, defect) == (KEY, [], None)


def test_malformed_keys_say_what_is_wrong():
    assert verdicts("004928-064196-198671-670659-705903-234575-631962-612106") == [
        ("004928-064196-198671-670659-705903-234575-631962-612106", None, [7],
         "group 7 fails the check (a multiple of 11 below 720896)")]
    assert verdicts("004928-06419-198671-670659-705903-234575-631961-6121066") == [  # 48 digits, grouped wrong
        ("004928-06419-198671-670659-705903-234575-631961-6121066", None, [2, 8],
         "group 2 has 5 digits, group 8 has 7 digits (each of the 8 groups has 6)")]
    assert verdicts("004928-064196-198671-670659-705903-234575-631961") == [
        ("004928-064196-198671-670659-705903-234575-631961", None, [], "7 groups; a key has 8")]
    assert verdicts("004928-064196-198671-670659-705903-234575-631961-612106-000000")[0][3] == "9 groups; a key has 8"
    assert verdicts("004928-064196-198671-670659-705903-234575-631961-999999")[0][2:] == (
        [8], "group 8 fails the check (a multiple of 11 below 720896)")
    # 48 digits in the wrong groups are regrouped, and a bad group is named after the regrouping
    assert verdicts("0049280641961-98671-670659-705903-234575-631962-612106")[0][2:] == (
        [7], "group 7 fails the check (a multiple of 11 below 720896) (the digits regrouped in sixes: "
             "separators were misplaced)")


def test_not_keys():
    for line in ("2025-03-02-14-07-55", "+1-800-555-0143", "10.0.26100.1234", "S-1-5-21-3623811015-3361044348-30300820-1013",
                 "{12345678-1234-1234-1234-123456789012}", "1234 5678 9012 3456", "0x" + "12" * 32):
        assert verdicts(line) == [], line


def test_two_keys_on_one_line_and_a_key_glued_to_a_number():
    line = f"{KEY} {KEY.replace('-', ' ')} 7-{KEY}"
    assert [v[1] for v in verdicts(line)] == [KEY, KEY, KEY]
    spaced = KEY.replace("-", " ") + "\t\t" + KEY.replace("-", "  ")
    assert [(v[0], v[1]) for v in verdicts(spaced)] == [(KEY.replace("-", " "), KEY), (KEY.replace("-", "  "), KEY)]


def test_key_id_spellings():
    for text in ("F3C95789-ACE1-4954-AC5D-6BAED2EAC902", "{F3C95789-ACE1-4954-AC5D-6BAED2EAC902}",
                 "f3c95789-ace1-4954-ac5d-6baed2eac902", "F3C95789ACE14954AC5D6BAED2EAC902", " {f3c95789-ACE1-4954-ac5d-6baed2eac902} "):
        assert normalise_key_id(text) == "f3c95789-ace1-4954-ac5d-6baed2eac902"
    assert normalise_key_id("F3C95789") == "f3c95789"
    assert normalise_key_id("F3C95789-ACE1-49") == "f3c95789-ace1-49"
    assert normalise_key_id("AC9D5655-F7CA-4D1D-902F") == "ac9d5655-f7ca-4d1d-902f"
    for bad in ("F3C9578", "F3C95789-", "G3C95789", "F3C95789ACE1", "", None, "System.Byte[]"):
        assert normalise_key_id(bad) is None, bad
    assert guid_from_mixed_endian(bytes.fromhex("8957c9f3e1ac5449ac5d6baed2eac902")) == "f3c95789-ace1-4954-ac5d-6baed2eac902"


def test_volume_types():
    for value, want in (("1", "operating_system"), (1, "operating_system"), ("operatingSystemVolume", "operating_system"),
                        ("OSV", "operating_system"), ("OperatingSystem", "operating_system"),
                        ("Operating system drive", "operating_system"), (2, "fixed_data"), ("FDV", "fixed_data"),
                        ("fixedDataVolume", "fixed_data"), ("3", "removable_data"), ("Removable data drive", "removable_data"),
                        ("Data", "Data"), ("4", "4"), ("", None), (None, None)):
        assert normalise_volume_type(value) == want, value


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


def test_times():
    assert parse_time("2025-03-02T22:07:55.0000000Z") == (utc(2025, 3, 2, 22, 7, 55), None)
    assert parse_time("2025-03-02T14:07:55-08:00") == (utc(2025, 3, 2, 22, 7, 55), None)
    assert parse_time("20250302220755.0Z") == (utc(2025, 3, 2, 22, 7, 55), None)
    assert parse_time("/Date(1740953275000)/") == (utc(2025, 3, 2, 22, 7, 55), None)
    assert parse_time("3/2/2025 10:07:55 PM") == (utc(2025, 3, 2, 22, 7, 55), NAIVE_NOTE)
    assert parse_time("3/2/2025 12:07:55 AM") == (utc(2025, 3, 2, 0, 7, 55), NAIVE_NOTE)
    assert parse_time("02.03.2025 22:07:55") == (utc(2025, 3, 2, 22, 7, 55), NAIVE_NOTE)
    assert parse_time("13/2/2025") == (utc(2025, 2, 13), NAIVE_NOTE)
    assert parse_time("2025-03-02 22:07:55.357") == (utc(2025, 3, 2, 22, 7, 55, 357000), NAIVE_NOTE)
    assert parse_time("yesterday") == (None, "unreadable time 'yesterday'")
    assert parse_time("") == (None, None)


def test_column_roles_and_sources():
    assert role_of("msFVE-RecoveryPassword") == ("key", 0)
    assert role_of("RecoveryKeyId") == ("key_id", 0)
    assert role_of("Recovery Key ID") == ("key_id", 0)
    assert role_of("BitLocker Recovery Key") == ("key", 0)
    assert role_of("Key upload date") == ("date", 0)
    assert role_of("Computer Name (FQDN)") == ("computer", 5)
    assert role_of("Notes") is None
    cmap = map_columns(["Id", "RecoveryKeyId", "RecoveryKey", "Name"])
    assert cmap.roles == {"key_id": [1, 0], "key": [2], "ad_name": [3]}
    assert map_columns(["Object", "Name", "Value", "Type"]).has("key") is False  # "Value" is a key only in a keychain
    assert map_columns(["provider", "key_type", "identifier", "value"]).roles["key"] == [3]
    assert identify_source(["Hostname", "KeyID", "RecoveryKey", "Directory"]) == "crowdstrike_csv"
    assert identify_source(["Name", "RecoveryKeyId", "RecoveryKey", "LastUpdateTime"]) == "mbam_csv"
    assert identify_source(["DeviceName", "DeviceId", "RecoveryKeyId", "RecoveryKey"]) == "entra_csv"
    assert identify_source(["Name", "msFVE-RecoveryPassword"]) == "ad_csv"
    assert identify_source(["Device", "DriveType", "KeyId", "RecoveryKey", "CreationTime"]) == "azure_portal_csv"
    assert identify_source(["ComputerName", "Password ID", "Recovery Password"]) == "csv"


def test_decoding():
    text = "Recovery Key:\r\n\t" + KEY
    assert decode(b"\xff\xfe" + text.encode("utf-16-le")) == (text, "utf-16-le-bom")
    assert decode(b"\xfe\xff" + text.encode("utf-16-be")) == (text, "utf-16-be-bom")
    assert decode(text.encode("utf-16-le")) == (text, "utf-16-le")
    assert decode(text.encode("utf-16-be")) == (text, "utf-16-be")
    assert decode(b"\xef\xbb\xbf" + text.encode()) == (text, "utf-8-bom")
    assert decode("Schlüssel".encode("cp1252")) == ("Schlüssel", "cp1252")


def test_locator_text():
    assert str(Locator("k.txt", line=3)) == "k.txt:line 3"
    assert str(Locator("k.csv", row=2, line=3)) == "k.csv:row 2, line 3"
    assert str(Locator("k.ldf", dn="CN=x", line=9)) == "k.ldf:dn CN=x, line 9"
    assert str(Locator("k.json", json_path="$.value[0].key")) == "k.json:$.value[0].key"
    assert str(Locator("k.bek")) == "k.bek"


def _json(doc: object) -> list:
    return read_bytes(json.dumps(doc).encode(), "g.json").items


def test_graph_array_of_pages_powershell_names_and_a_missing_last_page():
    pages = [{"value": [{"id": "F3C95789-ACE1-4954-AC5D-6BAED2EAC902", "key": KEY, "volumeType": 3}],
              "@odata.nextLink": "https://graph.microsoft.com/v1.0/next"},
             {"value": [{"Id": "fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e", "Key": KEY, "VolumeType": "fixedDataVolume",
                         "CreatedDateTime": "/Date(1740953275000)/", "DeviceId": "9bb2aa25-947e-41c2-b0c2-74cf6edd3c5d"}],
              "@odata.nextLink": "https://graph.microsoft.com/v1.0/next2"}]
    items = _json(pages)
    records, problems = items[:2], items[2:]
    assert [(r.locator.json_path, r.key_id, r.volume_type, r.created_at) for r in records] == [
        ("$[0].value[0].key", "f3c95789-ace1-4954-ac5d-6baed2eac902", "removable_data", None),
        ("$[1].value[0].Key", "fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e", "fixed_data", utc(2025, 3, 2, 22, 7, 55))]
    assert [(p.locator.json_path, p.message) for p in problems] == [
        ("$.@odata.nextLink", "the last page has @odata.nextLink: the pages after it were not fetched")]


def test_legacy_azure_portal_json():
    doc = {"displayName": "LT-0042", "bitLockerKey": [
        {"keyIdentifier": "f3c95789-ace1-4954-ac5d-6baed2eac902", "recoveryKey": KEY, "driveType": "Operating system drive",
         "creationTime": "2019-05-04T10:00:00Z"}]}
    [r] = _json(doc)
    assert (r.source_type, r.locator.json_path, r.computer_name, r.key_id, r.volume_type, r.created_at) == (
        "azure_portal_json", "$.bitLockerKey[0].recoveryKey", "LT-0042", "f3c95789-ace1-4954-ac5d-6baed2eac902",
        "operating_system", utc(2019, 5, 4, 10))


def test_invalid_json_is_read_as_text():
    items = read_bytes(b'{"value": [{"id": "f3c95789-ace1-4954-ac5d-6baed2eac902",\n "key": "' + KEY.encode() + b'"',
                       "cut.json").items
    assert [getattr(i, "message", None) for i in items] == [
        "not valid JSON (Expecting ',' delimiter): read as text instead", None]
    assert (items[1].source_type, items[1].locator.line, items[1].key_id) == (
        "text", 2, "f3c95789-ace1-4954-ac5d-6baed2eac902")


def test_csv_shapes(tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_text("Device,DriveType,KeyId,RecoveryKey,CreationTime\n"
                    f"LT-0042,Operating system drive,f3c95789-ace1-4954-ac5d-6baed2eac902,{KEY},2019-05-04T10:00:00Z\n"
                    f'LT-0043,Fixed data drive,"unterminated,{KEY}\n')
    result = load_keys([str(path)])
    assert [(r.source_type, r.locator.row, r.computer_name, r.volume_type, r.key_id) for r in result.records] == [
        ("azure_portal_csv", 1, "LT-0042", "operating_system", "f3c95789-ace1-4954-ac5d-6baed2eac902")]
    assert [(p.locator.row, p.message) for p in result.problems] == [
        (2, "no key in this row (computer LT-0043); a key stands under KeyId (a quote or separator out of place?)")]


def test_csv_type_name_instead_of_keys(tmp_path):
    path = tmp_path / "keys.csv"
    path.write_text('"ComputerName","RecoveryPassword"\n"PC09","System.Object[]"\n')
    assert [p.message for p in load_keys([str(path)]).problems] == [
        "RecoveryPassword holds 'System.Object[]': PowerShell wrote the type's name instead of the keys (several "
        "values in one property); export them joined (computer PC09)"]


def test_get_adobject_format_list(tmp_path):
    path = tmp_path / "fl.txt"
    path.write_text("\nDistinguishedName      : CN=2025-03-02T14:07:55-08:00{F3C95789-ACE1-4954-AC5D-6BAED2EAC902},CN=PC01,"
                    "OU=WS,DC=corp,DC=example\nmsFVE-RecoveryPassword : " + KEY + "\n"
                    "Name                   : 2025-03-02T14:07:55-08:00{F3C95789-ACE1-4954-AC5D-6BAED2EAC902}\n"
                    "ObjectClass            : msFVE-RecoveryInformation\n")
    [r] = load_keys([str(path)]).records
    assert (r.source_type, r.locator.line, r.key_id, r.computer_name, r.created_at) == (
        "ad_csv", 3, "f3c95789-ace1-4954-ac5d-6baed2eac902", "PC01", utc(2025, 3, 2, 22, 7, 55))


def test_other_files_with_password_columns_are_not_escrow(tmp_path):
    (tmp_path / "vault.csv").write_text("name,url,username,password\nmail,https://mail.example,jd,hunter2\n")
    (tmp_path / "config.json").write_text('{"db": {"name": "evidence", "password": "hunter2"}}\n')
    (tmp_path / "table.txt").write_text("Name   Password\n----   --------\nsvc01  hunter2\n")
    result = load_keys([str(tmp_path)])
    assert (result.records, result.problems) == ([], [])
    assert [(f.path.rsplit("/", 1)[1], f.format, f.records) for f in result.files] == [
        ("config.json", "text", 0), ("table.txt", "text", 0), ("vault.csv", "text", 0)]


def test_a_named_pipe_is_read(tmp_path):
    import os
    import threading

    fifo = tmp_path / "keys.pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as fh:
            fh.write(f"{{F3C95789-ACE1-4954-AC5D-6BAED2EAC902}}:{KEY}\n")

    writer = threading.Thread(target=write)
    writer.start()
    result = load_keys([str(fifo)])
    writer.join()
    assert [(r.key_id, str(r.recovery_password)) for r in result.records] == [
        ("f3c95789-ace1-4954-ac5d-6baed2eac902", KEY)]
