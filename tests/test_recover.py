"""Recovering a mistyped or partly known recovery password, on the corpus: each kind of error
found, every space's size checked against a count made here by brute force (not by the search's
own enumeration), slices and resumed searches that try every candidate exactly once, the search
of a hash line, and check-key."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

from bitlocker_tools.recover import Target, run_search
from bitlocker_tools.search import SearchSpace, key16_text, parse_pattern

RP = "284867-596541-514998-422114-660297-261613-215424-199408"
GROUPS = RP.split("-")
VOLUME = "recovery_password.bin"
NUMBERS = np.arange(1_000_000)
#: every six-digit string that is a valid group, by brute force over all 10^6
VALID = (NUMBERS % 11 == 0) & (NUMBERS < 720896)


def _with(group: int, text: str) -> str:
    g = list(GROUPS)
    g[group] = text
    return "-".join(g)


def _matches(pattern: str) -> np.ndarray:
    """Valid group values matching a 6-character pattern of digits and ?, by brute force."""
    ok = VALID.copy()
    for i, ch in enumerate(pattern):
        if ch != "?":
            ok &= NUMBERS // 10 ** (5 - i) % 10 == int(ch)
    return ok


def _hamming(typed: str) -> np.ndarray:
    return sum((NUMBERS // 10 ** (5 - i) % 10 != int(c)).astype(int) for i, c in enumerate(typed))


def _recover(run_cli, corpus_dir, pattern, *options):
    proc = run_cli("recover", corpus_dir / VOLUME, "--pattern", pattern, "--workers", "2", "--show-keys", "--json",
                   *options, timeout=900)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_one_unreadable_digit(run_cli, corpus_dir):
    typed = GROUPS[1][:2] + "?" + GROUPS[1][3:]
    analytic = int(_matches(typed).sum())
    assert analytic == 1  # a known position: the check digit decides it
    code, doc = _recover(run_cli, corpus_dir, _with(1, typed))
    assert code == 0 and doc["recovery_password"] == RP
    assert doc["space_size"] == doc["candidates_tried"] == analytic


def test_one_wrong_digit(run_cli, corpus_dir):
    typed = GROUPS[4][:3] + str((int(GROUPS[4][3]) + 3) % 10) + GROUPS[4][4:]
    # keys within one wrong digit of what was typed: that group one digit off, or (none exist,
    # but counted all the same) another group one digit off with this one as typed
    h = [_hamming(g if i != 4 else typed) for i, g in enumerate(GROUPS)]
    exact = [int((VALID & (hh == 0)).sum()) for hh in h]
    near = [int((VALID & (hh == 1)).sum()) for hh in h]
    analytic = int(np.prod(exact)) + sum(near[g] * int(np.prod([exact[k] for k in range(8) if k != g])) for g in range(8))
    code, doc = _recover(run_cli, corpus_dir, _with(4, typed), "--typos", "1")
    assert code == 0 and doc["recovery_password"] == RP
    assert doc["space_size"] == doc["candidates_tried"] == analytic and 1 <= analytic <= 6


def test_one_adjacent_swap(run_cli, corpus_dir):
    g = GROUPS[6]
    typed = g[0] + g[2] + g[1] + g[3:]
    variants = {typed[:i] + typed[i + 1] + typed[i] + typed[i + 2 :] for i in range(5)} - {typed}
    analytic = sum(1 for v in variants if int(v) % 11 == 0 and int(v) < 720896)
    # the other groups: one swap in the whole key, and the typed group must change, so only it
    code, doc = _recover(run_cli, corpus_dir, _with(6, typed), "--swaps")
    assert code == 0 and doc["recovery_password"] == RP
    assert doc["space_size"] == doc["candidates_tried"] == analytic


def test_three_unknown_digits_in_one_group(run_cli, corpus_dir):
    typed = "?" + GROUPS[3][1] + "??" + GROUPS[3][4:]
    analytic = int(_matches(typed).sum())
    code, doc = _recover(run_cli, corpus_dir, _with(3, typed))
    assert code == 0 and doc["recovery_password"] == RP
    assert doc["space_size"] == doc["candidates_tried"] == analytic and analytic > 50


def test_two_groups_swapped(run_cli, corpus_dir):
    g = list(GROUPS)
    g[2], g[5] = g[5], g[2]
    analytic = len(set(itertools.permutations(g)))
    code, doc = _recover(run_cli, corpus_dir, "-".join(g), "--any-order")
    assert code == 0 and doc["recovery_password"] == RP
    assert doc["space_size"] == analytic == 40320
    # the documented order: the key as typed, then the 28 swaps of two groups (lexicographic), ...
    order = [p for p in itertools.permutations(range(8)) if sum(i != x for i, x in enumerate(p)) == 2]
    position = 1 + sorted(order).index((0, 1, 5, 3, 4, 2, 6, 7))
    chunk = 256 * 2
    # the key is candidate position + 1 (the key as typed comes first): whole chunks up to it
    assert doc["candidates_tried"] == min(analytic, (position // chunk + 1) * chunk)


def test_not_in_the_space_tries_all_of_it(run_cli, corpus_dir):
    typed = "?" + GROUPS[0][1:5] + str((int(GROUPS[0][5]) + 1) % 10)  # the last digit is wrong
    analytic = int(_matches(typed).sum())
    code, doc = _recover(run_cli, corpus_dir, _with(0, typed))
    assert code == 1 and doc["found"] is False and doc["recovery_password"] is None
    assert doc["candidates_tried"] == doc["space_size"] == analytic


def test_the_key_is_masked_without_show_keys(run_cli, corpus_dir):
    proc = run_cli("recover", corpus_dir / VOLUME, "--pattern", _with(1, GROUPS[1][:5] + "?"), "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["recovery_password"] == "******-" * 7 + GROUPS[7]
    assert GROUPS[1] not in proc.stdout + proc.stderr


def _recording_target(seen: list[bytes]) -> Target:
    return Target("record", bytes(16), lambda key: seen.append(key) or False)


@pytest.fixture
def fast_stretch(monkeypatch):
    """The stretch replaced by the identity, so a test sees which candidates were tried."""
    from bitlocker_tools.crypto import kdf

    monkeypatch.setattr(kdf, "stretch_batch", lambda initials, salt, core=None, workers=None, **_: list(initials))


def _initials(space: SearchSpace) -> list[bytes]:
    import hashlib

    raw = b"".join(space.keys())
    return [hashlib.sha256(raw[i : i + 16]).digest() for i in range(0, len(raw), 16)]


def test_shards_split_the_space_exactly(fast_stretch):
    space = SearchSpace(parse_pattern(_with(2, "??" + GROUPS[2][2:])), typos=1)
    everything = _initials(space)
    tried: list[bytes] = []
    for k in (1, 2, 3):
        seen: list[bytes] = []
        result = run_search(space, [_recording_target(seen)], shard=(k, 3))
        assert result.tried == len(seen) == result.shard_size
        assert seen == everything[k - 1 :: 3]  # every third candidate, in order
        tried += seen
    assert sorted(tried) == sorted(everything) and len(set(tried)) == len(everything) == space.size()


_KILLED = r"""
import sys, time
from pathlib import Path
from bitlocker_tools.crypto import kdf
from bitlocker_tools.recover import Target, run_search
from bitlocker_tools.search import SearchSpace, parse_pattern
kdf.stretch_batch = lambda initials, salt, core=None, workers=None, **_: list(initials)
log = open(sys.argv[3], "a")
def opens(key, seen=[0]):
    log.write(key.hex() + "\n"); log.flush()
    seen[0] += 1
    if seen[0] % 64 == 0:
        time.sleep(0.05)
    return False
