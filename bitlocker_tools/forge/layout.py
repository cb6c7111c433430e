"""Where the metadata blocks and the relocated volume header go (docs/format.md sections 2 and 6).

* Windows 7+ and To Go: by default at the end of the image, 4 KiB aligned, as
  ``[block 1][header copy][block 2][block 3]``; that tail must be free (all zero) in the input.
* Vista: three 16 KiB blocks in clusters the input's NTFS ``$Bitmap`` (read with dissect.ntfs)
  marks free; nothing is relocated.

Also the checks only the input can answer: whether the regions fit, overlap or cover data, and
whether the conversion boundary is sane. :class:`Layout` is everything later stages need to know
about where things are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Union

from construct import ConstructError

from ..format.boot_sector import BOOT_SECTOR_SIZE, NtfsBootSector
from ..format.constants import (
    METADATA_BLOCK_AREA,
    NTFS_BOOT_AREA,
    NTFS_JUMP,
    NTFS_OEM,
    VISTA_METADATA_BLOCK_AREA,
    VolumeState,
)
from .spec import VolumeSpec
from .togo import Discovery, check_fat, discovery_geometry

#: The blocks and the header copy of Windows 7+ and To Go start on 4 KiB (or sector) boundaries.
TAIL_ALIGN = 4096


@dataclass
class NtfsInfo:
    """What the Vista writer takes from the NTFS boot sector of the input."""

    cluster_size: int
    total_sectors: int  # NTFS field: volume sectors - 1; the backup boot sector follows them
    mft_mirror_cluster: int  # moves into the v1 block header (offset 56)
    bitmap: Union[bytes, None]  # $Bitmap contents (bit set = cluster in use); None if unreadable

    def in_use(self, cluster: int) -> bool:
        """Whether the bitmap marks ``cluster`` in use (clusters past its end are free)."""
        bitmap = self.bitmap or b""
        return cluster // 8 < len(bitmap) and bool(bitmap[cluster // 8] >> (cluster % 8) & 1)


@dataclass
class Layout:
    """Where everything goes, and the states the block header records."""

    block_area: int  # bytes each metadata block occupies (and reads back as zeros)
    offsets: tuple[int, int, int]  # volume offsets of the three blocks
    header_offset: int  # where the relocated volume header goes (0 on Vista)
    header_sectors: int  # its size in sectors (0 on Vista)
    header_size: int  # in bytes
    regions: list[tuple[int, int]]  # (offset, length) that read as zeros, sorted
    encrypted_size: int  # the conversion boundary
    state: int
    next_state: int
    ntfs: Union[NtfsInfo, None] = None  # Vista: the input's NTFS
    backup_boot: Union[int, None] = None  # Vista: offset of the NTFS backup boot sector
    discovery: Union[Discovery, None] = None  # To Go: the discovery volume's geometry


def plan(plain: bytes, spec: VolumeSpec) -> Layout:
    """The layout of ``spec`` over the input image ``plain``; ValueError when it does not fit."""
    ss = spec.sector_size
    if spec.variant == "vista":
        return _vista_layout(plain, spec, ntfs_info(plain, ss))
    discovery = None
    if spec.variant == "togo":
        check_fat(plain, ss)
        discovery = discovery_geometry(len(plain), ss, spec.sectors_per_cluster)
    return _tail_layout(plain, spec, discovery)


def ntfs_info(plain: bytes, ss: int) -> NtfsInfo:
    """The input's NTFS geometry and bitmap; ValueError when the input is not NTFS the Vista
    layout can keep."""
    try:
        bs = NtfsBootSector.parse(plain[:BOOT_SECTOR_SIZE])
    except ConstructError:  # too short, or no 55 AA
        bs = None
    if bs is None or bs.oem != NTFS_OEM:
        raise ValueError("the Vista layout needs an NTFS image (Vista's BitLocker encrypts NTFS volumes only); "
                         "the input's boot sector is not NTFS")
    if bs.bytes_per_sector != ss or not bs.sectors_per_cluster:
        raise ValueError(f"the NTFS boot sector says {bs.bytes_per_sector} bytes per sector, "
                         f"{bs.sectors_per_cluster} sectors per cluster; the spec says {ss}-byte sectors")
    if bs.jump != NTFS_JUMP:
        raise ValueError("the NTFS boot sector does not start with EB 52 90, which the Vista header keeps")
    if bs.total_sectors + 1 > len(plain) // ss:
        raise ValueError(f"the NTFS boot sector claims {bs.total_sectors} sectors (+1 backup) but the image has "
                         f"{len(plain) // ss}")
    return NtfsInfo(bs.sectors_per_cluster * ss, bs.total_sectors, bs.mft_mirror_cluster, _ntfs_bitmap(plain))


def _ntfs_bitmap(plain: bytes) -> Union[bytes, None]:
    """The $Bitmap of an NTFS image (bit set = cluster in use), read with dissect.ntfs; None when
    the image's MFT cannot be read (the blocks then only avoid nonzero bytes)."""
    from dissect.ntfs import NTFS

    try:
        return NTFS(io.BytesIO(plain)).mft.get("$Bitmap").open().read()
    except Exception:  # noqa: BLE001 - dissect.ntfs raises many kinds on a damaged MFT
        return None


