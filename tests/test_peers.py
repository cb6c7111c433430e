"""Cross-checks against independent readers: dislocker (Debian) and dissect.fve (PyPI).

Our plaintext must equal theirs byte for byte wherever they can read the volume; the corpus
notes where each peer fails (dislocker crashes on decrypted/vista/eow_partial and stops
win7_partial just past its conversion boundary, which is compared up to there).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bitlocker_tools.credentials import collect
from bitlocker_tools.protectors import unlock
from bitlocker_tools.stream import DecryptedStream
from bitlocker_tools.volume import BitLockerVolume

DISLOCKER_CAN = {
    "aes_128.bin": ["-upassword12!@"],
    "aes_256.bin": ["-upassword12!@"],
    "aes_128_diffuser.bin": ["-upassword12!@"],
    "aes_256_diffuser.bin": ["-upassword12!@"],
    "aes-xts_128.bin": ["-upassword12!@"],
    "aes-xts_256.bin": ["-upassword12!@"],
    "recovery_password.bin": ["-p284867-596541-514998-422114-660297-261613-215424-199408"],
    "recovery_key.bin": ["-f", "{corpus}/recovery_key.bek"],
    "startup_key.bin": ["-f", "{corpus}/startup_key.bek"],
    "suspended.bin": ["-c"],
    # dislocker stops just past the conversion boundary (ciphertext ends at 1,143,820,288): the
    # whole encrypted part is still compared
    "win7_partial.bin": ["-p131450-120197-153989-250338-511368-495572-680944-381546"],
}
DISLOCKER_PREFIX = {"win7_partial.bin": 1_143_820_288}  # volumes dislocker writes only a prefix of
CREDS = {
    "recovery_password.bin": dict(recovery_password=["284867-596541-514998-422114-660297-261613-215424-199408"]),
    "recovery_key.bin": dict(bek=["{corpus}/recovery_key.bek"]),
    "startup_key.bin": dict(bek=["{corpus}/startup_key.bek"]),
    "suspended.bin": dict(clear_key=True),
    "win7_partial.bin": dict(recovery_password=["131450-120197-153989-250338-511368-495572-680944-381546"]),
}


def _ours(corpus_dir, name) -> DecryptedStream:
    kwargs = CREDS.get(name, dict(password=["password12!@"]))
    kwargs = {k: ([x.format(corpus=corpus_dir) for x in v] if isinstance(v, list) else v) for k, v in kwargs.items()}
    fh = (corpus_dir / name).open("rb")
    vol = BitLockerVolume(fh, name=name)
    return DecryptedStream(vol, unlock(vol, collect(use_env=False, **kwargs)))


@pytest.mark.peers
@pytest.mark.parametrize("name", sorted(DISLOCKER_CAN))
def test_dislocker_agrees(name, corpus_dir, tmp_path):
    if shutil.which("dislocker-file") is None:
        pytest.skip("dislocker is not installed (Debian package dislocker; .ci/run installs it)")
    out = tmp_path / "dislocker.out"
    args = [a.format(corpus=corpus_dir) for a in DISLOCKER_CAN[name]]
    subprocess.run(["dislocker-file", "-V", str(corpus_dir / name), *args, "--", str(out)],
                   check=True, capture_output=True, timeout=300)
    ours = _ours(corpus_dir, name)
    written = out.stat().st_size
    n = min(written, ours.size) if name in DISLOCKER_PREFIX else ours.size
    assert written >= n >= DISLOCKER_PREFIX.get(name, ours.size)
    step = 64 << 20
    with out.open("rb") as theirs:
        for pos in range(0, n, step):
            mine = ours.read_at(pos, min(step, n - pos))
            assert theirs.read(len(mine)) == mine, f"{name}: dislocker differs in [{pos:#x}, {pos + step:#x})"


@pytest.mark.parametrize("name", ["aes_128_diffuser.bin", "vista.bin", "eow_partial.bin", "decrypted.bin"])
def test_dissect_fve_agrees(name, corpus_dir):
    bde_mod = pytest.importorskip("dissect.fve.bde")
    creds = {
        "vista.bin": lambda b: b.unlock_with_recovery_password("517506-503998-044583-576191-587004-635965-501270-087802"),
        "decrypted.bin": lambda b: None,
    }.get(name, lambda b: b.unlock_with_passphrase("password12!@"))
    with (corpus_dir / name).open("rb") as fh:
        bde = bde_mod.BDE(fh)
        creds(bde)
        theirs = bde.open()
        ours = _ours(corpus_dir, name) if name != "vista.bin" else None
        if ours is None:
            vol = BitLockerVolume((corpus_dir / name).open("rb"))
            ours = DecryptedStream(vol, unlock(vol, collect(recovery_password=["517506-503998-044583-576191-587004-635965-501270-087802"], use_env=False)))
        # dissect.fve classifies an encrypt-on-write chunk by where a read starts, so compare
        # 8 KiB reads (the chunk grid is 8 KiB aligned) at the places that hold data: the start,
        # the metadata blocks, a used-space chunk boundary and the end.
        step = 8192
        spots = [0, ours.size - (1 << 20), 203431936 - (1 << 19)]
        spots += [o - (1 << 19) for o in ours.volume.metadata.metadata_offsets if 0 < o < ours.size]
        for spot in spots:
            spot = max(0, min(spot, ours.size - (1 << 20))) // step * step
            for pos in range(spot, spot + (1 << 20), step):
                theirs.seek(pos)
                assert theirs.read(step) == ours.read_at(pos, step), f"{name} differs at {pos:#x}"
