#!/usr/bin/env python3
"""Coverage-guided fuzzing of every parser that takes outside bytes (issue #20).

Each target feeds one input to one parser and checks its contract: the parser returns a result
(which is then used the way the CLI uses it: ``as_dict``, ``summary``, JSON documents, round
trips) or raises one of the project's own clean errors (:class:`bitlocker_tools.errors.
BitLockerError` and whatever else the API documents). Any other exception is a finding; so is a
hang or an input slower than the time limit (libFuzzer's ``-timeout``, 1 s here), and an
allocation past the memory cap (``RLIMIT_AS`` a fixed amount above the worker's start-up size,
plus libFuzzer's ``-rss_limit_mb``), which is how a size or count field that drives an unbounded
allocation shows up.

The engine is atheris (libFuzzer for Python) with the ``bitlocker_tools`` modules instrumented
for coverage; each target runs in its own worker process, so a crash stops only that target, and
the crashing input is written under ``--findings`` (default ``~/.cache/bitlocker-tools/fuzz/
findings``). Seeds come from the corpus (boot sectors, metadata blocks, EOW structures and .BEK
files cut out of the real volumes), the forged fixtures, the escrow samples and the committed
regression inputs (``tests/fuzz_regressions/<target>/``).

    python3 scripts/fuzz.py --list
    python3 scripts/fuzz.py --target all --runs 20000 --seed 1          # bounded and reproducible
    python3 scripts/fuzz.py --target metadata_block --seconds 120
    python3 scripts/fuzz.py --target all --hours 8 --keep-corpus        # the long run
    python3 scripts/fuzz.py --target bek --reproduce crash-1234abcd     # one input, traceback shown

A run with ``--runs`` and ``--seed`` on a fresh corpus (the default) executes the same inputs
again; a timed run (``--seconds``/``--hours``) depends on the machine's speed.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import re
import resource
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bitlocker-tools" / "fuzz"
#: Memory a worker may allocate above what it holds after importing the parsers.
MEMORY_HEADROOM = 1 << 30
RSS_LIMIT_MB = 2048
TIME_LIMIT_S = 1


class Finding(AssertionError):
    """A contract broken in a way an exception type alone does not show (a round trip)."""


# --- the targets --------------------------------------------------------------------------------
# Every target imports the library inside the function: the worker imports it under atheris'
# instrumentation first, and ``--list`` needs none of it.


def _errors():
    from bitlocker_tools.errors import BitLockerError
    return BitLockerError


def _text(data: bytes) -> str:
    """Fuzz bytes as the text a parser of typed or pasted input receives."""
    return data.decode("utf-8", "surrogateescape")


def t_boot_sector(data: bytes) -> None:
    """parse_boot_sector: a BootSector or None, never an exception (it is probed on every sector
    a scan looks at)."""
    from bitlocker_tools.boot_sector import parse_boot_sector
    bs = parse_boot_sector(data)
    if bs is not None:
        assert bs.variant in ("vista", "win7", "togo")
        _ = bs.is_eow, list(bs.metadata_offsets), list(bs.eow_offsets)


def _use_entries(entries) -> None:
    for top in entries:
        for e in top.walk():
            json.dumps(e.as_dict())
            e.value.summary()
            e.type_name(), e.value_name()
            if hasattr(e.value, "nonce_time"):
                _ = e.value.nonce_time, e.value.nonce_counter


def t_metadata_block(data: bytes) -> None:
    """parse_block, then every property and JSON view ``info`` and ``hash`` take of a block."""
    from bitlocker_tools import hashline
    from bitlocker_tools.metadata import parse_block
    try:
        md = parse_block(data, 0x2000000)
    except _errors():
        return
    _use_entries(md.entries)
    _ = (md.crc_valid, md.method, md.state, md.next_state_name, md.description, md.fvek_entry,
         md.volume_header_entry, md.validation_entry)
    for p in md.protectors:
        _ = p.key_id, p.backups, p.description, [b.destinations for b in p.backups]
    for tool in ("john", "hashcat"):
        for pl in hashline.export(md, tool).lines:
            if hashline.parse(str(pl.line)) != pl.line:
                raise Finding(f"exported hash line does not parse back: {pl.line}")


def t_metadata_entries(data: bytes) -> None:
    """parse_entries over raw entry bytes (every value type, nesting), then their views."""
    from bitlocker_tools.metadata import parse_entries
    try:
        entries = parse_entries(data, 0, len(data))
    except _errors():
        return
    _use_entries(entries)


def t_bek(data: bytes) -> None:
    """The .BEK startup/recovery key file and the 34/66-byte FVEK file (keyfiles.py)."""
    from bitlocker_tools.keyfiles import fvek_file, is_fvek_file, parse_bek, parse_fvek_file
    try:
        key = parse_bek(data, "fuzz.BEK")
        assert len(key.key) == 32
    except _errors():
        pass
    if is_fvek_file(data):
        try:
            method, key = parse_fvek_file(data)
        except _errors():
            return
        if parse_fvek_file(fvek_file(method, key)) != (method, key):
            raise Finding("FVEK file does not round-trip")


def t_credentials(data: bytes) -> None:
    """credentials.py as the CLI calls it: a literal option value, and ``@FILE`` holding these
    bytes (recovery passwords found in text, passwords, .BEK, VMK/FVEK as hex or key file)."""
    from bitlocker_tools import credentials as c
    clean = _errors()
    literal = _text(data).replace("\0", "")
    with tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as fh:
        fh.write(data)
        fh.flush()
        at = "@" + fh.name
        for call in (lambda: c.recovery_passwords_from(at), lambda: c.password_from(at),
                     lambda: c.startup_key_from(fh.name), lambda: c.key_bytes_from(at, "FVEK"),
                     lambda: c.collect(vmk=at, use_env=False)):
            try:
                call()
            except clean:
                pass
    if literal and not literal.startswith(("@", "-")):
        for call in (lambda: c.recovery_passwords_from(literal), lambda: c.key_bytes_from(literal, "VMK")):
            try:
                call()
            except clean:
                pass
    c.decode_text(data)


class VirtualDisk(io.RawIOBase):
    """The fuzz input at offset 0 of a 1 TiB image that reads as zeros past it: a size field is
    then never cut short by the input's end, as on a real disk, so an unbounded one shows."""

    SIZE = 1 << 40

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.SIZE + offset
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.SIZE if n < 0 else min(self.SIZE, self.pos + n)
        if end <= self.pos:
            return b""
        out = self.data[self.pos:end]
        out += bytes(end - self.pos - len(out))
        self.pos = end
        return out


