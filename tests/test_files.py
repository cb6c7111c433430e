"""``ls`` and ``extract``: the files inside a BitLocker volume, read through the decrypted stream.

Every listing and every extracted byte is checked against a reader that shares no code with
ours (dissect.ntfs / dissect.fat under bitlocker_tools.files): ntfs-3g (its FUSE driver mounted
read-only on the plain image, ``ntfsls`` and ``ntfscat``) for NTFS, mtools (``mdir``, ``mcopy``)
for FAT, and exfat-fuse's record of the exFAT sample it wrote (tests/filesystem_samples). The
volumes are forged around plain images made by mkntfs / mkfs.fat and filled through those
tools, so the plaintext is the plain image: what the tools read there is what ``ls`` must list.

The corpus volumes are all NTFS, and none of them keeps its $MFT (they are cut down to the
metadata and the first sectors), so they appear here only as the clean refusal they get.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT, assert_cli_error, run_bitlocker_tools

from bitlocker_tools.forge import BLOCK_AREA, ProtectorSpec, VolumeSpec, forge
from bitlocker_tools.format.constants import NTFS_BOOT_AREA, EncryptionMethod

FIXTURES = ROOT / "fixtures"
SAMPLES = ROOT / "tests" / "filesystem_samples"
MiB = 1 << 20
TAIL = 3 * BLOCK_AREA + NTFS_BOOT_AREA  # the free end of a plain image, where the forge puts the metadata
PASSWORD = "Files-Inside-1"


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def ls_json(volume: Path, *args: str) -> dict:
    proc = run_bitlocker_tools("ls", volume, "-p", PASSWORD, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def extract_bytes(volume: Path, path: str, *cred: str) -> bytes:
    proc = run_bitlocker_tools("extract", volume, *(cred or ("-p", PASSWORD)), path, "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def forge_around(plain: bytes, out: Path, seed: str, method=EncryptionMethod.AES_XTS_128) -> Path:
    vol = forge(plain, VolumeSpec(method=method, protectors=[ProtectorSpec("password", PASSWORD)], seed=seed))
    vol.write(out)
    return out


def iso_us(ns: int) -> str:
    """A time from a stat (ns since 1970, UTC) as ls spells NTFS times (µs, ``Z``)."""
    when = datetime.fromtimestamp(ns // 1000 / 1e6, timezone.utc).replace(microsecond=(ns // 1000) % 1_000_000)
    return when.isoformat().replace("+00:00", "Z")


# --- NTFS --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def ntfs3g(image: Path, options: str):
    """The image mounted by ntfs-3g (FUSE, on the file itself: no loop device)."""
    mnt = image.parent / f"{image.name}.mnt"
    mnt.mkdir()
    subprocess.run(["ntfs-3g", "-o", options, str(image), str(mnt)], check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
        mnt.rmdir()


def ntfs3g_tree(image: Path) -> dict[str, dict]:
    """What ntfs-3g, mounted read-only, says of every user file and directory: type, size, inode
    (the MFT record number), $STANDARD_INFORMATION times and the content's SHA-256."""
    tree = {}
    with ntfs3g(image, "ro") as mnt:
        for root, dirs, files in os.walk(mnt):
            for name in dirs + files:
                p = Path(root) / name
                st = p.lstat()
                crtime = struct.unpack("<Q", os.getxattr(p, "system.ntfs_crtime", follow_symlinks=False))[0]
                is_dir = p.is_dir()
                tree["/" + p.relative_to(mnt).as_posix()] = {
                    "type": "directory" if is_dir else "file",
                    "size": None if is_dir else st.st_size,
                    "mft_record": st.st_ino,
                    "modified": iso_us(st.st_mtime_ns),
                    "accessed": iso_us(st.st_atime_ns),
                    "created": iso_us((crtime - 116444736000000000) * 100),
                    "sha256": None if is_dir else hashlib.sha256(p.read_bytes()).hexdigest(),
                }
    return tree


