"""The examples of README.md, run as written.

The Python example opens ``disk.E01``, selects ``volume=3`` and unlocks it with the recovery
password ``"284867-..."`` (elided in the README): the test builds exactly such an E01 (a GPT disk
whose partition 3 is the corpus volume recovery_password.bin, whose recovery password starts
284867) in a scratch folder, substitutes the full recovery password for the elided one and
nothing else, runs the block in a fresh interpreter there, and checks what it prints against the
README's own comment (``b'FILE0'``, which MANIFEST.md confirms for every v2 volume at 0x2000).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import diskbuild
import pytest
from conftest import ROOT, sha256_file

RP = "284867-596541-514998-422114-660297-261613-215424-199408"
ELIDED = '"284867-..."'


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _readme(), flags=re.S)


def test_readme_has_one_python_example():
    blocks = _python_blocks()
    assert len(blocks) == 1, blocks
    assert ELIDED in blocks[0], "the example no longer elides the recovery password as the test expects"
    assert "disk.E01" in blocks[0] and "volume=3" in blocks[0]


@pytest.fixture(scope="module")
def e01_folder(tmp_path_factory, corpus_dir):
    for tool in ("sgdisk", "ewfacquire"):
        if not diskbuild.have(tool):
            pytest.skip(f"{tool} is not installed")
    work = tmp_path_factory.mktemp("readme")
    raw = work / "build.raw"
    disk = diskbuild.build_gpt(raw, [corpus_dir / "aes-xts_128.bin", corpus_dir / "recovery_password.bin"])
    assert disk.part_for(corpus_dir / "recovery_password.bin").number == 3
    e01 = diskbuild.ewf_acquire(raw, work / "disk")
    assert e01.name == "disk.E01"
    raw.unlink()
    return work


def test_readme_python_example_runs(e01_folder):
    (block,) = _python_blocks()
    code = block.replace(ELIDED, f'"{RP}"')
    assert code.count(RP) == 1 and code.replace(f'"{RP}"', ELIDED) == block  # the only change
    before = sha256_file(e01_folder / "disk.E01")
    proc = subprocess.run([sys.executable, "-c", code], cwd=e01_folder, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("BITLOCKER_")})
    assert proc.returncode == 0, f"the README example fails:\n{proc.stderr}"
    assert proc.stdout == "b'FILE0'\n", proc.stdout
    assert sha256_file(e01_folder / "disk.E01") == before


def test_readme_hand_decrypt_command(corpus_dir, manifest, tmp_path):
    """README "To try a real Windows 10 volume by hand": fetch_corpus.py prints the volume's
    path, and the command decrypts it to the manifest's plaintext."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_corpus.py"), "recovery_password.bin"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip()
    assert path == str(corpus_dir / "recovery_password.bin")
    m = re.search(r'bitlocker-tools decrypt "\$\(python scripts/fetch_corpus.py recovery_password.bin\)" \\\n'
                  r"\s+--recovery-password (\S+) -o (\S+)", _readme())
    assert m, "the README's by-hand command changed"
    assert m.group(1) == RP
    out = tmp_path / m.group(2)
    proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", "decrypt", path, "--recovery-password", m.group(1),
                           "-o", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    entry = next(v for v in manifest["volumes"] if v["file"] == "recovery_password.bin.gz")
    assert sha256_file(out) == entry["decrypted_prefix_sha256"]
    assert entry["decrypted_prefix_sha256"] in proc.stdout