space = SearchSpace(parse_pattern(sys.argv[1]))
result = run_search(space, [Target("t", bytes(16), opens)], state_path=Path(sys.argv[2]),
                    resume=len(sys.argv) > 4, workers=1)
print(result.tried, result.resumed_from)
"""


def test_a_killed_search_resumes_and_tries_every_candidate_once(tmp_path):
    """SIGKILL at a random point: what the state file records as done was tried, and the resumed
    run tries exactly the rest."""
    pattern = _with(5, "?????" + GROUPS[5][5:])
    space = SearchSpace(parse_pattern(pattern))
    everything = [k.hex() for k in _initials(space)]
    state, first, second = tmp_path / "s.state", tmp_path / "first.log", tmp_path / "second.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, pattern, state, first], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text() or "{}").get("done", 0) >= 256):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["done"]
    assert 0 < done < len(everything)
    out = subprocess.run([sys.executable, "-c", _KILLED, pattern, state, second, "resume"], env=env,
                         capture_output=True, text=True, check=True)
    tried, resumed_from = map(int, out.stdout.split())
    assert resumed_from == done and tried == len(everything)
    assert first.read_text().split()[:done] == everything[:done]
    assert second.read_text().split() == everything[done:]
    assert not state.exists(), "a finished search leaves no state"


class _Stop(Exception):
    pass


def test_a_state_file_is_never_applied_to_another_search(tmp_path, fast_stretch):
    from bitlocker_tools.errors import BadInputError, UsageError

    state = tmp_path / "s.state"
    space = SearchSpace(parse_pattern(_with(5, "????" + GROUPS[5][4:])))
    seen: list[bytes] = []

    def opens(key):  # stops the search in its second chunk, after the first is recorded
        seen.append(key)
        if len(seen) > 256:
            raise _Stop
        return False

    with pytest.raises(_Stop):
        run_search(space, [Target("record", bytes(16), opens)], state_path=state, workers=1)
    assert json.loads(state.read_text())["done"] == 256
    with pytest.raises(UsageError, match="--resume"):
        run_search(space, [_recording_target([])], state_path=state)
    other = SearchSpace(parse_pattern(_with(5, "????" + GROUPS[5][4:])), typos=1)
    with pytest.raises(BadInputError, match="another search"):
        run_search(other, [_recording_target([])], state_path=state, resume=True)


def test_a_refused_search_tries_and_writes_nothing(tmp_path, fast_stretch):
    from bitlocker_tools.errors import UsageError

    state, seen, calls = tmp_path / "s.state", [], []

    def refuse(rate, left):
        calls.append(left)
        raise UsageError("too long")

    space = SearchSpace(parse_pattern(_with(5, "????" + GROUPS[5][4:])))
    with pytest.raises(UsageError):
        run_search(space, [_recording_target(seen)], state_path=state, budget=refuse, workers=1)
    assert calls == [space.size()] and seen == [] and not state.exists()


def test_the_estimate_counts_every_protector(monkeypatch):
    """The rate handed to the budget is per candidate against all targets: two protectors, two
    stretches per candidate, half the rate (a fake clock the fake stretch advances)."""
    from bitlocker_tools import recover
    from bitlocker_tools.crypto import kdf

    clock = [0.0]
    monkeypatch.setattr(recover.time, "perf_counter", lambda: clock[0])

    def stretch(initials, salt, core=None, workers=None, **_):
        clock[0] += 0.01 * len(initials)  # 100 candidates/s per target, whatever the workers
        return list(initials)

    monkeypatch.setattr(kdf, "stretch_batch", stretch)
    space = SearchSpace(parse_pattern(_with(5, "????" + GROUPS[5][4:])))
    for n in (1, 2):
        rates = []

        def refuse(rate, left, rates=rates):
            rates.append(rate)
            raise _Stop

        with pytest.raises(_Stop):
            run_search(space, [_recording_target([]) for _ in range(n)], budget=refuse, workers=3)
        assert rates == [pytest.approx(100 / n)]


def test_max_time_refuses_with_advice_and_keeps_the_state(run_cli, corpus_dir, tmp_path):
    state = tmp_path / "big.state"
    proc = run_cli("recover", corpus_dir / VOLUME, "--pattern", _with(3, "??????"), "--max-time", "2s",
                   "--state", state, "--workers", "2")
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "--max-time" in line and "hash" in line and "--shard" in line
    assert "candidates/s" in line and "(65,536 left)" in line
    assert not state.exists(), "a refused search writes nothing"


def test_no_recovery_password_protector_is_nothing_to_search(run_cli, corpus_dir):
    proc = run_cli("recover", corpus_dir / "aes_128.bin", "--pattern", RP, "--json")
    assert proc.returncode == 1
    assert "no recovery-password protector" in json.loads(proc.stdout)["error"]


#: The CLI with the core's stretch_many wrapped: each call (one piece of a batch) appends the
#: number of candidates it stretched to $PIECE_LOG once it returns.
_PIECES = r"""
import os, sys
from bitlocker_tools._core import load

