"""The fixture forge: write valid BitLocker volumes from a plain filesystem image and a spec.

    from bitlocker_tools.forge import VolumeSpec, ProtectorSpec, forge
    from bitlocker_tools.format.constants import EncryptionMethod

    spec = VolumeSpec(
        method=EncryptionMethod.AES_XTS_128,
        protectors=[ProtectorSpec("recovery_password"), ProtectorSpec("password", "Forge-Pass1")],
        seed="demo",
    )
    vol = forge("ntfs.img", spec)          # or bytes
    vol.write("demo.bin")
    vol.recovery_passwords, vol.passwords, vol.bek_files, vol.fvek.hex(), vol.expected_sha256

Three layouts (``VolumeSpec.variant``; docs/forge.md describes each and what the peers accept):

* ``"win7"`` (the default): Windows 7 and later, metadata version 2, described below;
* ``"vista"`` (``metadata_version=1``): Windows Vista. The input must be NTFS. Sector 0 is the NTFS
  boot sector with ``-FVE-FS-`` at 3 and block 1's cluster number at 56 (the MFT-mirror cluster
  moves to the v1 block header); sectors 0-15 stay in the clear; the three 16 KiB v1 blocks go
  into free NTFS clusters (block 1's header lists the other two); everything else is encrypted
  in place. The blocks carry the entries and the CRC-32/SHA-256 validation of the corpus Vista
  volume;
* ``"togo"``: BitLocker To Go over a FAT input. Like ``"win7"``, but the drive starts with a
  plaintext FAT32 "discovery volume" (``MSWIN4.1`` boot sector with the GUID at 424 and the
  offsets at 440), and the relocated header area covers that whole discovery volume.

Windows 7+ layout (metadata version 2, the format of ``docs/bde-format.md``):

* sector 0: the ``-FVE-FS-`` boot sector (the BPB copied from the input where it makes sense,
  the FAT32-like fields as Windows writes them, boot code zero-filled, the BitLocker GUID and the
  three metadata-block offsets);
* the first ``volume_header_sectors`` sectors of the input are relocated to
  ``volume_header_offset`` and encrypted there (at their new physical offset);
* three identical 64 KiB metadata block areas: block header, metadata header, entries
  (description, one VMK entry per protector, the FVEK, the volume-header-block entry), then the
  validation structure (CRC-32 and the VMK-wrapped SHA-256 of the block);
* every other sector below ``encrypted_size`` is encrypted at its own offset; sectors above it
  are stored as they are (a paused conversion).

By default the metadata areas and the relocated header go at the end of the image, which must be
free (all zero) there: make the filesystem smaller than the image (``mkntfs img SECTORS``,
``mkfs.fat img KIB``). Every random value (FVEK, VMK, salts, GUIDs, nonces, generated secrets)
is derived from ``spec.seed``, and all times from ``spec.created``, so the output is a pure
function of the input image and the spec.

The plaintext a reader must produce is the input image with the BitLocker-reserved regions (the
metadata areas and the relocated-header area) read as zeros; :attr:`ForgedVolume.expected_sha256`
is its SHA-256. On Vista that keeps the input's NTFS boot sector, which is what Windows presents.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Union

from ._core import load
from .crypto import kdf
from .crypto.ccm import wrap
from .errors import CredentialFormatError
from .format import structs
from .format.constants import (
    BITLOCKER_GUID,
    SIGNATURE,
    TOGO_OEM,
    EncryptionMethod,
    EntryType,
    KeyMethod,
    ProtectorType,
    ValueType,
    VolumeState,
)
from .format.writer_structs import FatDirEntry, FsInfoSector, NtfsBootSector, ToGoBootSectorFull, Win7BootSectorFull
from .metadata import guid_to_bytes
from .recovery_password import RecoveryPassword
from .recovery_password import parse as parse_recovery_password

__all__ = ["ProtectorSpec", "VolumeSpec", "ForgedProtector", "ForgedVolume", "forge",
           "bek_file", "PROTECTION_CODES", "BLOCK_AREA", "VISTA_BLOCK_AREA", "LAYOUTS"]

#: Bytes each metadata block occupies (and reads back as zeros): 64 KiB for 512 and 4096 sectors.
BLOCK_AREA = 0x10000
#: Vista: the FVE.{GUID}.1-3 files are 16 KiB (libbde); dislocker and our reader round the cluster
#: size up: ``(cluster + 0x3FFF) & ~(cluster - 1)``, the same for clusters up to 16 KiB.
VISTA_BLOCK_AREA = 0x4000
#: Vista leaves the first 8 KiB (the boot sector and the NTFS boot code, sectors 0-15) in the clear.
VISTA_PLAIN_BYTES = 0x2000
#: The boot-sector layouts the forge writes (``VolumeSpec.variant``).
LAYOUTS = ("win7", "vista", "togo")
VISTA_METHODS = (EncryptionMethod.AES_128_DIFFUSER, EncryptionMethod.AES_256_DIFFUSER,
                 EncryptionMethod.AES_128, EncryptionMethod.AES_256)
#: The relocated boot area is 8 KiB (16 x 512) on every volume seen; libbde's document agrees.
VOLUME_HEADER_BYTES = 0x2000
_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)
DEFAULT_CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

#: Protection codes written for each protector kind (VMK entry offset 34).
PROTECTION_CODES = {
    ProtectorType.CLEAR_KEY: 0x0000,
    ProtectorType.TPM: 0x0100,
    ProtectorType.STARTUP_KEY: 0x0200,
    ProtectorType.TPM_PIN: 0x0500,
    ProtectorType.RECOVERY_PASSWORD: 0x0800,
    ProtectorType.PASSWORD: 0x2000,
}
#: FVEK KEY-datum sizes (section 4 of the format notes): diffuser methods always store 64 bytes.
_FVEK_DATUM_SIZE = {
    EncryptionMethod.AES_128_DIFFUSER: 64,
    EncryptionMethod.AES_256_DIFFUSER: 64,
    EncryptionMethod.AES_128: 16,
    EncryptionMethod.AES_256: 32,
    EncryptionMethod.AES_XTS_128: 32,
    EncryptionMethod.AES_XTS_256: 64,
}
_DAMAGE_MODES = ("fvek", "signature", "crc", "description")


def _filetime(when: datetime) -> int:
    return (when - _EPOCH_1601) // timedelta(microseconds=1) * 10


# --- the spec --------------------------------------------------------------------------------------


@dataclass
class ProtectorSpec:
    """One key protector (VMK entry) to write.

    ``secret`` by type: recovery_password: the 48-digit text (generated from the seed if None);
    password: the password (required); startup_key: the 32-byte external key (generated if None);
    clear_key: the 32-byte clear key (generated if None); tpm / tpm_pin: ignored (the TPM-sealed
    blob is random, so only another protector opens the volume). ``guid`` is the protector's
    Key ID (derived from the seed if None).
    """

    type: Union[ProtectorType, str]
    secret: Union[str, bytes, None] = None
    guid: Union[str, None] = None

    def __post_init__(self) -> None:
        self.type = ProtectorType(self.type)
        if self.type not in PROTECTION_CODES:
            raise ValueError(f"the forge cannot write a {self.type.value} protector")
        if self.type == ProtectorType.PASSWORD and not isinstance(self.secret, str):
            raise ValueError("a password protector needs secret=<password text>")
        if self.type in (ProtectorType.STARTUP_KEY, ProtectorType.CLEAR_KEY) and self.secret is not None:
            if not isinstance(self.secret, bytes) or len(self.secret) != 32:
                raise ValueError(f"a {self.type.value} secret must be 32 bytes")
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
    #: Damage one metadata copy (0, 1 or 2) so that its CRC-32 no longer matches.
    damage_copy: Union[int, None] = None
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
    #: assumes; by default it is encrypted like every sector after the first 8 KiB (libbde, the
    #: format notes, our reader). See docs/forge.md.
    vista_plain_backup_boot_sector: bool = False

    def __post_init__(self) -> None:
        self.method = EncryptionMethod(self.method)
        if self.method == EncryptionMethod.NONE:
            raise ValueError("method NONE is not supported by the forge")
        if self.sector_size not in (512, 1024, 2048, 4096):
            raise ValueError("sector_size must be 512, 1024, 2048 or 4096")
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
        if not self.protectors:
            raise ValueError("a volume needs at least one protector")
        if self.damage not in _DAMAGE_MODES:
            raise ValueError(f"damage must be one of {', '.join(_DAMAGE_MODES)}")
        if self.damage_copy is not None and self.damage_copy not in (0, 1, 2):
            raise ValueError("damage_copy must be 0, 1 or 2")
        if self.fvek is not None and len(self.fvek) != _FVEK_DATUM_SIZE[self.method]:
            raise ValueError(f"fvek for {self.method.label} must be {_FVEK_DATUM_SIZE[self.method]} bytes")
        if self.vmk is not None and len(self.vmk) != 32:
            raise ValueError("vmk must be 32 bytes")

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


# --- the result ------------------------------------------------------------------------------------


@dataclass
class ForgedProtector:
    type: ProtectorType
    guid: str
    code: int
    recovery_password: Union[str, None] = None
    password: Union[str, None] = None
    startup_key: Union[bytes, None] = None  # the 32-byte external key
    bek_name: Union[str, None] = None
    bek: Union[bytes, None] = None  # the .BEK file
    clear_key: Union[bytes, None] = None


@dataclass
class ForgedVolume:
    """A forged volume and everything a test needs to open it."""

    data: bytes
    spec: VolumeSpec
    volume_guid: str
    fvek: bytes  # the FVEK datum's key bytes (what the metadata wraps)
    key_material: bytes  # the sector-crypto key: CBC FVEK, XTS key1||key2, diffuser FVEK||TWEAK
    vmk: bytes
    metadata_offsets: tuple[int, int, int]
    volume_header_offset: int
    volume_header_size: int
    encrypted_size: int
    state: int
    next_state: int
    protectors: list[ForgedProtector]
    reserved_regions: list[tuple[int, int]]  # (offset, length) read as zeros, sorted
    expected_sha256: str  # of the plaintext a reader must produce (size bytes)
    _plain: bytes = field(repr=False, default=b"")

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def method(self) -> EncryptionMethod:
        return self.spec.method

    @property
    def sector_size(self) -> int:
        return self.spec.sector_size

    @property
    def variant(self) -> str:
        """The boot-sector layout: "win7", "vista" or "togo" (as ``scan`` reports it)."""
        return str(self.spec.variant)

    @property
    def recovery_passwords(self) -> list[str]:
        return [p.recovery_password for p in self.protectors if p.recovery_password]

    @property
    def passwords(self) -> list[str]:
        return [p.password for p in self.protectors if p.password is not None]

    @property
    def bek_files(self) -> dict[str, bytes]:
        """``{GUID}.BEK`` file name -> file bytes, one per startup-key protector."""
        return {p.bek_name: p.bek for p in self.protectors if p.bek_name and p.bek}

    def expected_plaintext(self) -> bytes:
        """The input image with the reserved regions zeroed: what a reader must return."""
        return _expected(self._plain, self.reserved_regions)

    @property
    def fvek_hex(self) -> str:
        return self.fvek.hex()

    @property
    def dislocker_fvek_file(self) -> bytes:
        """dislocker's ``-k`` FVEK file: u16 method + key, zero-padded to 66 bytes (0.7.3)."""
        return int(self.method).to_bytes(2, "little") + self.fvek.ljust(64, b"\0")

    @property
    def libbde_keys(self) -> str:
        """libbde's ``-k`` argument: ``FVEK[:TWEAK]`` in hex (XTS-128: the 32-byte FVEK alone)."""
        m = self.method
        if m.has_diffuser:
            half = 16 if m == EncryptionMethod.AES_128_DIFFUSER else 32
            return f"{self.fvek[:half].hex()}:{self.fvek[32:32 + half].hex()}"
        return self.fvek.hex()

    def write(self, path: Union[str, os.PathLike]) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path

    def write_bek_files(self, folder: Union[str, os.PathLike]) -> list[Path]:
        out = []
        for name, raw in self.bek_files.items():
            p = Path(folder) / name
            p.write_bytes(raw)
            out.append(p)
        return out

    def manifest(self) -> dict:
        """JSON-friendly description: credentials, layout, and the expected plaintext hash."""
        prot = []
        for p in self.protectors:
            d: dict = {"type": p.type.value, "guid": p.guid, "code": f"0x{p.code:04x}"}
            if p.recovery_password:
                d["recovery_password"] = p.recovery_password
            if p.password is not None:
                d["password"] = p.password
            if p.bek_name:
                d["bek"] = p.bek_name
                d["startup_key"] = p.startup_key.hex() if p.startup_key else None
            if p.clear_key:
                d["clear_key"] = p.clear_key.hex()
            prot.append(d)
        return {
            "method": self.method.name,
            "method_label": self.method.label,
            "sector_size": self.sector_size,
            "metadata_version": self.spec.metadata_version,
            "variant": self.variant,
            "size": self.size,
            "volume_guid": self.volume_guid,
            "description": self.spec.description,
            "state": self.state,
            "next_state": self.next_state,
            "encrypted_size": self.encrypted_size,
            "metadata_offsets": list(self.metadata_offsets),
            "volume_header_offset": self.volume_header_offset,
            "volume_header_size": self.volume_header_size,
            "damaged_copy": self.spec.damage_copy,
            "damage": self.spec.damage if self.spec.damage_copy is not None else None,
            "protectors": prot,
            "fvek": self.fvek.hex(),
            "vmk": self.vmk.hex(),
            "expected_plaintext_sha256": self.expected_sha256,
        }


