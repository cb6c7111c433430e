"""``mount``: the decrypted volume as one read-only file in a FUSE mount, for real.

What proves the file right is never our own reader: the corpus manifest's SHA-256 of the
plaintext (computed by dissect.fve's authors), ewfacquire's digest of what it read through the
mount, and ntfs-3g listing and reading the NTFS inside a forged fixture, compared with
dissect.ntfs on the plain image the fixture was made from. Every mount made here is unmounted in
teardown (``fusermount3 -u``, then ``-u -z``), so a failing test leaves nothing mounted.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, STRICT, assert_cli_error, mounted, process_gone, unmount, volume_file

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse") and not STRICT,
                                reason="no /dev/fuse on this machine (FUSE)")

RP_VOLUME = "recovery_password.bin.gz"
WRONG_RP = "111111-111111-111111-111111-111111-111111-111111-111111"






@pytest.fixture
def mountpoints(tmp_path):
    """``mountpoints(name)``: a fresh empty directory; every one is unmounted afterwards, the
    last made first (an ntfs-3g mount over our file before ours)."""
    made: list[Path] = []

    def new(name: str = "mnt") -> Path:
        path = tmp_path / name
        path.mkdir()
        made.append(path)
        return path

    yield new
    for path in reversed(made):
        unmount(path)


@pytest.fixture(scope="module")
def rp_entry() -> dict:
    manifest = json.loads((ROOT / "tests" / "corpus_manifest.json").read_text())
    return next(v for v in manifest["volumes"] if v["file"] == RP_VOLUME)


@pytest.fixture
def rp_volume(corpus_dir, rp_entry) -> Path:
    return corpus_dir / volume_file(rp_entry)


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> tuple[Path, bytes, str]:
    """The forged NTFS fixture: (volume file, the plain image it was made from, its recovery password)."""
    fixtures = ROOT / "fixtures"
    entry = json.loads((fixtures / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    path = tmp_path_factory.mktemp("forged") / "xts128.bin"
    path.write_bytes(gzip.decompress((fixtures / entry["file"]).read_bytes()))
    rp = next(p["recovery_password"] for p in entry["protectors"] if p["type"] == "recovery_password")
    return path, gzip.decompress((fixtures / entry["plain"]).read_bytes()), rp


def _mount(run_cli, source: Path, where: Path, *args: str) -> dict:
    proc = run_cli("mount", source, where, *args, "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "vmk" not in doc and "fvek" not in doc  # no --show-keys: no key in the summary
    return doc


def _prefix_sha256(path: Path, nbytes: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        left = nbytes
        while left and (chunk := fh.read(min(1 << 20, left))):
            digest.update(chunk)
            left -= len(chunk)
    assert left == 0, f"{path} is shorter than {nbytes} bytes"
    return digest.hexdigest()




# --- the background mount, read through ----------------------------------------------------------


def test_background_mount_serves_the_corpus_plaintext(run_cli, mountpoints, rp_volume, rp_entry, unchanged):
    mnt = mountpoints()
    with unchanged(rp_volume):
        doc = _mount(run_cli, rp_volume, mnt, "-r", rp_entry["credentials"]["recovery_password"])
        image = mnt / "bitlocker.img"
        assert mounted(mnt)  # the command returned with the mount up, serving in another process
        assert doc["mountpoint"] == str(mnt) and doc["path"] == str(image)
        assert doc["foreground"] is False and doc["read_only"] is True
        assert doc["volume_guid"] == rp_entry["volume_guid"]
        assert doc["protector_id"] == rp_entry["protectors"][0]["id"] and doc["filesystem"] == "NTFS"
        assert doc["pid"] != os.getpid() and not process_gone(doc["pid"], timeout=0.2)
        assert os.listdir(mnt) == ["bitlocker.img"]
        st = image.stat()
        assert st.st_size == doc["size"] == rp_volume.stat().st_size
        assert oct(st.st_mode & 0o777) == oct(0o444)
        # the manifest's digest of the plaintext, computed by others from dissect.fve's output
        assert _prefix_sha256(image, rp_entry["decrypted_prefix_bytes"]) == rp_entry["decrypted_prefix_sha256"]
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
            with pytest.raises(OSError) as exc:
                os.open(image, flags)
            assert exc.value.errno in (errno.EROFS, errno.EACCES)
        with pytest.raises(OSError):
            (mnt / "new").write_bytes(b"x")
        assert "ro" in _mount_options(mnt)
        assert subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode == 0
        assert process_gone(doc["pid"]), "the server outlived its mount"
    assert not mounted(mnt) and os.listdir(mnt) == []


def test_human_summary_names_the_file_and_no_secret(run_cli, mountpoints, rp_volume, rp_entry):
    mnt = mountpoints()
    rp = rp_entry["credentials"]["recovery_password"]
    proc = run_cli("mount", rp_volume, mnt, "-r", rp)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{mnt / 'bitlocker.img'}: ") and f"fusermount3 -u {mnt}" in proc.stdout
    for text in (proc.stdout, proc.stderr):
        assert rp not in text and rp.replace("-", "") not in text


def _mount_options(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            if fields[4] == str(path):
                return fields[5].split(",")
    raise AssertionError(f"{path} is not mounted")


def test_ewfacquire_images_the_mounted_file(run_cli, mountpoints, rp_volume, rp_entry, tmp_path):
    """An imaging tool reads the whole file through the mount and records the manifest's digest."""
    ewfacquire = shutil.which("ewfacquire")
    if ewfacquire is None:
        pytest.skip("ewfacquire is not installed (Debian package ewf-tools)")
    assert rp_entry["decrypted_prefix_bytes"] == rp_volume.stat().st_size  # the digest covers the whole file
    mnt = mountpoints()
    doc = _mount(run_cli, rp_volume, mnt, "-r", rp_entry["credentials"]["recovery_password"])
    proc = subprocess.run([ewfacquire, "-u", "-q", "-c", "none", "-d", "sha256", "-t", str(tmp_path / "case"),
                           doc["path"]], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = dict(line.split(":", 1) for line in proc.stdout.splitlines() if "hash calculated over data" in line)
    assert said["SHA256 hash calculated over data"].strip() == rp_entry["decrypted_prefix_sha256"]
    assert (tmp_path / "case.E01").stat().st_size > 0


def test_reads_on_many_threads_at_once(run_cli, mountpoints, rp_volume, rp_entry):
    """Unaligned reads from eight threads on a cold mount (so FUSE serves them concurrently), then
    the whole file, partly from the pages those reads left in the cache, against the manifest."""
    mnt = mountpoints()
    doc = _mount(run_cli, rp_volume, mnt, "-r", rp_entry["credentials"]["recovery_password"])
    size = doc["size"]
    rng = random.Random(19)
    plan = [(rng.randrange(size), rng.choice([1, 511, 4097, 65536 + 3, 300_000, 1 << 20])) for _ in range(400)]
    got: dict[int, bytes] = {}
    fd = os.open(doc["path"], os.O_RDONLY)
    try:
        def worker(k: int) -> None:
            for i in range(k, len(plan), 8):
                offset, length = plan[i]
                got[i] = os.pread(fd, length, offset)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.close(fd)
    whole = Path(doc["path"]).read_bytes()
    assert hashlib.sha256(whole).hexdigest() == rp_entry["decrypted_prefix_sha256"]
    for i, (offset, length) in enumerate(plan):
        assert got[i] == whole[offset : offset + length], f"read {i}: {length} bytes at {offset}"


# --- ntfs-3g through the mount ---------------------------------------------------------------------


def test_ntfs_3g_lists_and_reads_the_filesystem_through_the_mount(run_cli, mountpoints, forged):
    """ntfs-3g mounts the file we serve; what it lists and reads is what dissect.ntfs finds in
    the plain image the fixture was encrypted from."""
    ntfs_3g, ntfsls = shutil.which("ntfs-3g"), shutil.which("ntfsls")
    if ntfs_3g is None or ntfsls is None:
        pytest.skip("ntfs-3g is not installed (Debian package ntfs-3g)")
    from dissect.ntfs import NTFS

    volume, plain, rp = forged
    reference = NTFS(io.BytesIO(plain))
    names = sorted(n for n in reference.mft.get(".").listdir() if not n.startswith("$") and n != ".")
    assert names, "the fixture's filesystem holds files"

    mnt = mountpoints("bitlocker")
    doc = _mount(run_cli, volume, mnt, "-r", rp, "--name", "evidence.raw")
    assert doc["path"] == str(mnt / "evidence.raw") and os.listdir(mnt) == ["evidence.raw"]
    listed = subprocess.run([ntfsls, doc["path"]], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == names

    inner = mountpoints("ntfs")
    proc = subprocess.run([ntfs_3g, "-o", "ro", doc["path"], str(inner)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(inner)) == names
    for name in names:
        assert (inner / name).read_bytes() == reference.mft.get(name).open().read(), name


def test_the_sleuth_kit_reads_the_filesystem_through_the_mount(run_cli, mountpoints, forged):
    """fls lists and icat reads the NTFS in the file we serve, as dissect.ntfs reads the plain image."""
    fls, icat = shutil.which("fls"), shutil.which("icat")
    if fls is None or icat is None:
        pytest.skip("The Sleuth Kit is not installed (Debian package sleuthkit)")
    from dissect.ntfs import NTFS

    volume, plain, rp = forged
    reference = NTFS(io.BytesIO(plain))
    expected = {n: reference.mft.get(n).open().read() for n in reference.mft.get(".").listdir()
                if not n.startswith("$") and n != "."}
    mnt = mountpoints()
    doc = _mount(run_cli, volume, mnt, "-r", rp)
    listed = subprocess.run([fls, doc["path"]], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    files = {}  # name -> inode address, for the regular files outside the metadata
    for line in listed.stdout.splitlines():
        kind, rest = line.split(" ", 1)
        address, name = rest.split(":\t", 1)
        if kind == "r/r" and not name.startswith("$"):
            files[name] = address.strip()
    assert sorted(files) == sorted(expected)
    for name, address in files.items():
        got = subprocess.run([icat, doc["path"], address], capture_output=True, timeout=60)
        assert got.returncode == 0 and got.stdout == expected[name], name


# --- foreground: signals unmount -----------------------------------------------------------------


def _read_document(proc: subprocess.Popen, timeout: float = 120) -> dict:
    """The JSON document a foreground mount prints once ready (indented: it ends with a '}' line)."""
    deadline = time.monotonic() + timeout
    text = b""
    fd = proc.stdout.fileno()
    while not text.endswith(b"\n}\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no document within {timeout} s; so far: {text!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"exited {proc.wait()} before it was ready: {proc.stderr.read()!r}")
        text += chunk
    return json.loads(text)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, "fusermount3 -u"],
                         ids=["SIGTERM", "SIGINT", "fusermount3"])
def test_foreground_mount_unmounts_cleanly(mountpoints, rp_volume, rp_entry, how):
    mnt = mountpoints()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bitlocker_tools", "mount", str(rp_volume), str(mnt), "--foreground", "--json",
         "-r", rp_entry["credentials"]["recovery_password"]],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        doc = _read_document(proc)
        assert doc["foreground"] is True and doc["pid"] == proc.pid
        assert doc["volume_guid"] == rp_entry["volume_guid"] and doc["size"] == rp_volume.stat().st_size
        with open(doc["path"], "rb") as fh:  # serving: its first sector is an NTFS boot sector
            assert fh.read(512)[3:11] == b"NTFS    "
        if isinstance(how, str):
            assert subprocess.run(how.split() + [str(mnt)], capture_output=True).returncode == 0
        else:
            proc.send_signal(how)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr.read() == b""
    assert not mounted(mnt) and os.listdir(mnt) == []


# --- failures --------------------------------------------------------------------------------------


def test_wrong_key_exits_1_and_mounts_nothing(run_cli, mountpoints, rp_volume):
    mnt = mountpoints()
    proc = run_cli("mount", rp_volume, mnt, "-r", WRONG_RP)
    assert_cli_error(proc, 1, "recovery password")
    assert not mounted(mnt) and os.listdir(mnt) == []
    doc = json.loads(run_cli("mount", rp_volume, mnt, "-r", WRONG_RP, "--json").stdout)
    assert doc["exit_code"] == 1 and "opened no protector" in doc["error"]
    assert not mounted(mnt)


@pytest.mark.parametrize("problem", ["missing", "a file", "not empty", "already mounted"])
def test_mountpoint_problems_exit_2(run_cli, mountpoints, tmp_path, rp_volume, rp_entry, problem):
    rp = rp_entry["credentials"]["recovery_password"]
    where = tmp_path / "target"
    if problem == "a file":
        where.write_bytes(b"")
    elif problem == "not empty":
        where.mkdir()
        (where / "case-notes.txt").write_text("keep me")
    elif problem == "already mounted":
        where = mountpoints("target")
        _mount(run_cli, rp_volume, where, "-r", rp)
    before = sorted(os.listdir(where)) if where.is_dir() else None
    line = assert_cli_error(run_cli("mount", rp_volume, where, "-r", rp), 2, str(where))
    assert {"missing": "does not exist", "a file": "not a directory", "not empty": "not empty",
            "already mounted": "already mounted"}[problem] in line
    if before is not None:
        assert sorted(os.listdir(where)) == before
    if problem == "not empty":
        assert not mounted(where) and (where / "case-notes.txt").read_text() == "keep me"


def test_no_libfuse_exits_3_with_a_hint(run_cli, mountpoints, rp_volume, rp_entry):
    mnt = mountpoints()
    proc = run_cli("mount", rp_volume, mnt, "-r", rp_entry["credentials"]["recovery_password"],
                   env={"FUSE_LIBRARY_PATH": "/nonexistent/libfuse3.so.3"})
    assert_cli_error(proc, 3, "libfuse", "install fuse3")
    assert not mounted(mnt)


def test_bad_name_exits_2(run_cli, mountpoints, rp_volume, rp_entry):
    mnt = mountpoints()
    for name in ("a/b", "..", ""):
        assert_cli_error(run_cli("mount", rp_volume, mnt, "-r", rp_entry["credentials"]["recovery_password"],
                                 "--name", name), 2, "--name")
    assert not mounted(mnt)


def test_a_refused_mount_is_one_line_from_the_server(mountpoints, rp_volume, rp_entry, tmp_path):
    """Past our checks, libfuse itself refuses (the directory vanished): its reason, from the
    forked server, becomes the one error, with exit 3, and nothing stays mounted."""
    from bitlocker_tools.credentials import collect
    from bitlocker_tools.errors import BitLockerError
    from bitlocker_tools.mount import VolumeFile, mount_in_background
    from bitlocker_tools.protectors import unlock
    from bitlocker_tools.stream import DecryptedStream
    from bitlocker_tools.volume import BitLockerVolume

    with rp_volume.open("rb") as fh:
        vol = BitLockerVolume(fh)
        creds = collect(recovery_password=[rp_entry["credentials"]["recovery_password"]], use_env=False)
        fs = VolumeFile(DecryptedStream(vol, unlock(vol, creds)))
        with pytest.raises(BitLockerError) as exc:
            mount_in_background(fs, str(tmp_path / "gone"))
    assert exc.value.exit_code == 3
    message = str(exc.value)
    assert "cannot mount" in message and str(tmp_path / "gone") in message and "\n" not in message


def test_the_library_and_the_cli_load_without_mfusepy():
    """mfusepy (and libfuse with it) is loaded by a mount only: importing the library or starting
    the command line must not need it."""
    code = ("import sys; import bitlocker_tools.mount, bitlocker_tools.cli, bitlocker_tools.report; "
            "assert 'mfusepy' not in sys.modules, 'mfusepy imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
