"""The --json failure contract of docs/cli.md, for every command and every failing exit code:

    "With --json a failing command also writes one JSON object, {"error": ..., "exit_code": ...}
    (for verify with "unlocked": false, "protector_id": null, "protector_type": null), on stdout,
    or on stderr when stdout carries the plaintext (-o -)."

plus the one-line error on stderr that every failure prints. Cases: 1 (wrong key; nothing found;
no such partition), 2 (several BitLocker volumes and no --volume; a malformed recovery password;
--offset outside the source), 3 (a file that is not a disk image; a volume that is not BitLocker).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import diskbuild
import pytest

PASSWORD = "password12!@"
RP = "284867-596541-514998-422114-660297-261613-215424-199408"  # recovery_password.bin
RP_BAD_GROUP_3 = RP.replace("514998", "514999")  # not a multiple of 11: malformed
PREFIX = "bitlocker-tools: "


# --- evidence ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evidence(tmp_path_factory, corpus_dir, fixtures_dir) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("json-failures")
    random_img = work / "random.img"
    random_img.write_bytes(os.urandom(1 << 20))
    ntfs = work / "ntfs.img"
    ntfs.write_bytes(gzip.decompress((fixtures_dir / "plain" / "ntfs.img.gz").read_bytes()))
    two = diskbuild.build_gpt(work / "two.raw", [corpus_dir / "aes-xts_128.bin", corpus_dir / "recovery_password.bin"])
    return {
        "volume": corpus_dir / "aes-xts_128.bin",
        "rp_volume": corpus_dir / "recovery_password.bin",
        "random": random_img,
        "ntfs": ntfs,
        "two": two.path,
        "missing": work / "no-such-image.E01",
    }


def _text(data) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _split_stderr_json(err: str) -> tuple[list[str], dict]:
    """stderr of ``decrypt -o - --json``: the one-line error, then the JSON object."""
    lines = err.splitlines()
    assert lines and lines[0].startswith(PREFIX), err
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return lines[:start], json.loads("\n".join(lines[start:]))


def check_failure(proc, code: int, command: str, *, json_on: str = "stdout", needles=()) -> dict:
    """Exit ``code``; one error line on stderr; one JSON failure object on ``json_on`` whose
    ``exit_code`` is the process's and whose ``error`` is that line."""
    out, err = _text(proc.stdout), _text(proc.stderr)
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}; stderr {err!r}; stdout {out[:500]!r}"
    assert "Traceback" not in err and "Traceback" not in out
    if json_on == "stdout":
        lines = err.splitlines()
        assert len(lines) == 1, f"expected one error line on stderr, got {err!r}"
        assert lines[0].startswith(PREFIX), lines[0]
        try:
            doc = json.loads(out)
        except ValueError:
            raise AssertionError(f"stdout is not one JSON object: {out!r}") from None
    else:
        assert out == "", f"stdout must stay empty with -o - on failure, got {out[:200]!r}"
        lines, doc = _split_stderr_json(err)
        assert len(lines) == 1, f"expected one error line before the JSON object, got {lines!r}"
    line = lines[0]
    assert isinstance(doc, dict), doc
    assert "error" in doc and "exit_code" in doc, f"{command}: failure JSON lacks error/exit_code: {doc}"
    assert doc["exit_code"] == proc.returncode == code
    assert isinstance(doc["error"], str) and doc["error"], doc
    if command == "scan":
        assert doc["error"] in line or line[len(PREFIX):] in doc["error"], (doc["error"], line)
    else:
        assert doc["error"] == line[len(PREFIX):], (doc["error"], line)
    for needle in needles:
        assert needle.lower() in doc["error"].lower(), (needle, doc["error"])
    if command == "verify":
        assert doc["unlocked"] is False
        assert "protector_id" in doc and doc["protector_id"] is None
        assert "protector_type" in doc and doc["protector_type"] is None
    return doc


def _no_output_files(out: Path) -> None:
    left = [p.name for p in out.parent.glob(out.name + "*")]
    assert left == [], f"a failed decrypt left {left}"


# --- cases ---------------------------------------------------------------------------------------------
# (id, exit code, evidence key, extra args, needles in the error)