# --- helpers ---------------------------------------------------------------------------------------


class _Random:
    """Labelled deterministic randomness: each value depends on the seed and its label only, so
    adding a protector does not change the keys of the others."""

    def __init__(self, seed: Union[int, str, bytes]):
        self.seed = seed if isinstance(seed, bytes) else str(seed).encode()

    def bytes(self, label: str, n: int) -> bytes:
        return hashlib.shake_256(b"bitlocker-tools forge\0" + self.seed + b"\0" + label.encode()).digest(n)

    def guid(self, label: str) -> str:
        return str(uuid.UUID(bytes=self.bytes(label, 16), version=4))


def _entry(entry_type: int, value_type: int, payload: bytes, version: int = 1) -> bytes:
    size = structs.ENTRY_HEADER_SIZE + len(payload)
    if size > 0xFFFF:
        raise ValueError("metadata entry too large")
    header = structs.EntryHeader.build(dict(size=size, entry_type=entry_type, value_type=value_type,
                                            version=version))
    return header + payload


def _key_datum(method: int, key: bytes, entry_type: int = EntryType.PROPERTY) -> bytes:
    return _entry(entry_type, ValueType.KEY, structs.KeyValue.build(dict(method=method, unknown=0, key=key)))


def _unicode(text: str, entry_type: int = EntryType.PROPERTY) -> bytes:
    return _entry(entry_type, ValueType.UNICODE, (text + "\0").encode("utf-16-le"))


