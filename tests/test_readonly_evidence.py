"""Evidence is only ever read: every command that takes evidence, run against (a) an image made
read-only (mode 0444, in a directory of mode 0555) and (b) a read-only loop device over it, must
succeed and leave the evidence exactly as it was.

Checked around each command: the SHA-256 of the evidence (the image file; for the loop device
the device's own contents and its backing file), its size, mode, mtime and ctime (ctime moves on
any write, truncation, chmod, chown, utime or xattr change), the names in its directory and
that directory's mtime and ctime (no file created, renamed or removed beside it), and for the
loop device that the kernel still marks it read-only. atime is checked only where the file system
is mounted ``noatime``: elsewhere a read may legitimately move it (relatime).

The commands run as root here, whom mode bits do not stop: the checks above, not the mode bits,
are what prove nothing was written. Every output (files, a keychain, a state file, a mount
point) goes to a separate directory, which is also each command's working directory, so a file
a command drops in its current directory lands there too, not beside the evidence.

The evidence is the forged NTFS fixture xts128_recovery_password (1.2 MiB: a recovery password
and a password protector, files to list and extract); decrypt's output, mount's file and
extract's output are checked against the fixture manifest's plaintext digest. ``check-key``
takes a key, no evidence, and is not run here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, STRICT, process_gone, sha256_file, unmount

FIXTURE = "xts128_recovery_password"
PASSWORD = "Forge-Demo-1"


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads((ROOT / "fixtures" / "manifest.json").read_text())["fixtures"][FIXTURE]


def _rp(fixture: dict) -> str:
    return next(p["recovery_password"] for p in fixture["protectors"] if p["type"] == "recovery_password")


@pytest.fixture
def evidence(tmp_path, fixture):
    """The fixture volume as read-only evidence: mode 0444 in a directory of mode 0555."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    image = folder / "volume.bin"
    image.write_bytes(gzip.decompress((ROOT / "fixtures" / fixture["file"]).read_bytes()))
    assert sha256_file(image) == fixture["volume_sha256"]
    image.chmod(0o444)
    folder.chmod(0o555)
    yield image
    folder.chmod(0o755)  # so that pytest can remove it


