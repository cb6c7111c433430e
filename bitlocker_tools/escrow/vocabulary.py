"""The names escrow exports give their columns and fields, and what each one means.

Definitions only; :mod:`.columns` applies them. Admins name CSV columns as they like
(``RecoveryPassword``, ``msFVE-RecoveryPassword``, ``RecoveryKey``, ``Key``...), so a header is
compared in a compact spelling (lowercase, letters and digits only) against these lists; the
same lists name the fields of JSON objects and of PowerShell's Format-List and Format-Table.
PowerShell property names and LDAP attribute names are never localised, so this is safe where
prose is not.
"""

from __future__ import annotations

# --- roles -----------------------------------------------------------------------------------------

KEY = "key"  # the 48 digits (or, with a key type, another key)
KEY_ID = "key_id"  # the protector GUID or a prefix of it
AD_NAME = "ad_name"  # AD's Name / CN: "<timestamp>{<GUID>}"; on other sources the computer's name
COMPUTER = "computer"
DEVICE_ID = "device_id"  # Entra's device object ID (a GUID, not a name)
DATE = "date"
VOLUME_TYPE = "volume_type"
VOLUME_GUID = "volume_guid"
DN = "dn"  # a distinguished name: the recovery object's (parent CN = computer) or the computer's
BACKUP = "backup"  # where the key was escrowed (CrowdStrike's Directory)
KEY_TYPE = "key_type"  # what the key column holds (dissect keychain, Get-BitLockerVolume)
IGNORE = "ignore"

#: Compact header -> (role, rank): lower ranks are preferred when several columns share a role
#: (``RecoveryKeyId`` before a bare ``Id``, which MBAM uses for a row number).
EXACT: dict[str, tuple[str, int]] = {
    # the key
    "msfverecoverypassword": (KEY, 0), "recoverypassword": (KEY, 0), "recoverykey": (KEY, 0),
    "bitlockerrecoverykey": (KEY, 0), "bitlockerrecoverypassword": (KEY, 0), "bitlockerkey": (KEY, 1),
    "numericalpassword": (KEY, 0), "recoverypasswords": (KEY, 0), "recoverykeys": (KEY, 0),
    "key": (KEY, 1), "password": (KEY, 2),
    # its identifier
    "msfverecoveryguid": (KEY_ID, 1), "recoveryguid": (KEY_ID, 0), "recoverykeyid": (KEY_ID, 0),
    "keyid": (KEY_ID, 0), "keyprotectorid": (KEY_ID, 0), "protectorid": (KEY_ID, 0), "passwordid": (KEY_ID, 0),
    "recoveryid": (KEY_ID, 0), "recoverypasswordid": (KEY_ID, 0), "bitlockerkeyid": (KEY_ID, 0),
    "keyidentifier": (KEY_ID, 0), "recoverykeyidentifier": (KEY_ID, 0), "identifier": (KEY_ID, 1),
    "guid": (KEY_ID, 2), "id": (KEY_ID, 2),
    # the computer
    "computername": (COMPUTER, 0), "computer": (COMPUTER, 1), "devicename": (COMPUTER, 0), "device": (COMPUTER, 1),
    "hostname": (COMPUTER, 0), "host": (COMPUTER, 1), "machinename": (COMPUTER, 0), "machine": (COMPUTER, 1),
    "displayname": (COMPUTER, 1), "dnshostname": (COMPUTER, 2), "samaccountname": (COMPUTER, 2),
    "pcname": (COMPUTER, 0), "devicedisplayname": (COMPUTER, 0), "computerdevicename": (COMPUTER, 0),
    "name": (AD_NAME, 0), "cn": (AD_NAME, 0),
    "deviceid": (DEVICE_ID, 0), "azureaddeviceid": (DEVICE_ID, 0), "entradeviceid": (DEVICE_ID, 0),
    "aaddeviceid": (DEVICE_ID, 0),
    # when
    "whencreated": (DATE, 1), "createddatetime": (DATE, 0), "created": (DATE, 1), "creationtime": (DATE, 0),
    "creationdate": (DATE, 0), "createdate": (DATE, 0), "datecreated": (DATE, 0), "date": (DATE, 2),
    "dateadded": (DATE, 0), "lastupdatetime": (DATE, 0), "keyuploaddate": (DATE, 0), "uploaddate": (DATE, 0),
    "backupdate": (DATE, 0), "backuptime": (DATE, 0), "timestamp": (DATE, 2), "escrowdate": (DATE, 0),
    # the volume
    "volumetype": (VOLUME_TYPE, 0), "drivetype": (VOLUME_TYPE, 0), "drive": (VOLUME_TYPE, 1),
    "msfvevolumeguid": (VOLUME_GUID, 0), "volumeguid": (VOLUME_GUID, 0), "volumeid": (VOLUME_GUID, 1),
    # where
    "distinguishedname": (DN, 0), "dn": (DN, 0),
    "directory": (BACKUP, 0), "backuptype": (BACKUP, 0), "escrowlocation": (BACKUP, 0), "keystore": (BACKUP, 1),
    "keytype": (KEY_TYPE, 0), "keyprotectortype": (KEY_TYPE, 0),
    # known, and not ours
    "msfvekeypackage": (IGNORE, 0), "objectguid": (IGNORE, 0), "objectclass": (IGNORE, 0),
    "odatatype": (IGNORE, 0), "provider": (IGNORE, 0),
}