def _fix_crc(buf: bytearray, start: int, length: int, crc_at: int) -> None:
    raw = bytes(buf[start:start + length])
    rel = crc_at - start
    if 0 <= rel and rel + 4 <= len(raw):
        raw = raw[:rel] + b"\0\0\0\0" + raw[rel + 4:]
        buf[crc_at:crc_at + 4] = struct.pack("<I", zlib.crc32(raw))


def fix_eow_crcs(data: bytes) -> bytes:
    """Recompute every CRC-32 of an EOW information structure at 0 and of the bitmaps it names
    (when they lie inside the input), so that mutations reach past the CRC checks."""
    buf = bytearray(data)
    if len(buf) < 48 or buf[:8] != b"FVE-EOW\0":
        return data
    header_size, size = struct.unpack_from("<HH", buf, 8)
    for i in range(max(0, (size - header_size) // 8)):
        at = header_size + 8 * i
        if at + 8 > len(buf):
            break
        bm = struct.unpack_from("<Q", buf, at)[0]
        if bm + 60 > len(buf) or buf[bm:bm + 10] != b"FVE-EOWBM\0":
            continue
        bm_size = struct.unpack_from("<I", buf, bm + 12)[0]
        recs = struct.unpack_from("<II", buf, bm + 44)
        for rec in recs:
            r = bm + rec
            if r + 36 <= len(buf) and buf[r:r + 10] == b"FVE-EOWBR\0":
                _fix_crc(buf, r, min(struct.unpack_from("<I", buf, r + 12)[0], bm_size - rec), r + 32)
        _fix_crc(buf, bm, min(recs), bm + 56)
    _fix_crc(buf, 0, size, 36)
    return bytes(buf)


def t_eow(data: bytes) -> None:
    """read_eow (eow.py) on a virtual disk whose offset 0 holds the input after its first byte;
    that byte's low bit asks for the CRCs to be made right first. Documented errors: BadInputError
    or a construct error (the caller, volume.py, catches both)."""
    from construct import ConstructError

    from bitlocker_tools.eow import read_eow
    if not data:
        return
    body = fix_eow_crcs(data[1:]) if data[0] & 1 else data[1:]
    try:
        info = read_eow(VirtualDisk(body), 0, 0)
    except (_errors(), ConstructError):
        return
    for bm in info.bitmaps:
        assert 0 <= bm.bit_count <= 8 * len(bm.bits), "bit count beyond the bitmap's bits"
        _ = bm.encrypted_chunks, bm.is_encrypted(0), bm.is_encrypted(bm.bit_count - 1), bm.is_encrypted(bm.bit_count)


def t_hashline(data: bytes) -> None:
    """hashline.parse: a HashLine or BadInputError; a parsed line prints back to the same line."""
    from bitlocker_tools import hashline
    try:
        line = hashline.parse(_text(data))
    except _errors():
        return
    if hashline.parse(str(line)) != line:
        raise Finding(f"hash line does not round-trip: {line}")


def t_recovery_password(data: bytes) -> None:
    """recovery_password.parse and search.check_key on typed text; a parsed key round-trips."""
    from bitlocker_tools import recovery_password as rp
    from bitlocker_tools.search import check_key
    text = _text(data)
    try:
        key = rp.parse(text)
    except _errors():
        key = None
    if key is not None:
        if rp.parse(str(key)) != key or rp.RecoveryPassword.from_key16(key.key16) != key:
            raise Finding(f"recovery password does not round-trip: {text!r}")
    try:
        check_key(text)
    except _errors():
        pass


def t_pattern(data: bytes) -> None:
    """search.parse_pattern on typed text; a parsed pattern prints back to the same pattern."""
    from bitlocker_tools.search import parse_pattern
    try:
        pattern = parse_pattern(_text(data))
    except _errors():
        return
    if parse_pattern(str(pattern)) != pattern:
        raise Finding(f"pattern does not round-trip: {pattern}")


def _use_found(items) -> None:
    from bitlocker_tools.escrow.record import EscrowProblem, EscrowRecord
    from bitlocker_tools.report import escrow_key_record
    for item in items:
        if isinstance(item, EscrowRecord):
            json.dumps(escrow_key_record(item, True))
            json.dumps(escrow_key_record(item, False))
            item.value_text(), str(item.locator)
        else:
            assert isinstance(item, EscrowProblem), type(item)
            json.dumps(item.locator.as_dict()), item.message


def _importer(module: str, detect: str | None, read: str, name: str = "fuzz.txt") -> Callable[[bytes], None]:
    """An escrow importer's public pair: its detector, then its reader on the decoded text.
    Importers report broken records as problems: their reader must not raise at all."""
    def target(data: bytes) -> None:
        import importlib

        from bitlocker_tools.escrow.text import decode
        mod = importlib.import_module(f"bitlocker_tools.escrow.{module}")
        text, _ = decode(data)
        if detect is not None:
            getattr(mod, detect)(*((text, name) if module == "windows_txt" else (text,)))
        _use_found(list(getattr(mod, read)(text, name)))
    target.__doc__ = f"bitlocker_tools.escrow.{module}.{read} (and {detect}) on the decoded input."
    return target


def t_escrow_keyfile(data: bytes) -> None:
    """escrow.keyfile: a .BEK/FVEK file yields a record or a problem; BadInputError is clean."""
    from bitlocker_tools.escrow import keyfile
    for name in ("fuzz.BEK", "fuzz.bin"):
        if keyfile.is_key_file(data, name):
            try:
                _use_found(list(keyfile.read(data, name)))
            except _errors():
                pass


def t_escrow_dispatch(data: bytes) -> None:
    """escrow.dispatch.read_bytes, what ``match``/``load_keys`` call per file: never raises. The
    first byte picks the file name the bytes arrive under."""
    from bitlocker_tools.escrow.dispatch import read_bytes
    if not data:
        return
    name = ("key.txt", "keys.csv", "export.ldf", "recovery.BEK", "memdump.fvek", "page.html",
            "BitLocker Recovery Key 69A4AF99-EC1C-45E2-81C1-CDFE91F2AAA3.TXT", "noext")[data[0] % 8]
    for explicit in (True, False):
        found = read_bytes(data[1:], name, explicit)
        _use_found(found.items)


def t_selftest(data: bytes) -> None:
    """A planted bug per kind of finding, to show the harness reports each: an exception, a
    slow input, an allocation past the cap."""
    if data.startswith(b"FUZZ!"):
        raise IndexError("planted")
    if data.startswith(b"SLOW!"):
        time.sleep(3)
    if data.startswith(b"HUGE!"):
        _ = bytes(8 << 30)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: str  # which seed set
    max_len: int


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("boot_sector", t_boot_sector, "boot", 1024),
    Target("metadata_block", t_metadata_block, "metadata", 16384),
    Target("metadata_entries", t_metadata_entries, "entries", 8192),
    Target("bek", t_bek, "keys", 4096),
    Target("credentials", t_credentials, "credentials", 4096),
    Target("eow", t_eow, "eow", 16384),
    Target("hashline", t_hashline, "hashline", 1024),
    Target("recovery_password", t_recovery_password, "recovery", 512),
    Target("pattern", t_pattern, "pattern", 512),
    Target("escrow_txt", _importer("windows_txt", "detect", "read"), "escrow", 16384),
    Target("escrow_csv", _importer("csv_export", "detect", "read", "keys.csv"), "escrow", 16384),
    Target("escrow_ldif", _importer("ldif", "detect", "read", "export.ldf"), "escrow", 16384),
    Target("escrow_json", _importer("graph_json", "detect", "read", "keys.json"), "escrow", 16384),
    Target("escrow_html", _importer("msa", "detect_html", "read_html", "page.html"), "escrow", 16384),
    Target("escrow_msa_text", _importer("msa", "detect_text", "read_text"), "escrow", 16384),
    Target("escrow_manage_bde", _importer("manage_bde", "detect", "read"), "escrow", 16384),
    Target("escrow_powershell_list", _importer("powershell", "detect_list", "read_list"), "escrow", 16384),
    Target("escrow_powershell_table", _importer("powershell", "detect_table", "read_table"), "escrow", 16384),
    Target("escrow_ad_text", _importer("ad_text", "detect", "read"), "escrow", 16384),
    Target("escrow_free_text", _importer("free_text", None, "read"), "escrow", 16384),
    Target("escrow_hex", _importer("hex_keys", None, "bare_file"), "escrow", 4096),
    Target("escrow_keyfile", t_escrow_keyfile, "keys", 4096),
    Target("escrow_dispatch", t_escrow_dispatch, "dispatch", 16384),
    Target("_selftest", t_selftest, "selftest", 64),  # not in "all"
)}
#: What ``--target all`` runs: every parser target (not the self-test).
PARSER_TARGETS = [n for n in TARGETS if not n.startswith("_")]


