"""`decrypt --resume` end to end through the command line (docs/cli.md: "A file is written as
OUT.part (with OUT.part.json describing the job) and renamed when complete; ... --resume, which
continues a .part of the same volume and key").

A real `decrypt` of win7_partial.bin (2,874,839,040 bytes of plaintext, SHA-256 known from
MANIFEST.md) is interrupted, by SIGINT and by SIGKILL, once OUT.part holds a few chunks; `decrypt
--resume` then finishes it, and the result must hash to the manifest's digest, with no .part left.
A .part started for another volume, or for the same volume under another key, is refused and left
exactly as it was. Each full-size output is deleted as soon as it is checked.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_cli_error, sha256_file

WIN7 = "win7_partial.bin"
WIN7_RP = "131450-120197-153989-250338-511368-495572-680944-381546"
WIN7_SIZE = 2_874_839_040
MiB = 1 << 20
INTERRUPT_AFTER = 24 * MiB  # "past a few chunks" (a chunk is 4 MiB)


def _win7_sha(manifest) -> str:
    entry = next(v for v in manifest["volumes"] if v["file"] == WIN7 + ".gz")
    assert entry["decrypted_prefix_bytes"] == WIN7_SIZE
    return entry["decrypted_prefix_sha256"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITLOCKER_")}
    env.update(extra)
    return env


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def interrupted_decrypt(image: Path, out: Path, sig: int, credential: list[str]) -> tuple[subprocess.CompletedProcess, int]:
    """Start ``decrypt IMAGE CRED -o OUT`` (the slow pure-Python core), wait until OUT.part has
    grown past INTERRUPT_AFTER bytes, send ``sig`` and wait for the process to end."""
    part = out.with_name(out.name + ".part")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bitlocker_tools", "decrypt", str(image), *credential, "-o", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=_env(BITLOCKER_TOOLS_PURE="1"),
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"decrypt ended (exit {proc.returncode}) before it could be interrupted: "
                                     f"{proc.stderr.read().decode(errors='replace')!r}")
            if part.exists() and part.stat().st_size > INTERRUPT_AFTER:
                break
            assert time.monotonic() < deadline, "OUT.part never grew"
            time.sleep(0.002)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(errors="replace"),
                                       stderr.decode(errors="replace"))
    return done, part.stat().st_size


def _resume_and_check(run_cli, image, out, part_size, expected_sha, credential):
    proc = run_cli("decrypt", image, *credential, "-o", out, "--resume", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    try:
        assert doc["resumed_from"] > 0, doc
        assert doc["resumed_from"] <= part_size, (doc["resumed_from"], part_size)
        assert doc["bytes_written"] == WIN7_SIZE
        assert doc["sha256"] == expected_sha
        assert out.stat().st_size == WIN7_SIZE
        assert sha256_file(out) == expected_sha, "the resumed output is not the manifest's plaintext"
        assert _parts(out.parent) == [], "a .part file is left after the resumed run"
    finally:
        out.unlink(missing_ok=True)
    return doc


@pytest.fixture
def keys(corpus_dir, run_cli) -> list[str]:
    proc = run_cli("verify", corpus_dir / WIN7, "-r", WIN7_RP, "--show-keys", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return [doc["vmk"], doc["fvek"]]


def test_sigint_then_resume(corpus_dir, manifest, run_cli, tmp_path, keys, unchanged):
    image, out = corpus_dir / WIN7, tmp_path / "win7-plain.img"
    part, sidecar = out.with_name(out.name + ".part"), out.with_name(out.name + ".part.json")
    proc, size = interrupted_decrypt(image, out, signal.SIGINT, ["-r", WIN7_RP])
    try:
        # an interrupt is a failure like any other: one line, no traceback, a nonzero exit
        line = assert_cli_error(proc, 130, "interrupted")
        failure = json.loads(proc.stdout)  # --json: the failure object, like every other failure
        assert failure["exit_code"] == 130 and failure["error"] == line[len("bitlocker-tools: "):]
        assert not out.exists(), "an interrupted run must not carry the final name"
        assert part.exists() and sidecar.exists()
        assert INTERRUPT_AFTER < size < WIN7_SIZE
        job = sidecar.read_text()
        for key in keys:  # the job description sits beside the output: it must not hold the keys
            assert key.lower() not in job.lower()

        # A .part of win7_partial is not continued for another volume, and is left as it was.
        with unchanged(part, sidecar):
            refused = run_cli("decrypt", corpus_dir / "aes_128.bin", "-p", "password12!@", "-o", out, "--resume")
        line = assert_cli_error(refused, 3, "cannot resume", str(part))
        assert "different volume" in line, line
        assert not out.exists()

        _resume_and_check(run_cli, image, out, size, _win7_sha(manifest), ["-r", WIN7_RP])
    finally:
        for p in (out, part, sidecar):
            p.unlink(missing_ok=True)


def test_sigkill_then_resume(corpus_dir, manifest, run_cli, tmp_path):
    """A killed run cannot clean up: its .part may end in a torn chunk, which --resume redoes.
    The clear key opens this volume too (MANIFEST.md) and gives the same FVEK, so it may resume a
    .part the recovery password started."""
    image, out = corpus_dir / WIN7, tmp_path / "win7-plain.img"
    part = out.with_name(out.name + ".part")
    try:
        proc, size = interrupted_decrypt(image, out, signal.SIGKILL, ["-r", WIN7_RP])
        assert proc.returncode == -signal.SIGKILL
        assert not out.exists() and part.exists()
        assert INTERRUPT_AFTER < size < WIN7_SIZE
        _resume_and_check(run_cli, image, out, size, _win7_sha(manifest), ["--clear-key"])
    finally:
        for p in tmp_path.iterdir():
            p.unlink()


def test_resume_without_a_part_starts_from_zero(corpus_dir, manifest, run_cli, tmp_path):
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", corpus_dir / "aes_128.bin", "-p", "password12!@", "-o", out, "--resume", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["resumed_from"] == 0
    entry = next(v for v in manifest["volumes"] if v["file"] == "aes_128.bin.gz")
    assert doc["sha256"] == entry["decrypted_prefix_sha256"] == sha256_file(out)
    assert _parts(tmp_path) == []


def test_resume_to_stdout_is_a_usage_error(corpus_dir, run_cli):
    proc = run_cli("decrypt", corpus_dir / "aes_128.bin", "-p", "password12!@", "-o", "-", "--resume", binary=True)
    assert_cli_error(proc, 2, "--resume")
    assert proc.stdout == b""


# --- the same volume under another key -----------------------------------------------------------


def _limit_file_size(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return preexec


def test_part_of_the_same_volume_under_another_key_is_refused(fixtures_dir, run_cli, tmp_path, unchanged):
    """Two forged volumes alike in everything a job records but the key (same GUID, size and
    method, at the same path): a .part the first one's run left is not continued for the second.
    The first run is cut off by the file-size limit (SIGXFSZ) once its .part holds 256 KiB."""
    import gzip

    from bitlocker_tools.forge import ProtectorSpec, VolumeSpec, forge
    from bitlocker_tools.format.constants import EncryptionMethod

    plain = gzip.decompress((fixtures_dir / "plain" / "ntfs.img.gz").read_bytes())
    guid = "0b3e6a0c-7d51-4c21-9a77-5b3e1f0c2d44"

    def make(seed: str, password: str):
        return forge(plain, VolumeSpec(method=EncryptionMethod.AES_XTS_128, volume_guid=guid, seed=seed,
                                       protectors=[ProtectorSpec("password", password)]))

    first, second = make("resume-a", "First-Key-1"), make("resume-b", "Second-Key-2")
    assert first.fvek != second.fvek and first.size == second.size and first.volume_guid == second.volume_guid
    image = tmp_path / "evidence.bin"
    out = tmp_path / "plain.img"
    part, sidecar = tmp_path / "plain.img.part", tmp_path / "plain.img.part.json"
    first.write(image)
    limit = 256 * 1024
    cut = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", str(image), "-p", "First-Key-1",
                          "-o", str(out)], capture_output=True, cwd=ROOT, env=_env(), preexec_fn=_limit_file_size(limit),
                         timeout=120)
    assert cut.returncode != 0, cut.stderr
    assert part.exists() and sidecar.exists(), _parts(tmp_path)
    assert 0 < part.stat().st_size <= limit

    second.write(image)
    # the second volume opens with its own key: the refusal below is about the .part only
    assert run_cli("verify", image, "-p", "Second-Key-2").returncode == 0
    with unchanged(part, sidecar):
        proc = run_cli("decrypt", image, "-p", "Second-Key-2", "-o", out, "--resume")
    line = assert_cli_error(proc, 3, "cannot resume", str(part))
    assert "key" in line, line
    assert not out.exists()

    # and the first key still continues it, to the forge's expected plaintext
    first.write(image)
    proc = run_cli("decrypt", image, "-p", "First-Key-1", "-o", out, "--resume", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sha256"] == first.expected_sha256 == sha256_file(out)
    assert _parts(tmp_path) == []