core = load()
real = core.stretch_many
log = open(os.environ["PIECE_LOG"], "a")


def stretch_many(initials, salt, rounds, **kwargs):
    initials = list(initials)
    keys = real(initials, salt, rounds, **kwargs)
    log.write(f"{len(initials)}\n")
    log.flush()
    return keys


core.stretch_many = stretch_many
from bitlocker_tools.cli import main

sys.argv = ["bitlocker-tools", *sys.argv[1:]]
main()
"""


def _stretched(log) -> int:
    return sum(map(int, log.read_text().split())) if log.exists() else 0


def test_ctrl_c_keeps_the_state_and_resume_finds_the_key(corpus_dir, tmp_path):
    """SIGINT in the second chunk: exit 130, a JSON document that says how to continue, the state
    of the first chunk; --resume then starts there and finds the key in the second chunk."""
    from bitlocker_tools.crypto.kdf import PIECE
    from bitlocker_tools.recover import PER_WORKER

    pattern = _with(0, "????" + GROUPS[0][4:])
    space = SearchSpace(parse_pattern(pattern))
    position = _search_order(space).index(RP)
    assert PER_WORKER == 256 <= position < 512  # the key is in the second chunk of 256 (one worker)
    assert PIECE < PER_WORKER  # a chunk is stretched in several pieces: Ctrl-C has a piece to wait for
    state, log = tmp_path / "s.state", tmp_path / "pieces.log"
    args = [sys.executable, "-c", _PIECES, "recover", str(corpus_dir / VOLUME), "--pattern", pattern,
            "--workers", "1", "--state", str(state), "--json", "--show-keys"]
    env = {**os.environ, "PIECE_LOG": str(log)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (state.exists() and state.read_text()):
        time.sleep(0.05)
    before = _stretched(log)  # the calibration's and the first chunk's candidates, maybe a piece of the second
    assert before >= PER_WORKER, f"the seam counted {before}: it does not see the first chunk"
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    after = _stretched(log) - before
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and "--resume" in doc["error"] and str(state) in doc["error"]
    # counted, not timed: after the signal only the piece in flight (and at most one begun between
    # the count above and the signal's arrival) is stretched, never the rest of the chunk
    assert after < PER_WORKER, f"{after} candidates stretched after Ctrl-C: the whole chunk, not a piece"
    assert after <= 2 * PIECE, f"{after} candidates stretched after Ctrl-C, pieces are {PIECE}"
    assert json.loads(state.read_text())["done"] == 256
    proc = subprocess.run(args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["recovery_password"] == RP and doc["resumed_from"] == 256 and doc["candidates_tried"] == 512
    assert not state.exists()


def test_a_bitlocker2john_file(run_cli, corpus_dir, tmp_path):
    """bitlocker2john's output: captions, the user password's lines (left to John), and the
    recovery password twice (types 2 and 3, one protector: stretched once)."""
    lines = json.loads(run_cli("hash", corpus_dir / VOLUME, "--json").stdout)["lines"]
    rp = next(x["line"] for x in lines if x["protector_type"] == "recovery_password")
    pw = next(x["line"] for x in lines if x["protector_type"] == "password")
    assert rp.startswith("$bitlocker$3$") and pw.startswith("$bitlocker$1$")
    text = ("Signature found at 0x10003\nVersion: 2\n\nUser Password hash:\n" + pw.replace("$1$", "$0$", 1)
            + "\nHash type: User Password with MAC verification (slower solution, no false positives)\n" + pw
            + "\nHash type: Recovery Password fast attack\n" + rp.replace("$3$", "$2$", 1)
            + "\nHash type: Recovery Password with MAC verification (slower solution, no false positives)\n"
            + rp + "\n")
    (tmp_path / "b2j.txt").write_text(text)
    proc = run_cli("recover", "--hash", "@" + str(tmp_path / "b2j.txt"), "--pattern", _with(1, GROUPS[1][:4] + "??"),
                   "--show-keys", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["recovery_password"] == RP
    assert "against 1 protector of" in proc.stderr and "(4 lines)" in proc.stderr
    (tmp_path / "pw.txt").write_text(pw + "\n")
    proc = run_cli("recover", "--hash", "@" + str(tmp_path / "pw.txt"), "--pattern", RP, "--json")
    assert proc.returncode == 2 and "types 2 and 3" in json.loads(proc.stdout)["error"]
    (tmp_path / "none.txt").write_text("Hash type: nothing\n")
    proc = run_cli("recover", "--hash", "@" + str(tmp_path / "none.txt"), "--pattern", RP)
    assert proc.returncode == 3 and "no $bitlocker$ line" in proc.stderr


def test_a_set_may_be_a_range():
    assert parse_pattern("[1-4]" + RP[1:]) == parse_pattern("[1234]" + RP[1:])
    assert parse_pattern(RP[:-1] + "[0-37-9]") == parse_pattern(RP[:-1] + "[01237-89]")
    from bitlocker_tools.errors import CredentialFormatError

    with pytest.raises(CredentialFormatError, match=r"\[4-1\]"):
        parse_pattern("[4-1]" + RP[1:])


def test_search_of_a_hash_line(run_cli, corpus_dir, tmp_path):
    lines = json.loads(run_cli("hash", corpus_dir / VOLUME, "--json").stdout)["lines"]
    (line,) = [x["line"] for x in lines if x["protector_type"] == "recovery_password"]
    (tmp_path / "h.txt").write_text(line + "\n")
    proc = run_cli("recover", "--hash", "@" + str(tmp_path / "h.txt"), "--pattern", _with(1, GROUPS[1][:4] + "??"),
                   "--show-keys", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["recovery_password"] == RP and doc["protector_id"] is None


def test_emit_candidates_for_john(run_cli):
    pattern = _with(0, GROUPS[0][:3] + "???")
    proc = run_cli("recover", "--pattern", pattern, "--emit-candidates")
    assert proc.returncode == 0
    lines = proc.stdout.split()
    expected = sorted(f"{v:06d}" for v in np.flatnonzero(_matches(GROUPS[0][:3] + "???")))
    assert [x.split("-")[0] for x in lines] == expected and all(x.endswith(RP[7:]) for x in lines)
    assert RP in lines


def test_check_key(run_cli):
    ok = run_cli("check-key", RP, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    typed = _with(2, GROUPS[2][:4] + GROUPS[2][5] + GROUPS[2][4])  # the last two digits swapped
    bad = run_cli("check-key", typed, "--json")
    assert bad.returncode == 2
    doc = json.loads(bad.stdout)
    assert doc["failing_groups"] == [3]
    assert GROUPS[2] in doc["groups"][2]["transpositions"]
    wrong = _with(2, GROUPS[2][:1] + str((int(GROUPS[2][1]) + 1) % 10) + GROUPS[2][2:])
    doc = json.loads(run_cli("check-key", wrong, "--json").stdout)
    assert GROUPS[2] in doc["groups"][2]["corrections"]
    assert run_cli("check-key", "12345").returncode == 2


def test_the_space_is_ordered_most_likely_first():
    space = SearchSpace(parse_pattern(_with(4, GROUPS[4][:5] + "?")), typos=1)
    first = key16_text(next(space.keys())[:16])
    assert first == RP  # no typo before one typo


# --- the space against a brute force of its definition ------------------------------------------------


def _sets(pattern: str) -> list[list[set[str]]]:
    """The pattern's digits as sets, read here independently of the search's parser."""
    flat, i, text = [], 0, pattern.replace("-", "")
    while i < len(text):
        if text[i] == "[":
            j = text.index("]", i)
            flat.append(set(text[i + 1 : j]))
            i = j + 1
        else:
            flat.append(set("0123456789") if text[i] == "?" else {text[i]})
            i += 1
    assert len(flat) == 48
    return [flat[k : k + 6] for k in range(0, 48, 6)]


def _group_words(allowed: list[set[str]]) -> list[tuple[str, int, bool]]:
    """Every valid group as (digits, typos, could a swap of two adjacent places give it)."""
    out = []
    for v in np.flatnonzero(VALID):
        d = f"{v:06d}"
        t = sum(d[i] not in allowed[i] for i in range(6))
        swap = any(d[i + 1] in allowed[i] and d[i] in allowed[i + 1]
                   and all(d[k] in allowed[k] for k in range(6) if k not in (i, i + 1)) for i in range(5))
        out.append((d, t, swap))
    return out


def _brute_space(pattern: str, typos: int, swaps: bool) -> dict[str, int]:
    """Every key the definition admits, with its cost: the cheapest of reading it as typos alone
    (T, if T ≤ typos) and as one swap in group g plus typos elsewhere (1 + T − t_g, if T − t_g ≤ typos)."""
    words = [_group_words(a) for a in _sets(pattern)]
    keys: dict[str, int] = {}

    def cost(choice) -> int | None:
        total = sum(t for _, t, _ in choice)
        readings = [total] if total <= typos else []
        readings += [1 + total - t for _, t, s in choice if swaps and s and total - t <= typos]
        return min(readings) if readings else None

    def walk(g: int, chosen: list, budget: int, swapped: bool) -> None:
        if g == 8:
            c = cost(chosen)
            if c is not None:
                keys["-".join(d for d, _, _ in chosen)] = c
            return
        for w in words[g]:
            if w[1] <= budget:
                walk(g + 1, chosen + [w], budget - w[1], swapped)
            if swaps and not swapped and w[2]:
                walk(g + 1, chosen + [w], budget, True)  # this group is the swapped one

    walk(0, [], typos, False)
    return keys


def _search_order(space: SearchSpace) -> list[str]:
    raw = b"".join(space.keys())
    return [key16_text(raw[i : i + 16]) for i in range(0, len(raw), 16)]


def _transposed(group: int, at: int) -> str:
    g = GROUPS[group]
    return _with(group, g[:at] + g[at + 1] + g[at] + g[at + 2 :])


def _typo(text: str, at: int, delta: int = 3) -> str:
    return text[:at] + str((int(text[at]) + delta) % 10) + text[at + 1 :]


@pytest.mark.parametrize("pattern,typos,swaps", [
    (_transposed(3, 1), 2, True),  # a swap the two-typo reading also explains: the swap is cheaper
    (_typo(_transposed(6, 3), 3), 2, True),  # a swap and a typo elsewhere
    ("[28]8[45]867" + RP[6:], 1, True),  # sets
    (RP.replace("-", "")[:30] + "??" + RP.replace("-", "")[32:], 1, True),  # no dashes, unknown digits
    (_with(2, _typo(_typo(GROUPS[2], 1), 4, 5)), 2, False),  # two typos in one group
])
def test_the_space_is_its_definition_cheapest_first(pattern, typos, swaps):
    """Every key the definition admits comes exactly once, and the costs never decrease."""
    brute = _brute_space(pattern, typos, swaps)
    space = SearchSpace(parse_pattern(pattern), typos=typos, swaps=swaps)
    order = _search_order(space)
    assert len(order) == len(set(order)) == space.size()
    assert set(order) == set(brute) and RP in brute
    costs = [brute[k] for k in order]
    assert costs == sorted(costs)


def test_any_order_with_a_typo_is_every_order_of_the_definition():
    """--any-order --typos 1: every ordering of the eight groups, with at most one typo in all."""
    pattern = _with(0, _typo(GROUPS[0], 2))
    g = pattern.split("-")
    g[1], g[6] = g[6], g[1]
    pattern = "-".join(g)
    words = [_group_words(a) for a in _sets(pattern)]
    exact = [[d for d, t, _ in w if t == 0] for w in words]
    one = [[d for d, t, _ in w if t == 1] for w in words]
    brute: set[str] = set()
    for perm in itertools.permutations(range(8)):
        for typo_at in [None, *range(8)]:
            choices = [one[j] if i == typo_at else exact[j] for i, j in enumerate(perm)]
            brute.update("-".join(c) for c in itertools.product(*choices))
    order = _search_order(SearchSpace(parse_pattern(pattern), typos=1, any_order=True))
    assert len(order) == len(set(order)) and set(order) == brute and RP in brute


def test_a_combined_search_finds_the_key_at_its_place(fast_stretch):
    """typos and a swap together, through run_search: the key is found after exactly the
    candidates the order puts before it (rounded up to whole chunks)."""
    import hashlib
    import struct

    pattern = _typo(_transposed(6, 3), 3)
    space = SearchSpace(parse_pattern(pattern), typos=1, swaps=True)
    key16 = struct.pack("<8H", *(int(x) // 11 for x in GROUPS))
    want = hashlib.sha256(key16).digest()
    result = run_search(space, [Target("t", bytes(16), lambda key: key == want)], workers=1)
    assert result.key16 == key16
    position = _search_order(space).index(RP) + 1
    assert result.tried == min(space.size(), -(-position // 256) * 256)


def test_calibration_stretches_one_batch_per_round_count(monkeypatch):
    """The rate is judged from one timed batch per round count, counted once per target: a hash
    file of many protectors (all Windows' 2**20 rounds) pays one batch, not one per protector."""
    from bitlocker_tools import recover
    from bitlocker_tools.crypto import kdf

    calls = []

    def counting(initials, salt, core=None, workers=None, rounds=kdf.STRETCH_ROUNDS, **_):
        calls.append(rounds)
        return list(initials)

    monkeypatch.setattr(kdf, "stretch_batch", counting)
    same = [Target(f"p{i}", bytes([i]) * 16, lambda key: False) for i in range(5)]
    recover.calibrate(same, 2, None)
    assert calls == [kdf.STRETCH_ROUNDS]
    calls.clear()
    recover.calibrate([*same, Target("short", bytes(16), lambda key: False, rounds=1000)], 2, None)
    assert sorted(calls) == sorted([kdf.STRETCH_ROUNDS, 1000])
