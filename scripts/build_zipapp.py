#!/usr/bin/env python3
"""Build ``bitlocker-tools.pyz``: the whole tool in one file, for a Python with nothing installed.

    python3 scripts/build_zipapp.py -o bitlocker-tools.pyz [--target win_amd64:3.12]... [--no-host]

For a WinPE stick (docs/winpe.md): it runs on the Windows embeddable package, which has no pip
and no site-packages, and on any venv. What goes in:

- bitlocker_tools from this checkout, without its C extension (the pure-Python core serves);
- every runtime dependency that pyproject.toml names, and theirs, as resolved by
  ``pip download --only-binary=:all:`` for each target: pure-Python wheels unpacked into the
  archive (zipimport loads them);
- numpy and pycryptodome, which have compiled parts, as their platform wheels, one per target,
  unpacked on first run by the archive's ``__main__`` (scripts/zipapp_main.py) into a cache
  folder named by the wheel's SHA-256;
- dependencies whose compiled part is an optional speed-up with a pure-Python fallback
  (:data:`OPTIONAL_NATIVE`), as their pure wheel, or with the compiled files left out.

The targets are this interpreter (unless ``--no-host``) and each ``--target PLATFORM:VERSION``
(default: ``win_amd64:3.12``, the embeddable package docs/winpe.md names). Needs pip and the
package index only (pip's own configuration: PIP_INDEX_URL and the like), no compiler. Prints
what it bundled and the size of the archive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "zipapp_main.py"
DEFAULT_TARGETS = ["win_amd64:3.12"]
#: compiled parts that are required: bundled as platform wheels, unpacked at run time
BINARY = {"numpy", "pycryptodome"}
#: compiled parts that are optional: the package falls back to pure Python without them
OPTIONAL_NATIVE = {
    "dissect-util": "lz4/lzo/crc32c in pure Python without dissect.util._native",
    "msgpack": "msgpack.fallback without msgpack._cmsgpack",
}
_NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".lib", ".a")
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


@dataclass
class Wheel:
    path: Path
    project: str  # normalised (PEP 503)
    version: str
    python: list[str]
    abi: list[str]
    platform: list[str]

    @property
    def pure(self) -> bool:
        return self.abi == ["none"] and self.platform == ["any"]

    @classmethod
    def parse(cls, path: Path) -> Wheel:
        m = _WHEEL.match(path.name)
        if not m:
            raise SystemExit(f"build_zipapp: not a wheel file name: {path.name}")
        return cls(path, normalise(m["name"]), m["version"], m["py"].split("."), m["abi"].split("."),
                   m["plat"].split("."))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> list[str]:
    """``[project].dependencies`` of pyproject.toml: what the tool imports at run time."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            tomllib = None  # type: ignore[assignment]
    if tomllib is not None:
        return list(tomllib.loads(text)["project"]["dependencies"])
    block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
    assert block, "pyproject.toml: no [project] dependencies"
    return re.findall(r"^\s*\"([^\"]+)\"", block.group(1), re.M)