def _expected(plain: bytes, regions: list[tuple[int, int]]) -> bytes:
    buf = bytearray(plain)
    for off, length in regions:
        buf[off : off + length] = bytes(min(length, len(buf) - off))
    return bytes(buf)


def key_material(method: EncryptionMethod, fvek: bytes) -> bytes:
    """Sector-crypto key from the FVEK datum key (format notes, section 4)."""
    if method == EncryptionMethod.AES_128_DIFFUSER:
        return fvek[0:16] + fvek[32:48]
    return fvek


def bek_file(guid: str, key: bytes, created: datetime) -> bytes:
    """A ``.BEK`` startup-key file (format notes 3.5): metadata-style header + external-key entry."""
    ft = _filetime(created)
    ext = structs.ExternalKeyValue.build(dict(guid=guid_to_bytes(guid), creation_time=ft))
    entry = _entry(EntryType.STARTUP_KEY, ValueType.EXTERNAL_KEY,
                   ext + _unicode("ExternalKey") + _key_datum(KeyMethod.EXTERNAL_KEY, key))
    size = structs.METADATA_HEADER_SIZE + len(entry)
    header = structs.MetadataHeader.build(dict(
        size=size, version=1, header_size=structs.METADATA_HEADER_SIZE, size_copy=size,
        volume_guid=guid_to_bytes(guid), next_nonce=1, encryption_method=0, encryption_method_copy=0,
        creation_time=ft,
    ))
    return header + entry


def _read_plain(plain: Union[bytes, bytearray, memoryview, str, os.PathLike]) -> bytes:
    if isinstance(plain, (bytes, bytearray, memoryview)):
        return bytes(plain)
    return Path(plain).read_bytes()


# --- input checks and the filesystem structures the layouts need ----------------------------------


@dataclass
class _NtfsInfo:
    """What the Vista writer takes from the NTFS boot sector of the input."""

    cluster_size: int
    total_sectors: int  # NTFS field: volume sectors - 1; the backup boot sector follows them
    mft_mirror_cluster: int  # moves into the v1 block header (offset 56)
    bitmap: Union[bytes, None]  # $Bitmap contents (bit set = cluster in use); None if unreadable


def _ntfs_info(plain: bytes, ss: int) -> _NtfsInfo:
    if len(plain) < 512 or plain[3:11] != b"NTFS    " or plain[510:512] != b"\x55\xaa":
        raise ValueError("the Vista layout needs an NTFS image (Vista's BitLocker encrypts NTFS volumes only); "
                         "the input's boot sector is not NTFS")
    bs = NtfsBootSector.parse(plain)
    if bs.bytes_per_sector != ss or not bs.sectors_per_cluster:
        raise ValueError(f"the NTFS boot sector says {bs.bytes_per_sector} bytes per sector, "
                         f"{bs.sectors_per_cluster} sectors per cluster; the spec says {ss}-byte sectors")
    if bs.jump != b"\xeb\x52\x90":
        raise ValueError("the NTFS boot sector does not start with EB 52 90, which the Vista header keeps")
    if bs.total_sectors + 1 > len(plain) // ss:
        raise ValueError(f"the NTFS boot sector claims {bs.total_sectors} sectors (+1 backup) but the image has "
                         f"{len(plain) // ss}")
    cs = bs.sectors_per_cluster * ss
    return _NtfsInfo(cs, bs.total_sectors, bs.mft_mirror_cluster, _ntfs_bitmap(plain))