@pytest.fixture(scope="module")
def ntfs_volume(tmp_path_factory):
    """An NTFS made by mkntfs and filled through ntfs-3g: nested directories, a directory large
    enough for a non-resident $I30 B-tree, two files fragmented against each other, an empty
    file, a hard link, a DOS 8.3 alias, Unicode and brackets in names, set times; then forged
    into an AES-XTS-128 BitLocker volume. Returns (plain image, volume)."""
    need("mkntfs", "ntfs-3g", "ntfsls", "ntfscat")
    work = tmp_path_factory.mktemp("ntfs")
    plain = work / "plain.img"
    fs_size = 8 * MiB
    with plain.open("wb") as fh:
        fh.truncate(fs_size + TAIL)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", "-L", "FILES", "-c", "4096", "-s", "512", "-p", "0", "-H", "0",
                    "-S", "0", str(plain), str(fs_size // 512)], check=True, capture_output=True)
    with ntfs3g(plain, "rw") as mnt:
        (mnt / "Docs" / "Sub Dir").mkdir(parents=True)
        (mnt / "Docs" / "Long Name Report.txt").write_bytes(b"ls and extract, inside BitLocker\r\n")
        os.setxattr(mnt / "Docs" / "Long Name Report.txt", "system.ntfs_dos_name", b"LONGNA~1.TXT")
        (mnt / "empty.dat").write_bytes(b"")
        (mnt / "Ünïcödé [x].txt").write_text("unicode\n", encoding="utf-8")
        os.link(mnt / "Docs" / "Long Name Report.txt", mnt / "Docs" / "Sub Dir" / "hardlink.txt")
        many = mnt / "Many"
        many.mkdir()
        for i in range(300):
            (many / f"file_{i:03d}.txt").write_bytes(f"file {i}\n".encode() * (i % 7))
        a, b = mnt / "Docs" / "Sub Dir" / "frag_a.bin", mnt / "frag_b.bin"
        for i in range(8):
            for f, tag in ((a, b"a"), (b, b"b")):
                with f.open("ab") as fh:
                    fh.write(b"".join(tag + b"%d %07d\n" % (i, n) for n in range(2000)))
        when = datetime(2024, 3, 4, 5, 6, 7, 123456, tzinfo=timezone.utc).timestamp()
        os.utime(mnt / "Docs" / "Long Name Report.txt", (when - 3600, when))
        born = (int(datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()) * 10**7) + 116444736000000000
        os.setxattr(mnt / "frag_b.bin", "system.ntfs_crtime", struct.pack("<Q", born + 1234567))
    plain.chmod(0o444)
    return plain, forge_around(plain.read_bytes(), work / "volume.bin", "files-ntfs")


def test_ntfs_ls_recursive_matches_ntfs3g(ntfs_volume):
    """Every file and directory ntfs-3g shows, with its type, size, MFT record number and the
    three $STANDARD_INFORMATION times to the microsecond, is what ``ls -R`` lists from the
    encrypted volume; what ls lists besides is NTFS's own metadata ($MFT, $Extend...)."""
    plain, volume = ntfs_volume
    doc = ls_json(volume, "--recursive")
    assert doc["filesystem"] == "NTFS" and doc["path"] == "/" and doc["recursive"] is True
    ours = {e["path"]: e for e in doc["entries"]}
    theirs = ntfs3g_tree(plain)
    assert len(theirs) > 300
    for path, want in theirs.items():
        got = ours.get(path)
        assert got is not None, f"{path}: ntfs-3g shows it, ls does not"
        assert got["name"] == path.rsplit("/", 1)[1]
        for field in ("type", "size", "mft_record", "modified", "accessed", "created"):
            assert got[field] == want[field], (path, field, got[field], want[field])
    extra = sorted(set(ours) - set(theirs))
    assert extra and all(p.split("/")[1].startswith("$") for p in extra), extra
    # the times set through ntfs-3g come back as set
    report = ours["/Docs/Long Name Report.txt"]
    assert report["modified"] == "2024-03-04T05:06:07.123456Z"
    assert report["accessed"] == "2024-03-04T04:06:07.123456Z"
    assert ours["/frag_b.bin"]["created"] == "2020-01-02T03:04:05.123456Z"
    # a hard link is the same record under two names; the DOS alias is not listed twice
    assert ours["/Docs/Sub Dir/hardlink.txt"]["mft_record"] == report["mft_record"]
    assert not any(e["name"] == "LONGNA~1.TXT" for e in doc["entries"])


def test_ntfs_ls_matches_ntfsls(ntfs_volume):
    """One directory, by ntfsls: the same names, sizes and inode (MFT record) numbers."""
    plain, volume = ntfs_volume
    out = subprocess.run(["ntfsls", "-l", "-i", "-F", "-p", "/Docs", str(plain)], check=True,
                         capture_output=True, text=True).stdout
    theirs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s+\d{4}\s+(.+)$", line)
        if m and m.group(3) not in ("./", "../"):
            name = m.group(3)
            theirs[name.rstrip("/")] = (int(m.group(1)), "directory" if name.endswith("/") else "file", int(m.group(2)))
    doc = ls_json(volume, r"\docs")
    assert doc["path"] == "/Docs"
    ours = {e["name"]: (e["mft_record"], e["type"], e["size"] or 0) for e in doc["entries"]}
    assert ours == theirs and len(ours) == 2


def test_ntfs_extract_every_file_matches_ntfs3g(ntfs_volume, tmp_path):
    """``extract`` of each file gives the bytes ntfs-3g reads from the plain image (SHA-256 and
    size in the summary too); the fragmented pair and an empty file among them."""
    plain, volume = ntfs_volume
    theirs = ntfs3g_tree(plain)
    files = [p for p, e in theirs.items() if e["type"] == "file" and not p.startswith("/Many/")]
    files += ["/Many/file_000.txt", "/Many/file_150.txt", "/Many/file_299.txt"]
    assert "/Docs/Sub Dir/frag_a.bin" in files and "/empty.dat" in files
    for path in files:
        out = tmp_path / hashlib.sha256(path.encode()).hexdigest()
        proc = run_bitlocker_tools("extract", volume, "-p", PASSWORD, path, "-o", out, "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        assert digest == theirs[path]["sha256"] == doc["sha256"], path
        assert doc["size"] == theirs[path]["size"] == out.stat().st_size
        assert doc["path"] == path and doc["filesystem"] == "NTFS"
    frag = theirs["/Docs/Sub Dir/frag_a.bin"]
    assert frag["size"] == 8 * 2000 * 11


def test_ntfs_extract_matches_ntfscat_case_and_separators(ntfs_volume):
    """Paths: \\ or /, any case, the DOS alias, a name in a B-tree directory; the bytes are ntfscat's."""
    plain, volume = ntfs_volume

    def ntfscat(path: str) -> bytes:
        return subprocess.run(["ntfscat", str(plain), path], check=True, capture_output=True).stdout

    report = ntfscat("/Docs/Long Name Report.txt")
    assert report
    for spelling in (r"\DOCS\long name report.TXT", "docs/LONGNA~1.TXT", "/Docs/./Sub Dir/../Long Name Report.txt"):
        assert extract_bytes(volume, spelling) == report, spelling
    assert ls_json(volume, "docs/longna~1.txt")["path"] == "/Docs/Long Name Report.txt"  # the name it stands for
    assert extract_bytes(volume, "MANY/File_299.TXT") == ntfscat("/Many/file_299.txt") == b"file 299\n" * (299 % 7)
    assert extract_bytes(volume, "frag_b.bin") == ntfscat("/frag_b.bin")


def test_ntfs_fixture_ls_and_extract(tmp_path):
    """The README's fixture (xts128_recovery_password): its files as ntfsls lists them in the
    plain image it was forged from, and as ntfscat reads them there."""
    need("ntfsls", "ntfscat")
    entry = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    volume, plain = tmp_path / "volume.bin", tmp_path / "plain.img"
    volume.write_bytes(gzip.decompress((FIXTURES / entry["file"]).read_bytes()))
    plain.write_bytes(gzip.decompress((FIXTURES / entry["plain"]).read_bytes()))
    rp = next(p["recovery_password"] for p in entry["protectors"] if p["type"] == "recovery_password")
    out = subprocess.run(["ntfsls", "-l", "-i", str(plain)], check=True, capture_output=True, text=True).stdout
    theirs = {m.group(3): (int(m.group(1)), int(m.group(2)))
              for m in re.finditer(r"^\s*(\d+)\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s+\d{4}\s+(.+)$", out, re.M)}
    proc = run_bitlocker_tools("ls", volume, "-r", rp, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["volume_guid"] == entry["volume_guid"] and doc["source"] == str(volume)
    ours = {e["name"]: (e["mft_record"], e["size"]) for e in doc["entries"] if not e["name"].startswith("$")}
    assert ours == theirs and set(ours) == {"README.TXT", "NUMBERS.TXT"}
    for name in ours:
        want = subprocess.run(["ntfscat", str(plain), name], check=True, capture_output=True).stdout
        assert extract_bytes(volume, name.lower(), "-r", rp) == want
    # the people's view: a table with the names and the MFT record column
    human = run_bitlocker_tools("ls", volume, "-r", rp)
    assert human.returncode == 0, human.stderr
    assert "MFT record" in human.stdout and "README.TXT" in human.stdout and "NUMBERS.TXT" in human.stdout


# --- FAT ---------------------------------------------------------------------------------------------


def mdir_listing(image: Path) -> dict[str, dict]:
    """mtools' view of every entry: the paths from ``mdir -/ -b``, then each directory's long
    listing for the size and the modification time (to the minute, as mdir prints it)."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C.UTF-8"}
    paths = subprocess.run(["mdir", "-i", str(image), "-/", "-b", "::"], check=True, capture_output=True,
                           text=True, env=env).stdout.split("\n")
    out = {}
    for p in filter(None, paths):
        rel = p[len("::"):]
        is_dir = rel.endswith("/")
        out[rel.rstrip("/")] = {"type": "directory" if is_dir else "file"}
    listing = subprocess.run(["mdir", "-i", str(image), "-/", "-a", "::"], check=True, capture_output=True,
                             text=True, env=env).stdout
    where = None
    for line in listing.splitlines():
        if line.startswith("Directory for ::"):
            where = line[len("Directory for ::"):].rstrip("/")
            continue
        m = re.match(r"^(\S+(?: +\S{1,3})?) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +(\d+):(\d\d)(?: +(\S.*?))? *$", line)
        if not m or where is None:
            continue
        name = m.group(6) or ".".join(m.group(1).split())  # the long name, else BASE.EXT
        if name in (".", ".."):
            continue
        rec = out[f"{where}/{name}"]
        rec["size"] = None if m.group(2) == "<DIR>" else int(m.group(2))
        rec["modified_minute"] = f"{m.group(3)}T{int(m.group(4)):02d}:{m.group(5)}"
    return out


def mcopy_bytes(image: Path, path: str) -> bytes:
    """The file's content by mcopy (which takes [ and ] as a wildcard: each becomes ?, which
    matches them, and nothing else in these directories)."""
    pattern = re.sub(r"[\[\]]", "?", path)
    return subprocess.run(["mcopy", "-n", "-i", str(image), f"::{pattern}", "-"], check=True, capture_output=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


def check_fat_against_mtools(volume: Path, plain: Path, cred: tuple[str, ...], fs: str) -> dict:
    proc = run_bitlocker_tools("ls", volume, *cred, "-R", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["filesystem"] == fs
    ours = {e["path"]: e for e in doc["entries"]}
    theirs = mdir_listing(plain)
    assert set(ours) == set(theirs)
    for path, want in theirs.items():
        got = ours[path]
        assert got["type"] == want["type"] and got["size"] == want["size"], path
        assert got["modified"][:16] == want["modified_minute"], path
        assert got["mft_record"] is None
        # every file's bytes, but only three of the forty in Many/ (each extract is a process)
        skipped = path.startswith("/Many/") and path not in ("/Many/entry 000.txt", "/Many/entry 039.txt")
        if got["type"] == "file" and not skipped:
            assert extract_bytes(volume, path, *cred) == mcopy_bytes(plain, path), path
    return ours


@pytest.fixture(scope="module", params=[("FAT16", 16, 8), ("FAT32", 32, 34)], ids=["FAT16", "FAT32"])
def fat_volume(request, tmp_path_factory):
    """A FAT16 or FAT32 made by mkfs.fat and filled by mtools (long names, nested directories,
    a file fragmented around another, an empty file), forged into an AES-CBC-128 volume."""
    need("mkfs.fat", "mmd", "mcopy", "mdir")
    fs, bits, mib = request.param
    work = tmp_path_factory.mktemp(fs)
    plain = work / "plain.img"
    with plain.open("wb") as fh:
        fh.truncate(mib * MiB + TAIL)
    subprocess.run(["mkfs.fat", "-F", str(bits), "-s", "1", "-n", fs, "-i", "B17E0001", str(plain),
                    str(mib * 1024)], check=True, capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}

    def m(*args: str) -> None:
        subprocess.run([*args[:1], "-i", str(plain), *args[1:]], check=True, capture_output=True, env=env)

    m("mmd", "::Docs", "::Docs/Sub Dir", "::Many")
    src = work / "src"
    src.mkdir()
    files = {
        "Docs/Long Name Report.txt": b"FAT inside BitLocker\r\n",
        "Docs/Sub Dir/[x] \u00fc.txt": b"bracket and umlaut\n",
        "SHORT.TXT": b"8.3\n",
        "empty.dat": b"",
        "Docs/Sub Dir/big.bin": b"".join(b"big %07d\n" % n for n in range(20000)),
    }
    files.update({f"Many/entry {i:03d}.txt": b"x" * i for i in range(40)})
    when = datetime(2024, 3, 4, 5, 6, 8).timestamp()  # mtools writes the local time it reads
    for i, (path, content) in enumerate(files.items()):
        f = src / f"f{i}"
        f.write_bytes(content)
        os.utime(f, (when, when))
        m("mcopy", "-m", str(f), f"::{path}")
    # grow a file after another was written behind it: its clusters are in two runs
    (src / "grow").write_bytes(b"head\n" * 300)
    m("mcopy", "-m", str(src / "grow"), "::grown.txt")
    (src / "wall").write_bytes(b"wall\n" * 300)
    m("mcopy", "-m", str(src / "wall"), "::wall.txt")
    (src / "grow").write_bytes(b"head\n" * 300 + b"tail\n" * 400)
    m("mcopy", "-o", "-m", str(src / "grow"), "::grown.txt")
    plain.chmod(0o444)
    volume = forge_around(plain.read_bytes(), work / "volume.bin", f"files-{fs}", EncryptionMethod.AES_128)
    return fs, plain, volume


def test_fat_ls_and_extract_match_mtools(fat_volume):
    fs, plain, volume = fat_volume
    ours = check_fat_against_mtools(volume, plain, ("-p", PASSWORD), fs)
    assert "/Docs/Sub Dir/[x] \u00fc.txt" in ours and len(ours) >= 48
    assert ours["/grown.txt"]["size"] == 300 * 5 + 400 * 5
    # FAT keeps local time and no zone: no Z; its access time is a date
    report = ours["/Docs/Long Name Report.txt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", report["modified"]), report
    assert report["accessed"] is None or re.fullmatch(r"\d{4}-\d\d-\d\d", report["accessed"])
    # the 8.3 alias mtools made for a long name opens the same file
    short = subprocess.run(["mdir", "-i", str(plain), "::Docs"], capture_output=True, text=True,
                           env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    alias = re.search(r"^(LONGNA~\d)\s+TXT", short, re.M).group(1) + ".TXT"
    assert extract_bytes(volume, f"/docs/{alias.lower()}") == b"FAT inside BitLocker\r\n"


@pytest.mark.parametrize("name", ["togo_cbc128_password", "xts256_startup_key", "cbc128_diffuser_4k"])
def test_fat12_fixtures_match_mtools(name, tmp_path):
    """The FAT12 fixtures, the To Go one among them (its FAT12 volume lies behind the discovery
    volume) and one with 4 KiB sectors: mtools on the plain image agrees with ls and extract."""
    need("mdir", "mcopy")
    entry = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"][name]
    volume, plain = tmp_path / "volume.bin", tmp_path / "plain.img"
    volume.write_bytes(gzip.decompress((FIXTURES / entry["file"]).read_bytes()))
    plain.write_bytes(gzip.decompress((FIXTURES / entry["plain"]).read_bytes()))
    kinds = {p["type"]: p for p in entry["protectors"]}
    if "password" in kinds:
        cred = ("-p", kinds["password"]["password"])
    else:
        bek = tmp_path / "key.BEK"
        bek.write_bytes((FIXTURES / entry["bek_files"][0]).read_bytes())
        cred = ("--bek", str(bek))
    ours = check_fat_against_mtools(volume, plain, cred, "FAT12")
    assert set(ours) == {"/README.TXT", "/NUMBERS.TXT"}


# --- exFAT ---------------------------------------------------------------------------------------------


def test_exfat_sample_matches_what_exfat_fuse_wrote(tmp_path):
    """The exFAT sample (written and read back through exfat-fuse, see scripts/make_exfat_sample.py),
    forged into a volume: every entry, its size, its UTC modification time and its bytes (two
    files fragmented against each other, a name over several name entries) as exfat-fuse saw them."""
    record = json.loads((SAMPLES / "exfat.json").read_text(encoding="utf-8"))["entries"]
    plain = gzip.decompress((SAMPLES / "exfat.img.gz").read_bytes())
    volume = forge_around(plain, tmp_path / "volume.bin", "files-exfat", EncryptionMethod.AES_256)
    doc = ls_json(volume, "-R")
    assert doc["filesystem"] == "exFAT"
    ours = {e["path"]: e for e in doc["entries"]}
    assert set(ours) == set(record)
    for path, want in record.items():
        got = ours[path]
        assert (got["type"], got["size"], got["modified"]) == (want["type"], want["size"], want["modified"]), path
        if want["type"] == "file":
            assert hashlib.sha256(extract_bytes(volume, path.upper())).hexdigest() == want["sha256"], path


# --- errors --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fat_fixture(tmp_path_factory) -> tuple[Path, str]:
    entry = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]["togo_cbc128_password"]
    volume = tmp_path_factory.mktemp("togo") / "togo.bin"
    volume.write_bytes(gzip.decompress((FIXTURES / entry["file"]).read_bytes()))
    return volume, next(p["password"] for p in entry["protectors"] if p["type"] == "password")


def test_missing_path_exit_1_names_it(fat_fixture, tmp_path):
    volume, password = fat_fixture
    for command in (["ls"], ["extract"]):
        extra = ["-o", str(tmp_path / "out")] if command == ["extract"] else []
        proc = run_bitlocker_tools(*command, volume, "-p", password, "/no/such file.txt", *extra)
        assert_cli_error(proc, 1, "/no/such file.txt", "no such file")
    assert not (tmp_path / "out").exists()
    # a file used as a directory is missing as well
    assert_cli_error(run_bitlocker_tools("ls", volume, "-p", password, "README.TXT/inner"), 1, "README.TXT/inner")


def test_extract_of_a_directory_exit_2_and_json_failure(ntfs_volume, tmp_path):
    _, volume = ntfs_volume
    out = tmp_path / "dir.out"
    proc = run_bitlocker_tools("extract", volume, "-p", PASSWORD, "/Docs/Sub Dir", "-o", out)
    assert_cli_error(proc, 2, "/Docs/Sub Dir", "is a directory")
    assert not out.exists()
    proc = run_bitlocker_tools("extract", volume, "-p", PASSWORD, "/Docs/Sub Dir", "-o", out, "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {"error": proc.stderr.strip()[len("bitlocker-tools: "):], "exit_code": 2}
    # with -o - stdout is the file's: the failure document goes to stderr
    proc = run_bitlocker_tools("ls", volume, "-p", PASSWORD, "nowhere", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["exit_code"] == 1
    assert "nowhere" in json.loads(proc.stdout)["error"]
    proc = run_bitlocker_tools("extract", volume, "-p", PASSWORD, "Docs", "-o", "-", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert json.loads(proc.stderr[proc.stderr.index("{"):])["exit_code"] == 2


def test_wrong_password_exit_1(fat_fixture, tmp_path):
    volume, _ = fat_fixture
    for command in (["ls"], ["extract", "README.TXT", "-o", str(tmp_path / "x")]):
        proc = run_bitlocker_tools(command[0], volume, "-p", "not-the-password", *command[1:])
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_extract_never_overwrites_and_leaves_no_partial(fat_fixture, tmp_path):
    volume, password = fat_fixture
    out = tmp_path / "readme.txt"
    out.write_bytes(b"keep me")
    proc = run_bitlocker_tools("extract", volume, "-p", password, "README.TXT", "-o", out)
    assert_cli_error(proc, 2, "exists")
    assert out.read_bytes() == b"keep me"
    fresh = tmp_path / "fresh.txt"
    proc = run_bitlocker_tools("extract", volume, "-p", password, "readme.txt", "-o", fresh)
    assert proc.returncode == 0, proc.stderr
    assert f"SHA-256 {hashlib.sha256(fresh.read_bytes()).hexdigest()}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.txt", "readme.txt"]  # no .part left


def test_unsupported_filesystem_exit_3_names_it(tmp_path):
    """A volume whose plaintext boot sector is ReFS, and one that is no filesystem at all: exit 3,
    saying what identify_filesystem sees."""
    base = bytearray(gzip.decompress((FIXTURES / "plain" / "fat12.img.gz").read_bytes()))
    refs = bytearray(base)
    refs[3:11] = b"ReFS\x00\x00\x00\x00"
    refs[54:62] = bytes(8)
    volume = forge_around(bytes(refs), tmp_path / "refs.bin", "files-refs", EncryptionMethod.AES_128)
    assert_cli_error(run_bitlocker_tools("ls", volume, "-p", PASSWORD), 3, "ReFS", "do not read")
    blank = bytearray(base)
    blank[3:11] = b"NOTAFS  "
    blank[54:62] = bytes(8)
    volume = forge_around(bytes(blank), tmp_path / "blank.bin", "files-blank", EncryptionMethod.AES_128)
    proc = run_bitlocker_tools("extract", volume, "-p", PASSWORD, "README.TXT", "-o", tmp_path / "x", "--json")
    line = assert_cli_error(proc, 3, "no filesystem that identify_filesystem knows")
    assert json.loads(proc.stdout) == {"error": line[len("bitlocker-tools: "):], "exit_code": 3}


def test_corpus_volume_without_its_mft_is_refused_cleanly(corpus_dir):
    """The corpus's fully decrypted volume keeps its NTFS boot sector but not its $MFT: ls says
    where the $MFT should be, exit 3, no traceback."""
    from dissect.fve.bde import BDE  # the peer's view of the volume: its NTFS boot sector moved back

    with open(corpus_dir / "decrypted.bin", "rb") as fh:
        boot = BDE(fh).open().read(512)
    bps, spc = struct.unpack_from("<HB", boot, 11)  # the byte offsets of the NTFS boot sector
    at = struct.unpack_from("<Q", boot, 48)[0] * bps * spc
    assert_cli_error(run_bitlocker_tools("ls", corpus_dir / "decrypted.bin"), 3, "NTFS",
                     f"the $MFT starts at byte {at}: no FILE record there")


def test_volume_and_offset_inside_a_disk(ntfs_volume, fat_fixture, tmp_path):
    """Two BitLocker partitions on a GPT disk (sgdisk): --volume N and --offset B reach each one's
    files, and the listing of each is the one of the volume file alone."""
    need("sgdisk")
    import diskbuild

    _, ntfs = ntfs_volume
    togo, togo_password = fat_fixture
    disk = diskbuild.build_gpt(tmp_path / "disk.raw", [ntfs, togo])
    ntfs_part, togo_part = disk.part_for(ntfs), disk.part_for(togo)
    by_number = ls_json(disk.path, "--volume", str(ntfs_part.number), "/Docs")
    assert by_number["entries"] == ls_json(ntfs, "/Docs")["entries"]
    proc = run_bitlocker_tools("ls", disk.path, "--offset", togo_part.offset, "-p", togo_password, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["filesystem"] == "FAT12"
    data = extract_bytes(disk.path, "README.TXT", "--volume", str(togo_part.number), "-p", togo_password)
    assert data == extract_bytes(togo, "README.TXT", "-p", togo_password) and b"decrypted correctly" in data


def test_people_see_names_as_stored(ntfs_volume):
    """The table shows a name with brackets as it is (Rich would take ``[x]`` as markup)."""
    _, volume = ntfs_volume
    proc = run_bitlocker_tools("ls", volume, "-p", PASSWORD, "-R")
    assert proc.returncode == 0, proc.stderr
    assert "/Ünïcödé [x].txt" in proc.stdout and "/Docs/Sub Dir/frag_a.bin" in proc.stdout
    assert "MFT record" in proc.stdout and re.search(r"\d+ files, \d+ directories", proc.stdout)


def test_exfat_bytes_past_the_valid_data_length_read_as_zeros():
    """exFAT: a file's clusters past its valid data length (space allocated ahead) read as zeros,
    whatever they hold. The sample's stream entry of big_contiguous.bin is given a valid data
    length of 1000: the first 1000 bytes are exfat-fuse's, the rest zeros, the size unchanged."""
    import io

    from bitlocker_tools.files import VolumeFiles

    record = json.loads((SAMPLES / "exfat.json").read_text(encoding="utf-8"))["entries"]["/big_contiguous.bin"]
    image = bytearray(gzip.decompress((SAMPLES / "exfat.img.gz").read_bytes()))
    original = VolumeFiles(io.BytesIO(bytes(image))).open("/big_contiguous.bin")[1].read()
    assert hashlib.sha256(original).hexdigest() == record["sha256"]
    size = struct.pack("<Q", record["size"])
    at = [i for i in range(0, len(image), 32) if image[i] == 0xC0 and image[i + 0x18 : i + 0x20] == size]
    assert len(at) == 1  # the stream extension entry: valid data length at 8, data length at 24
    image[at[0] + 8 : at[0] + 16] = struct.pack("<Q", 1000)
    entry, fh = VolumeFiles(io.BytesIO(bytes(image))).open("BIG_CONTIGUOUS.BIN")
    data = fh.read()
    assert entry.size == len(data) == record["size"]
    assert data[:1000] == original[:1000] and data[1000:] == bytes(len(data) - 1000)


def test_extract_that_reads_short_leaves_nothing_and_exits_3(fat_fixture, tmp_path, monkeypatch):
    """A reader that stops before the size the directory entry records: exit 3 naming the file,
    and nothing at the output's name (no truncated file renamed into place)."""
    from typer.testing import CliRunner

    from bitlocker_tools.cli import app
    from bitlocker_tools.files import VolumeFiles

    real = VolumeFiles.open

    def short(self, *args, **kwargs):  # the content ends half way through the recorded size
        entry, fh = real(self, *args, **kwargs)
        data = fh.read()
        return entry, io.BytesIO(data[: len(data) // 2])

    monkeypatch.setattr(VolumeFiles, "open", short)
    volume, password = fat_fixture
    out = tmp_path / "readme.txt"
    result = CliRunner().invoke(app, ["extract", str(volume), "-p", password, "README.TXT", "-o", str(out)])
    assert result.exit_code == 3
    assert "README.TXT" in result.stderr and "bytes could be read" in result.stderr
    assert list(tmp_path.iterdir()) == []
