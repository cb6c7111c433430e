"""`verify` and `decrypt` as the examiner runs them: exit codes, JSON fields, atomic output,
resume, stdout, and evidence that is never written."""

from __future__ import annotations

import hashlib
import json

import pytest

from bitlocker_tools.credentials import collect
from bitlocker_tools.decrypt import CHUNK, decrypt_to
from bitlocker_tools.protectors import unlock
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.volume import BitLockerVolume

RP = "284867-596541-514998-422114-660297-261613-215424-199408"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(manifest, name):
    return next(v for v in manifest["volumes"] if v["file"] == name + ".bin.gz")


def test_verify_json_names_the_protector(corpus_dir, run_cli):
    image = corpus_dir / "recovery_password.bin"
    before = _sha(image)
    res = run_cli("verify", str(image), "--recovery-password", RP, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["unlocked"] is True
    assert out["protector_id"] == "3c116b76-c67b-484e-b439-ce2ed68b561e"
    assert out["protector_type"] == "recovery_password"
    assert "vmk" not in out and "fvek" not in out  # secrets only with --show-keys
    assert _sha(image) == before


def test_verify_recovery_password_forms_and_sources(corpus_dir, run_cli, tmp_path):
    image = str(corpus_dir / "recovery_password.bin")
    assert run_cli("verify", image, "-r", RP.replace("-", " ")).returncode == 0
    assert run_cli("verify", image, "-r", RP.replace("-", "")).returncode == 0
    assert run_cli("verify", image, "-r", "-", input=RP + "\n").returncode == 0
    txt = tmp_path / "BitLocker Recovery Key 3C116B76.TXT"
    txt.write_bytes(("\ufeffBitLocker Drive Encryption recovery key\r\n\r\nRecovery Key:\r\n" + RP + "\r\n").encode("utf-16-le"))
    assert run_cli("verify", image, "-r", "@" + str(txt)).returncode == 0
    assert run_cli("verify", image, env={"BITLOCKER_RECOVERY_PASSWORD": RP}).returncode == 0
    assert run_cli("verify", image, env={"BITLOCKER_PASSWORD": "password12!@"}).returncode == 0


def test_verify_show_keys(corpus_dir, run_cli, manifest):
    res = run_cli("verify", str(corpus_dir / "aes_128.bin"), "-p", "password12!@", "--show-keys", "--json")
    assert res.returncode == 0
    assert json.loads(res.stdout)["fvek"] == _entry(manifest, "aes_128")["credentials"]["fvek"]


@pytest.mark.parametrize(
    "name, args",
    [
        ("aes-xts_128.bin", ["-p", "not the password"]),
        ("recovery_password.bin", ["-r", "131450-120197-153989-250338-511368-495572-680944-381546"]),
        ("recovery_key.bin", ["--bek", "{corpus}/startup_key.bek"]),
    ],
)
def test_verify_wrong_credential_exit_1(name, args, corpus_dir, run_cli):
    args = [a.format(corpus=corpus_dir) for a in args]
    res = run_cli("verify", str(corpus_dir / name), *args, "--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["unlocked"] is False
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_verify_fvek_and_vmk(corpus_dir, run_cli, manifest):
    image = str(corpus_dir / "aes-xts_256.bin")
    fvek = _entry(manifest, "aes-xts_256")["credentials"]["fvek"]
    assert run_cli("verify", image, "--fvek", fvek).returncode == 0
    wrong = "00" * 64
    assert run_cli("verify", image, "--fvek", wrong).returncode == 1
    keys = json.loads(run_cli("verify", image, "-p", "password12!@", "--show-keys", "--json").stdout)
    res = run_cli("verify", image, "--vmk", keys["vmk"], "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["via"] == "vmk"
    assert run_cli("verify", image, "--vmk", "11" * 32).returncode == 1


def test_verify_without_credential_is_usage_error(corpus_dir, run_cli):
    res = run_cli("verify", str(corpus_dir / "aes_128.bin"), env={"BITLOCKER_PASSWORD": "", "BITLOCKER_RECOVERY_PASSWORD": ""})
    assert res.returncode == 2


def test_decrypt_to_file_is_atomic_and_hashed(corpus_dir, run_cli, tmp_path, manifest):
    image = corpus_dir / "suspended.bin"
    before = _sha(image)
    out = tmp_path / "plain.img"
    res = run_cli("decrypt", str(image), "--clear-key", "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    expected = _entry(manifest, "suspended")["decrypted_prefix_sha256"]
    assert data["sha256"] == expected == _sha(out)
    assert data["filesystem"] == "NTFS"
    assert data["declared_size"] == 65994752 and data["bytes_written"] == 51032064
    assert not list(tmp_path.glob("*.part*"))
    assert _sha(image) == before
    # An existing output is never overwritten.
    assert run_cli("decrypt", str(image), "--clear-key", "-o", str(out)).returncode == 2


def test_decrypt_to_stdout(corpus_dir, run_cli, manifest):
    res = run_cli("decrypt", str(corpus_dir / "aes_128.bin"), "-p", "password12!@", "-o", "-", binary=True)
    assert res.returncode == 0
    assert hashlib.sha256(res.stdout).hexdigest() == _entry(manifest, "aes_128")["decrypted_prefix_sha256"]
    assert b"SHA-256" in res.stderr


def test_decrypt_to_stdout_json_summary_on_stderr(corpus_dir, run_cli, manifest):
    res = run_cli("decrypt", str(corpus_dir / "aes_128.bin"), "-p", "password12!@", "-o", "-", "--json", binary=True)
    assert res.returncode == 0
    expected = _entry(manifest, "aes_128")["decrypted_prefix_sha256"]
    assert hashlib.sha256(res.stdout).hexdigest() == expected
    summary = json.loads(res.stderr)
    assert summary["sha256"] == expected and summary["output"] == "-" and summary["unlocked"] is True


def test_resume_never_overwrites_an_existing_file(corpus_dir, run_cli, tmp_path):
    """--resume continues OUT.part; an unrelated OUT is left alone."""
    out = tmp_path / "notes.txt"
    out.write_text("important\n")
    res = run_cli("decrypt", str(corpus_dir / "aes_128.bin"), "-p", "password12!@", "-o", str(out), "--resume")
    assert res.returncode == 2 and "exists" in res.stderr
    assert out.read_text() == "important\n"
    assert not list(tmp_path.glob("*.part*"))


def test_verify_a_fully_decrypted_volume(corpus_dir, run_cli):
    """BitLocker turned off, metadata left behind, no protector: no key is needed, and the answer
    says so instead of pretending a credential was checked."""
    image = str(corpus_dir / "decrypted.bin")
    for args in ([], ["-p", "anything"]):
        res = run_cli("verify", image, *args, "--json")
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["unlocked"] is True and out["via"] == "none" and out["protector_id"] is None
        assert out["encryption_method"] == "NONE"
    res = run_cli("verify", image)
    assert "not encrypted" in res.stdout and "no key is needed" in res.stdout


def test_stale_environment_does_not_override_an_option(corpus_dir, run_cli):
    image = str(corpus_dir / "aes_128.bin")
    res = run_cli("verify", image, "-p", "password12!@", env={"BITLOCKER_RECOVERY_PASSWORD": "garbage"})
    assert res.returncode == 0, res.stderr


def test_recovery_password_separators_are_not_trusted(corpus_dir, run_cli):
    image = str(corpus_dir / "recovery_password.bin")
    assert run_cli("verify", image, "-r", RP.replace("-", "--", 1)).returncode == 0
    assert run_cli("verify", image, "-r", RP[:5] + "-" + RP[5:].replace("-", "", 1)).returncode == 0
    res = run_cli("verify", image, "-r", RP[:5] + RP[6:])
    assert res.returncode == 2 and "group 1 has 5" in res.stderr


def test_output_to_a_pipe_is_not_wrapped(corpus_dir, run_cli):
    """Rich wraps at 80 columns on a terminal only: a log gets one line per message."""
    res = run_cli("verify", str(corpus_dir / "recovery_password.bin"), "-r", RP)
    assert res.returncode == 0
    assert len(res.stdout.strip().splitlines()) == 1 and "3C116B76" in res.stdout


def test_decrypt_refuses_to_overwrite_evidence(corpus_dir, run_cli):
    image = str(corpus_dir / "suspended.bin")
    assert run_cli("decrypt", image, "--clear-key", "-o", image).returncode == 2


def test_resume_continues_an_interrupted_run(corpus_dir, tmp_path, manifest):
    image = corpus_dir / "aes-xts_128.bin"
    out = tmp_path / "plain.img"
    expected = _entry(manifest, "aes-xts_128")["decrypted_prefix_sha256"]
    with image.open("rb") as fh:
        vol = BitLockerVolume(fh)
        stream = DecryptedStream(vol, unlock(vol, collect(password=["password12!@"], use_env=False)))
        seen = []

        def interrupt(n):
            seen.append(n)
            if len(seen) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            decrypt_to(stream, str(out), progress=interrupt)
        part = tmp_path / "plain.img.part"
        assert not out.exists() and part.stat().st_size >= 2 * CHUNK
        # A torn tail is redone: append garbage to the part.
        with part.open("ab") as fh2:
            fh2.write(b"\xff" * 1000)
        done = decrypt_to(stream, str(out), resume=True)
        assert done.resumed_from >= 2 * CHUNK
        assert done.sha256 == expected == _sha(out)
