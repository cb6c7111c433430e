"""What to forge: :class:`VolumeSpec` and its :class:`ProtectorSpec` list, checked on creation.

A spec that the forge could only half honour is refused here, before any byte is written: the
Vista layout's restrictions, the protector kinds the forge can write, key sizes, damage modes.
Checks that need the input image (its filesystem, its free space) are made by the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Union

from ..errors import CredentialFormatError
from ..format.constants import EncryptionMethod, ProtectorType
from ..recovery_password import parse as parse_recovery_password

#: The boot-sector layouts the forge writes (``VolumeSpec.variant``).
LAYOUTS = ("win7", "vista", "togo")
#: The methods Windows Vista offers: AES-CBC with or without the Elephant diffuser.
VISTA_METHODS = (EncryptionMethod.AES_128_DIFFUSER, EncryptionMethod.AES_256_DIFFUSER,
                 EncryptionMethod.AES_128, EncryptionMethod.AES_256)
#: The protector kinds the forge writes (the combined TPM + startup key kinds it does not).
WRITABLE_PROTECTORS = (ProtectorType.CLEAR_KEY, ProtectorType.TPM, ProtectorType.STARTUP_KEY,
                       ProtectorType.TPM_PIN, ProtectorType.RECOVERY_PASSWORD, ProtectorType.PASSWORD)
#: How ``VolumeSpec.damage`` can damage a metadata copy (see :mod:`.damage`).
DAMAGE_MODES = ("fvek", "signature", "crc", "description")
DEFAULT_CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
#: Bytes of the volume master key.
VMK_SIZE = 32
#: Bytes of a startup key's external key and of a clear key.
PROTECTOR_KEY_SIZE = 32


@dataclass
class ProtectorSpec:
    """One key protector (VMK entry) to write.

    ``secret`` by type: recovery_password: the 48-digit text (generated from the seed if None);
    password: the password (required); startup_key: the 32-byte external key (generated if None);
    clear_key: the 32-byte clear key (generated if None); tpm / tpm_pin: ignored (the TPM-sealed
    blob is random, so only another protector opens the volume). ``guid`` is the protector's
    Key ID (derived from the seed if None). ``backups``: for a recovery password, the backup-
    information entries (value type 0x15) to nest, each (method, backup time), where method is a
    :class:`BackupMethod` code; Windows 10+ writes one after saving or uploading the key.
    """

    type: Union[ProtectorType, str]
    secret: Union[str, bytes, None] = None
    guid: Union[str, None] = None
    backups: tuple[tuple[int, datetime], ...] = ()

    def __post_init__(self) -> None:
        self.type = ProtectorType(self.type)
        if self.type not in WRITABLE_PROTECTORS:
            raise ValueError(f"the forge cannot write a {self.type.value} protector")
        if self.type == ProtectorType.PASSWORD and not isinstance(self.secret, str):
            raise ValueError("a password protector needs secret=<password text>")
        if self.type in (ProtectorType.STARTUP_KEY, ProtectorType.CLEAR_KEY) and self.secret is not None:
            if not isinstance(self.secret, bytes) or len(self.secret) != PROTECTOR_KEY_SIZE:
                raise ValueError(f"a {self.type.value} secret must be {PROTECTOR_KEY_SIZE} bytes")
        if self.backups and self.type != ProtectorType.RECOVERY_PASSWORD:
            raise ValueError("Windows records backups of recovery passwords only")
        if self.type == ProtectorType.RECOVERY_PASSWORD and self.secret is not None:
            try:
                parse_recovery_password(str(self.secret))
            except CredentialFormatError as exc:
                raise ValueError(str(exc)) from None


@dataclass
class VolumeSpec:
    """What to forge. Every field but ``method`` and ``protectors`` has a working default."""

    method: EncryptionMethod
    protectors: list[ProtectorSpec]
    sector_size: int = 512
    metadata_version: int = 2
    description: Union[str, None] = "FORGE-PC F: 1/2/2026"
    volume_guid: Union[str, None] = None
    #: Seed of every random value (FVEK, VMK, salts, GUIDs, generated secrets, filler).
    seed: Union[int, str, bytes] = 0
    #: Creation time; protector and nonce times follow it by fixed steps.
    created: datetime = DEFAULT_CREATED
    #: Conversion boundary: ciphertext below, plaintext above. None: the whole volume.
    encrypted_size: Union[int, None] = None
    #: Block-header states; None: (4, 4) when fully encrypted, else (3, 1) as on the
    #: paused Windows 7 volume of the corpus.
    state: Union[int, None] = None
    next_state: Union[int, None] = None
    #: Damage one metadata copy (0, 1 or 2), or several (a tuple), so that its CRC-32 no longer matches.
    damage_copy: Union[int, tuple[int, ...], None] = None
    #: How: "fvek" flips bits in the FVEK blob, "signature" erases the block signature,
    #: "crc" changes the stored CRC only, "description" changes one character of it.
    damage: str = "fvek"
    #: Volume offsets of the three blocks and of the relocated header; None: at the image's end.
    metadata_offsets: Union[tuple[int, int, int], None] = None
    volume_header_offset: Union[int, None] = None
    #: Relocated header size in sectors; None: 8 KiB worth (16 x 512, or 2 x 4096).
    volume_header_sectors: Union[int, None] = None
    #: Fill the boot sector's 32-bit total-sectors field (volume sectors - 1). Windows leaves it 0
    #: on NTFS volumes; libbde 20190102 then sizes the volume from the decrypted NTFS boot sector
    #: and cannot size any other filesystem. None: fill it unless the input is NTFS.
    header_total_sectors: Union[bool, None] = None
    #: Boot-sector fields; None: copied from the input's boot sector (or 0 / 8).
    hidden_sectors: Union[int, None] = None
    sectors_per_cluster: Union[int, None] = None
    #: Explicit keys (else derived from the seed). ``fvek`` is the FVEK datum's key bytes.
    fvek: Union[bytes, None] = None
    vmk: Union[bytes, None] = None
    #: Refuse (default) to overwrite nonzero input bytes with metadata.
    require_free: bool = True
    #: Boot-sector layout: "win7" (Windows 7 and later), "vista" (Windows Vista, metadata
    #: version 1, NTFS input) or "togo" (BitLocker To Go discovery volume over a FAT input).
    #: None: "vista" when ``metadata_version`` is 1, else "win7". "vista" implies version 1.
    variant: Union[str, None] = None
    #: Vista only: store the NTFS backup boot sector (the volume's last sector) in the clear as a
    #: copy of the ``-FVE-FS-`` boot sector, which is what dislocker after 0.7.3 (commit 515b6d9)
    #: assumes; by default it is encrypted like every sector after the first 8 KiB (libbde,
    #: libyal's BDE format document, our reader). See docs/forge.md.
    vista_plain_backup_boot_sector: bool = False

    def __post_init__(self) -> None:
        self.method = EncryptionMethod(self.method)
        if self.method == EncryptionMethod.NONE:
            raise ValueError("method NONE is not supported by the forge")
        if self.sector_size not in (512, 1024, 2048, 4096):
            raise ValueError("sector_size must be 512, 1024, 2048 or 4096")
        self._check_variant()
        if not self.protectors:
            raise ValueError("a volume needs at least one protector")
        if self.damage not in DAMAGE_MODES:
            raise ValueError(f"damage must be one of {', '.join(DAMAGE_MODES)}")
        if self.damage_copy is not None and not set(self.damaged_copies) <= {0, 1, 2}:
            raise ValueError("damage_copy must be 0, 1 or 2, or a tuple of them")
        if self.fvek is not None and len(self.fvek) != self.method.fvek_datum_size:
            raise ValueError(f"fvek for {self.method.label} must be {self.method.fvek_datum_size} bytes")
        if self.vmk is not None and len(self.vmk) != VMK_SIZE:
            raise ValueError(f"vmk must be {VMK_SIZE} bytes")

    @property
    def is_v1(self) -> bool:
        """Metadata version 1 (the Vista layout)."""
        return self.metadata_version == 1

    def _check_variant(self) -> None:
        if self.variant is None:
            self.variant = "vista" if self.metadata_version == 1 else "win7"
        if self.variant not in LAYOUTS:
            raise ValueError(f"variant must be one of {', '.join(LAYOUTS)}")
        if self.variant == "vista":
            self.metadata_version = 1
        if self.metadata_version not in (1, 2):
            raise NotImplementedError("the forge writes metadata version 1 (Vista) or 2 (Windows 7+, To Go)")
        if self.metadata_version == 1 and self.variant != "vista":
            raise ValueError(f"metadata version 1 is the Vista layout, not {self.variant}")
        if self.variant == "vista":
            self._check_vista()
        elif self.vista_plain_backup_boot_sector:
            raise ValueError("vista_plain_backup_boot_sector applies to the Vista layout only")
        if self.variant == "togo" and self.header_total_sectors is False:
            raise ValueError("the To Go discovery volume is a FAT32 filesystem over the whole drive; "
                             "its total-sectors field cannot be 0")

    @property
    def damaged_copies(self) -> tuple[int, ...]:
        """The copies ``damage_copy`` names (one index, or several)."""
        if self.damage_copy is None:
            return ()
        return tuple(self.damage_copy) if isinstance(self.damage_copy, (tuple, list)) else (self.damage_copy,)

    def _check_vista(self) -> None:
        if self.method not in VISTA_METHODS:
            raise ValueError(f"Windows Vista cannot write {self.method.label}: its methods are AES-CBC-128/256 "
                             "with or without the Elephant diffuser (XTS came with Windows 10 1511)")
        if self.sector_size != 512:
            raise ValueError("the Vista layout is written with 512-byte sectors only (Vista predates 4Kn disks)")
        not_v1 = {
            "encrypted_size": "v1 block headers have no conversion boundary",
            "volume_header_offset": "Vista does not relocate the boot sectors",
            "volume_header_sectors": "Vista does not relocate the boot sectors",
            "header_total_sectors": "the Vista boot sector keeps the NTFS BPB",
            "hidden_sectors": "the Vista boot sector keeps the NTFS BPB",
            "sectors_per_cluster": "the Vista boot sector keeps the NTFS BPB",
        }
        for name, why in not_v1.items():
            if getattr(self, name) is not None:
                raise ValueError(f"{name} does not apply to the Vista layout: {why}")