UNLOCK_CASES = [
    ("wrong-password", 1, "volume", ["-p", "not the password"], ["opened no protector"]),
    ("wrong-recovery-password", 1, "rp_volume",
     ["-r", "131450-120197-153989-250338-511368-495572-680944-381546"], ["opened no protector"]),
    ("no-such-partition", 1, "volume", ["--volume", "9", "-p", PASSWORD], ["9"]),
    ("several-volumes", 2, "two", ["-p", PASSWORD], ["--volume"]),
    ("malformed-recovery-password", 2, "rp_volume", ["-r", RP_BAD_GROUP_3], ["group 3"]),
    ("offset-outside", 2, "volume", ["--offset", "999999999999", "-p", PASSWORD], ["--offset"]),
    ("not-a-disk-image", 3, "random", ["-p", PASSWORD], ["not a disk image"]),
    ("not-bitlocker", 3, "ntfs", ["-p", PASSWORD], ["not BitLocker"]),
    ("missing-file", 3, "missing", ["-p", PASSWORD], ["no such file"]),
]

INFO_CASES = [
    ("no-such-partition", 1, "volume", ["--volume", "9"], ["9"]),
    ("several-volumes", 2, "two", [], ["--volume"]),
    ("offset-outside", 2, "volume", ["--offset", "999999999999"], ["--offset"]),
    ("negative-offset", 2, "volume", ["--offset", "-5"], ["--offset"]),
    ("not-a-disk-image", 3, "random", [], ["not a disk image"]),
    ("not-bitlocker", 3, "ntfs", [], ["not BitLocker"]),
    ("missing-file", 3, "missing", [], ["no such file"]),
]

