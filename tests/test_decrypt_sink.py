"""decrypt with its stages overlapped: the digests asked for (each checked by hashlib over what was
written), --sparse holes counted against the plaintext the forge started from, order kept under a
slow and jittery sink, a failing sink that names its file and leaves no thread behind, and a
resumed run whose every digest still covers the whole output."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import random
import threading
import time

import pytest
from conftest import ROOT

from bitlocker_tools.credentials import collect
from bitlocker_tools.decrypt import CHUNK, SPARSE_BLOCK, _Pipeline, decrypt_to
from bitlocker_tools.protectors import unlock
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.volume import BitLockerVolume

PASSWORD = "password12!@"


def _file_digests(path) -> dict[str, str]:
    data = path.read_bytes()
    return {n: hashlib.new(n, data).hexdigest() for n in ("sha256", "sha1", "md5")}


def test_every_digest_asked_for(corpus_dir, run_cli, tmp_path, manifest):
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-p", PASSWORD, "-o", out, "--json",
                   "--hash", "md5", "--hash", "sha1", "--hash", "sha256")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["hashes"] == _file_digests(out)
    assert doc["sha256"] == doc["hashes"]["sha256"] == next(
        v["decrypted_prefix_sha256"] for v in manifest["volumes"] if v["file"] == "aes-xts_128.bin.gz")
    human = run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-p", PASSWORD, "-o", tmp_path / "b.img",
                    "--hash", "md5").stdout
    assert f"MD5 {doc['hashes']['md5']}" in human and "SHA-256" not in human
    none = json.loads(run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-p", PASSWORD, "-o", tmp_path / "c.img",
                              "--json", "--hash", "none").stdout)
    assert none["hashes"] == {} and none["sha256"] is None
    bad = run_cli("decrypt", corpus_dir / "aes-xts_128.bin", "-p", PASSWORD, "-o", tmp_path / "d.img", "--hash", "crc")
    assert bad.returncode == 2 and not (tmp_path / "d.img").exists()


def test_sparse_output_has_holes_where_the_plaintext_is_zero(tmp_path, run_cli):
    fixture = json.loads((ROOT / "fixtures" / "manifest.json").read_text())["fixtures"]["xts128_recovery_password"]
    volume = tmp_path / "volume.bin"
    volume.write_bytes(gzip.decompress((ROOT / "fixtures" / fixture["file"]).read_bytes()))
    rp = next(p["recovery_password"] for p in fixture["protectors"] if p["type"] == "recovery_password")
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", volume, "-r", rp, "-o", out, "--sparse", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    # independent of the writer: the forge's input with the reserved areas zeroed, 64 KiB at a time
    plain = bytearray(gzip.decompress((ROOT / "fixtures" / fixture["plain"]).read_bytes()))
    regions = [(o, 0x10000) for o in fixture["metadata_offsets"]]
    regions.append((fixture["volume_header_offset"], fixture["volume_header_size"]))
    for off, length in regions:
        plain[off : off + length] = bytes(length)
    assert hashlib.sha256(plain).hexdigest() == fixture["expected_plaintext_sha256"]
    zero = sum(len(plain[i : i + SPARSE_BLOCK]) for i in range(0, len(plain), SPARSE_BLOCK)
               if not any(plain[i : i + SPARSE_BLOCK]))
    assert doc["sparse_bytes"] == zero > 0
    assert out.read_bytes() == plain and doc["sha256"] == hashlib.sha256(plain).hexdigest()
    assert out.stat().st_blocks * 512 <= len(plain) - zero + SPARSE_BLOCK  # the holes are holes
    assert run_cli("decrypt", volume, "-r", rp, "-o", "-", "--sparse").returncode == 2


@pytest.fixture(scope="module")
def stream(corpus_dir):
    fh = (corpus_dir / "aes-xts_128.bin").open("rb")
    vol = BitLockerVolume(fh)
    yield DecryptedStream(vol, unlock(vol, collect(password=[PASSWORD], use_env=False)))
    fh.close()


class _JitteryFile(io.RawIOBase):
    """A sink that takes its time, unevenly, and fails on demand."""

    def __init__(self, fail_after: int | None = None):
        self.data = bytearray()
        self.rng = random.Random(4)
        self.fail_after = fail_after

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if self.fail_after is not None and len(self.data) >= self.fail_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        time.sleep(self.rng.random() * 0.01)
        self.data += bytes(b)
        return len(b)


def test_order_is_kept_under_a_slow_sink(stream, manifest):
    sink = _JitteryFile()
    digests = [hashlib.sha256(), hashlib.md5()]
    written = _Pipeline(stream, sink, None, digests, False, "sink", workers=4).run(0, None)
    assert written == stream.size == len(sink.data)
    expected = hashlib.sha256()
    for pos in range(0, stream.size, CHUNK):
        chunk = stream.read_at(pos, CHUNK)
        assert sink.data[pos : pos + len(chunk)] == chunk, pos
        expected.update(chunk)
    assert digests[0].hexdigest() == expected.hexdigest() == hashlib.sha256(sink.data).hexdigest()
    assert digests[1].hexdigest() == hashlib.md5(sink.data).hexdigest()
    # independent of our reader: the whole volume's plaintext, as the corpus manifest records it
    entry = next(v for v in manifest["volumes"] if v["file"] == "aes-xts_128.bin.gz")
    assert len(sink.data) == entry["decrypted_prefix_bytes"]
    assert hashlib.sha256(sink.data).hexdigest() == entry["decrypted_prefix_sha256"]


def test_a_failing_sink_names_its_file_and_stops_every_thread(stream):
    before = threading.active_count()
    with pytest.raises(OSError) as info:
        _Pipeline(stream, _JitteryFile(fail_after=3 * CHUNK), None, [hashlib.sha256()], False, "out.img.part").run(0, None)
    assert info.value.filename == "out.img.part" and info.value.errno == errno.ENOSPC
    deadline = time.monotonic() + 10  # threads that are shutting down get time to end: not a speed check
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


def test_resume_keeps_every_digest_whole(stream, tmp_path, manifest):
    out = tmp_path / "plain.img"
    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        decrypt_to(stream, str(out), progress=interrupt, hashes=("sha256", "md5", "sha1"))
    done = decrypt_to(stream, str(out), resume=True, hashes=("sha256", "md5", "sha1"))
    assert done.resumed_from >= 2 * CHUNK
    assert done.hashes == _file_digests(out)
    assert done.hashes["sha256"] == next(  # the resumed file is the right plaintext, not only itself
        v["decrypted_prefix_sha256"] for v in manifest["volumes"] if v["file"] == "aes-xts_128.bin.gz")


def test_pages_go_to_the_disk_as_they_are_written(stream, tmp_path, monkeypatch):
    """Each written range is handed to the disk once, in order, covering the output exactly (with
    holes too), so the closing fsync has nothing left to wait for; a pipe has no such call."""
    import os
    import sys

    from bitlocker_tools import decrypt as module

    with (tmp_path / "f").open("wb") as fh:
        assert (module._writeback(fh) is not None) == sys.platform.startswith("linux")
    r, w = os.pipe()
    with os.fdopen(w, "wb") as fh:
        assert module._writeback(fh) is None
    os.close(r)
    ranges: list[tuple[int, int]] = []
    monkeypatch.setattr(module, "_writeback", lambda out: lambda offset, length: ranges.append((offset, length)))
    for sparse in (False, True):
        ranges.clear()
        out = tmp_path / f"plain{sparse}.img"
        done = decrypt_to(stream, str(out), sparse=sparse)
        assert [o for o, _ in ranges] == list(range(0, stream.size, CHUNK))
        assert sum(length for _, length in ranges) == done.bytes_written == out.stat().st_size == stream.size
