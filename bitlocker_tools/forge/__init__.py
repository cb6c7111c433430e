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

Windows 7+ layout (metadata version 2, the format of docs/format.md):

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

The modules, in the order a volume is made: :mod:`.spec` (what to forge, checked),
:mod:`.randomness` (the seeded values), :mod:`.layout` (where the blocks and the relocated
header go), :mod:`.entries`, :mod:`.protectors` and :mod:`.block` (the metadata block),
:mod:`.boot_sectors` and :mod:`.togo` (the plaintext structures), :mod:`.damage` (a damaged
copy), :mod:`.writer` (assembly and encryption), :mod:`.result` (what comes back).
"""

from ..format.constants import METADATA_BLOCK_AREA, VISTA_METADATA_BLOCK_AREA
from .result import ForgedProtector, ForgedVolume, bek_file
from .spec import DEFAULT_CREATED, LAYOUTS, VISTA_METHODS, WRITABLE_PROTECTORS, ProtectorSpec, VolumeSpec
from .writer import forge

#: Bytes each metadata block occupies (and reads back as zeros) on Windows 7+ and To Go.
BLOCK_AREA = METADATA_BLOCK_AREA
#: Vista: the FVE.{GUID}.1-3 files are 16 KiB (libbde); dislocker and our reader round the cluster
#: size up: ``(cluster + 0x3FFF) & ~(cluster - 1)``, the same for clusters up to 16 KiB.
VISTA_BLOCK_AREA = VISTA_METADATA_BLOCK_AREA
#: Protection code written for each protector kind the forge writes (VMK value, offset 26).
PROTECTION_CODES = {kind: kind.code for kind in WRITABLE_PROTECTORS}

__all__ = ["ProtectorSpec", "VolumeSpec", "ForgedProtector", "ForgedVolume", "forge",
           "bek_file", "PROTECTION_CODES", "BLOCK_AREA", "VISTA_BLOCK_AREA", "LAYOUTS",
           "VISTA_METHODS", "WRITABLE_PROTECTORS", "DEFAULT_CREATED"]
