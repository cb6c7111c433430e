"""Codes and sizes that appear on disk, with the names the CLI and JSON output use.

Kept apart from the structure definitions so that the reader, the writer and the CLI share one
spelling of every name (the JSON field values are a contract that scripts depend on), and so that
every size of the format is written down once.
"""

from __future__ import annotations

import enum

SIGNATURE = b"-FVE-FS-"
TOGO_OEM = b"MSWIN4.1"
NTFS_OEM = b"NTFS    "
BOOT_SIGNATURE = b"\x55\xaa"
#: The first three bytes of an NTFS boot sector, which Vista's BitLocker boot sector keeps.
NTFS_JUMP = b"\xeb\x52\x90"
#: The first three bytes of the Windows 7+ and To Go boot sectors (a FAT32 boot sector's jump).
FAT32_JUMP = b"\xeb\x58\x90"

#: NTFS's boot area ($Boot: the boot sector and boot code, 16 sectors of 512 bytes). Vista's
#: BitLocker leaves it in the clear; Windows 7 and later relocate it (the "volume header") and
#: encrypt it at its new place.
NTFS_BOOT_AREA = 0x2000
#: Bytes each metadata block occupies on Windows 7+ and To Go, whatever the sector size; the
#: plaintext presents the area as zeros.
METADATA_BLOCK_AREA = 0x10000
#: Vista's metadata blocks are files of 16 KiB (FVE.{GUID}.1-3), rounded up to whole clusters.
VISTA_METADATA_BLOCK_AREA = 0x4000

#: Win7+ and BitLocker To Go volumes carry one of these GUIDs in their boot sector.
BITLOCKER_GUID = "4967d63b-2e29-4ad8-8399-f6a339e3d001"
#: Used-space-only ("encrypt on write") conversion still in progress.
EOW_GUID = "92a84d3b-dd80-4d0e-9e4e-b1e3284eaed8"

#: Rounds of the SHA-256 key stretch.
STRETCH_ROUNDS = 0x100000


class EncryptionMethod(enum.IntEnum):
    NONE = 0x0000
    AES_128_DIFFUSER = 0x8000
    AES_256_DIFFUSER = 0x8001
    AES_128 = 0x8002
    AES_256 = 0x8003
    AES_XTS_128 = 0x8004
    AES_XTS_256 = 0x8005

    @property
    def label(self) -> str:
        """The name examiners read in Windows tools, e.g. ``AES-CBC-128-DIFFUSER``."""
        return _METHOD_LABELS[self]

    @property
    def key_material_size(self) -> int:
        """Bytes of sector-crypto key material: the FVEK, plus the tweak key for the diffuser
        methods (what ``--fvek`` takes)."""
        return _KEY_MATERIAL_SIZES[self]

    @property
    def fvek_datum_size(self) -> int:
        """Bytes of key in the metadata's FVEK datum: the diffuser methods always store 64 (an
        FVEK half and a tweak half of 32 bytes each, of which AES-128 uses 16 each)."""
        return 64 if self.has_diffuser else _KEY_MATERIAL_SIZES[self]

    @property
    def is_xts(self) -> bool:
        return self in (EncryptionMethod.AES_XTS_128, EncryptionMethod.AES_XTS_256)

    @property
    def has_diffuser(self) -> bool:
        return self in (EncryptionMethod.AES_128_DIFFUSER, EncryptionMethod.AES_256_DIFFUSER)


_METHOD_LABELS = {
    EncryptionMethod.NONE: "NONE",
    EncryptionMethod.AES_128_DIFFUSER: "AES-CBC-128-DIFFUSER",
    EncryptionMethod.AES_256_DIFFUSER: "AES-CBC-256-DIFFUSER",
    EncryptionMethod.AES_128: "AES-CBC-128",
    EncryptionMethod.AES_256: "AES-CBC-256",
    EncryptionMethod.AES_XTS_128: "AES-XTS-128",
    EncryptionMethod.AES_XTS_256: "AES-XTS-256",
}

_KEY_MATERIAL_SIZES = {
    EncryptionMethod.NONE: 0,
    EncryptionMethod.AES_128_DIFFUSER: 32,
    EncryptionMethod.AES_256_DIFFUSER: 64,
    EncryptionMethod.AES_128: 16,
    EncryptionMethod.AES_256: 32,
    EncryptionMethod.AES_XTS_128: 32,
    EncryptionMethod.AES_XTS_256: 64,
}


class VolumeState(enum.IntEnum):
    """Conversion state, named as fvevol.sys does (dislocker's names differ for 2, 3 and 5)."""

    NULL = 0
    DECRYPTED = 1
    SWITCHING_DIRTY = 2  # conversion of a large volume in progress, with a conversion log
    PAUSED = 3  # conversion paused part way
    ENCRYPTED = 4
    SWITCHING = 5  # conversion of a small volume in progress


class EntryType(enum.IntEnum):
    PROPERTY = 0x0000
    VMK = 0x0002
    FVEK = 0x0003
    VALIDATION = 0x0004
    STARTUP_KEY = 0x0006
    DESCRIPTION = 0x0007
    FVEK_BACKUP = 0x000B
    VOLUME_HEADER_BLOCK = 0x000F