def _ntfs_bitmap(plain: bytes) -> Union[bytes, None]:
    """The $Bitmap of an NTFS image (bit set = cluster in use), read with dissect.ntfs; None when
    the image's MFT cannot be read (the blocks then only avoid nonzero bytes)."""
    from dissect.ntfs import NTFS

    try:
        return NTFS(io.BytesIO(plain)).mft.get("$Bitmap").open().read()
    except Exception:  # noqa: BLE001 - dissect.ntfs raises many kinds on a damaged MFT
        return None


_FAT_TYPES = (b"FAT12   ", b"FAT16   ", b"FAT     ")


def _check_fat(plain: bytes, ss: int) -> None:
    """BitLocker To Go's discovery volume goes over FAT drives; NTFS and exFAT ones use the Win7 header."""
    ok = len(plain) >= 512 and plain[510:512] == b"\x55\xaa" and int.from_bytes(plain[11:13], "little") == ss and (
        plain[54:62] in _FAT_TYPES or plain[82:90] == b"FAT32   ")
    if not ok:
        raise ValueError("the To Go layout needs a FAT12/16/32 image with the spec's sector size: Windows writes "
                         "the discovery volume on FAT drives only (NTFS and exFAT drives get the Windows 7 header)")


@dataclass
class _Discovery:
    """Geometry of the small plaintext FAT32 "discovery volume" that starts a To Go drive."""

    sectors_per_cluster: int
    reserved_sectors: int
    fat_sectors: int  # one FAT, as on the drive of dislocker issue #108
    total_sectors: int  # the whole drive
    clusters: int

    @property
    def data_start(self) -> int:  # sector of cluster 2
        return self.reserved_sectors + self.fat_sectors

    @property
    def sectors(self) -> int:
        """Sectors the discovery filesystem's own structures take: reserved, FAT, root dir, README."""
        return self.data_start + 2 * self.sectors_per_cluster


