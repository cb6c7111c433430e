#!/usr/bin/env python3
"""Write the escrow samples that cannot be typed: UTF-16 and BOM-prefixed text with CRLF, LDIF
with base64 GUIDs and folded lines, .BEK and FVEK files.

    python scripts/make_escrow_samples.py           # (re)write them under tests/escrow_samples/
    python scripts/make_escrow_samples.py --check   # prove the committed files are these bytes

Every key and GUID is invented (each key group a multiple of 11 below 720896); the layouts
follow /work/shared/docs/keys-and-escrow.md section 1 (docs/escrow.md lists the samples). The
plain UTF-8 samples beside these are committed as written, not generated.
"""

from __future__ import annotations

import argparse
import base64
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bitlocker_tools.forge import bek_file  # noqa: E402
from bitlocker_tools.format.constants import EncryptionMethod  # noqa: E402
from bitlocker_tools.format.keyfiles import BekHeader  # noqa: E402
from bitlocker_tools.keyfiles import BEK_HEADER_SIZE, fvek_file  # noqa: E402

SAMPLES = ROOT / "tests" / "escrow_samples"

# --- the Windows recovery-key TXT file -------------------------------------------------------------

WIN8 = """BitLocker Drive Encryption recovery key

To verify that this is the correct recovery key, compare the start of the following identifier with the identifier value displayed on your PC.

Identifier:

\t{guid}

If the above identifier matches the one displayed by your PC, then use the following key to unlock your drive.

Recovery Key:

\t{key}

If the above identifier doesn't match the one displayed by your PC, then this isn't the right key to unlock your drive.
Try another recovery key, or refer to {url} for additional assistance.
"""

WIN7 = """BitLocker Drive Encryption Recovery Key

The recovery key is used to recover the data on a BitLocker protected drive.

To verify that this is the correct recovery key compare the identification with what is presented on the recovery screen.

Recovery key identification: {short}
Full recovery key identification: {guid}

BitLocker Recovery Key:
{key}

"""

GERMAN = """Wiederherstellungsschlüssel für die BitLocker-Laufwerkverschlüsselung

Vergleichen Sie den Anfang des folgenden Bezeichners mit dem auf Ihrem PC angezeigten Bezeichnerwert, um zu überprüfen, ob es sich um den richtigen Wiederherstellungsschlüssel handelt.

Bezeichner:

\t{guid}

Falls der obige Bezeichner mit dem von Ihrem PC angezeigten übereinstimmt, entsperren Sie Ihr Laufwerk mit dem folgenden Schlüssel.

Wiederherstellungsschlüssel:

\t{key}

Falls der obige Bezeichner nicht mit dem von Ihrem PC angezeigten übereinstimmt, ist dies nicht der richtige Schlüssel zum Entsperren Ihres Laufwerks.
Versuchen Sie es mit einem anderen Wiederherstellungsschlüssel, oder besuchen Sie {url}, um weitere Unterstützung zu erhalten.
"""

URL = "https://go.microsoft.com/fwlink/?LinkID=260589"


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def utf16(text: str) -> bytes:
    """As Windows writes it: UTF-16LE with a BOM, CRLF."""
    return b"\xff\xfe" + crlf(text).encode("utf-16-le")


def utf8_bom(text: str) -> bytes:
    return b"\xef\xbb\xbf" + crlf(text).encode("utf-8")


# --- LDIF ------------------------------------------------------------------------------------------------


def b64_guid(text: str, big_endian: bool = False) -> str:
    """``msFVE-RecoveryGuid`` as LDIF writes it: the 16 bytes mixed-endian, in base64 (or, for
    the conversion bug, big-endian)."""
    u = uuid.UUID(text)
    return base64.b64encode(u.bytes if big_endian else u.bytes_le).decode()


def fold(line: str, width: int) -> str:
    """RFC 2849 folding: lines longer than ``width`` continue on lines starting with a space."""
    if len(line) <= width:
        return line
    out, rest = [line[:width]], line[width:]
    while rest:
        out.append(" " + rest[:width - 1])
        rest = rest[width - 1:]
    return "\n".join(out)


def ldif(entries: list[list[str]], width: int, header: list[str] = (), trailer: list[str] = ()) -> str:
    blocks = ["\n".join(line if line.startswith("#") else fold(line, width) for line in entry) for entry in entries]
    return "\n".join(list(header)) + ("\n" if header else "") + "\n\n".join(blocks) + "\n\n" + "\n".join(trailer) + (
        "\n" if trailer else "")