@pytest.fixture
def loop_device(evidence):
    """A read-only loop device (``losetup -r``) over the read-only image; detached afterwards."""
    if os.geteuid() != 0:
        if STRICT:
            pytest.fail("a read-only loop device needs root, and CI=true runs as root")
        pytest.skip("a read-only loop device needs root (losetup -r)")
    made = subprocess.run(["losetup", "-r", "-f", "--show", str(evidence)], capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, f"losetup -r -f --show failed: {made.stderr}"
    device = Path(made.stdout.strip())
    try:
        assert subprocess.run(["blockdev", "--getro", str(device)], capture_output=True, text=True,
                              check=True).stdout.strip() == "1"
        yield device
    finally:
        subprocess.run(["losetup", "-d", str(device)], capture_output=True, timeout=60)


def _noatime(path: Path) -> bool:
    """Whether the file system holding ``path`` is mounted noatime (the longest matching mount)."""
    best, options = "", ""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            point = fields[4]
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, options = point, fields[5]
    return "noatime" in options.split(",")


def _state(path: Path, watch_atime: bool) -> dict:
    st = os.stat(path)
    record = {"sha256": sha256_file(path), "size": st.st_size, "mode": stat.filemode(st.st_mode),
              "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}
    if watch_atime:
        record["atime_ns"] = st.st_atime_ns
    return record


def _folder(path: Path) -> dict:
    st = os.stat(path)
    return {"names": sorted(os.listdir(path)), "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


class _Evidence:
    """What must stay the same: the files' contents and times, and their directories."""

    def __init__(self, files: list[Path], device: Path | None = None):
        self.files, self.device = files, device
        self.atime = {p: _noatime(p) for p in files}

    def snapshot(self) -> dict:
        snap = {str(p): _state(p, self.atime[p]) for p in self.files}
        snap.update({f"{p.parent}/": _folder(p.parent) for p in self.files})
        if self.device is not None:
            snap[str(self.device)] = {"sha256": sha256_file(self.device), "read_only": subprocess.run(
                ["blockdev", "--getro", str(self.device)], capture_output=True, text=True).stdout.strip()}
        return snap


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITLOCKER_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env








def _commands(source: Path, out: Path, keys_file: Path, fixture: dict) -> list[tuple[str, list, object]]:
    """(name, arguments, check of the command's result) for every command that takes evidence."""
    rp = _rp(fixture)
    plain = fixture["expected_plaintext_sha256"]
    groups = rp.split("-")
    pattern = "-".join([groups[0][:4] + "?" + groups[0][5:], *groups[1:]])  # one digit unreadable

    def json_ok(proc):
        return json.loads(proc.stdout)

    def verify(proc):
        doc = json_ok(proc)
        assert doc["unlocked"] is True and doc["protector_type"] == "recovery_password"

    def decrypt(proc):
        doc = json_ok(proc)
        assert doc["sha256"] == plain == sha256_file(out / "plain.img")

    def decrypt_stdout(proc):
        assert hashlib.sha256(proc.stdout_bytes).hexdigest() == plain

    def keys(proc):
        assert (out / "fvek.bin").read_bytes().hex() == fixture["dislocker_fvek_file_hex"]
        assert rp in (out / "keychain.csv").read_text()

    def match(proc):
        assert json_ok(proc)["volumes"][0]["status"] == "matched"
        assert (out / "match.csv").exists() and rp in (out / "match-keychain.csv").read_text()

    def recover(proc):
        doc = json_ok(proc)
        assert doc["recovery_password"] == rp and not (out / "search.state").exists()

    def ls(proc):
        assert "/README.TXT" in [e["path"] for e in json_ok(proc)["entries"]]

    def extract(proc):
        doc = json_ok(proc)
        # the file as dissect.ntfs reads it from the plain image the fixture was made from
        import io

        from dissect.ntfs import NTFS

        image = gzip.decompress((ROOT / "fixtures" / fixture["plain"]).read_bytes())
        expected = NTFS(io.BytesIO(image)).mft.get("README.TXT").open().read()
        assert (out / "README.TXT").read_bytes() == expected and doc["size"] == len(expected) > 0
        assert doc["sha256"] == hashlib.sha256(expected).hexdigest()

    def hash_lines(proc):
        assert {x["protector_type"] for x in json_ok(proc)["lines"]} == {"recovery_password", "password"}

    return [
        ("scan", ["scan", source, "--json"], json_ok),
        ("info", ["info", source, "--json"], json_ok),
        ("verify", ["verify", source, "-r", rp, "--json"], verify),
        ("keys", ["keys", source, "-p", PASSWORD, "--json", "--keychain", out / "keychain.csv",
                  "--export-fvek", out / "fvek.bin"], keys),
        ("match", ["match", source, "-k", keys_file, "--json", "--csv", out / "match.csv", "--keychain",
                   out / "match-keychain.csv"], match),
        ("recover", ["recover", source, "--pattern", pattern, "--workers", "1", "--state", out / "search.state",
                     "--show-keys", "--json"], recover),
        ("hash", ["hash", source, "--json"], hash_lines),
        ("decrypt", ["decrypt", source, "-p", PASSWORD, "-o", out / "plain.img", "--json", "--hash", "sha256",
                     "--hash", "md5"], decrypt),
        ("decrypt -o -", ["decrypt", source, "-r", rp, "-o", "-"], decrypt_stdout),
        ("ls", ["ls", source, "-p", PASSWORD, "-R", "--json"], ls),
        ("extract", ["extract", source, "/README.TXT", "-o", out / "README.TXT", "-p", PASSWORD, "--json"], extract),
    ]


def _run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, timeout=300)
    proc.stdout_bytes = proc.stdout  # type: ignore[attr-defined]
    text = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))
    text.stdout_bytes = proc.stdout  # type: ignore[attr-defined]
    return text