class ValueType(enum.IntEnum):
    ERASED = 0x00
    KEY = 0x01
    UNICODE = 0x02
    STRETCH_KEY = 0x03
    USE_KEY = 0x04
    AES_CCM = 0x05
    TPM_ENCODED = 0x06
    VALIDATION = 0x07
    VMK = 0x08
    EXTERNAL_KEY = 0x09
    UPDATE = 0x0A
    ERROR = 0x0B
    ASYMMETRIC = 0x0C
    EXPORTED_KEY = 0x0D
    PUBLIC_KEY = 0x0E
    OFFSET_SIZE = 0x0F
    SIMPLE_10 = 0x10
    SIMPLE_11 = 0x11
    CONCAT_HASH_KEY = 0x12
    SIMPLE_13 = 0x13
    BACKUP_INFO = 0x15


#: Entry types of the blobs nested in a recovery-password protector's stretch key (Windows 7+; the
#: Vista volume of the corpus stores the first as a plain property, type 0): the 16-byte key
#: behind the 48 digits, and (Windows 10+) the stretched key, both wrapped with the VMK.
KEY16_ENTRY_TYPE = 0x0012
STRETCHED_KEY_ENTRY_TYPE = 0x0013


class KeyMethod(enum.IntEnum):
    """Methods of KEY data that wrap keys rather than volume data (and of STRETCH KEY and USE
    KEY values, which share the number space)."""

    STRETCH = 0x1000  # recovery-password stretch; its nested blob holds the 16-byte key
    STRETCH_2 = 0x1001  # user-password stretch
    CLEAR_KEY = 0x2000  # the unprotected key of a clear-key (suspended) protector
    STRETCHED_KEY = 0x2008  # a recovery password's stretched key, kept wrapped with the VMK
    EXTERNAL_KEY = 0x2002
    VMK = 0x2003
    VALIDATION_HASH = 0x2005


class BackupMethod(enum.IntEnum):
    """Where Windows backed up a recovery password (BACKUP INFO's method). The codes are
    dissect.fve's; no Microsoft document names them, and only FILE has been seen on a volume.
    They look like bits, so a value that is none of them is read bit by bit."""

    ACTIVE_DIRECTORY = 0x0001
    MICROSOFT_ACCOUNT = 0x0002  # dissect.fve: ONE_DRIVE
    ENTRA_ID = 0x0004  # dissect.fve: AZURE_ACTIVE_DIRECTORY
    FILE = 0x0008
    PRINTED = 0x0010

    @property
    def label(self) -> str:
        """How the output names the destination."""
        return _BACKUP_LABELS[self]


_BACKUP_LABELS = {
    BackupMethod.ACTIVE_DIRECTORY: "active_directory",
    BackupMethod.MICROSOFT_ACCOUNT: "microsoft_account",
    BackupMethod.ENTRA_ID: "entra_id",
    BackupMethod.FILE: "file",
    BackupMethod.PRINTED: "printout",
}


def backup_destinations(method: int) -> list[str]:
    """The destinations a BACKUP INFO method names: one known code, else each known bit, and any
    unknown remainder as hex (shown, never dropped)."""
    try:
        return [BackupMethod(method).label]
    except ValueError:
        pass
    names = [m.label for m in BackupMethod if method & m]
    rest = method & ~sum(BackupMethod)
    return names + ([f"0x{rest:04x}"] if rest or not names else [])


class ProtectorType(str, enum.Enum):
    """Key protector kinds, named as the JSON output spells them."""

    CLEAR_KEY = "clear_key"
    TPM = "tpm"
    STARTUP_KEY = "startup_key"
    TPM_PIN = "tpm_pin"
    TPM_STARTUP_KEY = "tpm_startup_key"
    TPM_PIN_STARTUP_KEY = "tpm_pin_startup_key"
    RECOVERY_PASSWORD = "recovery_password"
    PASSWORD = "password"
    UNKNOWN = "unknown"

    @classmethod
    def from_code(cls, code: int) -> ProtectorType:
        if code <= 0x00FF:  # dislocker treats the whole low range as a clear key
            return cls.CLEAR_KEY
        if 0x0800 <= code <= 0x0FFF:
            return cls.RECOVERY_PASSWORD
        return _PROTECTOR_CODES.get(code, cls.UNKNOWN)

    @property
    def needs_tpm(self) -> bool:
        return self.value.startswith("tpm")

    @property
    def code(self) -> int:
        """The protection code Windows writes for this kind (VMK value, offset 26); UNKNOWN has
        none (KeyError)."""
        return _PROTECTION_CODES[self]


_PROTECTOR_CODES = {
    0x0100: ProtectorType.TPM,
    0x0200: ProtectorType.STARTUP_KEY,
    0x0300: ProtectorType.TPM_STARTUP_KEY,  # protection codes are flags: TPM 0x100,
    0x0500: ProtectorType.TPM_PIN,  # startup key 0x200, PIN 0x400
    0x0700: ProtectorType.TPM_PIN_STARTUP_KEY,
    0x2000: ProtectorType.PASSWORD,
}
_PROTECTION_CODES = {kind: code for code, kind in _PROTECTOR_CODES.items()}
_PROTECTION_CODES.update({ProtectorType.CLEAR_KEY: 0x0000, ProtectorType.RECOVERY_PASSWORD: 0x0800})


def code_name(enum_type: type[enum.IntEnum], code: int) -> str:
    """The enum member's name for an on-disk code, else the code as four hex digits: unknown
    codes are shown, never hidden or rejected."""
    try:
        return enum_type(code).name
    except ValueError:
        return f"0x{code:04x}"


def method_label(code: int) -> str:
    """The label of an encryption-method code (``AES-XTS-128``), else the code in hex."""
    try:
        return EncryptionMethod(code).label
    except ValueError:
        return code_name(EncryptionMethod, code)
