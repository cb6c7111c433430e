"""`pip install .` works with and without a C compiler: without one, the pure-Python core."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RP = "284867-596541-514998-422114-660297-261613-215424-199408"


@pytest.mark.parametrize("env", [{"BITLOCKER_TOOLS_NO_EXT": "1"}, {"CC": "false", "LDSHARED": "false"}],
                         ids=["extension-disabled", "compiler-fails"])
def test_wheel_without_extension_installs_and_works(env, tmp_path, corpus_dir):
    full_env = {**os.environ, **env}
    # Build outside the source tree so an in-place .so from development is not picked up.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "*.so", "*.pyd", "build", "*.egg-info",
                                                             "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), str(src)], check=True, env=full_env,
                   capture_output=True)
    (wheel,) = (tmp_path / "wheels").glob("bitlocker_tools-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # -S: no .pth files, so an editable install of the checkout (whose finder would serve the
    # in-place extension as bitlocker_tools._core._native) stays out; the dependencies come from
    # site-packages, named after the wheel just installed
    run_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site.getsitepackages()])}
    probe = subprocess.run([sys.executable, "-S", "-c", "import bitlocker_tools, bitlocker_tools._core as c;"
                            "print(bitlocker_tools.__file__); print(c.backend_name(c.load()))"],
                           capture_output=True, text=True, env=run_env, cwd=tmp_path, check=True)
    assert probe.stdout.split() == [str(target / "bitlocker_tools" / "__init__.py"), "pure-python"]
    res = subprocess.run([sys.executable, "-S", "-m", "bitlocker_tools", "verify", str(corpus_dir / "recovery_password.bin"),
                          "-r", RP], capture_output=True, text=True, env=run_env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