SCAN_CASES = [
    ("nothing-found", 1, "ntfs"),
    ("not-a-disk-image", 3, "random"),
    ("missing-file", 3, "missing"),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("case", UNLOCK_CASES, ids=_ids(UNLOCK_CASES))
def test_verify_failure_object(case, evidence, run_cli):
    _, code, key, args, needles = case
    proc = run_cli("verify", evidence[key], *args, "--json")
    check_failure(proc, code, "verify", needles=needles)


@pytest.mark.parametrize("case", UNLOCK_CASES, ids=_ids(UNLOCK_CASES))
def test_decrypt_to_file_failure_object(case, evidence, run_cli, tmp_path):
    _, code, key, args, needles = case
    out = tmp_path / "plain.img"
    proc = run_cli("decrypt", evidence[key], *args, "-o", out, "--json")
    doc = check_failure(proc, code, "decrypt", needles=needles)
    assert "unlocked" not in doc or doc["unlocked"] is False
    _no_output_files(out)


@pytest.mark.parametrize("case", UNLOCK_CASES, ids=_ids(UNLOCK_CASES))
def test_decrypt_to_stdout_failure_object_goes_to_stderr(case, evidence, run_cli):
    _, code, key, args, needles = case
    proc = run_cli("decrypt", evidence[key], *args, "-o", "-", "--json", binary=True)
    check_failure(proc, code, "decrypt", json_on="stderr", needles=needles)


@pytest.mark.parametrize("case", INFO_CASES, ids=_ids(INFO_CASES))
def test_info_failure_object(case, evidence, run_cli):
    _, code, key, args, needles = case
    proc = run_cli("info", evidence[key], *args, "--json")
    check_failure(proc, code, "info", needles=needles)


@pytest.mark.parametrize("case", SCAN_CASES, ids=_ids(SCAN_CASES))
def test_scan_failure_object(case, evidence, run_cli):
    """A failing scan still reports its sources (scripts read them), and carries the failure
    fields every --json failure has."""
    _, code, key = case
    proc = run_cli("scan", "--json", evidence[key])
    doc = check_failure(proc, code, "scan")
    assert [s["path"] for s in doc["sources"]] == [str(evidence[key])]


def test_human_failures_print_no_json(evidence, run_cli):
    """Without --json a failure is the one line on stderr and nothing on stdout."""
    for args in (["verify", evidence["volume"], "-p", "nope"], ["info", evidence["random"]],
                 ["decrypt", evidence["two"], "-p", PASSWORD, "-o", "-"]):
        proc = run_cli(*args)
        assert proc.returncode in (1, 2, 3)
        assert proc.stdout == "", proc.stdout
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(PREFIX), proc.stderr


PARSE_ERRORS = [
    ("decrypt-without-output", ["decrypt", "{volume}", "-p", PASSWORD, "--json"], "--output"),
    ("info-volume-not-a-number", ["info", "{volume}", "--volume", "abc", "--json"], "--volume"),
    ("scan-unknown-option", ["scan", "--json", "--bogus", "{volume}"], "--bogus"),
    ("verify-volume-and-offset", ["verify", "{volume}", "--volume", "1", "--offset", "0", "-p", PASSWORD, "--json"],
     "--offset"),
]


@pytest.mark.parametrize("case", PARSE_ERRORS, ids=[c[0] for c in PARSE_ERRORS])
def test_usage_errors_with_json_are_documents_too(case, evidence, run_cli):
    """Usage errors caught while the options are parsed are failures of a command given --json
    like any other: exit 2, one line, and the JSON object."""
    _, argv, needle = case
    argv = [a.format(volume=evidence["volume"]) for a in argv]
    proc = run_cli(*argv)
    check_failure(proc, 2, argv[0], needles=[needle])


# --- keys, hash, recover, check-key and match -------------------------------------------------------


@pytest.mark.parametrize("case", UNLOCK_CASES, ids=_ids(UNLOCK_CASES))
def test_keys_failure_object(case, evidence, run_cli):
    _, code, key, args, needles = case
    check_failure(run_cli("keys", evidence[key], *args, "--json"), code, "keys", needles=needles)


HASH_CASES = [c for c in INFO_CASES] + [("no-hashable-protector", 1, "clear", [], ["no password"])]


@pytest.mark.parametrize("case", HASH_CASES, ids=_ids(HASH_CASES))
def test_hash_failure_object(case, evidence, corpus_dir, run_cli):
    _, code, key, args, needles = case
    source = corpus_dir / "suspended.bin" if key == "clear" else evidence[key]
    check_failure(run_cli("hash", source, *args, "--json"), code, "hash", needles=needles)


RECOVER_CASES = [
    ("not-in-the-space", 1, "rp_volume", ["--pattern", RP.replace("514998", "51499?").replace("199408", "199409")],
     None),
    ("bad-pattern", 2, "rp_volume", ["--pattern", "12345"], ["48"]),
    ("no-recovery-protector", 1, "volume", ["--pattern", RP], ["no recovery-password protector"]),
    ("not-a-disk-image", 3, "random", ["--pattern", RP], ["not a disk image"]),
]


@pytest.mark.parametrize("case", RECOVER_CASES, ids=_ids(RECOVER_CASES))
def test_recover_failure_object(case, evidence, run_cli):
    _, code, key, args, needles = case
    proc = run_cli("recover", evidence[key], *args, "--json")
    if needles is None:  # a search that ran and found nothing: its document says so, exit 1
        assert proc.returncode == 1 and json.loads(proc.stdout)["found"] is False
        return
    check_failure(proc, code, "recover", needles=needles)


def test_check_key_failure_object(run_cli):
    proc = run_cli("check-key", "12345", "--json")
    check_failure(proc, 2, "check-key", needles=["digits"])
    invalid = run_cli("check-key", RP_BAD_GROUP_3, "--json")  # a verdict, not an error: the document
    assert invalid.returncode == 2 and json.loads(invalid.stdout)["failing_groups"] == [3]


MATCH_CASES = [
    ("locked", 1, ["volume"], ["stay locked"]),
    ("nothing-found", 1, ["ntfs"], ["no BitLocker volume"]),
    ("missing-file", 3, ["missing"], ["no such file"]),
]


@pytest.mark.parametrize("case", MATCH_CASES, ids=[c[0] for c in MATCH_CASES])
def test_match_failure_object(case, evidence, run_cli, tmp_path):
    _, code, keys, needles = case
    (tmp_path / "k.txt").write_text(RP + "\n")
    proc = run_cli("match", *[evidence[k] for k in keys], "--keys", tmp_path / "k.txt", "--json")
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)  # the one document: the report, with the failure's fields
    assert doc["exit_code"] == code and all(n.lower() in doc["error"].lower() for n in needles), doc["error"]
    none = run_cli("match", "--key-id", "0BADF00D", "--keys", tmp_path / "k.txt", "--json")
    assert none.returncode == 1 and json.loads(none.stdout)["exit_code"] == 1  # one document, not two
    short = run_cli("match", "--key-id", "0B", "--keys", tmp_path / "k.txt", "--json")
    check_failure(short, 2, "match", needles=["8 hex digits"])
