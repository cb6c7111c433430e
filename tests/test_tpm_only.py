"""TPM-only volumes (docs/cli.md, exit 3: "bad or unsupported input: ... a TPM-only volume").

A volume whose only protector is the TPM (or TPM + PIN) cannot be opened offline from any
credential that goes through a protector: verify and decrypt exit 3 with one line saying the TPM
is needed, --json gives the failure object, and scan still lists the protector with
``needs_tpm: true``. The keys themselves (an FVEK or a VMK obtained elsewhere) still open it, as
the error message advises. A volume with a TPM protector *and* a recovery password is not
TPM-only: a wrong key there is an ordinary wrong key (exit 1).
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from conftest import assert_cli_error

from bitlocker_tools.forge import ProtectorSpec, VolumeSpec, forge
from bitlocker_tools.format.constants import EncryptionMethod

RP_OF_ANOTHER_VOLUME = "284867-596541-514998-422114-660297-261613-215424-199408"  # valid checksum


@pytest.fixture(scope="module")
def plain(fixtures_dir) -> bytes:
    return gzip.decompress((fixtures_dir / "plain" / "ntfs.img.gz").read_bytes())


@pytest.fixture(scope="module", params=["tpm", "tpm_pin"])
def tpm_volume(request, plain, tmp_path_factory):
    vol = forge(plain, VolumeSpec(method=EncryptionMethod.AES_XTS_128, protectors=[ProtectorSpec(request.param)],
                                  seed=f"tpm-only-{request.param}", description="FORGE-PC C: 1/2/2026"))
    path = vol.write(tmp_path_factory.mktemp(request.param) / f"{request.param}.bin")
    return request.param, vol, path


def _credentials(corpus_dir) -> dict[str, list[str]]:
    return {
        "password": ["-p", "any password"],
        "recovery_password": ["-r", RP_OF_ANOTHER_VOLUME],
        "bek": ["--bek", str(corpus_dir / "startup_key.bek")],
        "clear_key": ["--clear-key"],
        "password+recovery_password": ["-p", "x", "-r", RP_OF_ANOTHER_VOLUME],
    }


def test_scan_lists_the_tpm_protector(tpm_volume, run_cli):
    kind, vol, path = tpm_volume
    proc = run_cli("scan", "--json", path)
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(proc.stdout)["sources"][0]["volumes"]
    assert rec["bitlocker"] is True and "error" not in rec
    assert rec["volume_guid"] == vol.volume_guid
    assert [(p["type"], p["needs_tpm"]) for p in rec["protectors"]] == [(kind, True)]
    assert rec["protectors"][0]["id"] == vol.protectors[0].guid
    assert rec["protectors"][0]["key_id"] == vol.protectors[0].guid.split("-")[0].upper()
    human = run_cli("scan", path)
    assert human.returncode == 0, human.stderr
    line = next(x for x in human.stdout.splitlines() if "Key ID" in x)
    assert kind in line and "TPM" in line, line


@pytest.mark.parametrize("cred", ["password", "recovery_password", "bek", "clear_key", "password+recovery_password"])
@pytest.mark.parametrize("command", ["verify", "decrypt-file", "decrypt-stdout"])
def test_unlock_of_a_tpm_only_volume_exits_3(command, cred, tpm_volume, corpus_dir, run_cli, tmp_path):
    _, _, path = tpm_volume
    args = _credentials(corpus_dir)[cred]
    out = tmp_path / "plain.img"
    if command == "verify":
        proc = run_cli("verify", path, *args)
    elif command == "decrypt-file":
        proc = run_cli("decrypt", path, *args, "-o", out)
    else:
        proc = run_cli("decrypt", path, *args, "-o", "-", binary=True)
        assert proc.stdout == b""
    assert_cli_error(proc, 3, "TPM", str(path))
    assert not list(tmp_path.iterdir()), "nothing may be written for a volume that cannot be opened"


@pytest.mark.parametrize("command", ["verify", "decrypt"])
def test_tpm_only_json_failure(command, tpm_volume, run_cli, tmp_path):
    _, _, path = tpm_volume
    extra = ["-o", tmp_path / "plain.img"] if command == "decrypt" else []
    proc = run_cli(command, path, "-p", "any password", *extra, "--json")
    line = assert_cli_error(proc, 3, "TPM")
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and doc["error"] == line[len("bitlocker-tools: "):]
    if command == "verify":
        assert doc["unlocked"] is False and doc["protector_id"] is None and doc["protector_type"] is None


def test_the_keys_themselves_still_open_it(tpm_volume, run_cli, tmp_path):
    """What the message advises: the FVEK (or a VMK sniffed from the TPM bus) decrypts it."""
    _, vol, path = tpm_volume
    proc = run_cli("verify", path, "--fvek", vol.fvek.hex(), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["via"] == "fvek"
    proc = run_cli("decrypt", path, "--vmk", vol.vmk.hex(), "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(proc.stdout).hexdigest() == vol.expected_sha256


def test_tpm_plus_recovery_password_is_not_tpm_only(plain, run_cli, tmp_path):
    vol = forge(plain, VolumeSpec(method=EncryptionMethod.AES_XTS_128,
                                  protectors=[ProtectorSpec("tpm"), ProtectorSpec("recovery_password")],
                                  seed="tpm-and-rp"))
    path = vol.write(tmp_path / "tpm-rp.bin")
    proc = run_cli("scan", "--json", path)
    assert proc.returncode == 0, proc.stderr
    protectors = json.loads(proc.stdout)["sources"][0]["volumes"][0]["protectors"]
    assert [(p["type"], p["needs_tpm"]) for p in protectors] == [("tpm", True), ("recovery_password", False)]
    # a wrong key is a wrong key (1), not "needs the TPM" (3)
    assert_cli_error(run_cli("verify", path, "-r", RP_OF_ANOTHER_VOLUME), 1)
    (rp,) = vol.recovery_passwords
    proc = run_cli("decrypt", path, "-r", rp, "-o", "-", binary=True)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(proc.stdout).hexdigest() == vol.expected_sha256