def ldifde_export() -> bytes:
    """ldifde -f recovery.ldf -r "(objectClass=msFVE-RecoveryInformation)"
    -l "msFVE-RecoveryPassword,msFVE-RecoveryGuid,msFVE-VolumeGuid,whenCreated": CRLF, folded at 80
    columns, a DN with non-ASCII characters written base64 (``dn::``)."""
    g1, v1 = "7A4EBFB7-7805-4686-B75F-4274E4A854D7", "3DD75486-EB28-4E93-BFC5-CA92381974EF"
    g2 = "1AA0F72D-CEC0-4AC7-B643-C89DD2214CF7"
    dn1 = f"CN=2025-03-02T14:07:55-08:00{{{g1}}},CN=PC11,OU=Workstations,OU=Headquarters,DC=corp,DC=example"
    dn2 = f"CN=2024-12-01T11:20:33+01:00{{{g2}}},CN=LAPTOP-JOSÉ,OU=Laptops,DC=corp,DC=example"
    entries = [
        [f"dn: {dn1}", "changetype: add", "whenCreated: 20250302220755.0Z",
         "msFVE-RecoveryPassword: 113333-674718-537493-406791-491315-496518-210430-242022",
         f"msFVE-RecoveryGuid:: {b64_guid(g1)}", f"msFVE-VolumeGuid:: {b64_guid(v1)}"],
        [f"dn:: {base64.b64encode(dn2.encode()).decode()}", "changetype: add", "whenCreated: 20241201102033.0Z",
         "msFVE-RecoveryPassword: 371140-070796-478291-410036-479116-239140-020075-294888",
         f"msFVE-RecoveryGuid:: {b64_guid(g2)}"],
    ]
    return crlf(ldif(entries, 80)).encode("utf-8")


def ldapsearch_export() -> bytes:
    """OpenLDAP ``ldapsearch`` from Linux: comments, lines folded at 76 (the password line too),
    one object whose confidential password the account may not read, a tombstone, and one GUID a
    script wrote big-endian."""
    guid_be = "5BE43ACD-C10E-4311-8952-87D129FDCEDF"
    guid_hidden = "AC9CABBE-DD9F-4360-8A52-FA25A6BD1C86"
    guid_dead = "19F23092-4323-4594-8BEB-13EE2CE4B807"
    header = ["# extended LDIF", "#", "# LDAPv3", "# base <DC=corp,DC=example> with scope subtree",
              "# filter: (objectClass=msFVE-RecoveryInformation)",
              "# requesting: msFVE-RecoveryPassword msFVE-RecoveryGuid whenCreated lastKnownParent", "#", ""]
    dn_be = f"CN=2025-01-08T16:22:05-05:00{{{guid_be}}},CN=SRV-FILE01,OU=Servers,DC=corp,DC=example"
    dn_hidden = f"CN=2025-01-08T16:30:41-05:00{{{guid_hidden}}},CN=SRV-DC02,OU=Domain Controllers,DC=corp,DC=example"
    dn_dead = (f"CN=2022-05-17T10:11:12-04:00{{{guid_dead}}}\\0ADEL:5f9ad0c1-2e4b-4f1a-9c3d-7b8e6a5d4c21,"
               "CN=Deleted Objects,DC=corp,DC=example")
    entries = [
        ["# 2025-01-08T16:22:05-05:00{5BE43ACD-C10E-4311-8952-87D129FDCEDF}, SRV-FILE01, Servers, corp.example",
         f"dn: {dn_be}", "whenCreated: 20250108212205.0Z",
         "msFVE-RecoveryPassword: 600567-393690-580195-011836-548042-271469-103400-239074",
         f"msFVE-RecoveryGuid:: {b64_guid(guid_be, big_endian=True)}"],
        ["# 2025-01-08T16:30:41-05:00{AC9CABBE-DD9F-4360-8A52-FA25A6BD1C86}, SRV-DC02, Domain Controllers, corp.example",
         f"dn: {dn_hidden}", "whenCreated: 20250108213041.0Z", f"msFVE-RecoveryGuid:: {b64_guid(guid_hidden)}"],
        ["# 2022-05-17T10:11:12-04:00{19F23092-4323-4594-8BEB-13EE2CE4B807}\\0ADEL:5f9ad0c1-2e4b-4f1a-9c3d-7b8e6a5d4c21, "
         "Deleted Objects, corp.example",
         f"dn: {dn_dead}", "whenCreated: 20220517141112.0Z",
         "lastKnownParent: CN=WKS-0099,OU=Workstations,DC=corp,DC=example",
         "msFVE-RecoveryPassword: 300014-666160-239536-284658-015092-018227-696047-000913",
         f"msFVE-RecoveryGuid:: {b64_guid(guid_dead)}"],
    ]
    trailer = ["# search result", "search: 2", "result: 0 Success", "", "# numResponses: 4", "# numEntries: 3"]
    return ldif(entries, 76, header, trailer).encode("utf-8")