def _every_command(source: Path, evidence: _Evidence, tmp_path: Path, fixture: dict, unchanged) -> list[str]:
    out = tmp_path / "out"
    out.mkdir()
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    keys_file = keys_dir / "recovery key.txt"
    protector = next(p for p in fixture["protectors"] if p["type"] == "recovery_password")
    keys_file.write_text(f"Recovery key ID: {protector['guid'].upper()}\nRecovery key: {_rp(fixture)}\n")
    ran = []
    before = evidence.snapshot()
    for name, args, check in _commands(source, out, keys_file, fixture):
        with unchanged(*evidence.files):
            proc = _run(args, out)
        assert proc.returncode == 0, f"{name} on {source}: exit {proc.returncode}: {proc.stderr}"
        check(proc)
        assert evidence.snapshot() == before, f"{name} changed the evidence or its directory"
        ran.append(name)

    # mount: the plaintext served, read through, unmounted; the evidence as before, also after
    # the server has gone
    where = out / "mnt"
    where.mkdir()
    try:
        with unchanged(*evidence.files):
            proc = _run(["mount", source, where, "-p", PASSWORD, "--json"], out)
            assert proc.returncode == 0, f"mount on {source}: {proc.stderr}"
            doc = json.loads(proc.stdout)
            assert sha256_file(doc["path"]) == fixture["expected_plaintext_sha256"]
            assert subprocess.run(["fusermount3", "-u", str(where)], capture_output=True).returncode == 0
            assert process_gone(doc["pid"]), "the mount's server did not exit"
    finally:
        unmount(where)
    assert evidence.snapshot() == before, "mount changed the evidence or its directory"
    ran.append("mount")
    return ran


EVERY = ["scan", "info", "verify", "keys", "match", "recover", "hash", "decrypt", "decrypt -o -", "ls", "extract",
         "mount"]


def test_every_command_leaves_a_read_only_image_as_it_was(evidence, tmp_path, fixture, unchanged):
    assert os.stat(evidence).st_mode & 0o777 == 0o444 and os.stat(evidence.parent).st_mode & 0o777 == 0o555
    assert _every_command(evidence, _Evidence([evidence]), tmp_path, fixture, unchanged) == EVERY


def test_every_command_works_on_a_read_only_loop_device(loop_device, evidence, tmp_path, fixture, unchanged):
    """A read-only block device refuses any open for writing (EROFS/EACCES): a command that
    asked for more than reading would fail here, not just leave a trace."""
    assert sha256_file(loop_device) == fixture["volume_sha256"]
    watched = _Evidence([evidence], device=loop_device)
    assert _every_command(loop_device, watched, tmp_path, fixture, unchanged) == EVERY


def test_the_snapshot_sees_a_write_a_touch_and_a_new_file(tmp_path):
    """The checks above can fail: a byte rewritten in place (same size), an mtime put back after
    a write (ctime still moves), and a file created beside the evidence are each seen."""
    image = tmp_path / "ev" / "volume.bin"
    image.parent.mkdir()
    image.write_bytes(bytes(4096))
    watched = _Evidence([image])
    before = watched.snapshot()
    with image.open("r+b") as fh:
        fh.write(b"\0")  # the same byte: content unchanged, but written
    assert watched.snapshot() != before
    before = watched.snapshot()
    st = os.stat(image)
    time.sleep(0.01)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))  # times "put back"
    assert watched.snapshot()[str(image)]["ctime_ns"] != before[str(image)]["ctime_ns"]
    before = watched.snapshot()
    (image.parent / "volume.bin.part").write_bytes(b"")
    assert watched.snapshot() != before
    shutil.rmtree(image.parent)