# --- Windows 7+ and To Go: the reserved tail ------------------------------------------------------


def _tail_layout(plain: bytes, spec: VolumeSpec, discovery: Union[Discovery, None]) -> Layout:
    ss, size, area = spec.sector_size, len(plain), METADATA_BLOCK_AREA
    header_sectors = _header_sectors(spec, discovery)
    header_size = header_sectors * ss
    align = max(TAIL_ALIGN, ss)
    if spec.metadata_offsets is None:
        header_area = -(-header_size // align) * align
        start = (size - 3 * area - header_area) // align * align
        # [block 1][header copy][block 2][block 3]
        offsets = (start, start + area + header_area, start + 2 * area + header_area)
        header_offset = spec.volume_header_offset if spec.volume_header_offset is not None else start + area
    else:
        offsets = tuple(spec.metadata_offsets)  # type: ignore[assignment]
        if spec.volume_header_offset is None:
            raise ValueError("give volume_header_offset together with metadata_offsets")
        header_offset = spec.volume_header_offset
    regions = sorted([(o, area) for o in offsets] + [(header_offset, header_size)])
    for off, length in regions:
        if off % ss:
            raise ValueError(f"offset {off:#x} is not sector aligned")
        if off < header_size or off + length > size:
            raise ValueError(f"region {off:#x}+{length:#x} is outside [{header_size:#x}, {size:#x})")
    _check_regions(plain, spec, regions)
    encrypted = spec.encrypted_size if spec.encrypted_size is not None else size
    if encrypted % ss or not 0 < encrypted <= size:
        # 0 is ambiguous: libbde and our reader read it as "not recorded" (fully encrypted)
        # and dislocker 0.7.3 crashes on it, so no peer would agree on the plaintext.
        raise ValueError(f"encrypted_size must be a nonzero multiple of {ss} within the volume")
    return Layout(area, offsets, header_offset, header_sectors, header_size, regions, encrypted,
                  *_states(spec, encrypted == size), discovery=discovery)


def _header_sectors(spec: VolumeSpec, discovery: Union[Discovery, None]) -> int:
    """Sectors relocated from the volume's start: 8 KiB worth, or on To Go the discovery volume."""
    if discovery is None:
        return spec.volume_header_sectors or max(1, NTFS_BOOT_AREA // spec.sector_size)
    sectors = spec.volume_header_sectors or discovery.sectors
    if sectors < discovery.sectors:
        raise ValueError(f"the To Go header area must hold the discovery volume: at least "
                         f"{discovery.sectors} sectors")
    return sectors


# --- Vista: free NTFS clusters ---------------------------------------------------------------------


def _vista_layout(plain: bytes, spec: VolumeSpec, ntfs: NtfsInfo) -> Layout:
    """Three 16 KiB blocks inside the NTFS volume, in clusters the NTFS bitmap marks free (Vista
    keeps them in System Volume Information\\FVE.{GUID}.1-3). Block 1 is the first free run after
    the 8 KiB boot area; blocks 2 and 3 are the first free runs at or after floor(clusters/3) and
    floor(2*clusters/3), which is exactly where the corpus Vista volume has them."""
    ss, size, cs = spec.sector_size, len(plain), ntfs.cluster_size
    area = (cs + VISTA_METADATA_BLOCK_AREA - 1) & ~(cs - 1)  # 16 KiB up to 16 KiB clusters
    backup_boot = ntfs.total_sectors * ss  # the NTFS backup boot sector
    forbidden = [(0, NTFS_BOOT_AREA), (backup_boot, ss)]

    def clashes(off: int, taken: list[int]) -> bool:
        if off + area > size:
            return True
        return any(off < o + n and o < off + area for o, n in forbidden + [(o, area) for o in taken])

    if spec.metadata_offsets is not None:
        offsets = _given_vista_offsets(tuple(spec.metadata_offsets), cs, ss, clashes)
    else:
        offsets = _free_vista_offsets(plain, spec, ntfs, area, clashes)
    regions = sorted((o, area) for o in offsets)
    _check_regions(plain, spec, regions)
    return Layout(area, offsets, 0, 0, 0, regions, size, *_states(spec, True), ntfs=ntfs,  # type: ignore[arg-type]
                  backup_boot=backup_boot)


def _given_vista_offsets(offsets: tuple[int, ...], cs: int, ss: int,
                         clashes: Callable[[int, list[int]], bool]) -> tuple[int, ...]:
    if offsets[0] % cs:
        raise ValueError(f"block 1 must start on a cluster ({cs} bytes): the boot sector addresses it "
                         "by cluster number")
    for i, off in enumerate(offsets):
        if off % ss or clashes(off, list(offsets[:i])):
            raise ValueError(f"block at {off:#x} is not sector aligned, overlaps another block, the "
                             "first 8 KiB or the backup boot sector, or runs past the volume")
    return offsets


def _free_vista_offsets(plain: bytes, spec: VolumeSpec, ntfs: NtfsInfo, area: int,
                        clashes: Callable[[int, list[int]], bool]) -> tuple[int, ...]:
    cs = ntfs.cluster_size
    need = area // cs
    n_clusters = (ntfs.total_sectors + 1) * spec.sector_size // cs

    def free(c: int, taken: list[int]) -> bool:
        off = c * cs
        if clashes(off, taken):
            return False
        if ntfs.bitmap is not None and any(ntfs.in_use(j) for j in range(c, c + need)):
            return False
        return not (spec.require_free and any(plain[off : off + area]))

    taken: list[int] = []
    for target in (0, n_clusters // 3, 2 * n_clusters // 3):
        c = next((c for c in list(range(target, n_clusters)) + list(range(0, target)) if free(c, taken)), None)
        if c is None:
            raise ValueError("no free, zero-filled 16 KiB run of clusters for a Vista metadata block; "
                             "leave free space in the NTFS volume or pass metadata_offsets")
        taken.append(c * cs)
    return tuple(taken)


# --- checks shared by both -------------------------------------------------------------------------


def _check_regions(plain: bytes, spec: VolumeSpec, regions: list[tuple[int, int]]) -> None:
    for (a, la), (b, _) in zip(regions, regions[1:]):
        if a + la > b:
            raise ValueError(f"regions at {a:#x} and {b:#x} overlap")
    if spec.require_free:
        for off, length in regions:
            if any(plain[off : off + length]):
                raise ValueError(
                    f"the input has data at {off:#x}+{length:#x}, where BitLocker metadata goes; "
                    "leave free space at the end of the image (make the filesystem smaller) "
                    "or pass metadata_offsets / require_free=False"
                )


def _states(spec: VolumeSpec, fully_encrypted: bool) -> tuple[int, int]:
    """The block header's (current, next) state: the spec's, else (4, 4) when fully encrypted
    and (3, 1) otherwise, as on the paused Windows 7 volume of the corpus."""
    state = spec.state if spec.state is not None else (
        VolumeState.ENCRYPTED if fully_encrypted else VolumeState.PAUSED)
    next_state = spec.next_state if spec.next_state is not None else (
        VolumeState.ENCRYPTED if fully_encrypted else VolumeState.DECRYPTED)
    return int(state), int(next_state)
