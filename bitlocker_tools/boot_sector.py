"""Is this sector 0 of a BitLocker volume, and if so, which layout and where is its metadata?

The probe every layer asks first: :mod:`.sources` to tell a volume image from a disk,
:mod:`.scan` for each partition, :mod:`.volume` to open one. BitLocker is recognised by its boot
sector alone (never by a partition type, which Windows does not change).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from construct import ConstructError

from .format.boot_sector import BOOT_SECTOR_SIZE, ToGoBootSector, VistaBootSector, Win7BootSector
from .format.constants import BITLOCKER_GUID, EOW_GUID, NTFS_JUMP, SIGNATURE, TOGO_OEM

_KNOWN_GUIDS = (BITLOCKER_GUID, EOW_GUID)


@dataclass
class BootSector:
    """What the boot sector tells: which layout, and where the metadata lives."""

    variant: str  # "vista", "win7" or "togo"
    guid: str | None  # the identification GUID (None on Vista)
    bytes_per_sector: int  # 0 on exFAT-formatted volumes; see BitLockerVolume.sector_size
    sectors_per_cluster: int
    metadata_offsets: list[int]  # Vista: block 1 only (blocks 2 and 3 are named in its header)
    eow_offsets: list[int] = field(default_factory=list)

    @property
    def is_eow(self) -> bool:
        """A used-space-only ("encrypt on write") conversion is in progress."""
        return self.guid == EOW_GUID


def parse_boot_sector(buf: bytes) -> BootSector | None:
    """Recognise a BitLocker boot sector; None when the sector is not one."""
    if len(buf) < BOOT_SECTOR_SIZE:
        return None
    sector = bytes(buf[:BOOT_SECTOR_SIZE])
    try:
        bs = Win7BootSector.parse(sector)
    except ConstructError:  # no 55 AA at 510
        return None
    if bs.oem == SIGNATURE:
        if bs.guid in _KNOWN_GUIDS:
            return _modern("win7", bs)
        if bs.jump == NTFS_JUMP:
            vs = VistaBootSector.parse(sector)
            offset = vs.metadata_lcn * vs.sectors_per_cluster * vs.bytes_per_sector
            return BootSector("vista", None, vs.bytes_per_sector, vs.sectors_per_cluster, [offset])
        return None
    if bs.oem == TOGO_OEM:
        togo = ToGoBootSector.parse(sector)
        if togo.guid in _KNOWN_GUIDS:
            return _modern("togo", togo)
    return None


def _modern(variant: str, bs) -> BootSector:
    eow = [o for o in bs.eow_offsets if o] if bs.guid == EOW_GUID else []
    return BootSector(variant, bs.guid, bs.bytes_per_sector, bs.sectors_per_cluster,
                      list(bs.metadata_offsets), eow)
