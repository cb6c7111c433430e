"""Fuzzing in CI: every parser target of ``scripts/fuzz.py`` for a bounded, seeded number of
executions (coverage-guided by atheris), the committed inputs of every past finding, and the
harness itself shown to report each kind of finding.

The contract each target checks is written in ``scripts/fuzz.py``: a parsed result, used as the
CLI uses it, or one of the project's clean errors; any other exception, a hang, or an allocation
past the memory cap fails. The long runs (a million executions and more) are ``scripts/fuzz.py
--hours N``; their figures are in docs/reliability.md. Here the time limit per input is 10 s
rather than the long runs' 1 s, so that a slow CI machine does not fail a test that is about
hangs, not speed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "fuzz.py"
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
#: Executions per target: 23 targets at this count take about a minute on one core.
RUNS = 1500
CI_TIMEOUT_S = 10


def _load():
    spec = importlib.util.spec_from_file_location("bitlocker_fuzz", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bitlocker_fuzz"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


fuzz = _load()


@pytest.fixture(scope="module")
def engine(corpus_dir):
    """atheris (the test extra) and the corpus the seeds are cut from."""
    pytest.importorskip("atheris")
    return corpus_dir


@pytest.mark.parametrize("name", fuzz.PARSER_TARGETS)
def test_bounded_fuzz(engine, tmp_path, name):
    r = fuzz.run_target(name, runs=RUNS, seconds=None, seed=1, findings_dir=tmp_path, keep_corpus=False,
                        timeout=CI_TIMEOUT_S)
    assert not r.findings, (f"{name}: fuzzing found {r.findings}; reproduce with "
                            f"python3 scripts/fuzz.py --target {name} --reproduce FILE")
    assert r.returncode == 0
    assert r.executions >= RUNS  # it ran, and past the seeds
    assert r.cov and r.cov > 0  # the parser's code was instrumented and reached


def _regression_dirs() -> list[str]:
    return sorted(p.name for p in REGRESSIONS.iterdir() if p.is_dir())


def test_regression_folders_name_targets():
    assert _regression_dirs(), "no committed fuzz findings"
    assert set(_regression_dirs()) <= set(fuzz.PARSER_TARGETS)


@pytest.mark.parametrize("name", _regression_dirs())
def test_fuzz_regressions(name):
    """Every input a fuzz run (or reading the code) found breaking a parser now meets the
    contract: run without the engine, under the same memory cap, in a child process."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--target", name, "--timeout", str(CI_TIMEOUT_S),
                           "--reproduce", str(REGRESSIONS / name)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = [p for p in (REGRESSIONS / name).iterdir() if p.is_file()]
    assert proc.stdout.count("passes the contract") == len(files)


@pytest.mark.parametrize("trigger", ["FUZZ!", "SLOW!", "HUGE!"])
def test_harness_reports_each_kind_of_finding(engine, tmp_path, monkeypatch, trigger):
    """A planted exception, a 3-second input and an 8 GiB allocation each come back as a
    finding with the input saved: the harness can fail."""
    monkeypatch.setenv("BITLOCKER_FUZZ_SELFTEST", trigger)
    r = fuzz.run_target("_selftest", runs=100, seconds=None, seed=1, findings_dir=tmp_path, keep_corpus=False,
                        timeout=1, quiet=True)
    assert r.findings and r.returncode != 0
    saved = [Path(f) for f in r.findings if Path(f).is_file()]
    assert saved and saved[0].read_bytes().startswith(trigger.encode())