def download(requirements: list[str], target: str | None, dest: Path) -> list[Wheel]:
    """Wheels of the requirements and their dependencies for ``target`` (PLATFORM:VERSION, or
    None for this interpreter), via pip; only wheels, so nothing is ever compiled."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):  # what an earlier build left (--wheel-dir): not this resolution
        old.unlink()
    req = dest / "requirements.txt"
    req.write_text("\n".join(requirements) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest),
           "--progress-bar", "off", "--disable-pip-version-check", "-q", "-r", str(req)]
    if target:
        platform, _, version = target.partition(":")
        if not platform or not re.fullmatch(r"3\.\d+", version):
            raise SystemExit(f"build_zipapp: --target {target!r}: give PLATFORM:VERSION, e.g. win_amd64:3.12")
        for tag in platform.split(","):  # pip matches each platform tag exactly: list several
            cmd += ["--platform", tag]
        cmd += ["--python-version", version, "--implementation", "cp"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"build_zipapp: pip download for {target or 'this interpreter'} failed:\n{proc.stderr}")
    return [Wheel.parse(p) for p in sorted(dest.glob("*.whl"))]


def select(resolved: list[list[Wheel]]) -> tuple[dict[str, Wheel], list[Wheel], dict[str, Wheel]]:
    """(pure wheels by project, platform wheels to carry, optional-native wheels to strip).

    A pure project comes from the first target that resolved it (this interpreter first), so
    its version is the one the tests ran with."""
    pure: dict[str, Wheel] = {}
    binary: list[Wheel] = []
    strip: dict[str, Wheel] = {}
    for wheels in resolved:
        for w in wheels:
            if w.project in BINARY:
                if w.pure:
                    raise SystemExit(f"build_zipapp: {w.path.name} is pure Python; drop it from BINARY")
                if all(b.path.name != w.path.name for b in binary):
                    binary.append(w)
            elif w.pure:
                pure.setdefault(w.project, w)
            elif w.project in OPTIONAL_NATIVE:
                strip.setdefault(w.project, w)
            else:
                raise SystemExit(f"build_zipapp: {w.path.name} has compiled parts: add {w.project} to BINARY "
                                 "(carried per platform) or to OPTIONAL_NATIVE (it has a pure-Python fallback)")
    for project in list(strip):
        if project in pure:  # a pure wheel of it exists for some target: better than a stripped one
            del strip[project]
    return pure, binary, strip


def _wheel_members(wheel: Wheel, drop_native: bool):
    """(archive name, bytes) of a wheel's importable files: ``*.data/purelib|platlib`` mapped to
    the top, scripts/headers/data left out, compiled files left out when ``drop_native``."""
    with zipfile.ZipFile(wheel.path) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir():
                continue
            parts = name.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                name = "/".join(parts[2:])
            if drop_native and name.lower().endswith(_NATIVE_SUFFIXES):
                continue
            yield name, zf.read(info)


def _own_package():
    """bitlocker_tools from this checkout: its Python files and py.typed, no C extension."""
    pkg = ROOT / "bitlocker_tools"
    for path in sorted(pkg.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if not path.is_file() or "__pycache__" in rel or rel.startswith("bitlocker_tools/_core/native/"):
            continue
        if path.suffix == ".py" or path.name == "py.typed":
            yield rel, path.read_bytes()


def build(out: Path, targets: list[str | None], workdir: Path, compile_pyc: bool) -> dict:
    from_pyproject = runtime_requirements()
    resolved = [download(from_pyproject, t, workdir / (t or "host").replace(":", "-")) for t in targets]
    pure, binary, strip = select(resolved)
    version = _checkout_version()
    manifest = {
        "bitlocker_tools": version,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": [t or f"host ({_host_tag()})" for t in targets],
        "pure": sorted(f"{w.project}=={w.version}" for w in pure.values()),
        "stripped": {w.project: OPTIONAL_NATIVE[w.project] for w in strip.values()},
        "wheels": [{"file": w.path.name, "project": w.project, "version": w.version, "python": w.python,
                    "abi": w.abi, "platform": w.platform,
                    "sha256": hashlib.sha256(w.path.read_bytes()).hexdigest()} for w in binary],
    }
    tmp = out.with_name(out.name + ".part")
    seen: set[str] = set()
    with open(tmp, "wb") as fh:
        fh.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:

            def add(name: str, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> None:
                if name in seen:
                    raise SystemExit(f"build_zipapp: {name} comes from two places")
                seen.add(name)
                # an entry for each folder: zipimport finds a namespace package (dissect) only
                # by its folder's own entry
                parts = name.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folder = "/".join(parts[:depth]) + "/"
                    if folder not in seen:
                        seen.add(folder)
                        zf.writestr(zipfile.ZipInfo(folder, (2024, 1, 1, 0, 0, 0)), b"")
                info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))  # reproducible
                info.compress_type = method
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
                if compile_pyc and name.endswith(".py"):
                    _add_pyc(add, name, data)

            add("__main__.py", BOOTSTRAP.read_bytes())
            for name, data in _own_package():
                add(name, data)
            for w in pure.values():
                for name, data in _wheel_members(w, drop_native=False):
                    add(name, data)
            for w in strip.values():
                for name, data in _wheel_members(w, drop_native=True):
                    add(name, data)
            for w in binary:
                add(f"_pyz/wheels/{w.path.name}", w.path.read_bytes(), zipfile.ZIP_STORED)
            add("_pyz/manifest.json", json.dumps(manifest, indent=1).encode())
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    return manifest


def _add_pyc(add, name: str, source: bytes) -> None:
    """A legacy ``module.pyc`` beside ``module.py``, the only place zipimport looks for bytecode
    (it cannot write a cache): start-up without compiling, on this interpreter's version only
    (another version's zipimport sees the wrong magic number and compiles the source)."""
    import importlib.util
    import marshal

    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except SyntaxError:
        return  # e.g. a file for a newer Python: zipimport would fail on it too, when imported
    # an unchecked hash-based pyc (PEP 552, flags 0b01): taken as it is, whatever the .py's
    # timestamp in the archive says
    header = importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(source)
    add(name[:-3] + ".pyc", header + marshal.dumps(code))


def _checkout_version() -> str:
    text = (ROOT / "bitlocker_tools" / "__init__.py").read_text()
    m = re.search(r"^__version__\s*=\s*[\"']([^\"']+)", text, re.M)
    return m.group(1) if m else "unknown"


def _host_tag() -> str:
    import sysconfig

    return f"cp{sys.version_info[0]}{sys.version_info[1]}-{sysconfig.get_platform()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("bitlocker-tools.pyz"))
    ap.add_argument("--target", action="append", metavar="PLATFORM:VERSION",
                    help="carry numpy/pycryptodome for this platform and Python, e.g. win_amd64:3.12, "
                    "win_arm64:3.12, manylinux_2_28_x86_64,manylinux2014_x86_64:3.12 (several platform tags "
                    "with commas; repeatable; default win_amd64:3.12)")
    ap.add_argument("--no-host", action="store_true", help="not for the Python that runs this script")
    ap.add_argument("--wheel-dir", type=Path, help="keep the downloaded wheels here (default: a temporary folder)")
    ap.add_argument("--compile", action="store_true",
                    help="add bytecode for this Python's version (faster start-up there only)")
    args = ap.parse_args(argv)
    targets: list[str | None] = ([] if args.no_host else [None]) + (args.target or DEFAULT_TARGETS)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bitlocker-tools-pyz-") as scratch:
        manifest = build(args.output, targets, args.wheel_dir or Path(scratch), args.compile)
    size = args.output.stat().st_size
    print(f"{args.output}: {size} bytes ({size / (1 << 20):.1f} MiB), built in {time.monotonic() - started:.1f} s")
    print(f"  bitlocker_tools {manifest['bitlocker_tools']} (pure-Python core), for: {', '.join(manifest['targets'])}")
    print(f"  pure Python: {', '.join(manifest['pure'])}")
    for project, why in manifest["stripped"].items():
        print(f"  {project}: compiled part left out ({why})")
    for w in manifest["wheels"]:
        print(f"  unpacked on first run: {w['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