def _discovery_geometry(size: int, ss: int, spc: Union[int, None]) -> _Discovery:
    spc = spc or max(1, 4096 // ss)
    total = size // ss
    fat_sectors = -(-(total // spc + 2) * 4 // ss)
    # At least 8 reserved sectors (boot 0, FSInfo 1, backups 6 and 7); cluster 2 starts on a
    # cluster boundary, so the 4 KiB-aligned BitLocker areas line up with the COV file's clusters.
    reserved = 8 + (-(8 + fat_sectors)) % spc
    clusters = (total - reserved - fat_sectors) // spc
    if clusters < 3:
        raise ValueError("the image is too small for a To Go discovery volume")
    return _Discovery(spc, reserved, fat_sectors, total, clusters)


#: FAT file names of the discovery volume: the reader's note and the placeholder that covers the
#: encrypted part of the drive (format notes, section 8: ``COV 0000. ER``, split at 4 GiB - 32 KiB).
_DISCOVERY_README = (
    "This drive is protected by BitLocker To Go. It is a test volume forged by bitlocker-tools\r\n"
    "(bitlocker_tools/forge.py); the files of the encrypted volume are in COV 0000. ER.\r\n"
).encode()
_COV_SPLIT = 4 * 1024**3 - 32 * 1024


def _fat_date_time(when: datetime) -> tuple[int, int]:
    return ((when.year - 1980) << 9 | when.month << 5 | when.day,
            when.hour << 11 | when.minute << 5 | when.second // 2)


# --- the writer ------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, plain: bytes, spec: VolumeSpec):
        self.plain = plain
        self.spec = spec
        self.rng = _Random(spec.seed)
        self.ss = spec.sector_size
        self.size = len(plain)
        self.counter = 0
        self.created = spec.created
        if self.size % self.ss:
            raise ValueError(f"the image size {self.size} is not a multiple of the sector size {self.ss}")
        self.method = spec.method
        self.fvek = spec.fvek or self.rng.bytes("fvek", _FVEK_DATUM_SIZE[self.method])
        self.vmk = spec.vmk or self.rng.bytes("vmk", 32)
        self.volume_guid = spec.volume_guid or self.rng.guid("volume-guid")
        self.variant = str(spec.variant)
        self.v1 = spec.metadata_version == 1
        if self.variant == "vista":
            self.ntfs = _ntfs_info(plain, self.ss)
        elif self.variant == "togo":
            _check_fat(plain, self.ss)
            self.disc = _discovery_geometry(self.size, self.ss, spec.sectors_per_cluster)
        self._layout()

    # -- layout ----------------------------------------------------------------------------------

    def _layout(self) -> None:
        if self.variant == "vista":
            self._layout_vista()
            return
        spec, ss, size = self.spec, self.ss, self.size
        if self.variant == "togo":
            vh_sectors = spec.volume_header_sectors or self.disc.sectors
            if vh_sectors < self.disc.sectors:
                raise ValueError(f"the To Go header area must hold the discovery volume: at least "
                                 f"{self.disc.sectors} sectors")
        else:
            vh_sectors = spec.volume_header_sectors or max(1, VOLUME_HEADER_BYTES // ss)
        self.vh_size = vh_sectors * ss
        self.vh_sectors = vh_sectors
        self.block_area = BLOCK_AREA
        align = max(4096, ss)
        if spec.metadata_offsets is None:
            tail = 3 * BLOCK_AREA + -(-self.vh_size // align) * align
            start = (size - tail) // align * align
            blk1 = start
            vh = blk1 + BLOCK_AREA
            blk2 = vh + -(-self.vh_size // align) * align
            blk3 = blk2 + BLOCK_AREA
            offsets = (blk1, blk2, blk3)
            vh_off = spec.volume_header_offset if spec.volume_header_offset is not None else vh
        else:
            offsets = tuple(spec.metadata_offsets)  # type: ignore[assignment]
            if spec.volume_header_offset is None:
                raise ValueError("give volume_header_offset together with metadata_offsets")
            vh_off = spec.volume_header_offset
        self.offsets: tuple[int, int, int] = offsets  # type: ignore[assignment]
        self.vh_off = vh_off
        regions = sorted([(o, BLOCK_AREA) for o in offsets] + [(vh_off, self.vh_size)])
        for off, length in regions:
            if off % ss:
                raise ValueError(f"offset {off:#x} is not sector aligned")
            if off < self.vh_size or off + length > size:
                raise ValueError(f"region {off:#x}+{length:#x} is outside [{self.vh_size:#x}, {size:#x})")
        self._check_regions(regions)
        enc = spec.encrypted_size if spec.encrypted_size is not None else size
        if enc % ss or not 0 < enc <= size:
            # 0 is ambiguous: libbde and our reader read it as "not recorded" (fully encrypted)
            # and dislocker 0.7.3 crashes on it, so no peer would agree on the plaintext.
            raise ValueError(f"encrypted_size must be a nonzero multiple of {ss} within the volume")
        self._states(enc)

    def _check_regions(self, regions: list[tuple[int, int]]) -> None:
        for (a, la), (b, _) in zip(regions, regions[1:]):
            if a + la > b:
                raise ValueError(f"regions at {a:#x} and {b:#x} overlap")
        if self.spec.require_free:
            for off, length in regions:
                if any(self.plain[off : off + length]):
                    raise ValueError(
                        f"the input has data at {off:#x}+{length:#x}, where BitLocker metadata goes; "
                        "leave free space at the end of the image (make the filesystem smaller) "
                        "or pass metadata_offsets / require_free=False"
                    )
        self.regions = regions

    def _states(self, enc: int) -> None:
        spec, size = self.spec, self.size
        self.encrypted_size = enc
        full = enc == size
        self.state = spec.state if spec.state is not None else (
            VolumeState.ENCRYPTED if full else VolumeState.PAUSED)
        self.next_state = spec.next_state if spec.next_state is not None else (
            VolumeState.ENCRYPTED if full else VolumeState.DECRYPTED)

    def _layout_vista(self) -> None:
        """Three 16 KiB blocks inside the NTFS volume, in clusters the NTFS bitmap marks free (Vista
        keeps them in System Volume Information\\FVE.{GUID}.1-3). Block 1 is the first free run after
        the 8 KiB boot area; blocks 2 and 3 are the first free runs at or after floor(clusters/3) and
        floor(2*clusters/3), which is exactly where the corpus Vista volume has them."""
        spec, ss, size, ntfs = self.spec, self.ss, self.size, self.ntfs
        cs = ntfs.cluster_size
        area = (cs + VISTA_BLOCK_AREA - 1) & ~(cs - 1)  # 16 KiB up to 16 KiB clusters
        self.block_area = area
        self.vh_off = self.vh_size = self.vh_sectors = 0
        self.backup_boot = ntfs.total_sectors * ss  # the NTFS backup boot sector
        forbidden = [(0, VISTA_PLAIN_BYTES), (self.backup_boot, ss)]

        def clashes(off: int, taken: list[int]) -> bool:
            if off + area > size:
                return True
            regions = forbidden + [(o, area) for o in taken]
            return any(off < o + n and o < off + area for o, n in regions)

        if spec.metadata_offsets is not None:
            offsets = tuple(spec.metadata_offsets)
            if offsets[0] % cs:
                raise ValueError(f"block 1 must start on a cluster ({cs} bytes): the boot sector addresses it "
                                 "by cluster number")
            for i, off in enumerate(offsets):
                if off % ss or clashes(off, list(offsets[:i])):
                    raise ValueError(f"block at {off:#x} is not sector aligned, overlaps another block, the "
                                     "first 8 KiB or the backup boot sector, or runs past the volume")
        else:
            bitmap = ntfs.bitmap
            need = area // cs
            n_clusters = (ntfs.total_sectors + 1) * ss // cs

            def free(c: int, taken: list[int]) -> bool:
                off = c * cs
                if clashes(off, taken):
                    return False
                if bitmap is not None and any(
                        j // 8 < len(bitmap) and bitmap[j // 8] >> (j % 8) & 1 for j in range(c, c + need)):
                    return False
                return not (spec.require_free and any(self.plain[off : off + area]))

            taken: list[int] = []
            for target in (0, n_clusters // 3, 2 * n_clusters // 3):
                c = next((c for c in list(range(target, n_clusters)) + list(range(0, target)) if free(c, taken)),
                         None)
                if c is None:
                    raise ValueError("no free, zero-filled 16 KiB run of clusters for a Vista metadata block; "
                                     "leave free space in the NTFS volume or pass metadata_offsets")
                taken.append(c * cs)
            offsets = tuple(taken)
        self.offsets = offsets  # type: ignore[assignment]
        self._check_regions(sorted((o, area) for o in offsets))
        self._states(size)

    # -- metadata pieces ---------------------------------------------------------------------------

    def _ccm(self, key: bytes, plaintext: bytes, nonce_time: int, entry_type: int = EntryType.PROPERTY) -> bytes:
        """An AES-CCM entry; the nonce is the FILETIME and the next counter, as Windows makes them."""
        self.counter += 1
        ft = nonce_time
        nonce = ft.to_bytes(8, "little") + self.counter.to_bytes(4, "little")
        blob = wrap(key, nonce, plaintext)
        payload = structs.AesCcmValue.build(dict(nonce_time=ft, nonce_counter=self.counter,
                                                 mac=blob.mac, data=blob.data))
        return _entry(entry_type, ValueType.AES_CCM, payload)

    def _vmk_datum(self) -> bytes:
        return _key_datum(KeyMethod.VMK, self.vmk)

    def _protector(self, index: int, p: ProtectorSpec) -> tuple[bytes, ForgedProtector]:
        kind = ProtectorType(p.type)
        code = PROTECTION_CODES[kind]
        guid = p.guid or self.rng.guid(f"protector-{index}-guid")
        created = self.created + timedelta(seconds=2 + index)
        ft = _filetime(created)
        out = ForgedProtector(kind, guid, code)
        props: list[bytes] = []
        version = 1
        label = f"protector-{index}"

        if kind == ProtectorType.RECOVERY_PASSWORD:
            if p.secret is not None:
                rp = parse_recovery_password(str(p.secret))
            else:
                rp = RecoveryPassword.from_key16(self.rng.bytes(label + "-key16", 16))
            out.recovery_password = str(rp)
            salt = self.rng.bytes(label + "-salt", 16)
            key = kdf.stretch(kdf.recovery_initial(rp.key16), salt, load())
            # Windows keeps key16 wrapped with the VMK inside the stretch key: entry type 0x12 on
            # Windows 7+, 0 (a property) on the Vista volume of the corpus, which has no UNICODE names.
            nested = self._ccm(self.vmk, _key_datum(KeyMethod.STRETCH, rp.key16), ft,
                               entry_type=EntryType.PROPERTY if self.v1 else 0x0012)
            if not self.v1:
                props.append(_unicode("DiskPassword"))
            props.append(_entry(EntryType.PROPERTY, ValueType.STRETCH_KEY,
                                structs.StretchKeyValue.build(dict(method=KeyMethod.STRETCH, salt=salt)) + nested))
            props.append(self._ccm(key, self._vmk_datum(), nonce_time=ft))
        elif kind == ProtectorType.PASSWORD:
            out.password = str(p.secret)
            salt = self.rng.bytes(label + "-salt", 16)
            key = kdf.stretch(kdf.password_initial(str(p.secret)), salt, load())
            props.append(_entry(EntryType.PROPERTY, ValueType.STRETCH_KEY,
                                structs.StretchKeyValue.build(dict(method=KeyMethod.STRETCH_2, salt=salt))))
            props.append(self._ccm(key, self._vmk_datum(), nonce_time=ft))
        elif kind == ProtectorType.STARTUP_KEY:
            key = p.secret if isinstance(p.secret, bytes) else self.rng.bytes(label + "-external-key", 32)
            out.startup_key = key
            out.bek_name = guid.upper() + ".BEK"
            out.bek = bek_file(guid, key, created)
            # The USE KEY property holds the external key wrapped with the VMK.
            use = structs.UseKeyValue.build(dict(method=KeyMethod.EXTERNAL_KEY))
            use += self._ccm(self.vmk, _key_datum(KeyMethod.EXTERNAL_KEY, key), nonce_time=ft)
            if not self.v1:
                props.append(_unicode("ExternalKey"))
            props.append(_entry(EntryType.PROPERTY, ValueType.USE_KEY, use))
            props.append(self._ccm(key, self._vmk_datum(), nonce_time=ft))
        elif kind == ProtectorType.CLEAR_KEY:
            key = p.secret if isinstance(p.secret, bytes) else self.rng.bytes(label + "-clear-key", 32)
            out.clear_key = key
            # 3 as on the suspended Windows 7+ volume of the corpus; no Vista sample, so 1 there
            version = 1 if self.v1 else 3
            props.append(_key_datum(0x2000, key))
            props.append(self._ccm(key, self._vmk_datum(), nonce_time=ft))
        else:  # TPM, TPM + PIN: the key is sealed in a TPM this volume never had
            sealed = self.rng.bytes(label + "-tpm-key", 32)
            blob = self.rng.bytes(label + "-tpm-blob", 0x5E)
            props.append(_entry(EntryType.PROPERTY, ValueType.TPM_ENCODED,
                                structs.TpmValue.build(dict(unknown=0, blob=blob))))
            if kind == ProtectorType.TPM_PIN:
                salt = self.rng.bytes(label + "-salt", 16)
                props.append(_entry(EntryType.PROPERTY, ValueType.STRETCH_KEY,
                                    structs.StretchKeyValue.build(dict(method=KeyMethod.STRETCH_2, salt=salt))))
            props.append(self._ccm(sealed, self._vmk_datum(), nonce_time=ft))

        fixed = structs.VmkValue.build(dict(guid=guid_to_bytes(guid), creation_time=ft, unknown=0,
                                            protection=code))
        return _entry(EntryType.VMK, ValueType.VMK, fixed + b"".join(props), version=version), out

    def _block(self) -> tuple[bytes, list[ForgedProtector], int]:
        """One metadata block including the validation structure; and where the FVEK blob is."""
        entries = b""
        if self.v1:
            # The corpus Vista volume starts with an entry of type 0x000B: a 32-byte key (method
            # 0x2002) wrapped with the VMK, made together with its startup key. Its use is unknown.
            entries += self._ccm(self.vmk, _key_datum(KeyMethod.EXTERNAL_KEY, self.rng.bytes("vista-0x000b", 32)),
                                 _filetime(self.created + timedelta(seconds=1)), EntryType.FVEK_BACKUP)
        if self.spec.description is not None:
            entries += _unicode(self.spec.description, EntryType.DESCRIPTION)
        forged = []
        for i, p in enumerate(self.spec.protectors):
            raw, fp = self._protector(i, p)
            entries += raw
            forged.append(fp)
        fvek_at = structs.BLOCK_HEADER_SIZE + structs.METADATA_HEADER_SIZE + len(entries)
        entries += self._ccm(self.vmk, _key_datum(int(self.method), self.fvek),
                             _filetime(self.created + timedelta(seconds=9)), EntryType.FVEK)
        if not self.v1:  # v1 relocates nothing, so it has no volume-header entry
            entries += _entry(EntryType.VOLUME_HEADER_BLOCK, ValueType.OFFSET_SIZE,
                              structs.OffsetSizeValue.build(dict(offset=self.vh_off, size=self.vh_size, extra=b"")))
        md_size = structs.METADATA_HEADER_SIZE + len(entries)
        covered_len = -(-(structs.BLOCK_HEADER_SIZE + md_size) // 16) * 16
        # The validation blob is the last to be wrapped; its counter is below next_nonce too.
        validation_counter_next = self.counter + 2
        mh = structs.MetadataHeader.build(dict(
            size=md_size, version=1, header_size=structs.METADATA_HEADER_SIZE, size_copy=md_size,
            volume_guid=guid_to_bytes(self.volume_guid), next_nonce=validation_counter_next,
            # The Vista volume leaves the second copy of the method 0.
            encryption_method=int(self.method), encryption_method_copy=0 if self.v1 else int(self.method),
            creation_time=_filetime(self.created),
        ))
        if self.v1:
            # v1: the size in bytes, zeros where v2 has the boundary and header fields, and the
            # NTFS MFT-mirror cluster at 56 (the boot sector's field 56 holds block 1's cluster).
            bh = structs.BlockHeader.build(dict(
                size=covered_len, version=1, current_state=self.state, next_state=self.next_state,
                encrypted_volume_size=0, convert_size=0, volume_header_sectors=0,
                metadata_offsets=list(self.offsets), volume_header_offset=self.ntfs.mft_mirror_cluster,
            ))
        else:
            bh = structs.BlockHeader.build(dict(
                size=covered_len // 16, version=2, current_state=self.state, next_state=self.next_state,
                encrypted_volume_size=self.encrypted_size, convert_size=0,
                volume_header_sectors=self.vh_sectors, metadata_offsets=list(self.offsets),
                volume_header_offset=self.vh_off,
            ))
        block = (bh + mh + entries).ljust(covered_len, b"\0")
        digest = hashlib.sha256(block).digest()
        val_entry = self._ccm(self.vmk, _key_datum(KeyMethod.VALIDATION_HASH, digest),
                              nonce_time=_filetime(self.created + timedelta(seconds=10)))
        assert self.counter + 1 == validation_counter_next
        # The first u16 is documented as a size; every real volume has the block area (64 KiB; 16 KiB
        # on Vista) minus the covered bytes. The Vista volume has the same CRC-32 and SHA-256, version 1.
        validation = structs.Validation.build(dict(unknown=(self.block_area - covered_len) & 0xFFFF,
                                                   version=1 if self.v1 else 2,
                                                   crc32=zlib.crc32(block), entry=val_entry))
        return block + validation, forged, fvek_at

    def _boot_sector(self) -> bytes:
        if self.variant == "vista":
            return self._boot_sector_vista()
        if self.variant == "togo":
            return self._boot_sector_togo()
        spec, plain = self.spec, self.plain
        src_bps = int.from_bytes(plain[11:13], "little")
        valid_bpb = plain[510:512] == b"\x55\xaa" and src_bps == self.ss
        is_ntfs = plain[3:11] == b"NTFS    "
        spc = spec.sectors_per_cluster or (plain[13] if valid_bpb and plain[13] else 8)
        hidden = spec.hidden_sectors if spec.hidden_sectors is not None else (
            int.from_bytes(plain[28:32], "little") if valid_bpb else 0)
        fill_total = spec.header_total_sectors if spec.header_total_sectors is not None else not is_ntfs
        total32 = self.size // self.ss - 1 if fill_total else 0
        return Win7BootSectorFull.build(dict(
            jump=b"\xeb\x58\x90", oem=SIGNATURE, bytes_per_sector=self.ss, sectors_per_cluster=spc,
            reserved_sectors=0, fat_count=0, root_entries=0, total_sectors_16=0, media=0xF8,
            sectors_per_fat_16=0, sectors_per_track=0x3F, heads=0xFF, hidden_sectors=hidden,
            total_sectors_32=total32, sectors_per_fat_32=0x1FE0, fat_flags=0, fs_version=0,
            root_cluster=0, fsinfo_sector=1, backup_boot_sector=6, reserved=bytes(12),
            drive_number=0x80, reserved1=0, extended_signature=0x29, volume_serial=0,
            volume_label=b"NO NAME    ", fs_type=b"FAT32   ", boot_code=bytes(70),
            guid=guid_to_bytes(BITLOCKER_GUID), metadata_offsets=list(self.offsets),
            eow_offsets=[0, 0], boot_code2=bytes(294),
        ))

    def _boot_sector_vista(self) -> bytes:
        """The NTFS boot sector with two changes, as on the corpus Vista volume (whose boot code,
        BPB and serial are NTFS's): ``-FVE-FS-`` at 3 and block 1's cluster number at 56, where
        NTFS keeps the MFT-mirror cluster (that one moves to the v1 block header)."""
        sector = bytearray(self.plain[: self.ss])
        sector[3:11] = SIGNATURE
        sector[56:64] = (self.offsets[0] // self.ntfs.cluster_size).to_bytes(8, "little")
        return bytes(sector)

    def _boot_sector_togo(self) -> bytes:
        """The discovery volume's FAT32 boot sector (``MSWIN4.1``), with the BitLocker GUID at 424
        and the three block offsets at 440. Field values follow the To Go drive of dislocker issue
        #108 (one FAT, root cluster 2, FSInfo 1, backup 6); the total covers the whole drive."""
        spec, plain, d = self.spec, self.plain, self.disc
        hidden = spec.hidden_sectors if spec.hidden_sectors is not None else int.from_bytes(plain[28:32], "little")
        total32 = d.total_sectors if spec.header_total_sectors is not False else 0
        return ToGoBootSectorFull.build(dict(
            jump=b"\xeb\x58\x90", oem=TOGO_OEM, bytes_per_sector=self.ss, sectors_per_cluster=d.sectors_per_cluster,
            reserved_sectors=d.reserved_sectors, fat_count=1, root_entries=0, total_sectors_16=0, media=0xF8,
            sectors_per_fat_16=0, sectors_per_track=0x3F, heads=0xFF, hidden_sectors=hidden,
            total_sectors_32=total32, sectors_per_fat_32=d.fat_sectors, fat_flags=0, fs_version=0,
            root_cluster=2, fsinfo_sector=1, backup_boot_sector=6, reserved=bytes(12),
            drive_number=0x80, reserved1=0, extended_signature=0x29,
            volume_serial=int.from_bytes(self.rng.bytes("togo-serial", 4), "little"),
            volume_label=b"NO NAME    ", fs_type=b"FAT32   ", boot_code=bytes(334),
            guid=guid_to_bytes(BITLOCKER_GUID), metadata_offsets=list(self.offsets), eow_offsets=[0, 0],
            boot_code2=bytes(30),
        ))

    def _discovery_area(self, boot: bytes) -> bytes:
        """The plaintext FAT32 discovery volume: boot sector, FSInfo, their backups at 6 and 7, one
        FAT, a root directory with a README and ``COV 0000. ER``, the placeholder file whose
        clusters cover the rest of the drive (the encrypted volume), so the FAT has no free space."""
        ss, d = self.ss, self.disc
        cs = d.sectors_per_cluster * ss
        buf = bytearray(d.sectors * ss)
        fsinfo = FsInfoSector.build(dict(reserved=bytes(480), free_count=0, next_free=0xFFFFFFFF,
                                         reserved2=bytes(12)))
        for at, sector in ((0, boot), (1, fsinfo), (6, boot), (7, fsinfo)):
            buf[at * ss : at * ss + 512] = sector
        fat = [0x0FFFFFF8, 0x0FFFFFFF, 0x0FFFFFFF, 0x0FFFFFFF]  # media, reserved, root dir, README
        date, time = _fat_date_time(self.created)

        def dirent(name: bytes, attributes: int, cluster: int, length: int) -> bytes:
            return FatDirEntry.build(dict(
                name=name, attributes=attributes, nt_reserved=0, create_time_tenth=0, create_time=time,
                create_date=date, access_date=date, cluster_high=cluster >> 16, write_time=time,
                write_date=date, cluster_low=cluster & 0xFFFF, size=length))

        root = dirent(b"README  TXT", 0x21, 3, len(_DISCOVERY_README))
        first, last = 4, d.clusters + 1  # every cluster after the README
        per_file = _COV_SPLIT // cs
        index = 0
        while first <= last:
            count = min(per_file, last - first + 1)
            fat += [c + 1 for c in range(first, first + count - 1)] + [0x0FFFFFFF]
            name = f"COV {index:04d}".encode() + b" ER"  # shown as "COV 0000. ER"
            root += dirent(name, 0x07, first, count * cs)  # read-only, hidden, system
            first += count
            index += 1
        fat_bytes = b"".join(v.to_bytes(4, "little") for v in fat)
        buf[d.reserved_sectors * ss : d.reserved_sectors * ss + len(fat_bytes)] = fat_bytes
        data = d.data_start * ss
        buf[data : data + len(root)] = root
        buf[data + cs : data + cs + len(_DISCOVERY_README)] = _DISCOVERY_README
        return bytes(buf)

    def _damage(self, block: bytes, fvek_at: int) -> bytes:
        buf = bytearray(block)
        mode = self.spec.damage
        if mode == "fvek":
            # inside the FVEK entry's ciphertext (header 8 + nonce 12 + MAC 16)
            pos = fvek_at + structs.ENTRY_HEADER_SIZE + 28
            for i in range(4):
                buf[pos + i] ^= 0xA5
        elif mode == "signature":
            buf[0:8] = bytes(8)
        elif mode == "crc":
            covered = int.from_bytes(buf[8:10], "little") * (1 if self.v1 else 16)
            buf[covered + 4] ^= 0xFF
        else:  # description: one character changes, the block still parses everywhere
            pos = structs.BLOCK_HEADER_SIZE + structs.METADATA_HEADER_SIZE + structs.ENTRY_HEADER_SIZE
            buf[pos] ^= 0x01
        return bytes(buf)

    # -- the volume --------------------------------------------------------------------------------

    def build(self) -> ForgedVolume:
        ss, size, plain = self.ss, self.size, self.plain
        area = self.block_area
        block, forged, fvek_at = self._block()
        if len(block) > area:
            raise ValueError(f"the metadata does not fit a {area // 1024} KiB block (too many protectors?)")
        material = key_material(self.method, self.fvek)

        # What each physical sector holds before encryption.
        phys = bytearray(plain)
        phys[self.vh_off : self.vh_off + self.vh_size] = plain[: self.vh_size]
        encrypt = bytearray(b"\x01") * (size // ss)  # per sector: 1 = ciphertext if below boundary
        if self.variant == "vista":
            # Vista leaves the first 8 KiB in the clear: the boot sector and the NTFS boot code.
            for s in range(VISTA_PLAIN_BYTES // ss):
                encrypt[s] = 0
            if self.spec.vista_plain_backup_boot_sector:
                encrypt[self.backup_boot // ss] = 0
        elif self.variant == "togo":
            # The discovery volume is plaintext; the payload's first sectors live at vh_off.
            for s in range(self.vh_sectors):
                encrypt[s] = 0
        else:
            # Sectors 1.. of the original header stay where they were (encrypted in place, as on
            # Windows volumes, where they read as ciphertext); sector 0 becomes the FVE boot sector.
            encrypt[0] = 0
        for off in self.offsets:
            phys[off : off + area] = bytes(area)
            for s in range(off // ss, (off + area) // ss):
                encrypt[s] = 0
        limit = self.encrypted_size // ss
        # The pure-Python twin is the reference: the reader's default (C) path is then checked
        # against sectors it did not write itself.
        core = load(pure=True)
        out = bytearray(phys)
        s = 0
        n = size // ss
        while s < min(n, limit):
            if not encrypt[s]:
                s += 1
                continue
            e = s
            while e < min(n, limit) and encrypt[e]:
                e += 1
            out[s * ss : e * ss] = core.crypt_sectors(int(self.method), material, bytes(phys[s * ss : e * ss]),
                                                      s * ss, ss, decrypt=False)
            s = e
        boot = self._boot_sector()
        if self.variant == "togo":
            out[0 : self.vh_size] = self._discovery_area(boot).ljust(self.vh_size, b"\0")
        else:
            out[0:ss] = boot.ljust(ss, b"\0")
        if self.variant == "vista" and self.spec.vista_plain_backup_boot_sector:
            out[self.backup_boot : self.backup_boot + ss] = boot
        for i, off in enumerate(self.offsets):
            copy = block
            if self.spec.damage_copy == i:
                copy = self._damage(block, fvek_at)
            out[off : off + len(copy)] = copy

        # Independent of any reader: the input with the reserved areas zeroed. On Vista that keeps
        # the NTFS boot sector (and its backup) as they were, which is what Windows presents.
        expected = _expected(plain, self.regions)
        return ForgedVolume(
            data=bytes(out), spec=self.spec, volume_guid=self.volume_guid, fvek=self.fvek,
            key_material=material, vmk=self.vmk, metadata_offsets=self.offsets,
            volume_header_offset=self.vh_off, volume_header_size=self.vh_size,
            encrypted_size=self.encrypted_size, state=int(self.state), next_state=int(self.next_state),
            protectors=forged, reserved_regions=list(self.regions),
            expected_sha256=hashlib.sha256(expected).hexdigest(), _plain=plain,
        )


def forge(plain_fs_image: Union[bytes, bytearray, memoryview, str, os.PathLike], spec: VolumeSpec,
          out: Union[str, os.PathLike, None] = None) -> ForgedVolume:
    """Encrypt ``plain_fs_image`` (bytes or a path) into a BitLocker volume described by ``spec``.

    The volume has the size of the image. Returns the volume bytes with its credentials and the
    expected plaintext hash; with ``out`` the volume is also written there.
    """
    vol = _Writer(_read_plain(plain_fs_image), spec).build()
    if out is not None:
        vol.write(out)
    return vol
