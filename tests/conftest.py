"""Shared fixtures: the corpus of real BitLocker volumes, its manifest, and running the CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "tests" / "corpus_manifest.json"


def _load_fetch_corpus():
    spec = importlib.util.spec_from_file_location("fetch_corpus", ROOT / "scripts" / "fetch_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The folder of decompressed (sparse) corpus volumes, fetched and checked once per session."""
    return Path(_load_fetch_corpus().ensure_corpus())


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The project's forged fixture volumes (fixtures/, with manifest.json)."""
    return ROOT / "fixtures"


@pytest.fixture(scope="session")
def manifest() -> dict:
    with MANIFEST_PATH.open() as fh:
        return json.load(fh)


def volume_file(entry: dict) -> str:
    """The decompressed file name of a manifest volume entry (``aes_128.bin.gz`` -> ``aes_128.bin``)."""
    name = entry["file"]
    return name[: -len(".gz")] if name.endswith(".gz") else name


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_bitlocker_tools(*args, input=None, env=None, binary=False, timeout=300) -> subprocess.CompletedProcess:
    """Run ``python -m bitlocker_tools ARGS``; text stdout/stderr unless ``binary``.

    ``env`` entries are added to (not substituted for) the current environment.
    """
    full_env = dict(os.environ)
    full_env.pop("BITLOCKER_TOOLS_DEBUG", None)
    if env:
        full_env.update(env)
    if input is not None and not binary and isinstance(input, bytes):
        input = input.decode()
    return subprocess.run(
        [sys.executable, "-m", "bitlocker_tools", *map(str, args)],
        input=input,
        capture_output=True,
        text=not binary,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, input=None, env=None, binary=False)`` -> CompletedProcess."""
    return run_bitlocker_tools


@pytest.fixture
def unchanged():
    """``with unchanged(path, ...):`` asserts that the files' SHA-256 is the same afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def check(*paths):
        before = {str(p): sha256_file(p) for p in paths}
        stats = {str(p): os.stat(p).st_mtime_ns for p in paths}
        yield
        for p in paths:
            assert sha256_file(p) == before[str(p)], f"{p} was modified"
            assert os.stat(p).st_mtime_ns == stats[str(p)], f"{p} was written to (mtime changed)"

    return check


def assert_cli_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The CLI's error contract: exit ``code``, ONE line on stderr starting ``bitlocker-tools: ``,
    never a traceback. Returns that line; each of ``needles`` must occur in it (case-insensitive)."""
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    line = lines[0]
    assert line.startswith("bitlocker-tools: "), line
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


# --- FUSE mounts in tests ---------------------------------------------------------------------------


def mounted(path) -> bool:
    """Whether ``path`` is a mount point per the kernel (also one whose server died)."""
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == str(path) for line in fh)


def unmount(path) -> None:
    """Unmount ``path`` whatever state its server is in (lazily as a last resort), so that a
    failing test never leaves a mount behind."""
    for args in (["fusermount3", "-u"], ["fusermount3", "-u", "-z"], ["umount", "-l"]):
        if not mounted(path):
            return
        subprocess.run([*args, str(path)], capture_output=True, timeout=30)
    assert not mounted(path), f"{path} is still mounted"


def process_gone(pid: int, timeout: float = 20) -> bool:
    """Whether process ``pid`` (not our child) has exited, or is a zombie, within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


# --- CI cannot go green by skipping -----------------------------------------------------------------

STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skip is a failure: .ci/run installs every peer, container tool, FUSE
    and the C core, so a test that finds one missing has found a broken CI machine, not a reason
    to pass. Outside CI a skip stays a skip (a developer's laptop may lack dislocker)."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must not happen: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (a module-level
    ``importorskip``): under ``CI=true`` that is a collection error, not a quiet skip."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true, which must not happen: {reason}"