# --- seeds ----------------------------------------------------------------------------------------


def _corpus_dir() -> Path | None:
    spec = importlib.util.spec_from_file_location("fetch_corpus", ROOT / "scripts" / "fetch_corpus.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    try:
        return Path(mod.ensure_corpus())
    except Exception as exc:  # noqa: BLE001 - no corpus: the fixtures still seed every target
        print(f"fuzz: corpus unavailable ({exc}); seeding from fixtures only", file=sys.stderr)
        return None


def _volumes() -> Iterator[tuple[str, Callable[[int, int], bytes]]]:
    """(name, read(offset, length)) of every BitLocker volume in the corpus and the fixtures."""
    from bitlocker_tools.boot_sector import parse_boot_sector
    corpus = _corpus_dir()
    for path in sorted(corpus.glob("*.bin")) if corpus else []:
        def read(off: int, n: int, path: Path = path) -> bytes:
            with open(path, "rb") as fh:
                fh.seek(off)
                return fh.read(n)
        if parse_boot_sector(read(0, 512)):
            yield path.stem, read
    for path in sorted((ROOT / "fixtures").glob("*.bin.gz")):
        image = gzip.decompress(path.read_bytes())
        # a fixture may be a disk: its volume starts at the first sector that is a BitLocker one
        base = next((o for o in range(0, min(len(image), 4 << 20), 512) if parse_boot_sector(image[o:o + 512])), None)
        if base is not None:
            yield path.name.split(".")[0], lambda off, n, image=image, base=base: image[base + off:base + off + n]


def _metadata_cuts() -> Iterator[tuple[str, bytes, object]]:
    from bitlocker_tools.boot_sector import parse_boot_sector
    from bitlocker_tools.errors import BitLockerError
    from bitlocker_tools.metadata import parse_block
    for name, read in _volumes():
        boot = parse_boot_sector(read(0, 512))
        offsets = list(boot.metadata_offsets)
        seen = set()
        while offsets:
            off = offsets.pop(0)
            if off in seen or off <= 0:
                continue
            seen.add(off)
            buf = read(off, 0x10000)
            try:
                md = parse_block(buf, off)
            except BitLockerError:
                continue
            if boot.variant == "vista":
                offsets += list(md.metadata_offsets[1:])
            cut = buf[:min(len(buf), len(md.covered) + 0x200)]
            yield f"{name}@{off:#x}", cut, md


def _eow_seeds() -> Iterator[tuple[str, bytes]]:
    """Each EOW information copy of the corpus with its bitmaps moved right behind it (offsets
    and CRC rewritten), so that the whole structure fits one small input."""
    from bitlocker_tools.boot_sector import parse_boot_sector
    for name, read in _volumes():
        boot = parse_boot_sector(read(0, 512))
        for off in boot.eow_offsets:
            head = read(off, 48)
            if head[:8] != b"FVE-EOW\0":
                continue
            header_size, size = struct.unpack_from("<HH", head, 8)
            info = bytearray(read(off, size))
            count = (size - header_size) // 8
            out = bytearray()
            pos = (size + 15) & ~15
            for i in range(count):
                bm_off = struct.unpack_from("<Q", info, header_size + 8 * i)[0]
                bm_size = struct.unpack_from("<I", read(bm_off, 16), 12)[0]
                struct.pack_into("<Q", info, header_size + 8 * i, pos + len(out))
                out += read(bm_off, bm_size).ljust((bm_size + 15) & ~15, b"\0")
            body = bytes(info).ljust(pos, b"\0") + bytes(out)
            yield f"{name}@{off:#x}", b"\x00" + fix_eow_crcs(body)


def _recovery_passwords() -> list[str]:
    out = []
    for manifest in (ROOT / "tests" / "corpus_manifest.json", ROOT / "fixtures" / "manifest.json"):
        out += re.findall(r"\b\d{6}(?:-\d{6}){7}\b", manifest.read_text())
    return sorted(set(out))


def _escrow_samples() -> Iterator[tuple[str, bytes]]:
    for path in sorted((ROOT / "tests" / "escrow_samples").rglob("*")):
        if path.is_file():
            yield path.name, path.read_bytes()


def seed_set(kind: str) -> Iterator[tuple[str, bytes]]:
    """The seeds of one set, as (name, bytes)."""
    if kind == "boot":
        for name, read in _volumes():
            yield name, read(0, 512)
    elif kind == "metadata":
        for name, cut, _ in _metadata_cuts():
            yield name, cut
    elif kind == "entries":
        for name, cut, md in _metadata_cuts():
            yield name, bytes(md.covered[0x70:])  # after the block and metadata headers
            for p in md.protectors:
                yield f"{name}-{p.guid[:8]}", cut[p.entry.offset:p.entry.offset + p.entry.size]
    elif kind in ("keys", "credentials"):
        corpus = _corpus_dir()
        paths = sorted(corpus.glob("*.bek")) if corpus else []
        paths += sorted((ROOT / "fixtures").glob("*.BEK")) + sorted((ROOT / "tests" / "escrow_samples" / "keys").iterdir())
        for path in paths:
            yield path.name, path.read_bytes()
        if kind == "credentials":
            for i, key in enumerate(_recovery_passwords()[:4]):
                yield f"rp{i}", key.encode()
                yield f"rp{i}-utf16", b"\xff\xfe" + f"Recovery key:\r\n{key}\r\n".encode("utf-16-le")
            yield "hex-fvek", b"0123456789abcdef" * 4 + b"\n"
            yield "password", b"Passw0rd!\r\n"
    elif kind == "eow":
        yield from _eow_seeds()
    elif kind == "hashline":
        from bitlocker_tools import hashline
        for name, _, md in _metadata_cuts():
            for pl in hashline.export(md).lines:
                yield f"{name}-{pl.protector.guid[:8]}", str(pl.line).encode()
                yield f"{name}-{pl.protector.guid[:8]}-login", f"user:{pl.line}\n".encode()
    elif kind == "recovery":
        for i, key in enumerate(_recovery_passwords()):
            yield f"rp{i}", key.encode()
            yield f"rp{i}-plain", key.replace("-", "").encode()
            yield f"rp{i}-spaced", key.replace("-", " ").encode()
    elif kind == "pattern":
        for i, key in enumerate(_recovery_passwords()[:6]):
            yield f"rp{i}", key.encode()
            yield f"rp{i}-q", (key[:10] + "??" + key[12:20] + "[147]" + key[21:30] + "[1-4]" + key[31:]).encode()
    elif kind == "escrow":
        yield from _escrow_samples()
    elif kind == "selftest":
        yield "selftest", os.environ.get("BITLOCKER_FUZZ_SELFTEST", "FUZZ!").encode()
    elif kind == "dispatch":
        names = ("key.txt", "keys.csv", "export.ldf", "recovery.BEK", "memdump.fvek", "page.html")
        for name, raw in _escrow_samples():
            low = name.lower()
            pick = next((i for i, n in enumerate(names) if low.endswith(n.rsplit(".", 1)[1].lower())), 0)
            yield name, bytes([pick]) + raw
    else:
        raise ValueError(kind)


def write_seeds(target: Target, into: Path) -> int:
    """The target's seeds and its committed regression inputs, as files in ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in seed_set(target.seeds):
        safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", name)[:80]
        (into / f"seed-{count:03d}-{safe}").write_bytes(data[: target.max_len])
        count += 1
    for path in regression_inputs(target.name):
        (into / f"regression-{path.name}").write_bytes(path.read_bytes())
        count += 1
    return count


def regression_inputs(name: str) -> list[Path]:
    folder = REGRESSIONS / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


# --- the worker (one target, under atheris) ---------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(name: str, libfuzzer_args: list[str]) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import atheris

    with atheris.instrument_imports(include=["bitlocker_tools"]):
        import bitlocker_tools.boot_sector  # noqa: F401
        import bitlocker_tools.credentials  # noqa: F401
        import bitlocker_tools.eow  # noqa: F401
        import bitlocker_tools.escrow  # noqa: F401
        import bitlocker_tools.escrow.dispatch  # noqa: F401
        import bitlocker_tools.hashline  # noqa: F401
        import bitlocker_tools.keyfiles  # noqa: F401
        import bitlocker_tools.metadata  # noqa: F401
        import bitlocker_tools.recovery_password  # noqa: F401
        import bitlocker_tools.report  # noqa: F401
        import bitlocker_tools.search  # noqa: F401
    target = TARGETS[name]
    target.run(b"")  # import whatever the target imports lazily before the cap is set
    cap_memory()
    stats_path = os.environ.get("BITLOCKER_FUZZ_STATS")
    slowest: list = [0.0, b""]

    def write_stats() -> None:
        # off the timed path: a file write stalled on a busy machine must not count as a slow input
        written = -1.0
        while True:
            time.sleep(0.5)
            took, data = slowest
            if took != written:
                # each file replaced whole: the process may end between any two writes, and the
                # driver must never read a file cut short
                for path, blob in ((f"{stats_path}.input", data),
                                   (stats_path, json.dumps({"slowest_s": took, "slowest_len": len(data)}).encode())):
                    Path(f"{path}.part").write_bytes(blob)
                    os.replace(f"{path}.part", path)
                written = took

    if stats_path:
        threading.Thread(target=write_stats, daemon=True).start()

    def one(data: bytes) -> None:
        start = time.perf_counter()
        target.run(data)
        took = time.perf_counter() - start
        if took > slowest[0]:
            slowest[:] = [took, data]

    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()


# --- the driver ----------------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    executions: int
    seconds: float
    cov: int | None
    features: int | None
    corpus_units: int | None
    slowest_s: float
    findings: list[str]
    command: str
    returncode: int


def run_target(name: str, *, runs: int | None, seconds: float | None, seed: int, findings_dir: Path,
               keep_corpus: bool, timeout: int = TIME_LIMIT_S, extra: list[str] = (), quiet: bool = False) -> Result:
    """Fuzz one target in a worker process; the findings are the crashing inputs it wrote."""
    target = TARGETS[name]
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    seeds = work / "seeds"
    write_seeds(target, seeds)
    corpus = CACHE / "corpus" / name if keep_corpus else work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    out = findings_dir / name
    out.mkdir(parents=True, exist_ok=True)
    stats = work / "stats.json"
    args = [f"-seed={seed}", f"-timeout={timeout}", f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={target.max_len}",
            "-print_final_stats=1", f"-artifact_prefix={out}/", *extra]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={max(1, int(seconds))}")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--", *args, str(corpus), str(seeds)]
    env = dict(os.environ, BITLOCKER_FUZZ_STATS=str(stats), PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    before = {p.name for p in out.iterdir()}
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
    took = time.monotonic() - start
    log = proc.stdout + proc.stderr
    (work / "log.txt").write_text(log)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    last = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", log, re.M)
    findings = sorted(set(re.findall(r"Test unit written to (\S+)", log)))
    findings += [str(p) for p in sorted(out.iterdir()) if p.name not in before and str(p) not in findings]
    if proc.returncode != 0 and not findings:
        findings.append(f"worker exited {proc.returncode} without an artifact; log {work / 'log.txt'}")
    if findings and not quiet:
        tail = log[-6000:]
        print(f"--- {name}: worker log tail ---\n{tail}", file=sys.stderr)
    slowest = json.loads(stats.read_text())["slowest_s"] if stats.exists() else 0.0
    if Path(f"{stats}.input").exists():  # kept for a look at what is slow (not a finding under the limit)
        (findings_dir / "slowest").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f"{stats}.input", findings_dir / "slowest" / name)
    if not findings:
        shutil.rmtree(work, ignore_errors=True)  # kept, with its log, when there is something to look at
    reproduce = ["python3", "scripts/fuzz.py", "--target", name, "--seed", str(seed)]
    reproduce += ["--runs", str(runs)] if runs is not None else ["--seconds", str(int(seconds or 0))]
    return Result(name, int(execs[-1]) if execs else int(last[-1][0]) if last else 0, took,
                  int(last[-1][1]) if last else None, int(last[-1][2]) if last else None,
                  int(last[-1][3]) if last else None, slowest, findings, shlex.join(reproduce), proc.returncode)


def cap_memory() -> None:
    """RLIMIT_AS a fixed headroom above what the process holds now: an allocation a size field
    drives past it raises MemoryError, which no target allows."""
    limit = _vm_size() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def reproduce(name: str, paths: list[Path], limit: float) -> int:
    """Run inputs (files, or folders of them) through a target without the engine, under the
    memory cap; the traceback, if any, is the finding. Exit 1 when an input takes longer than
    ``limit`` seconds (``--timeout``, the same limit a fuzz run applies, so a slow CI machine
    can be given the allowance it gets for fuzzing)."""
    files = [f for p in paths for f in (sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p])]
    TARGETS[name].run(b"")
    cap_memory()
    slow = 0
    for path in files:
        data = path.read_bytes()
        start = time.perf_counter()
        TARGETS[name].run(data)
        took = time.perf_counter() - start
        slow += took > limit
        print(f"{name}: {path} passes the contract ({len(data)} bytes, {took:.3f} s"
              f"{f', OVER THE TIME LIMIT of {limit} s' if took > limit else ''})")
    return 1 if slow else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        rest = argv[2:]
        worker(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="all", help="a target name, or 'all' (see --list)")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    ap.add_argument("--runs", type=int, help="executions per target (reproducible with --seed)")
    ap.add_argument("--seconds", type=float, help="wall time per target")
    ap.add_argument("--hours", type=float, help="wall time for the whole run, split evenly over the targets")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    ap.add_argument("--timeout", type=int, default=TIME_LIMIT_S, help="seconds one input may take (default 1)")
    ap.add_argument("--findings", type=Path, default=CACHE / "findings", help="where crashing inputs are written")
    ap.add_argument("--keep-corpus", action="store_true",
                    help=f"grow a corpus per target under {CACHE / 'corpus'} across runs (long runs)")
    ap.add_argument("--reproduce", type=Path, nargs="+", metavar="FILE",
                    help="run inputs (files or folders) through --target, no engine, under the memory cap")
    ap.add_argument("--json", action="store_true", help="print the per-target results as JSON")
    args = ap.parse_args(argv)
    if args.list:
        for t in map(TARGETS.get, PARSER_TARGETS):
            print(f"{t.name:24} {(t.run.__doc__ or '').strip().splitlines()[0]}")
        return 0
    names = PARSER_TARGETS if args.target == "all" else [args.target]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target {unknown[0]!r}; one of: all, {', '.join(TARGETS)}")
    if args.reproduce:
        if len(names) != 1:
            ap.error("--reproduce needs one --target")
        return reproduce(names[0], args.reproduce, args.timeout)
    seconds = args.seconds
    if args.hours is not None:
        seconds = args.hours * 3600 / len(names)
    if args.runs is None and seconds is None:
        args.runs = 10000
    results = []
    for name in names:
        r = run_target(name, runs=args.runs, seconds=seconds, seed=args.seed, findings_dir=args.findings,
                       keep_corpus=args.keep_corpus, timeout=args.timeout)
        results.append(r)
        if not args.json:
            print(f"{r.target:24} {r.executions:>9} execs {r.seconds:8.1f} s  cov {r.cov}  ft {r.features}  "
                  f"corpus {r.corpus_units}  slowest {r.slowest_s:.3f} s  findings {len(r.findings)}", flush=True)
            for f in r.findings:
                print(f"    finding: {f}  (python3 scripts/fuzz.py --target {r.target} --reproduce {f})")
    total = sum(r.executions for r in results)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=1))
    else:
        print(f"{'total':24} {total:>9} execs {sum(r.seconds for r in results):8.1f} s  "
              f"findings {sum(len(r.findings) for r in results)}")
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
