"""The forge itself: from an input image and a spec to the sectors of a BitLocker volume.

Each stage is one module: the spec is checked (:mod:`.spec`), the layout planned over the input
(:mod:`.layout`), the metadata block built (:mod:`.block`), the sectors encrypted here with the
pure-Python core, and the plaintext structures (boot sector, To Go discovery volume, the three
metadata copies) written over them (:mod:`.boot_sectors`, :mod:`.togo`, :mod:`.damage`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

from .._core import load
from ..crypto.sector_key import sector_key
from ..format.constants import NTFS_BOOT_AREA, EncryptionMethod
from .block import VolumeKeys, metadata_block
from .boot_sectors import boot_sector
from .damage import damage
from .layout import Layout, plan
from .randomness import SeededRandom
from .result import ForgedVolume, zeroed
from .spec import VolumeSpec
from .togo import discovery_area

PlainImage = Union[bytes, bytearray, memoryview, str, os.PathLike]


def forge(plain_fs_image: PlainImage, spec: VolumeSpec, out: Union[str, os.PathLike, None] = None) -> ForgedVolume:
    """Encrypt ``plain_fs_image`` (bytes or a path) into a BitLocker volume described by ``spec``.

    The volume has the size of the image. Returns the volume bytes with its credentials and the
    expected plaintext hash; with ``out`` the volume is also written there.
    """
    vol = forge_volume(_read_plain(plain_fs_image), spec)
    if out is not None:
        vol.write(out)
    return vol


def forge_volume(plain: bytes, spec: VolumeSpec) -> ForgedVolume:
    """:func:`forge` on the input image's bytes."""
    ss = spec.sector_size
    if len(plain) % ss:
        raise ValueError(f"the image size {len(plain)} is not a multiple of the sector size {ss}")
    rng = SeededRandom(spec.seed)
    keys = VolumeKeys.of(spec, rng)
    layout = plan(plain, spec)
    block, protectors = metadata_block(spec, keys, layout, rng)
    if len(block) > layout.block_area:
        raise ValueError(f"the metadata does not fit a {layout.block_area // 1024} KiB block (too many protectors?)")
    material = sector_key(spec.method, keys.fvek)
    out = _encrypt(spec.method, material, _physical_plaintext(plain, layout), _clear_ranges(spec, layout),
                   layout.encrypted_size, ss)
    _write_plain_structures(out, plain, spec, layout, rng, block)
    # Independent of any reader: the input with the reserved areas zeroed. On Vista that keeps
    # the NTFS boot sector (and its backup) as they were, which is what Windows presents.
    return ForgedVolume(
        data=bytes(out), spec=spec, volume_guid=keys.volume_guid, fvek=keys.fvek, key_material=material,
        vmk=keys.vmk, metadata_offsets=layout.offsets, volume_header_offset=layout.header_offset,
        volume_header_size=layout.header_size, encrypted_size=layout.encrypted_size, state=layout.state,
        next_state=layout.next_state, protectors=protectors, reserved_regions=list(layout.regions),
        expected_sha256=hashlib.sha256(zeroed(plain, layout.regions)).hexdigest(), _plain=plain,
    )


def _read_plain(plain: PlainImage) -> bytes:
    if isinstance(plain, (bytes, bytearray, memoryview)):
        return bytes(plain)
    return Path(plain).read_bytes()


def _physical_plaintext(plain: bytes, layout: Layout) -> bytearray:
    """What each physical sector holds before encryption: the input, with its first sectors
    copied to the relocated-header area and the metadata areas zeroed."""
    phys = bytearray(plain)
    phys[layout.header_offset : layout.header_offset + layout.header_size] = plain[: layout.header_size]
    for off in layout.offsets:
        phys[off : off + layout.block_area] = bytes(layout.block_area)
    return phys


def _clear_ranges(spec: VolumeSpec, layout: Layout) -> list[tuple[int, int]]:
    """The (offset, length) byte ranges stored in the clear, below the boundary too."""
    ss = spec.sector_size
    if spec.variant == "vista":
        # Vista leaves the first 8 KiB in the clear: the boot sector and the NTFS boot code.
        ranges = [(0, NTFS_BOOT_AREA)]
        if spec.vista_plain_backup_boot_sector:
            assert layout.backup_boot is not None
            ranges.append((layout.backup_boot, ss))
    elif spec.variant == "togo":
        # The discovery volume is plaintext; the payload's first sectors live at the header offset.
        ranges = [(0, layout.header_size)]
    else:
        # Sectors 1.. of the original header stay where they were (encrypted in place, as on
        # Windows volumes, where they read as ciphertext); sector 0 becomes the FVE boot sector.
        ranges = [(0, ss)]
    return ranges + [(off, layout.block_area) for off in layout.offsets]


def _encrypt(method: EncryptionMethod, material: bytes, phys: bytearray, clear: list[tuple[int, int]],
             encrypted_size: int, ss: int) -> bytearray:
    """``phys`` with every sector below ``encrypted_size`` outside the ``clear`` ranges encrypted
    at its own offset; the sectors above the boundary are stored as they are (a paused conversion)."""
    n = len(phys) // ss
    encrypt = bytearray(b"\x01") * n  # per sector: 1 = ciphertext if below the boundary
    for off, length in clear:
        for s in range(off // ss, (off + length) // ss):
            encrypt[s] = 0
    # The pure-Python twin is the reference: the reader's default (C) path is then checked
    # against sectors it did not write itself.
    core = load(pure=True)
    out = bytearray(phys)
    limit = min(n, encrypted_size // ss)
    s = 0
    while s < limit:
        if not encrypt[s]:
            s += 1
            continue
        e = s
        while e < limit and encrypt[e]:
            e += 1
        out[s * ss : e * ss] = core.crypt_sectors(int(method), material, bytes(phys[s * ss : e * ss]), s * ss, ss,
                                                  decrypt=False)
        s = e
    return out


def _write_plain_structures(out: bytearray, plain: bytes, spec: VolumeSpec, layout: Layout, rng: SeededRandom,
                            block: bytes) -> None:
    """Write the boot sector (on To Go the whole discovery volume; on Vista, as an option, the
    backup boot sector too) and the three metadata copies over the encrypted sectors."""
    ss = spec.sector_size
    boot = boot_sector(plain, spec, layout, rng)
    if layout.discovery is not None:
        area = discovery_area(boot, layout.discovery, ss, spec.created)
        out[0 : layout.header_size] = area.ljust(layout.header_size, b"\0")
    else:
        out[0:ss] = boot.ljust(ss, b"\0")
    if spec.vista_plain_backup_boot_sector:
        assert layout.backup_boot is not None
        out[layout.backup_boot : layout.backup_boot + ss] = boot
    for i, off in enumerate(layout.offsets):
        copy = damage(block, spec.damage) if i in spec.damaged_copies else block
        out[off : off + len(copy)] = copy
