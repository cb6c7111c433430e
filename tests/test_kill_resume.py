"""Interrupted work: `decrypt` and `recover` killed with SIGKILL at random points, then finished
with `--resume`, must end exactly where an uninterrupted run ends.

A killed process cannot clean up, so each kill leaves whatever was on disk at that instant: a
``.part`` ending in a torn chunk, a half-written job file (``OUT.part.json``) or state file, an
output renamed but its job file not yet removed. The kills come from two places:

* a driver (``_DRIVER``) that runs the real command line in its own process with seams that send
  the process SIGKILL at a chosen point: a byte offset of the output (the write in progress is cut
  there), the job file's write (half of it reaches the disk), just before or just after the final
  rename, the Nth chunk of recovery-password candidates, the Nth state-file save (its ``.tmp``
  half written, before its rename, after its rename), or a search's end, before its result is
  printed. The recovery search's candidates are
  recorded by wrapping the stretch (the real one still runs), so a test counts what was tried.
* SIGKILL sent from outside, by this test, at random moments of a run.

The points are drawn from a seeded generator; the seed is printed (``-s`` or the failure report
shows it) and ``KILL_RESUME_SEED=N`` replays a run. The decrypted volume is the corpus's
aes-xts_128.bin (51 MB): the end result must hash to the manifest's ``decrypted_prefix_sha256``,
in the resumed run's JSON and in the file itself, and equal an uninterrupted run's digests (also
MD5 and SHA-1, also with ``--sparse``). The recovery search is of 91 candidates of the corpus's
recovery_password.bin, the key being the last: the resumed run must find the manifest's key, and
every candidate must be tried exactly once, counting what each killed run recorded as done.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, sha256_file

from bitlocker_tools.decrypt import CHUNK, SPARSE_BLOCK

VOLUME = "aes-xts_128.bin"
PASSWORD = "password12!@"
SIZE = 51_032_064

RP_VOLUME = "recovery_password.bin"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"
#: the third group's last three digits unknown: 91 candidates, the key the last of them
PATTERN = "284867-596541-514???-422114-660297-261613-215424-199408"
#: candidates per chunk in the driver (one worker): a state save every 8 candidates, 12 chunks
PER_WORKER = 8

_DRIVER = r'''
"""The bitlocker-tools command line in this process, with seams that SIGKILL it at a chosen point
(KR_KILL=KIND:N), slow its writes (KR_THROTTLE seconds each), record the recovery candidates
stretched (KR_LOG) and set the candidates per chunk (KR_PER_WORKER)."""
import os, signal, sys, time
from pathlib import Path

from bitlocker_tools import decrypt, recover
from bitlocker_tools.crypto import kdf

kind, _, arg = os.environ.get("KR_KILL", "none:0").partition(":")
nth = int(arg or 0)
counts = {}


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def hit(name):
    counts[name] = counts.get(name, 0) + 1
    return counts[name] == nth


real_write_text, real_replace = Path.write_text, Path.replace


def write_text(self, data, *args, **kwargs):
    torn = ((kind == "sidecar" and ".part.json" in self.name)
            or (kind == "state-write" and self.name.endswith(".state.tmp")))
    if torn and hit(kind):
        with open(self, "w") as fh:  # half of it reaches the file, then the process dies
            fh.write(data[: len(data) // 2])
            fh.flush()
        die()
    return real_write_text(self, data, *args, **kwargs)


def replace(self, target):
    final_rename = self.name.endswith(".part") and not Path(target).name.endswith(".part")
    state_rename = self.name.endswith(".state.tmp")
    watched = ((final_rename and kind in ("rename-before", "rename-after"))
               or (state_rename and kind in ("state-replace-before", "state-replace-after")))
    fire = watched and hit(kind)
    if fire and kind.endswith("before"):
        die()
    done = real_replace(self, target)
    if fire:
        die()
    return done


Path.write_text, Path.replace = write_text, replace

throttle = float(os.environ.get("KR_THROTTLE", "0"))
real_write_all = decrypt._Pipeline._write_all


def write_all(self, view):
    if throttle and not self.sparse:  # one pause per chunk written
        time.sleep(throttle)
    if kind == "byte" and self.out is not None:
        pos = self.out.tell()
        if pos + len(view) > nth:
            if nth > pos:
                real_write_all(self, view[: nth - pos])  # the write in progress, cut at byte N
            die()
    return real_write_all(self, view)


real_write_sparse = decrypt._Pipeline._write_sparse


def write_sparse(self, buf, n):
    if throttle:  # one pause per chunk, holes or not
        time.sleep(throttle)
    return real_write_sparse(self, buf, n)


decrypt._Pipeline._write_all, decrypt._Pipeline._write_sparse = write_all, write_sparse

if "KR_PER_WORKER" in os.environ:
    recover.PER_WORKER = int(os.environ["KR_PER_WORKER"])
log = open(os.environ["KR_LOG"], "a") if "KR_LOG" in os.environ else None
real_stretch, real_calibrate = kdf.stretch_batch, recover.calibrate
calibrating = [False]


def calibrate(*args, **kwargs):  # its throw-away keys are not candidates
    calibrating[0] = True
    try:
        return real_calibrate(*args, **kwargs)
    finally:
        calibrating[0] = False


def stretch_batch(initials, salt, core=None, workers=None, **kwargs):
    if log is not None and not calibrating[0]:
        log.write("".join(bytes(x).hex() + "\n" for x in initials))
        log.flush()
        if kind == "chunk" and hit(kind):
            die()
    return real_stretch(initials, salt, core, workers=workers, **kwargs)


recover.calibrate, kdf.stretch_batch = calibrate, stretch_batch

if kind == "result":  # the search is over, its result not yet printed
    from bitlocker_tools import report

    real_document = report.recover_document

    def recover_document(*args, **kwargs):
        if hit(kind):
            die()
        return real_document(*args, **kwargs)

    report.recover_document = recover_document

from bitlocker_tools.cli import main

sys.argv = ["bitlocker-tools", *sys.argv[1:]]
main()
'''


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITLOCKER_", "KR_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _driver(args: list, **seams: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _DRIVER, *map(str, args)], cwd=ROOT, env=_env(**seams),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _killed(args: list, **seams: str) -> str:
    """Run the driver with a kill seam; it must have died of SIGKILL. Returns its stderr."""
    proc = _driver(args, **seams)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"the kill at {seams.get('KR_KILL')} never came " \
                                                f"(exit {proc.returncode}): {err!r}"
    return err


def _cli(args: list, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real command line, no seams."""
    return subprocess.run([sys.executable, "-m", "bitlocker_tools", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def rng(request) -> random.Random:
    seed = int(os.environ.get("KILL_RESUME_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\n{request.node.name}: KILL_RESUME_SEED={seed}")
    request.node.user_properties.append(("KILL_RESUME_SEED", seed))
    generator = random.Random(seed)
    generator.seed_text = f"KILL_RESUME_SEED={seed}"  # type: ignore[attr-defined]
    return generator


# --- decrypt ------------------------------------------------------------------------------------

MODES = {
    "sha256": ([], False),
    "sha256+md5+sha1": (["--hash", "sha256", "--hash", "md5", "--hash", "sha1"], False),
    "sparse": (["--hash", "sha256", "--hash", "md5", "--sparse"], True),
}


def _manifest_sha(manifest) -> str:
    entry = next(v for v in manifest["volumes"] if v["file"] == VOLUME + ".gz")
    assert entry["decrypted_prefix_bytes"] == SIZE
    return entry["decrypted_prefix_sha256"]


def _file_digests(path: Path, names) -> dict[str, str]:
    digests = {n: hashlib.new(n) for n in names}
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            for d in digests.values():
                d.update(block)
    return {n: d.hexdigest() for n, d in digests.items()}


@pytest.fixture(scope="module")
def references(corpus_dir, manifest, tmp_path_factory) -> dict:
    """Each mode's uninterrupted run: its JSON document, and where its output has data (the
    64 KiB blocks that are not all zeros), so that a sparse run's kill can land on a write."""
    folder = tmp_path_factory.mktemp("reference")
    out = {}
    for mode, (options, _) in MODES.items():
        image = folder / f"{mode}.img"
        proc = _cli(["decrypt", corpus_dir / VOLUME, "-p", PASSWORD, "-o", image, "--json", *options])
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["resumed_from"] == 0 and doc["bytes_written"] == SIZE
        assert doc["sha256"] == _manifest_sha(manifest) == sha256_file(image)
        assert doc["hashes"] == _file_digests(image, doc["hashes"])
        data_blocks = []
        with image.open("rb") as fh:
            for at in range(0, SIZE, SPARSE_BLOCK):
                if any(fh.read(SPARSE_BLOCK)):
                    data_blocks.append(at)
        if MODES[mode][1]:
            assert 0 < doc["sparse_bytes"] < SIZE
        out[mode] = (doc, data_blocks)
        image.unlink()
    return out


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def _finish(corpus_dir, out: Path, options: list, reference: dict, manifest, resumed_from: int, why: str) -> dict:
    """The real CLI's --resume completes the job: the manifest's plaintext, every digest the
    uninterrupted run gave, in its JSON and in the file, and nothing left but the output."""
    proc = _cli(["decrypt", corpus_dir / VOLUME, "-p", PASSWORD, "-o", out, "--resume", "--json", *options])
    assert proc.returncode == 0, f"{why}: {proc.stderr}"
    doc = json.loads(proc.stdout)
    assert doc["resumed_from"] == resumed_from, why
    assert doc["bytes_written"] == SIZE and out.stat().st_size == SIZE, why
    assert doc["sha256"] == _manifest_sha(manifest) == reference["sha256"], why
    assert doc["hashes"] == reference["hashes"], why
    assert _file_digests(out, doc["hashes"]) == doc["hashes"], f"{why}: the file is not what its JSON says"
    assert _parts(out.parent) == [], f"{why}: left behind: {_parts(out.parent)}"
    return doc


def _kill_point(rng: random.Random, start: int, sparse: bool, data_blocks: list[int]) -> int:
    """A byte past ``start`` (where the run resumes): anywhere, or, with --sparse, inside a
    block that holds data (a hole is a seek, not a write, and has nothing to cut)."""
    if not sparse:
        return rng.randrange(start + 1, SIZE)
    block = rng.choice([b for b in data_blocks if b + SPARSE_BLOCK > start + 1])
    return rng.randrange(max(block, start + 1), min(block + SPARSE_BLOCK, SIZE))


@pytest.mark.parametrize("mode", MODES)
def test_decrypt_killed_at_random_bytes_resumes_to_the_same_image(mode, corpus_dir, manifest, references, rng,
                                                                  tmp_path):
    """Three kills in a row, each at a random byte of the output (the write in progress cut
    there): each resumed run starts at the last whole chunk before the cut; a fourth finishes."""
    options, sparse = MODES[mode]
    reference, data_blocks = references[mode]
    out = tmp_path / "plain.img"
    part = tmp_path / "plain.img.part"
    start, trail = 0, []
    for _ in range(3):
        at = _kill_point(rng, start, sparse, data_blocks)
        trail.append(at)
        why = f"{rng.seed_text}, kills at bytes {trail}"
        args = ["decrypt", corpus_dir / VOLUME, "-p", PASSWORD, "-o", out, "--json", *options]
        _killed(args + (["--resume"] if start else []), KR_KILL=f"byte:{at}")
        assert not out.exists(), f"{why}: a killed run carries the final name"
        assert part.stat().st_size == at, f"{why}: the .part does not end where the write was cut"
        assert (tmp_path / "plain.img.part.json").exists(), why
        start = at // CHUNK * CHUNK
    _finish(corpus_dir, out, options, reference, manifest, start, f"{rng.seed_text}, kills at bytes {trail}")
    if sparse:  # the holes survive the kills and the resumes
        assert out.stat().st_blocks * 512 < SIZE - reference["sparse_bytes"] // 2


@pytest.mark.parametrize("mode", MODES)
def test_decrypt_killed_from_outside_at_random_times(mode, corpus_dir, manifest, references, rng, tmp_path):
    """SIGKILL sent by this test at a random moment after the run has written its job file
    (its writes slowed to one chunk per THROTTLE seconds, so that the moment, drawn from the time
    the chunks left take, falls inside them), three times; a fourth run finishes."""
    options, _ = MODES[mode]
    reference, _ = references[mode]
    out = tmp_path / "plain.img"
    sidecar = tmp_path / "plain.img.part.json"
    delays, start = [], 0
    for _ in range(3):
        chunks_left = -(-(SIZE - start) // CHUNK)
        delay = round(rng.uniform(0, (chunks_left - 1) * THROTTLE), 3)
        delays.append(delay)
        why = f"{rng.seed_text}, kills {delays} s after the job file was written"
        job = _stamp(sidecar)
        args = ["decrypt", corpus_dir / VOLUME, "-p", PASSWORD, "-o", out, "--json", "--resume", *options]
        proc = _driver(args, KR_THROTTLE=str(THROTTLE))
        # this run's job file: it is about to write
        _kill_when(proc, lambda job=job: _stamp(sidecar) not in (None, job), why, delay=delay)
        assert not out.exists(), why
        start = (tmp_path / "plain.img.part").stat().st_size // CHUNK * CHUNK
    _finish(corpus_dir, out, options, reference, manifest, start, f"{rng.seed_text}, kills after {delays} s")


#: seconds per chunk written, when the test kills from outside (13 chunks: 0.65 s of writing)
THROTTLE = 0.05


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], why: str, delay: float = 0.0) -> None:
    """SIGKILL ``proc`` from outside once ``ready()`` holds (and ``delay`` seconds more). It must
    still be running until then, and die of that SIGKILL; the deadline only stops a hung test."""
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, f"{why}: it ended first: {proc.communicate()[1]!r}"
        assert time.monotonic() < deadline, why
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"{why}: it ended before the kill (exit {proc.returncode}): {err!r}"


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which version of a file is there (rewritten: another inode or mtime), None when none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", ["sidecar-first-run", "sidecar-on-resume", "rename-before", "rename-after"])
def test_decrypt_killed_while_it_writes_its_job_file_or_renames(point, mode, corpus_dir, manifest, references, rng,
                                                               tmp_path):
    """The job file half written (on the first run, before any .part; on a resumed run, beside a
    .part it describes), and the finished output just before and just after its rename."""
    options, sparse = MODES[mode]
    reference, data_blocks = references[mode]
    out, part, sidecar = tmp_path / "plain.img", tmp_path / "plain.img.part", tmp_path / "plain.img.part.json"
    args = ["decrypt", corpus_dir / VOLUME, "-p", PASSWORD, "-o", out, "--json", *options]
    why = f"{point}, {rng.seed_text}"
    if point == "sidecar-first-run":
        _killed(args, KR_KILL="sidecar:1")
        assert not part.exists() and not out.exists(), why
        resumed_from = 0
    elif point == "sidecar-on-resume":
        at = _kill_point(rng, 0, sparse, data_blocks)
        why += f", first kill at byte {at}"
        _killed(args, KR_KILL=f"byte:{at}")
        _killed(args + ["--resume"], KR_KILL="sidecar:1")
        assert part.stat().st_size == at, why
        resumed_from = at // CHUNK * CHUNK
    elif point == "rename-before":
        _killed(args, KR_KILL="rename-before:1")
        assert part.stat().st_size == SIZE and sidecar.exists() and not out.exists(), why
        resumed_from = SIZE // CHUNK * CHUNK
    else:
        _killed(args, KR_KILL="rename-after:1")
        assert out.stat().st_size == SIZE and sidecar.exists() and not part.exists(), why
        # without --resume the finished output is never touched: it exists
        again = _cli(args)
        assert again.returncode == 2 and "exists" in again.stderr, why
        assert sidecar.exists(), why
        resumed_from = SIZE
    _finish(corpus_dir, out, options, reference, manifest, resumed_from, why)


# --- recover ------------------------------------------------------------------------------------


def _candidates() -> list[str]:
    """What the search stretches for each candidate, in the search's order: SHA-256 of its 16
    key bytes, computed here with hashlib (the search hashes in the core). The set of keys is
    also built here from the format alone: PATTERN's third group runs over 514000-514999, a
    valid group is a multiple of 11, and the key is each group / 11 as a little-endian uint16."""
    from bitlocker_tools.search import SearchSpace, key16_text, parse_pattern

    space = SearchSpace(parse_pattern(PATTERN))
    raw = b"".join(space.keys())
    keys = [raw[i : i + 16] for i in range(0, len(raw), 16)]
    assert len(keys) == space.size() == 91 and key16_text(keys[-1]) == RP
    groups = [int(g) for g in PATTERN.replace("???", "000").split("-")]
    independent = {struct.pack("<8H", *(g // 11 for g in groups[:2]), third // 11, *(g // 11 for g in groups[3:]))
                   for third in range(514000, 515000) if third % 11 == 0}
    assert len(independent) == 91 and all(g % 11 == 0 for i, g in enumerate(groups) if i != 2)
    assert set(keys) == independent and len(set(keys)) == len(keys), "the search's space is not the pattern's"
    assert struct.pack("<8H", *(int(g) // 11 for g in RP.split("-"))) in independent
    return [hashlib.sha256(k).hexdigest() for k in keys]


def _recover_args(corpus_dir, state: Path) -> list:
    return ["recover", corpus_dir / RP_VOLUME, "--pattern", PATTERN, "--workers", "1", "--state", state,
            "--json", "--show-keys"]


def _done(state: Path) -> int:
    """What the state file records as tried (0 without one)."""
    return json.loads(state.read_text())["done"] if state.exists() else 0


def _check_run(log_file: Path, state: Path, everything: list[str], start: int, trail: list, why: str) -> int:
    """One killed run: it tried the candidates in order from where it resumed, all it recorded as
    done among them, and at most the chunk it was killed in beyond that. The run joins ``trail``;
    returns where the next run resumes."""
    done = _done(state)
    log = log_file.read_text().split()
    trail.append((log, start, done))
    assert log == everything[start : start + len(log)], f"{why}: not the candidates from {start} on, in order"
    assert start <= done <= start + len(log), f"{why}: {done} recorded as done, {start + len(log)} tried"
    assert start + len(log) - done <= PER_WORKER, f"{why}: more than one chunk tried but not recorded"
    return done


def _final_recover(corpus_dir, state: Path, log: Path, everything: list[str], start: int, trail: list,
                   why: str) -> None:
    proc = _driver(_recover_args(corpus_dir, state) + ["--resume"], KR_LOG=str(log), KR_PER_WORKER=str(PER_WORKER))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{why}: {err}"
    doc = json.loads(out)
    assert doc["recovery_password"] == RP and doc["found"], why
    assert doc["resumed_from"] == start and doc["candidates_tried"] == len(everything) == doc["space_size"], why
    tried = log.read_text().split()
    assert tried == everything[start:], f"{why}: the resumed run did not try exactly the rest"
    # every candidate exactly once, counting what each killed run recorded as done
    counted = [c for run, done_from, done_to in trail for c in run[: done_to - done_from]] + tried
    assert counted == everything, why
    assert not state.exists(), f"{why}: a finished search leaves its state"
    assert not state.with_name(state.name + ".tmp").exists(), f"{why}: a finished search leaves a torn state .tmp"


def test_recover_killed_at_chosen_points_resumes_to_the_same_key(corpus_dir, rng, tmp_path):
    """Five kills in a row, each at a random one of: in the Nth chunk of candidates, while the Nth
    state save writes its .tmp, just before its rename, just after it."""
    everything = _candidates()
    state = tmp_path / "search.state"
    start, trail, kills = 0, [], []
    for i in range(5):
        kind = rng.choice(["chunk", "state-write", "state-replace-before", "state-replace-after"])
        kill = f"{kind}:{rng.randint(1, 2)}"
        kills.append(kill)
        why = f"{rng.seed_text}, kills {kills}"
        log = tmp_path / f"run{i}.log"
        _killed(_recover_args(corpus_dir, state) + (["--resume"] if state.exists() else []), KR_KILL=kill,
                KR_LOG=str(log), KR_PER_WORKER=str(PER_WORKER))
        start = _check_run(log, state, everything, start, trail, why)
    _final_recover(corpus_dir, state, tmp_path / "final.log", everything, start, trail,
                   f"{rng.seed_text}, kills {kills}")


def test_recover_killed_from_outside_at_random_points(corpus_dir, rng, tmp_path):
    """SIGKILL sent by this test once a run has stretched a random number of candidates (the
    moment falls anywhere: inside a chunk, inside a state save), three times."""
    everything = _candidates()
    state = tmp_path / "search.state"
    start, trail, thresholds = 0, [], []
    for i in range(3):
        threshold = rng.randrange(start + 1, min(start + 3 * PER_WORKER, len(everything) - 2 * PER_WORKER))
        thresholds.append(threshold)
        why = f"{rng.seed_text}, kills once {thresholds} candidates were stretched"
        log = tmp_path / f"run{i}.log"
        proc = _driver(_recover_args(corpus_dir, state) + (["--resume"] if state.exists() else []),
                       KR_LOG=str(log), KR_PER_WORKER=str(PER_WORKER))
        _kill_when(proc, lambda log=log, start=start, threshold=threshold:
                   log.exists() and start + len(log.read_text().split()) >= threshold, why)
        start = _check_run(log, state, everything, start, trail, why)
    _final_recover(corpus_dir, state, tmp_path / "final.log", everything, start, trail,
                   f"{rng.seed_text}, kills at {thresholds}")


def test_recover_killed_after_the_search_ended_before_it_printed(corpus_dir, tmp_path):
    """Killed once the key is found but before it is printed: the state of the last chunk
    recorded is still there, so --resume tries the key's chunk again, not the whole space."""
    everything = _candidates()
    state = tmp_path / "search.state"
    log = tmp_path / "run.log"
    _killed(_recover_args(corpus_dir, state), KR_KILL="result:1", KR_LOG=str(log), KR_PER_WORKER=str(PER_WORKER))
    run = log.read_text().split()
    assert run == everything, "the killed run did not search the whole space"
    done = _done(state)
    assert done == (len(everything) - 1) // PER_WORKER * PER_WORKER, "the state was not kept until the result was out"
    _final_recover(corpus_dir, state, tmp_path / "final.log", everything, done, [(run, 0, done)],
                   "killed before the result was printed")
