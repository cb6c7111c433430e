#!/usr/bin/env python3
"""Build the small forged BitLocker fixtures in ``fixtures/`` (issue #7).

    python scripts/make_fixtures.py            # rebuild fixtures/*.bin.gz, *.BEK, manifest.json
    python scripts/make_fixtures.py --check    # rebuild in a temp dir, compare with the committed
    python scripts/make_fixtures.py --plain    # re-make fixtures/plain/*.img.gz (mkntfs, mkfs.fat)
    python scripts/make_fixtures.py --plain ntfs_vista   # re-make only the named plain image(s)

The inputs are the plain filesystem images in ``fixtures/plain/`` (gzip). They are committed
because mkntfs writes a random volume serial and random GUIDs; the FAT images are reproducible
(``mkfs.fat --invariant``) but are committed too so that every variant is built the same way.
From those, the forge (:mod:`bitlocker_tools.forge`) writes each volume with a fixed seed, so the
fixtures are a pure function of the plain images and the specs below.

``--check`` compares the *decompressed* volumes, the .BEK files and the manifest byte for byte
(gzip output can differ between zlib builds, so the compressed bytes are not compared).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bitlocker_tools.forge import BLOCK_AREA, ProtectorSpec, VolumeSpec, forge  # noqa: E402
from bitlocker_tools.forge.boot_sectors import input_boot_sector  # noqa: E402
from bitlocker_tools.forge.togo import fat_date_time  # noqa: E402
from bitlocker_tools.format.constants import NTFS_BOOT_AREA  # noqa: E402
from bitlocker_tools.format.constants import EncryptionMethod as M  # noqa: E402
from bitlocker_tools.format.fat import FatDirEntry  # noqa: E402

FIXTURES = ROOT / "fixtures"
PLAIN = FIXTURES / "plain"
MANIFEST = "manifest.json"
KiB = 1024

#: Reserved tail: three 64 KiB metadata areas plus the 8 KiB relocated header.
TAIL = 3 * BLOCK_AREA + NTFS_BOOT_AREA
#: BitLocker To Go relocates as much as its discovery volume covers: 16 KiB on the small drive below.
TOGO_TAIL = 3 * BLOCK_AREA + 16 * KiB

DEMO_RECOVERY_PASSWORD = "236808-089419-192665-495704-618387-163174-239063-300344"
DEMO_PASSWORD = "Forge-Demo-1"


# --- the plain filesystem images --------------------------------------------------------------------


@dataclass(frozen=True)
class PlainImage:
    name: str  # fixtures/plain/<name>.img.gz
    filesystem: str  # "NTFS" or "FAT12"
    fs_size: int  # bytes the filesystem covers (the rest is the free tail for the metadata)
    sector_size: int = 512
    tail: int = TAIL  # free bytes after the filesystem (0: the filesystem fills the image, as on Vista)

    @property
    def size(self) -> int:
        return self.fs_size + self.tail

    @property
    def path(self) -> Path:
        return PLAIN / f"{self.name}.img.gz"


PLAIN_IMAGES = {
    p.name: p
    for p in (
        # mkntfs refuses anything below 1 MiB; 2056 sectors is 1 MiB + 4 KiB.
        PlainImage("ntfs", "NTFS", 2056 * 512),
        PlainImage("fat12", "FAT12", 64 * KiB),
        PlainImage("fat12_4k", "FAT12", 64 * KiB, sector_size=4096),
        # Vista: NTFS fills the partition (total sectors 2055, the backup boot sector is the last
        # one) and the metadata goes into free clusters inside it.
        PlainImage("ntfs_vista", "NTFS", 2056 * 512, tail=0),
        PlainImage("fat12_togo", "FAT12", 64 * KiB, tail=TOGO_TAIL),
    )
}

FILES = {
    "README.TXT": (
        b"This file lives inside a forged BitLocker fixture volume of bitlocker-tools.\r\n"
        b"If you can read it, the volume was decrypted correctly.\r\n"
    ),
    "NUMBERS.TXT": "".join(f"{i:05d} {i * i:010d}\r\n" for i in range(600)).encode(),
}
#: The files' times in their directory entries.
FILES_TIME = datetime(2026, 1, 2, 3, 4, 4)
DIRENT_SIZE = FatDirEntry.sizeof()


def _fat_add_files(img: bytearray, files: dict[str, bytes]) -> None:
    """Add files to the root directory of a freshly made FAT12 image (no mtools needed)."""
    # The FAT12 BPB shares its first fields (up to the sectors per FAT at 22) with FAT32's.
    bpb = input_boot_sector(bytes(img))
    assert bpb is not None
    bps, spc, reserved = bpb.bytes_per_sector, bpb.sectors_per_cluster, bpb.reserved_sectors
    nfats, root_entries, fatsz = bpb.fat_count, bpb.root_entries, bpb.sectors_per_fat_16
    fat_start = reserved * bps
    root_start = (reserved + nfats * fatsz) * bps
    data_start = root_start + root_entries * DIRENT_SIZE
    cluster_bytes = spc * bps

    def set_fat12(n: int, value: int) -> None:
        for copy in range(nfats):
            base = fat_start + copy * fatsz * bps
            off = base + n * 3 // 2
            if n % 2 == 0:
                img[off] = value & 0xFF
                img[off + 1] = (img[off + 1] & 0xF0) | (value >> 8 & 0x0F)
            else:
                img[off] = (img[off] & 0x0F) | (value << 4 & 0xF0)
                img[off + 1] = value >> 4 & 0xFF

    date, time = fat_date_time(FILES_TIME)
    cluster = 2
    slot = root_start
    for name, content in files.items():
        while img[slot] not in (0x00, 0xE5):  # a free directory slot
            slot += DIRENT_SIZE
        count = max(1, -(-len(content) // cluster_bytes))
        first = cluster
        for i in range(count):
            set_fat12(cluster + i, cluster + i + 1 if i + 1 < count else 0xFFF)
        pos = data_start + (first - 2) * cluster_bytes
        img[pos : pos + len(content)] = content
        cluster += count
        base, ext = name.split(".")
        entry = FatDirEntry.build(dict(
            name=base.ljust(8).encode() + ext.ljust(3).encode(), attributes=0x20,  # archive
            nt_reserved=0, create_time_tenth=0, create_time=time, create_date=date, access_date=date,
            cluster_high=0, write_time=time, write_date=date, cluster_low=first, size=len(content)))
        img[slot : slot + DIRENT_SIZE] = entry
        slot += DIRENT_SIZE


def make_plain_image(p: PlainImage, work: Path) -> bytes:
    """Make one plain image with mkntfs / mkfs.fat (needs ntfs-3g and dosfstools)."""
    img = work / f"{p.name}.img"
    img.unlink(missing_ok=True)
    with img.open("wb") as fh:
        fh.truncate(p.size)
    if p.filesystem == "NTFS":
        sectors = p.fs_size // p.sector_size
        subprocess.run(["mkntfs", "-F", "-Q", "-T", "-q", "-L", "FORGE", "-c", "4096",
                        "-s", str(p.sector_size), "-p", "2048", "-H", "255", "-S", "63",
                        str(img), str(sectors)], check=True, capture_output=True)
        for name, content in FILES.items():
            src = work / name
            src.write_bytes(content)
            subprocess.run(["ntfscp", "-q", str(img), str(src), name], check=True, capture_output=True)
        return img.read_bytes()
    subprocess.run(["mkfs.fat", "--invariant", "-i", "F0E6E001", "-n", "FORGE", "-S", str(p.sector_size),
                    str(img), str(p.fs_size // KiB)], check=True, capture_output=True)
    data = bytearray(img.read_bytes())
    _fat_add_files(data, FILES)
    img.write_bytes(bytes(data))
    if shutil.which("fsck.fat"):
        subprocess.run(["fsck.fat", "-n", str(img)], check=True, capture_output=True)
    return bytes(data)


def load_plain(name: str, plain_dir: Path = PLAIN) -> bytes:
    return gzip.decompress((plain_dir / f"{name}.img.gz").read_bytes())


# --- the variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    plain: str  # key of PLAIN_IMAGES
    spec: VolumeSpec
    note: str


def _p(kind: str, secret=None) -> ProtectorSpec:
    return ProtectorSpec(kind, secret)


VARIANTS = [
    Variant("xts128_recovery_password", "ntfs", VolumeSpec(
        M.AES_XTS_128, [_p("recovery_password", DEMO_RECOVERY_PASSWORD), _p("password", DEMO_PASSWORD)],
        seed="xts128_recovery_password", description="FORGE-PC Demo 1/2/2026"),
        "README demo: NTFS, AES-XTS-128, recovery password + password"),
    Variant("xts256_startup_key", "fat12", VolumeSpec(
        M.AES_XTS_256, [_p("startup_key")], seed="xts256_startup_key"),
        "AES-XTS-256, startup key (.BEK file)"),
    Variant("cbc128_clear_key", "fat12", VolumeSpec(
        M.AES_128, [_p("clear_key")], seed="cbc128_clear_key", description="FORGE-PC Suspended 1/2/2026"),
        "AES-CBC-128, clear key (BitLocker suspended)"),
    Variant("cbc256_diffuser_password", "fat12", VolumeSpec(
        M.AES_256_DIFFUSER, [_p("password", "Diffuser-256!")], seed="cbc256_diffuser_password"),
        "AES-CBC-256 + Elephant diffuser, password"),
    Variant("cbc128_diffuser_4k", "fat12_4k", VolumeSpec(
        M.AES_128_DIFFUSER, [_p("recovery_password"), _p("password", "Sector-4096")], sector_size=4096,
        seed="cbc128_diffuser_4k"),
        "AES-CBC-128 + diffuser, 4096-byte sectors, recovery password + password"),
    Variant("tpm_recovery_password", "fat12", VolumeSpec(
        M.AES_XTS_128, [_p("tpm"), _p("recovery_password")], seed="tpm_recovery_password"),
        "TPM protector (not openable offline) + recovery password"),
    Variant("partial_xts128_password", "ntfs", VolumeSpec(
        M.AES_XTS_128, [_p("password", "Half-Way-There")], seed="partial_xts128_password",
        encrypted_size=192 * KiB),
        "conversion paused (state 3, next 1): first 192 KiB encrypted, the rest plaintext; NTFS"),
    Variant("damaged_copy_cbc128", "fat12", VolumeSpec(
        M.AES_128, [_p("recovery_password"), _p("password", "Copy-Two-Works")], seed="damaged_copy_cbc128",
        damage_copy=0, damage="fvek"),
        "AES-CBC-128, metadata copy 1 damaged (bits flipped in its FVEK blob, CRC-32 mismatch)"),
    Variant("vista_cbc128_diffuser", "ntfs_vista", VolumeSpec(
        M.AES_128_DIFFUSER, [_p("startup_key"), _p("recovery_password")], metadata_version=1,
        seed="vista_cbc128_diffuser", description="FORGE-PC C: 1/2/2026"),
        "Windows Vista layout (metadata version 1): NTFS, AES-CBC-128 + diffuser, startup key + recovery "
        "password, as on the corpus Vista volume"),
    Variant("togo_cbc128_password", "fat12_togo", VolumeSpec(
        M.AES_128, [_p("password", "To-Go-Drive-1"), _p("recovery_password")], variant="togo",
        seed="togo_cbc128_password", description="FORGE-PC E: 1/2/2026"),
        "BitLocker To Go discovery volume (MSWIN4.1) over FAT12, AES-CBC-128, password + recovery password"),
]
VARIANTS_BY_NAME = {v.name: v for v in VARIANTS}


# --- building ---------------------------------------------------------------------------------------


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def build_variant(v: Variant, plain_dir: Path = PLAIN):
    return forge(load_plain(v.plain, plain_dir), v.spec)


def build_all(out_dir: Path, plain_dir: Path = PLAIN, log=print) -> dict:
    """Forge every variant into ``out_dir``; returns the manifest (also written there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fixtures = {}
    for v in VARIANTS:
        vol = build_variant(v, plain_dir)
        (out_dir / f"{v.name}.bin.gz").write_bytes(_gzip(vol.data))
        bek_names = []
        for name, raw in vol.bek_files.items():
            (out_dir / name).write_bytes(raw)
            bek_names.append(name)
        plain = PLAIN_IMAGES[v.plain]
        entry = {
            "file": f"{v.name}.bin.gz",
            "volume_sha256": hashlib.sha256(vol.data).hexdigest(),
            "plain": f"plain/{v.plain}.img.gz",
            "filesystem": plain.filesystem,
            "note": v.note,
            "seed": str(v.spec.seed),
            **vol.manifest(),
            "bek_files": bek_names,
            "dislocker_fvek_file_hex": vol.dislocker_fvek_file.hex(),
            "libbde_keys": vol.libbde_keys,
        }
        fixtures[v.name] = entry
        log(f"{v.name}: {vol.size} bytes, {(out_dir / entry['file']).stat().st_size} gzipped")
    manifest = {
        "about": "Forged BitLocker fixtures; rebuild with scripts/make_fixtures.py, check with --check",
        "expected_plaintext": "the plain image with the metadata areas and the relocated-header area zeroed "
                              "(Vista: the metadata areas; its boot sector reads as the NTFS one)",
        "fixtures": fixtures,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def check(fixtures_dir: Path = FIXTURES, log=print) -> list[str]:
    """Rebuild in a temp dir and compare with ``fixtures_dir``; returns the differences."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        build_all(tmp_dir, fixtures_dir / "plain", log=lambda *_: None)
        for fresh in sorted(tmp_dir.iterdir()):
            committed = fixtures_dir / fresh.name
            if not committed.exists():
                problems.append(f"{fresh.name}: missing from {fixtures_dir}")
                continue
            a, b = fresh.read_bytes(), committed.read_bytes()
            if fresh.name.endswith(".gz"):
                a, b = gzip.decompress(a), gzip.decompress(b)
            if a != b:
                problems.append(f"{fresh.name}: differs from the rebuilt one")
        wanted = {p.name for p in tmp_dir.iterdir()}
        for extra in sorted(fixtures_dir.iterdir()):
            if extra.is_file() and extra.name not in wanted:
                problems.append(f"{extra.name}: not produced by make_fixtures.py")
    for p in problems:
        log(p)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare")
    ap.add_argument("--plain", nargs="*", metavar="NAME",
                    help="re-make fixtures/plain/*.img.gz with mkntfs/mkfs.fat (changes the NTFS serial); "
                         f"with names, only those ({', '.join(PLAIN_IMAGES)})")
    ap.add_argument("--out", type=Path, default=FIXTURES, help="output folder (default fixtures/)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.out)
        print("fixtures are reproducible" if not problems else f"{len(problems)} difference(s)")
        return 1 if problems else 0
    if args.plain is not None:
        unknown = set(args.plain) - set(PLAIN_IMAGES)
        if unknown:
            ap.error(f"unknown plain image(s): {', '.join(sorted(unknown))}")
        (args.out / "plain").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            for p in PLAIN_IMAGES.values():
                if args.plain and p.name not in args.plain:
                    continue
                data = make_plain_image(p, Path(tmp))
                (args.out / "plain" / f"{p.name}.img.gz").write_bytes(_gzip(data))
                print(f"plain/{p.name}.img.gz: {p.filesystem}, {len(data)} bytes")
    build_all(args.out, args.out / "plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