#: Names that have a role only beside a column of another role: the keychain's ``value`` is its
#: key because a ``key_type`` column says what it holds (elsewhere "Value" is anything).
CONDITIONAL: dict[str, tuple[str, int, str]] = {"value": (KEY, 3, KEY_TYPE)}

#: When no exact name fits: a header holding all the words of one entry gets its role (rank 5).
FUZZY: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    # (words that must all occur, words that must not occur, role)
    (("recovery", "guid"), (), KEY_ID),
    (("key", "id"), ("device",), KEY_ID),
    (("protector", "id"), (), KEY_ID),
    (("recovery", "password"), ("id", "guid", "date", "type"), KEY),
    (("recovery", "key"), ("id", "guid", "date", "type", "package"), KEY),
    (("bitlocker", "key"), ("id", "guid", "date", "type", "package"), KEY),
    (("device", "id"), (), DEVICE_ID),
    (("computer",), ("distinguished", "guid"), COMPUTER),
    (("device", "name"), (), COMPUTER),
    (("host",), ("id",), COMPUTER),
    (("created",), (), DATE),
    (("date",), (), DATE),
    (("volume", "type"), (), VOLUME_TYPE),
    (("volume", "guid"), (), VOLUME_GUID),
)

#: Roles a name ending in "id" or "guid" never gets by :data:`FUZZY`.
NOT_IDENTIFIERS = frozenset({KEY, COMPUTER, DATE, VOLUME_TYPE})

# --- which source a set of columns comes from --------------------------------------------------------

#: (source_type, compact headers that must all be present), first match wins. Checked after
#: :data:`SIGNATURE_PREFIXES`.
SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("keychain_csv", frozenset({"provider", "keytype", "identifier", "value"})),
    ("crowdstrike_csv", frozenset({"hostname", "keyid", "recoverykey", "directory"})),
    ("mbam_csv", frozenset({"recoverykeyid", "recoverykey", "lastupdatetime"})),
    ("msa_text", frozenset({"keyid", "recoverykey", "keyuploaddate"})),
    ("msa_text", frozenset({"devicename", "keyid", "recoverykey", "drive"})),
    ("azure_portal_csv", frozenset({"device", "drivetype", "keyid", "recoverykey"})),
    ("get_bitlockervolume", frozenset({"keyprotectorid"})),
    ("dsinternals", frozenset({"computername", "recoveryguid", "recoverypassword"})),
    ("entra_csv", frozenset({"deviceid"})),
    ("ad_csv", frozenset({"distinguishedname"})),
    ("ad_csv", frozenset({"whencreated"})),
)
#: Any header starting so marks the source (AD's schema prefix).
SIGNATURE_PREFIXES: tuple[tuple[str, str], ...] = (("msfve", "ad_csv"),)
#: The dissect.target keychain file has no header (bitlocker-tools --keychain writes none).
KEYCHAIN_HEADER = ("provider", "key_type", "identifier", "value")
KEYCHAIN_PROVIDERS = frozenset({"bitlocker"})

# --- values ------------------------------------------------------------------------------------------

#: A cell holding one of these (compact spelling) holds no value: a script's placeholder.
PLACEHOLDERS = frozenset({
    "na", "n/a", "none", "null", "nil", "notfound", "devicenotfound", "nokey", "nokeyfound", "norecoverykey",
    "norecoverykeyfound", "nokeysfound", "unknown", "empty", "missing", "notavailable", "notescrowed", "error",
    "accessdenied", "notset", "nobitlockerkey", "nobitlockerkeyfound", "-", "",
})
#: What PowerShell writes for a value it could not turn into text (binary attributes, arrays).
TYPE_NAMES = ("System.Byte[]", "System.Object[]", "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",
              "System.Collections.Generic.List", "System.Guid[]")

#: Key types (compact) of the dissect keychain and Get-BitLockerVolume, and what each holds.
RECOVERY_KEY_TYPES = frozenset({"recoverykey", "recoverypassword", "numericalpassword", "3"})
RAW_KEY_TYPES = frozenset({"raw"})  # a raw key: the FVEK as bitlocker-tools writes it
NOT_ESCROW_KEY_TYPES = {
    "passphrase": "a user password, not an escrowed key (give it with -p)",
    "file": "names a key file: give the .BEK file itself",
}