# --- PowerShell and cmd captures --------------------------------------------------------------------------

#: ``Get-ADObject ... | Select Name,DistinguishedName,msFVE-RecoveryPassword,@{n='msFVE-RecoveryGuid';
#: e={[guid]::new($_.'msFVE-RecoveryGuid')}},whenCreated | ConvertTo-Csv -UseCulture -NoTypeInformation |
#: Out-File keys.csv`` on a German Windows PowerShell 5.1: ";" between fields, UTF-16LE.
AD_UTF16_CSV = """"Name";"DistinguishedName";"msFVE-RecoveryPassword";"msFVE-RecoveryGuid";"whenCreated"
"2025-02-14T09:30:00+01:00{{{g1}}}";"CN=2025-02-14T09:30:00+01:00{{{g1}}},CN=LAPTOP-MÜLLER,OU=Laptops,DC=corp,DC=example";"{k1}";"{l1}";"14.02.2025 09:30:00"
"2023-09-05T16:45:10+02:00{{{g2}}}";"CN=2023-09-05T16:45:10+02:00{{{g2}}},CN=PC05,OU=Workstations,DC=corp,DC=example";"{k2}";"{l2}";"05.09.2023 16:45:10"
"""

#: ``Get-BitLockerVolume C: | fl ComputerName,MountPoint,VolumeType; (Get-BitLockerVolume C:).KeyProtector |
#: Out-File`` (Windows PowerShell 5.1: UTF-16LE).
GET_BITLOCKERVOLUME_FL = """

ComputerName : PC41
MountPoint   : C:
VolumeType   : OperatingSystem




KeyProtectorId       : {1B2CC67B-EB7B-4A99-ADD4-F507E40D610F}
AutoUnlockProtector  :
KeyProtectorType     : Tpm
KeyFileName          :
RecoveryPassword     :
KeyCertificateType   :
Thumbprint           :

KeyProtectorId       : {990F6B9D-13E8-45B8-A42C-BC934E199046}
AutoUnlockProtector  :
KeyProtectorType     : RecoveryPassword
KeyFileName          :
RecoveryPassword     : 047201-194315-505769-285582-453948-563244-024046-469172
KeyCertificateType   :
Thumbprint           :



"""

#: ``manage-bde -protectors -get C: > protectors.txt`` in cmd on Windows 10 (the older 4/6/8 indent).
MANAGE_BDE_OLD = """BitLocker Drive Encryption: Configuration Tool version 10.0.19041
Copyright (C) 2013 Microsoft Corporation. All rights reserved.

Volume C: []
All Key Protectors

    TPM:
      ID: {530B2636-3A21-4305-8675-100466758C06}
      PCR Validation Profile:
        7, 11
        (Uses Secure Boot for integrity validation)

    Numerical Password:
      ID: {7FD23978-6849-4A9C-B88B-15FC953BB982}
      Password:
        132198-329241-584342-290224-262746-266189-289091-199826

    Numerical Password:
      ID: {43E4070E-1779-4ADF-A8E5-BE5E59AA216A}
      Password:
        470503-517418-404811-151063-073447-136070-260689-375837

"""

#: The Windows 8+ file re-saved in Notepad (UTF-8 with a BOM), its key pasted back from an e-mail
#: with en dashes; an older copy with the http:// link; named with the cut 23-character ID.
RESAVED_TXT = WIN8.format(guid="FA89CB05-3D26-4911-AFF1-42DAEAED7DBB",
                          key="189442\u2013044616\u2013409662\u2013302962\u2013697125\u2013688171\u2013123068\u2013596992",
                          url="http://go.microsoft.com/fwlink/?LinkID=260589")

