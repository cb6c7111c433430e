"""The escrow importers on the samples in tests/escrow_samples/: for each file, the exact records
(kind, key, identifier, malformed groups, computer, volume, type, time, notes) and where each was
found, and the exact problems; then the dispatcher on the whole directory, standard input, and a
walk with files that cannot be read."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bitlocker_tools.escrow import LoadedFile, load_keys
from bitlocker_tools.escrow.record import EscrowRecord

SAMPLES = Path(__file__).resolve().parent / "escrow_samples"
NAIVE = "no time zone given: read as UTC"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def view(r: EscrowRecord) -> dict:
    """A record as plain values, every field the importers fill."""
    return {
        "at": {k: v for k, v in r.locator.as_dict().items() if k != "file"},
        "kind": r.kind, "source": r.source_type, "key_id": r.key_id,
        "password": str(r.recovery_password) if r.recovery_password else None,
        "raw": r.raw, "bad_groups": r.bad_groups, "defect": r.defect,
        "secret": r.secret.hex() if r.secret is not None else None,
        "computer": r.computer_name, "device_id": r.device_id, "volume_guid": r.volume_guid,
        "volume_type": r.volume_type, "created": r.created_at, "backup": r.backup_type,
        "method": r.encryption_method, "notes": r.notes,
    }


def rec(at: dict, source: str, kind: str = "recovery_password", **fields) -> dict:
    """The expected view: ``fields`` over the defaults of an empty record."""
    out = {"at": at, "kind": kind, "source": source, "key_id": None, "password": None, "raw": None,
           "bad_groups": [], "defect": None, "secret": None, "computer": None, "device_id": None,
           "volume_guid": None, "volume_type": None, "created": None, "backup": None, "method": None, "notes": []}
    unknown = set(fields) - set(out)
    assert not unknown, unknown
    out.update(fields)
    return out


def load(rel: str):
    """(records as views, problems as (locator dict, message)) of one sample, and the file check."""
    path = str(SAMPLES / rel)
    result = load_keys([path])
    assert all(r.locator.file == path for r in result.records)
    assert all(p.locator.file == path for p in result.problems)
    problems = [({k: v for k, v in p.locator.as_dict().items() if k != "file"}, p.message) for p in result.problems]
    return [view(r) for r in result.records], problems


# --- the Windows recovery-key TXT ---------------------------------------------------------------------

WIN8 = "txt/BitLocker Recovery Key FCA87CBC-0C3F-4E4B-AEAA-60652BD84D6E.TXT"
WIN7 = "txt/BitLocker Recovery Key 69A4AF99-EC1C-45E2-81C1-CDFE91F2AAA3.TXT"
GERMAN = "txt/BitLocker-Wiederherstellungsschlüssel 6AE111CF-030F-4281-A200-CA68D01A329D.TXT"
RESAVED = "txt/BitLocker Recovery Key FA89CB05-3D26-4911-AFF1.TXT"


def test_txt_samples_are_what_windows_writes():
    for rel in (WIN8, WIN7, GERMAN):
        raw = (SAMPLES / rel).read_bytes()
        assert raw[:2] == b"\xff\xfe" and "\r\n".encode("utf-16-le") in raw
    assert "\t".encode("utf-16-le") in (SAMPLES / WIN8).read_bytes()
    assert "Bezeichner:".encode("utf-16-le") in (SAMPLES / GERMAN).read_bytes()
    resaved = (SAMPLES / RESAVED).read_bytes()
    assert resaved[:3] == b"\xef\xbb\xbf" and "\u2013".encode() in resaved and b"\r\n" in resaved


def test_windows_8_txt_utf16():
    assert load(WIN8) == ([rec({"line": 13}, "windows_txt", key_id="fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e",
                               password="432487-098494-047421-008052-377597-639837-384846-489060")], [])


def test_windows_7_txt_takes_the_full_identification():
    assert load(WIN7) == ([rec({"line": 11}, "windows_txt", key_id="69a4af99-ec1c-45e2-81c1-cdfe91f2aaa3",
                               password="650903-546073-324522-109230-091652-199815-055473-038632",
                               notes=["Windows 7 layout (16-character recovery key identification)"])], [])


def test_german_txt_is_found_without_its_wording():
    assert load(GERMAN) == ([rec({"line": 13}, "windows_txt", key_id="6ae111cf-030f-4281-a200-ca68d01a329d",
                                 password="480909-362967-351142-075922-671484-601139-313588-528935")], [])


def test_resaved_txt_utf8_bom_with_en_dashes():
    assert load(RESAVED) == ([rec({"line": 13}, "windows_txt", key_id="fa89cb05-3d26-4911-aff1-42daeaed7dbb",
                                  password="189442-044616-409662-302962-697125-688171-123068-596992")], [])


def test_retyped_txt_with_a_mistyped_group():
    assert load("txt/recovery key laptop.txt") == ([rec(
        {"line": 13}, "windows_txt", key_id="34aa25ae-3b1f-4388-adce-e358db496f47",
        raw="471746-692307-181105-175604-418946-297176-493383-417450", bad_groups=[3],
        defect="group 3 fails the check (a multiple of 11 below 720896)")], [])


def test_windows_7_file_with_only_the_16_characters(tmp_path):
    text = ("BitLocker Drive Encryption Recovery Key\r\n\r\nRecovery key identification: 69A4AF99-EC1C-45\r\n\r\n"
            "BitLocker Recovery Key:\r\n650903-546073-324522-109230-091652-199815-055473-038632\r\n")
    path = tmp_path / "key.txt"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    [r] = load_keys([str(path)]).records
    assert (r.source_type, r.key_id, r.locator.line, r.full_key_id) == ("windows_txt", "69a4af99-ec1c-45", 6, False)


def test_txt_file_name_is_only_a_hint(tmp_path):
    body = "Recovery Key:\r\n\r\n\t432487-098494-047421-008052-377597-639837-384846-489060\r\n"
    named = tmp_path / "BitLocker Recovery Key AC9D5655-F7CA-4D1D-902F.TXT"
    named.write_bytes(b"\xff\xfe" + body.encode("utf-16-le"))
    [r] = load_keys([str(named)]).records
    assert (r.key_id, r.notes) == ("ac9d5655-f7ca-4d1d-902f", ["identifier taken from the file name"])
    other = tmp_path / "BitLocker Recovery Key AC9D5655-F7CA-4D1D-902F (copy).TXT"
    other.write_bytes(b"\xff\xfe" + ("Identifier:\r\n\tFCA87CBC-0C3F-4E4B-AEAA-60652BD84D6E\r\n" + body).encode("utf-16-le"))
    [r] = load_keys([str(other)]).records
    assert r.key_id == "fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e"
    assert r.notes == ["the file name names identifier ac9d5655-f7ca-4d1d-902f, the file fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e"]


# --- the Microsoft account page ------------------------------------------------------------------------

MSA_ROWS = [
    ("7a3f09c2", "463837-581691-552596-147598-705463-200013-445786-098076", "DESKTOP-7Q2M4KD", "operating_system",
     utc(2025, 3, 2)),
    ("7a3f09c2", "286231-468809-257653-442563-037543-291544-495847-188738", "LAPTOP-H8N3RZ1", "operating_system",
     utc(2024, 11, 17)),
    ("0c3c2ffe", "237655-110385-063393-345598-023309-577885-556820-451264", "DESKTOP-7Q2M4KD", "fixed_data",
     utc(2025, 3, 2)),
    ("9e9883d8", "486739-669064-226974-618541-376937-406593-534974-426261", "SURFACE-OLD", "operating_system",
     utc(2021, 6, 9)),
]


def _msa(source: str, ats: list[dict]) -> list[dict]:
    return [rec(at, source, key_id=k, password=p, computer=c, volume_type=t, created=d,
                notes=[f"Key upload date: {NAIVE}"]) for at, (k, p, c, t, d) in zip(ats, MSA_ROWS)]


def test_msa_page_pasted_as_tab_separated_text():
    assert load("msa/myrecoverykey-paste.txt") == (
        _msa("msa_text", [{"row": 1, "line": 7}, {"row": 2, "line": 8}, {"row": 3, "line": 9}, {"row": 4, "line": 10}]),
        [])


def test_msa_page_saved_as_html():
    assert load("msa/myrecoverykey.html") == (
        _msa("msa_html", [{"row": 1, "line": 22}, {"row": 2, "line": 29}, {"row": 3, "line": 36}, {"row": 4, "line": 43}]),
        [])


def test_two_different_keys_share_an_8_digit_key_id():
    records = [r for r in load_keys([str(SAMPLES / "msa/myrecoverykey-paste.txt")]).records if r.key_id == "7a3f09c2"]
    assert len(records) == 2 and not any(r.full_key_id for r in records)
    assert len({str(r.recovery_password) for r in records}) == 2


def test_msa_page_in_german_is_read_by_the_shape_of_its_cells():
    assert load("msa/wiederherstellungsschluessel-kopie.txt") == ([rec(
        {"line": 4}, "msa_text", key_id="4826c340", password="503448-475134-454696-444059-228503-601117-209429-266321",
        computer="DESKTOP-K3M9QX", created=utc(2025, 3, 2), notes=[f"Key upload date: {NAIVE}"])], [])


# --- Active Directory ------------------------------------------------------------------------------------


def test_ad_powershell_51_csv_with_type_line_byte_array_and_two_keys_in_one_row():
    raw = (SAMPLES / "ad/ps51-export-csv.csv").read_bytes()
    assert raw.startswith(b"#TYPE ") and b"System.Byte[]" in raw
    assert load("ad/ps51-export-csv.csv") == ([
        rec({"row": 1, "line": 3}, "ad_csv", key_id="19b1b2b0-d623-4e49-b4bc-8a7c4cf70c75",
            password="503635-630234-311025-640332-340846-691911-252901-626450", computer="PC01",
            created=utc(2024, 6, 11, 15, 15, 42), notes=["key 1 of 2 in this row"]),
        rec({"row": 1, "line": 3}, "ad_csv", key_id="f7e107ea-c590-4cbc-9ed5-8113b2241fed",
            password="049302-414656-594088-570570-456016-252879-322113-152504", computer="PC01",
            created=utc(2025, 3, 2, 22, 7, 55), notes=["key 2 of 2 in this row"]),
        rec({"row": 2, "line": 4}, "ad_csv", key_id="73906277-3090-4a22-bb1f-437ec0fecd1d",
            password="224675-007458-455092-491623-109912-712459-148830-330099", computer="PC02",
            created=utc(2025, 1, 20, 18, 2, 11)),
    ], [({"row": 3, "line": 5}, "no key in this row (computer PC03)")])


def test_ad_csv_written_as_utf16_by_powershell_51_with_semicolons():
    raw = (SAMPLES / "ad/keys-de-utf16.csv").read_bytes()
    assert raw[:2] == b"\xff\xfe" and ";".encode("utf-16-le") in raw
    assert load("ad/keys-de-utf16.csv") == ([
        rec({"row": 1, "line": 2}, "ad_csv", key_id="cb64ae39-3606-4ef0-bd95-036bb809b667",
            password="720434-114730-013618-256135-002959-334543-496309-546656", computer="LAPTOP-MÜLLER",
            created=utc(2025, 2, 14, 8, 30)),
        rec({"row": 2, "line": 3}, "ad_csv", key_id="96b340c6-7ce6-48c0-8160-8595b1184340",
            password="301697-642246-403348-451044-659208-220726-417483-188276", computer="PC05",
            created=utc(2023, 9, 5, 14, 45, 10)),
    ], [])


def test_ldifde_export_mixed_endian_guids_folded_dn_and_base64_dn():
    raw = (SAMPLES / "ad/ldifde-export.ldf").read_bytes()
    assert b"\r\n U=Workstations" in raw and b"dn:: " in raw and b"msFVE-RecoveryGuid:: t79OegV4hka3X0J05KhU1w==" in raw
    assert load("ad/ldifde-export.ldf") == ([
        rec({"dn": "CN=2025-03-02T14:07:55-08:00{7A4EBFB7-7805-4686-B75F-4274E4A854D7},CN=PC11,OU=Workstations,"
                   "OU=Headquarters,DC=corp,DC=example", "line": 5}, "ad_ldif",
            key_id="7a4ebfb7-7805-4686-b75f-4274e4a854d7",
            password="113333-674718-537493-406791-491315-496518-210430-242022", computer="PC11",
            volume_guid="3dd75486-eb28-4e93-bfc5-ca92381974ef", created=utc(2025, 3, 2, 22, 7, 55)),
        rec({"dn": "CN=2024-12-01T11:20:33+01:00{1AA0F72D-CEC0-4AC7-B643-C89DD2214CF7},CN=LAPTOP-JOSÉ,OU=Laptops,"
                   "DC=corp,DC=example", "line": 13}, "ad_ldif", key_id="1aa0f72d-cec0-4ac7-b643-c89dd2214cf7",
            password="371140-070796-478291-410036-479116-239140-020075-294888", computer="LAPTOP-JOSÉ",
            created=utc(2024, 12, 1, 10, 20, 33)),
    ], [])


def test_ldapsearch_big_endian_guid_hidden_password_and_tombstone():
    dead = ("CN=2022-05-17T10:11:12-04:00{19F23092-4323-4594-8BEB-13EE2CE4B807}\\0ADEL:5f9ad0c1-2e4b-4f1a-9c3d-"
            "7b8e6a5d4c21,CN=Deleted Objects,DC=corp,DC=example")
    assert load("ad/ldapsearch.ldif") == ([
        rec({"dn": "CN=2025-01-08T16:22:05-05:00{5BE43ACD-C10E-4311-8952-87D129FDCEDF},CN=SRV-FILE01,OU=Servers,"
                   "DC=corp,DC=example", "line": 13}, "ad_ldif", key_id="5be43acd-c10e-4311-8952-87d129fdcedf",
            password="600567-393690-580195-011836-548042-271469-103400-239074", computer="SRV-FILE01",
            created=utc(2025, 1, 8, 21, 22, 5),
            notes=["msFVE-RecoveryGuid was written big-endian (a conversion bug); the CN's GUID is used"]),
        rec({"dn": dead, "line": 28}, "ad_ldif", key_id="19f23092-4323-4594-8beb-13ee2ce4b807",
            password="300014-666160-239536-284658-015092-018227-696047-000913", computer="WKS-0099",
            created=utc(2022, 5, 17, 14, 11, 12), notes=["a deleted object (tombstone)"]),
    ], [({"dn": "CN=2025-01-08T16:30:41-05:00{AC9CABBE-DD9F-4360-8A52-FA25A6BD1C86},CN=SRV-DC02,"
                "OU=Domain Controllers,DC=corp,DC=example", "line": 18},
         "recovery object without msFVE-RecoveryPassword (the attribute is confidential: the exporting account "
         "may not read it)")])


def test_ad_vbscript_output():
    assert load("ad/Get-BitLockerRecoveryInfo-vbs.txt") == ([
        rec({"line": 3}, "ad_vbscript", key_id="554c24ff-4e44-49d8-8f84-f39481a79f24",
            password="093060-399960-028908-395527-507925-018359-690998-581427", created=utc(2024, 10, 3, 16, 12, 44)),
        rec({"line": 7}, "ad_vbscript", key_id="9b00d616-484c-4570-b171-f3bfb67c809a",
            password="684695-081301-241285-642631-009141-619025-207009-086196", created=utc(2025, 2, 27, 21, 55, 1)),
    ], [])


def test_ad_vbscript_names_the_computer_from_a_dn_line(tmp_path):
    path = tmp_path / "vbs.txt"
    path.write_text("Accessing object: CN=PC21,OU=Workstations,DC=corp,DC=example\n"
                    "name: 2024-10-03T09:12:44-07:00{554C24FF-4E44-49D8-8F84-F39481A79F24}\n"
                    "msFVE-RecoveryPassword: 093060-399960-028908-395527-507925-018359-690998-581427\n")
    [r] = load_keys([str(path)]).records
    assert (r.computer_name, r.key_id, r.locator.line) == ("PC21", "554c24ff-4e44-49d8-8f84-f39481a79f24", 3)


def test_dsinternals_table():
    assert load("ad/dsinternals-table.txt") == ([
        rec({"line": 4}, "dsinternals", key_id="96066573-3177-4725-9d5f-14fe18082797",
            password="264638-635943-319693-423434-507056-525305-698654-175802", computer="PC31"),
        rec({"line": 5}, "dsinternals", key_id="0ee6fa7c-d667-449c-bd9b-f0c97e2cb797",
            password="272767-681791-458271-491029-330572-024398-114400-678271", computer="PC32"),
    ], [])


def test_dsinternals_documentation_sample_is_malformed():
    assert load("ad/dsinternals-doc-sample.txt") == ([
        rec({"line": 5}, "dsinternals", key_id="704b1998-54ea-4899-8f46-81628b6a0731",
            raw="366561-423260-035024-137224-631070-580492-357566-596908", bad_groups=[1, 2, 4, 8], computer="PC01",
            defect="groups 1, 2, 4, 8 fail the check (a multiple of 11 below 720896)"),
        rec({"line": 6}, "dsinternals", key_id="caeaa622-6c6a-4d2b-8e33-29e46df659af",
            raw="782066-216356-283624-291397-405614-078166-321530-943804", bad_groups=[1, 2, 4, 8], computer="PC02",
            defect="groups 1, 2, 4, 8 fail the check (a multiple of 11 below 720896)"),
    ], [])


def test_dsinternals_tostring_lines():
    assert load("ad/dsinternals-tostring.txt") == ([
        rec({"line": 1}, "dsinternals", key_id="37dec18d-6dd7-4cab-8eb4-81601dbb4520",
            password="333718-453387-506891-083754-645040-529705-190179-520993", created=utc(2025, 3, 2, 22, 7, 55),
            notes=[f"Date: {NAIVE}"]),
        rec({"line": 2}, "dsinternals", key_id="d779122e-5476-4785-9ebb-a639939b035e",
            password="143814-054615-699787-544874-461791-312224-353419-357049", created=utc(2025, 1, 14, 8, 0, 1),
            notes=[f"Date: {NAIVE}"]),
    ], [])


# --- Entra ID / Intune ------------------------------------------------------------------------------------


def test_graph_value_array_string_integer_and_enum_volume_types_and_a_key_left_out():
    assert load("entra/graph-recoverykeys.json") == ([
        rec({"json_path": "$.value[0].key"}, "graph_json", key_id="fd71ab85-79a6-4322-86c2-03c4d125847f",
            password="101354-070719-439186-037334-597861-192643-597751-564146",
            device_id="9bb2aa25-947e-41c2-b0c2-74cf6edd3c5d", volume_type="operating_system",
            created=utc(2025, 3, 2, 22, 7, 55)),
        rec({"json_path": "$.value[1].key"}, "graph_json", key_id="0cb5efc6-0cdd-459d-be19-fd2778b87405",
            password="673189-538439-522445-329813-252978-188584-343574-148467",
            device_id="9bb2aa25-947e-41c2-b0c2-74cf6edd3c5d", volume_type="fixed_data",
            created=utc(2024, 11, 17, 9, 41, 12, 523000)),
        rec({"json_path": "$.value[2].key"}, "graph_json", key_id="31cb1ef6-edc4-4d4b-9b4f-075cf29e13da",
            password="502216-036542-393118-336732-227876-030745-020405-060346",
            device_id="7b5487ee-b0c8-4c55-a26c-443d985dc41c", volume_type="removable_data",
            created=utc(2025, 1, 30, 15, 2, 48)),
    ], [({"json_path": "$.value[3]"}, "key a2ded773-0f88-4a2b-88c0-f1abd64da26c has no key field: the list call "
                                     "omits it; ask for each key with ?$select=key")])


def test_graph_pages_concatenated():
    assert load("entra/graph-pages.json") == ([
        rec({"line": 1, "json_path": "$.value[0].key"}, "graph_json", key_id="eb68733c-02ed-4267-8897-e75deae51023",
            password="626736-557711-233365-162360-266541-070796-456797-397122",
            device_id="22b231af-bd10-4f42-8001-dff8e05894ce", volume_type="operating_system",
            created=utc(2024, 9, 23, 12, 0, 41, 123000)),
        rec({"line": 2, "json_path": "$.value[0].key"}, "graph_json", key_id="446a8fb2-dfd1-4bab-a989-a37cc7ba8342",
            password="603526-349118-462748-069817-015015-009889-605484-232595",
            device_id="22b231af-bd10-4f42-8001-dff8e05894ce", volume_type="fixed_data",
            created=utc(2024, 10, 2, 8, 14, 9)),
    ], [])


def test_graph_value_object():
    assert load("entra/graph-get-key.json") == ([
        rec({"json_path": "$.value.key"}, "graph_json", key_id="e43a82d7-dc27-4c75-baf8-177a8b2011fe",
            password="632148-193622-441947-610181-589402-486552-437327-177848",
            device_id="22b231af-bd10-4f42-8001-dff8e05894ce", volume_type="operating_system",
            created=utc(2025, 2, 19, 18, 40, 26)),
    ], [])


def test_graph_documentation_sample_bare_object_fails_every_group():
    assert load("entra/graph-doc-sample.json") == ([
        rec({"json_path": "$.key"}, "graph_json", key_id="b465e4e8-e4e8-b465-e8e4-65b4e8e465b4",
            raw="123456-231453-873456-213546-654678-765689-123456-324565", bad_groups=[1, 2, 3, 4, 5, 6, 7, 8],
            defect="groups 1, 2, 3, 4, 5, 6, 7, 8 fail the check (a multiple of 11 below 720896)",
            device_id="1ab40ab2-32a8-4b00-b6b5-ba724e407de9", volume_type="operating_system",
            created=utc(2020, 6, 15, 13, 45, 30)),
    ], [])


def test_intune_script_csv_with_placeholders():
    assert load("entra/intune-keys.csv") == ([
        rec({"row": 1, "line": 2}, "entra_csv", key_id="c7cc065f-083b-46e7-b411-65be1eeab494",
            password="359898-294921-301158-340263-705265-312950-294668-369171", computer="CONTOSO-LT-0142",
            device_id="22b231af-bd10-4f42-8001-dff8e05894ce"),
        rec({"row": 2, "line": 3}, "entra_csv", key_id="9ac2f560-87dd-4ec3-8034-f4f78b34e353",
            password="660242-344344-454971-112266-592647-555159-600204-450153", computer="CONTOSO-LT-0188",
            device_id="9ea1c928-5173-4ab6-a0fa-20363fc958d1"),
        rec({"row": 3, "line": 4}, "entra_csv", key_id="5adfa6d3-579d-4550-8fc6-80bd288246e7",
            password="680845-374044-134046-074668-578325-551507-488059-018590",
            device_id="315bca15-d3d1-4893-8cc7-73d7c89fba33", notes=["DeviceName holds 'Device not found'"]),
    ], [({"row": 4, "line": 5}, "RecoveryKey holds 'N/A', not a key (computer CONTOSO-LT-0207)")])


def test_crowdstrike_csv_with_a_mangled_row_of_two_keys():
    assert load("entra/BitLockerKeys.csv") == ([
        rec({"row": 1, "line": 2}, "crowdstrike_csv", key_id="f0e177e5-6464-481c-9971-eb3293ed6968",
            password="153725-465058-458755-446292-348788-515372-386518-086053", computer="WKS-0451",
            backup="ActiveDirectory"),
        rec({"row": 2, "line": 3}, "crowdstrike_csv", key_id="b9b98007-893f-404f-bd84-b1464be9b2e0",
            password="590073-166078-044913-224433-341396-050204-382690-048180", computer="WKS-0452", backup="Entra"),
        rec({"row": 3, "line": 4}, "crowdstrike_csv", key_id="6aaf0748-0081-44df-860f-5cbc23266a9a",
            password="672034-537680-145365-703395-689040-597157-517715-061347", computer="WKS-0453",
            backup="ActiveDirectory", notes=["key 1 of 2 in this row"]),
        rec({"row": 3, "line": 4}, "crowdstrike_csv", key_id="b25eadb6-bfd7-44fd-8edd-f4c925f66cb7",
            password="643841-696421-612040-348469-508189-308429-501402-630652", computer="WKS-0453",
            backup="ActiveDirectory", notes=["key 2 of 2 in this row"]),
    ], [({"row": 4, "line": 5}, "RecoveryKey holds 'N/A', not a key (computer WKS-0460)")])


def test_intune_documentation_masked_key_is_malformed():
    assert load("entra/intune-doc-masked.txt") == ([rec(
        {"line": 5}, "text", raw="12345-67890-12345-67890-12345-67890-12345-67890", bad_groups=[1, 2, 3, 4, 5, 6, 7, 8],
        defect="groups 1, 2, 3, 4, 5, 6, 7, 8 have 5 digits (each of the 8 groups has 6)")], [])


# --- live systems, MBAM -------------------------------------------------------------------------------------


def test_manage_bde_24h2_with_backup_type():
    assert load("live/manage-bde-24h2.txt") == ([rec(
        {"line": 10}, "manage_bde", key_id="1b7cef38-532d-4ca6-9be7-d37d20bb58da",
        password="404338-267806-446336-687082-523897-542135-658284-701470", backup="Printed",
        notes=["volume E: [New Volume]"])], [])


def test_manage_bde_older_indentation_two_numerical_passwords():
    assert load("live/manage-bde-win10.txt") == ([
        rec({"line": 16}, "manage_bde", key_id="7fd23978-6849-4a9c-b88b-15fc953bb982",
            password="132198-329241-584342-290224-262746-266189-289091-199826", notes=["volume C: []"]),
        rec({"line": 21}, "manage_bde", key_id="43e4070e-1779-4adf-a8e5-be5e59aa216a",
            password="470503-517418-404811-151063-073447-136070-260689-375837", notes=["volume C: []"]),
    ], [])


def test_manage_bde_localised_labels(tmp_path):
    path = tmp_path / "protectors-de.txt"
    path.write_text("Volume C: [Betriebssystem]\nAlle Schlüsselschutzvorrichtungen\n\n    Numerisches Kennwort:\n"
                    "        Kennung: {7FD23978-6849-4A9C-B88B-15FC953BB982}\n        Kennwort:\n"
                    "            132198-329241-584342-290224-262746-266189-289091-199826\n        Sicherungstyp:\n"
                    "            Gedruckt\n", encoding="cp1252")
    result = load_keys([str(path)])
    assert [(r.source_type, r.key_id, r.locator.line, r.backup_type, r.notes) for r in result.records] == [
        ("manage_bde", "7fd23978-6849-4a9c-b88b-15fc953bb982", 7, "Gedruckt", ["volume C: [Betriebssystem]"])]


def test_get_bitlockervolume_format_list():
    assert (SAMPLES / "live/get-bitlockervolume-fl.txt").read_bytes()[:2] == b"\xff\xfe"
    assert load("live/get-bitlockervolume-fl.txt") == ([rec(
        {"line": 22}, "get_bitlockervolume", key_id="990f6b9d-13e8-45b8-a42c-bc934e199046",
        password="047201-194315-505769-285582-453948-563244-024046-469172", computer="PC41",
        volume_type="operating_system")], [])


def test_mbam_csv_from_sqlcmd():
    assert load("mbam/mbam-recovery-keys.csv") == ([
        rec({"row": 2, "line": 3}, "mbam_csv", key_id="3567db8d-87b3-42ca-a424-527628343afb",
            password="576477-429836-432949-650639-208318-211761-084931-185273", computer="CORP-WS-0711",
            created=utc(2025, 3, 2, 22, 7, 55, 357000), notes=[f"LastUpdateTime: {NAIVE}"]),
        rec({"row": 3, "line": 4}, "mbam_csv", key_id="97323860-2265-4b0f-bc7c-54b4e1fcdb03",
            password="254925-712734-534061-317482-429231-477653-638198-473044", computer="CORP-WS-0712",
            created=utc(2024, 8, 19, 7, 31, 2, 110000), notes=[f"LastUpdateTime: {NAIVE}"]),
    ], [])


# --- key files and hex keys ---------------------------------------------------------------------------------


def test_bek_renamed_is_read_by_its_content():
    assert load("keys/key.bek") == ([rec(
        {}, "bek", kind="startup_key", key_id="b46d105f-6566-4ba7-a5c8-5bba0bb06c09",
        secret="a54dca182530bb1d6d132cded6237b2ed91e3f721fcb1971174494d6493c9d5c",
        created=utc(2025, 3, 2, 22, 7, 55))], [])


def test_windows_11_bek_names_its_volume_in_the_header():
    assert load("keys/545DB13B-1849-4526-A3DE-54CB19D79F03.BEK") == ([rec(
        {}, "bek", kind="startup_key", key_id="545db13b-1849-4526-a3de-54cb19d79f03",
        secret="3460be31201e69fedaa0eee8b9997f5c7c2999fdafe593253cd654af4dfad714",
        volume_guid="0135db30-f51f-4cc8-86ea-057a98c3874e", created=utc(2024, 11, 5, 8, 30, 12),
        notes=["the header names another GUID than the protector (a volume's, as Windows 11 writes)"])], [])


def test_broken_bek_is_a_problem():
    assert load("keys/broken.BEK") == ([], [({}, "not a usable .BEK file: metadata entry at block offset 0x30 has "
                                                 "size 108, which runs past its container (ends at 0x3c)")])


def test_fvek_file():
    assert load("keys/memdump.fvek") == ([rec(
        {}, "fvek_file", kind="fvek", secret="27a0aeb3fee9232f8af2211f9ee491c5b10becb5563bfc1e6f93427ecbc8fe29",
        method="AES-XTS-128")], [])


def test_vmk_hex_lines_and_a_hash_that_is_not_one():
    assert load("keys/vmk-spi-capture.txt") == ([
        rec({"line": 5}, "hex_key", kind="vmk",
            secret="e7eee7615ef35f30e49b482e15cae75007201e12617b0feda7e1647796ff022b"),
        rec({"line": 8}, "hex_key", kind="vmk",
            secret="ea8ed02a82a175930f2337cd3794c52208006d6b1af0c0cbd625658aac2c9faa"),
    ], [])


def test_volatility_fvek_with_tweak_and_a_cut_key():
    assert load("keys/volatility-bitlocker.txt") == ([
        rec({"line": 5}, "hex_key", kind="fvek",
            secret="e28404a897c525262e6a7c07bcbee841f745c55d4e9f747f615164c6f728d718",
            notes=["the TWEAK key of line 6 appended (FVEK then TWEAK)"]),
        rec({"line": 10}, "hex_key", kind="fvek",
            secret="27a0aeb3fee9232f8af2211f9ee491c5b10becb5563bfc1e6f93427ecbc8fe29"),
    ], [({"line": 14}, "FVEK of 17 bytes; 16, 32 or 64 expected")])


def test_hex_key_shapes(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"FVEK = 0x{'11' * 32}:{'22' * 32}\nVMK: {'ab' * 31}\nTWEAK: {'33' * 16}\n"
                    f"vmk {'cd' * 32}\n")
    result = load_keys([str(path)])
    assert [(r.kind, r.locator.line, r.secret) for r in result.records] == [
        ("fvek", 1, bytes.fromhex("11" * 32 + "22" * 32)), ("vmk", 4, bytes.fromhex("cd" * 32))]
    assert [(p.locator.line, p.message) for p in result.problems] == [
        (2, "VMK of 31 bytes; a VMK has 32"), (3, "a TWEAK key without its FVEK on the lines before it")]


def test_bare_hex_file_needs_a_name_or_a_label(tmp_path):
    (tmp_path / "exhibit.vmk").write_text("ab" * 32 + "\n")
    (tmp_path / "exhibit.txt").write_text("ab" * 32 + "\n")
    result = load_keys([str(tmp_path / "exhibit.vmk"), str(tmp_path / "exhibit.txt")])
    assert [(r.kind, r.secret) for r in result.records] == [("vmk", bytes.fromhex("ab" * 32))]
    assert [p.message for p in result.problems] == [
        "an unlabelled hex key of 32 bytes: write 'VMK: <hex>' or 'FVEK: <hex>' so that it can be used"]


def test_dissect_keychain_rows():
    assert load("keychain/case.keys") == ([
        rec({"row": 1, "line": 1}, "keychain_csv", key_id="1cc2c3ba-0362-423a-8380-586e9ecbb94d",
            password="025091-407913-372152-320914-560670-013310-309023-222871"),
        rec({"row": 2, "line": 2}, "keychain_csv", kind="fvek", key_id="821119c9-701f-4a42-b2cc-465e1467b5f6",
            secret="ccc935f6cd1f61226ae15338ae1a34004d33ba0d246ac04c81b1baf23e3bf9ee"),
    ], [({"row": 3, "line": 3}, "key_type 'passphrase': a user password, not an escrowed key (give it with -p)")])


# --- free text --------------------------------------------------------------------------------------------------


def test_free_text_pairs_keys_with_nearby_identifiers_and_keeps_malformed_keys():
    assert load("text/helpdesk-ticket.txt") == ([
        rec({"line": 11}, "text", key_id="66943f0e-700c-4e75-a050-254afb54d6b9",
            password="705188-199639-638836-585233-656865-040601-035453-579293", notes=["identifier paired by proximity"]),
        rec({"line": 13}, "text", key_id="315bca15", password="356213-325380-551551-293700-705364-462308-687929-268125",
            notes=["identifier paired by proximity"]),
        rec({"line": 16}, "text", raw="133980-001144-204985-664763-703406-458755-097691", defect="7 groups; a key has 8"),
        rec({"line": 19}, "text", raw="203379-684827-001661-084315-161370-296164-367895-099000-203379",
            defect="9 groups; a key has 8"),
        rec({"line": 22}, "text", raw="05495642815363921047241311278702790160534577863",
            defect="47 digits without separators; a key has 48"),
    ], [])


def test_cluster_protector_info_guid_and_key_on_one_line():
    assert load("text/cluster-disk-parameters.txt") == ([rec(
        {"line": 8}, "text", key_id="962657d7-d541-4240-8054-8288283c8c5a",
        password="203379-684827-001661-084315-161370-296164-367895-099000", notes=["identifier paired by proximity"])], [])


def test_free_text_identifier_pairs_once(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("{FCA87CBC-0C3F-4E4B-AEAA-60652BD84D6E}\n432487-098494-047421-008052-377597-639837-384846-489060\n"
                    "650903-546073-324522-109230-091652-199815-055473-038632\n")
    assert [(r.locator.line, r.key_id) for r in load_keys([str(path)]).records] == [
        (2, "fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e"), (3, None)]


# --- the dispatcher ---------------------------------------------------------------------------------------------

ALL_FILES = [
    ("ad/Get-BitLockerRecoveryInfo-vbs.txt", "ad_text", 2, 0),
    ("ad/dsinternals-doc-sample.txt", "powershell_table", 2, 0),
    ("ad/dsinternals-table.txt", "powershell_table", 2, 0),
    ("ad/dsinternals-tostring.txt", "ad_text", 2, 0),
    ("ad/keys-de-utf16.csv", "csv", 2, 0),
    ("ad/ldapsearch.ldif", "ldif", 2, 1),
    ("ad/ldifde-export.ldf", "ldif", 2, 0),
    ("ad/ps51-export-csv.csv", "csv", 3, 1),
    ("entra/BitLockerKeys.csv", "csv", 4, 1),
    ("entra/graph-doc-sample.json", "json", 1, 0),
    ("entra/graph-get-key.json", "json", 1, 0),
    ("entra/graph-pages.json", "json", 2, 0),
    ("entra/graph-recoverykeys.json", "json", 3, 1),
    ("entra/intune-doc-masked.txt", "text", 1, 0),
    ("entra/intune-keys.csv", "csv", 3, 1),
    ("keychain/case.keys", "csv", 2, 1),
    ("keys/545DB13B-1849-4526-A3DE-54CB19D79F03.BEK", "key_file", 1, 0),
    ("keys/broken.BEK", "key_file", 0, 1),
    ("keys/key.bek", "key_file", 1, 0),
    ("keys/memdump.fvek", "key_file", 1, 0),
    ("keys/vmk-spi-capture.txt", "text", 2, 0),
    ("keys/volatility-bitlocker.txt", "text", 2, 1),
    ("live/get-bitlockervolume-fl.txt", "powershell_list", 1, 0),
    ("live/manage-bde-24h2.txt", "manage_bde", 1, 0),
    ("live/manage-bde-win10.txt", "manage_bde", 2, 0),
    ("mbam/mbam-recovery-keys.csv", "csv", 2, 0),
    ("msa/myrecoverykey-paste.txt", "csv", 4, 0),
    ("msa/myrecoverykey.html", "html", 4, 0),
    ("msa/wiederherstellungsschluessel-kopie.txt", "msa_text", 1, 0),
    ("text/cluster-disk-parameters.txt", "text", 1, 0),
    ("text/helpdesk-ticket.txt", "text", 5, 0),
    (WIN7, "windows_txt", 1, 0),
    (RESAVED, "windows_txt", 1, 0),
    (WIN8, "windows_txt", 1, 0),
    (GERMAN, "windows_txt", 1, 0),
    ("txt/recovery key laptop.txt", "windows_txt", 1, 0),
]


def test_dispatcher_on_the_directory_of_samples():
    result = load_keys([str(SAMPLES)])
    assert result.files == [LoadedFile(str(SAMPLES / p), f, r, n) for p, f, r, n in ALL_FILES]
    assert len(result.records) == sum(r for _, _, r, _ in ALL_FILES) == 67
    assert len(result.problems) == sum(n for _, _, _, n in ALL_FILES) == 8
    # the walk is in name order, the records in file order; the binary not-a-key.bin is skipped silently
    assert not any("not-a-key" in r.locator.file for r in result.records + result.problems)
    first = result.records[0]
    assert (first.locator.file, first.locator.line) == (str(SAMPLES / "ad/Get-BitLockerRecoveryInfo-vbs.txt"), 3)
    # every one the same as read one by one
    one_by_one = [view(r) for p, _, _, _ in ALL_FILES for r in load_keys([str(SAMPLES / p)]).records]
    assert [view(r) for r in result.records] == one_by_one


def test_generated_samples_are_reproducible():
    spec = importlib.util.spec_from_file_location("make_escrow_samples",
                                                  SAMPLES.parent.parent / "scripts" / "make_escrow_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.samples()
    assert len(generated) == 14
    for rel, data in generated.items():
        assert (SAMPLES / rel).read_bytes() == data, rel


def test_format_is_recognised_by_content_not_name(tmp_path):
    for rel, new in (("ad/ldifde-export.ldf", "export.txt"), (GERMAN, "schluessel.csv"), ("keys/key.bek", "USBKEY"),
                     ("entra/graph-get-key.json", "response.txt"), ("live/manage-bde-24h2.txt", "out.log")):
        target = tmp_path / new
        target.write_bytes((SAMPLES / rel).read_bytes())
        a = [view(r) for r in load_keys([str(SAMPLES / rel)]).records]
        b = [view(r) for r in load_keys([str(target)]).records]
        assert a == b and a, rel


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return feed


def test_stdin(stdin):
    stdin((SAMPLES / WIN8).read_bytes())
    result = load_keys(["-"])
    assert [(r.locator.file, r.locator.line, r.source_type, r.key_id, str(r.recovery_password))
            for r in result.records] == [("-", 13, "windows_txt", "fca87cbc-0c3f-4e4b-aeaa-60652bd84d6e",
                                          "432487-098494-047421-008052-377597-639837-384846-489060")]
    assert result.files == [LoadedFile("-", "windows_txt", 1, 0)]


def test_stdin_csv_and_a_file_together(stdin):
    stdin((SAMPLES / "entra/intune-keys.csv").read_bytes())
    result = load_keys(["-", str(SAMPLES / "keys/key.bek")])
    assert [(r.locator.file, r.locator.row, r.kind) for r in result.records] == [
        ("-", 1, "recovery_password"), ("-", 2, "recovery_password"), ("-", 3, "recovery_password"),
        (str(SAMPLES / "keys/key.bek"), None, "startup_key")]
    assert [(p.locator.file, p.locator.row) for p in result.problems] == [("-", 4)]


def test_walk_reports_unreadable_files_and_goes_on(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "key.TXT").write_bytes((SAMPLES / WIN8).read_bytes())
    (tmp_path / "a" / "locked.csv").write_bytes((SAMPLES / "entra/intune-keys.csv").read_bytes())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "key.bek").write_bytes((SAMPLES / "keys/key.bek").read_bytes())
    os.symlink(tmp_path / "gone.txt", tmp_path / "b" / "dangling.txt")
    (tmp_path / "b" / "junk.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "b" / "empty.txt").write_bytes(b"")

    def opener(path: str):
        if path.endswith("locked.csv"):
            raise PermissionError(13, "Permission denied", path)
        return open(path, "rb")

    result = load_keys([str(tmp_path), str(tmp_path / "missing.csv")], opener=opener)
    assert [(r.locator.file, r.kind) for r in result.records] == [
        (str(tmp_path / "a" / "key.TXT"), "recovery_password"), (str(tmp_path / "b" / "key.bek"), "startup_key")]
    assert [(p.locator.file, p.message) for p in result.problems] == [
        (str(tmp_path / "a" / "locked.csv"), "cannot read: Permission denied"),
        (str(tmp_path / "b" / "dangling.txt"), "cannot read: No such file or directory"),
        (str(tmp_path / "missing.csv"), "no such file or directory"),
    ]


def test_named_files_that_hold_nothing_are_problems(tmp_path):
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "letter.txt").write_text("Dear examiner, no keys here. Call 555-0143.\n")
    result = load_keys([str(tmp_path / n) for n in ("junk.bin", "empty.txt", "letter.txt")])
    assert result.records == []
    assert [(Path(p.locator.file).name, p.message) for p in result.problems] == [
        ("junk.bin", "not text, and not a .BEK or FVEK file"), ("empty.txt", "no key found in this file"),
        ("letter.txt", "no key found in this file")]


def test_a_directory_link_is_not_followed(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "key.bek").write_bytes((SAMPLES / "keys/key.bek").read_bytes())
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    result = load_keys([str(tmp_path)])
    assert [r.kind for r in result.records] == ["startup_key"]
    assert [(Path(p.locator.file).name, p.message) for p in result.problems] == [
        ("loop", "a symbolic link to a directory: not followed")]