BEK_CREATED = datetime(2025, 3, 2, 22, 7, 55, tzinfo=timezone.utc)
BEK_KEY = bytes.fromhex("a54dca182530bb1d6d132cded6237b2ed91e3f721fcb1971174494d6493c9d5c")
WIN11_BEK_KEY = bytes.fromhex("3460be31201e69fedaa0eee8b9997f5c7c2999fdafe593253cd654af4dfad714")
WIN11_BEK_CREATED = datetime(2024, 11, 5, 8, 30, 12, tzinfo=timezone.utc)
FVEK_XTS_128 = bytes.fromhex("27a0aeb3fee9232f8af2211f9ee491c5b10becb5563bfc1e6f93427ecbc8fe29")


def _bek_with_volume(protector: str, volume: str, key: bytes, created: datetime) -> bytes:
    """A startup-key file as Windows 11 writes it: the header's GUID names the volume."""
    raw = bytearray(bek_file(protector, key, created))
    header = BekHeader.parse(bytes(raw[:BEK_HEADER_SIZE]))
    header.volume_guid = volume
    raw[:BEK_HEADER_SIZE] = BekHeader.build(header)
    return bytes(raw)


def samples() -> dict[str, bytes]:
    """Relative path -> bytes of every generated sample."""
    bek = bek_file("b46d105f-6566-4ba7-a5c8-5bba0bb06c09", BEK_KEY, BEK_CREATED)
    return {
        "txt/BitLocker Recovery Key FCA87CBC-0C3F-4E4B-AEAA-60652BD84D6E.TXT": utf16(WIN8.format(
            guid="FCA87CBC-0C3F-4E4B-AEAA-60652BD84D6E",
            key="432487-098494-047421-008052-377597-639837-384846-489060", url=URL)),
        "txt/BitLocker Recovery Key 69A4AF99-EC1C-45E2-81C1-CDFE91F2AAA3.TXT": utf16(WIN7.format(
            short="69A4AF99-EC1C-45", guid="69A4AF99-EC1C-45E2-81C1-CDFE91F2AAA3",
            key="650903-546073-324522-109230-091652-199815-055473-038632")),
        "txt/BitLocker-Wiederherstellungsschlüssel 6AE111CF-030F-4281-A200-CA68D01A329D.TXT": utf16(GERMAN.format(
            guid="6AE111CF-030F-4281-A200-CA68D01A329D",
            key="480909-362967-351142-075922-671484-601139-313588-528935", url=URL)),
        "txt/BitLocker Recovery Key FA89CB05-3D26-4911-AFF1.TXT": utf8_bom(RESAVED_TXT),
        "ad/keys-de-utf16.csv": utf16(AD_UTF16_CSV.format(
            g1="CB64AE39-3606-4EF0-BD95-036BB809B667", l1="cb64ae39-3606-4ef0-bd95-036bb809b667",
            k1="720434-114730-013618-256135-002959-334543-496309-546656",
            g2="96B340C6-7CE6-48C0-8160-8595B1184340", l2="96b340c6-7ce6-48c0-8160-8595b1184340",
            k2="301697-642246-403348-451044-659208-220726-417483-188276")),
        "ad/ldifde-export.ldf": ldifde_export(),
        "ad/ldapsearch.ldif": ldapsearch_export(),
        "live/get-bitlockervolume-fl.txt": utf16(GET_BITLOCKERVOLUME_FL),
        "live/manage-bde-win10.txt": crlf(MANAGE_BDE_OLD).encode("ascii"),
        "keys/key.bek": bek,
        "keys/545DB13B-1849-4526-A3DE-54CB19D79F03.BEK": _bek_with_volume(
            "545db13b-1849-4526-a3de-54cb19d79f03", "0135db30-f51f-4cc8-86ea-057a98c3874e", WIN11_BEK_KEY,
            WIN11_BEK_CREATED),
        "keys/broken.BEK": bek[:60],
        "keys/memdump.fvek": fvek_file(EncryptionMethod.AES_XTS_128, FVEK_XTS_128),
        "keys/not-a-key.bin": bytes((i * 37 + 11) % 256 for i in range(512)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed samples, write nothing")
    args = parser.parse_args()
    wanted = samples()
    if args.check:
        bad = [p for p, data in wanted.items() if not (SAMPLES / p).is_file() or (SAMPLES / p).read_bytes() != data]
        for p in bad:
            print(f"differs or missing: tests/escrow_samples/{p}", file=sys.stderr)
        print(f"{len(wanted) - len(bad)} of {len(wanted)} generated samples reproduce")
        return 1 if bad else 0
    for p, data in wanted.items():
        path = SAMPLES / p
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(wanted)} samples under {SAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
