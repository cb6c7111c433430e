"""Start-up of the single-file build, ``bitlocker-tools.pyz`` (its ``__main__.py``; see
scripts/build_zipapp.py and docs/winpe.md).

The archive must run on a bare Python: the Windows embeddable package on a WinPE stick (no pip,
no site-packages, isolated by its ``._pth`` file) or a venv with nothing installed. Pure-Python
code is imported from the archive itself. numpy and pycryptodome have compiled parts, which
zipimport cannot load, so the archive carries their wheels for each platform it was built for:
the one that fits this interpreter is unpacked once into a cache folder named by the wheel's
SHA-256 (the hash PyPI publishes for that file), and put on ``sys.path``. The C core of
bitlocker_tools is not in the archive: its pure-Python twin serves.

Stdlib only, and written for every Python the project supports (3.9+), because it runs before
anything else is importable.
"""

import hashlib
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import zipfile

MANIFEST = "_pyz/manifest.json"
#: where the wheels are unpacked, when set (e.g. a folder on the USB stick)
ENV_CACHE = "BITLOCKER_TOOLS_CACHE"
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class BootError(Exception):
    """What stops the archive from starting, as one line for the user."""


def _interpreter_abi():
    v = sys.version_info
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return f"cp{v[0]}{v[1]}{'t' if free_threaded else ''}", free_threaded


def python_ok(py: str, abi: str) -> bool:
    """Can this interpreter load a wheel tagged ``py``-``abi``?"""
    v = sys.version_info
    if sys.implementation.name != "cpython":
        return abi == "none"
    own_abi, free_threaded = _interpreter_abi()
    if abi == "abi3":
        m = re.match(r"cp3(\d+)$", py)
        return bool(m) and int(m.group(1)) <= v[1] and not free_threaded
    if abi == "none":
        return py in ("py3", f"py{v[0]}{v[1]}", f"cp{v[0]}{v[1]}")
    return abi == own_abi and py == f"cp{v[0]}{v[1]}"


def _glibc():
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # "glibc 2.36"
        return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else None
    except (AttributeError, OSError, ValueError):
        return None


def platform_ok(tag: str, plat: str = "", glibc=None) -> bool:
    """Can this machine load a wheel of platform ``tag``? ``plat`` is
    ``sysconfig.get_platform()`` (``win-amd64``, ``linux-x86_64``, ``macosx-11.0-arm64``)."""
    plat = (plat or sysconfig.get_platform()).replace("-", "_").replace(".", "_")
    if tag == plat:
        return True
    if plat.startswith("linux_"):
        arch = plat[len("linux_"):]
        glibc = glibc if glibc is not None else _glibc()
        m = re.match(r"(manylinux1|manylinux2010|manylinux2014)_(.+)$", tag)
        if m:
            need, tag_arch = _LEGACY_MANYLINUX[m.group(1)], m.group(2)
        else:
            m = re.match(r"manylinux_(\d+)_(\d+)_(.+)$", tag)
            if not m:
                return False
            need, tag_arch = (int(m.group(1)), int(m.group(2))), m.group(3)
        return tag_arch == arch and glibc is not None and glibc >= need
    if plat.startswith("macosx_"):
        import platform

        m = re.match(r"macosx_(\d+)_(\d+)_(.+)$", tag)
        here = tuple(int(x) for x in (platform.mac_ver()[0] or "0.0").split(".")[:2])
        arch = plat.rsplit("_", 1)[-1]
        return bool(m) and m.group(3) in (arch, "universal2") and (int(m.group(1)), int(m.group(2))) <= here
    return False


def compatible(wheel: dict, plat: str = "", glibc=None) -> bool:
    return (any(python_ok(py, abi) for py in wheel["python"] for abi in wheel["abi"])
            and any(platform_ok(p, plat, glibc) for p in wheel["platform"]))


def choose(wheels: list) -> list:
    """For each project that has wheels in the archive, the first one this interpreter can load.
    A project with none that fits is fine only when it is importable anyway (installed)."""
    chosen, missing = {}, {}
    for w in wheels:
        if w["project"] in chosen:
            continue
        if compatible(w):
            chosen[w["project"]] = w
        else:
            missing.setdefault(w["project"], []).append(w["file"])
    for project, files in missing.items():
        if project not in chosen and not _installed(project):
            here = f"{_interpreter_abi()[0]}, {sysconfig.get_platform()}"
            raise BootError(f"this build carries {project} only for other Pythons ({', '.join(files)}), not for "
                            f"this one ({here}): rebuild with scripts/build_zipapp.py --target PLATFORM:VERSION")
    return list(chosen.values())


def _installed(project: str) -> bool:
    import importlib.util

    module = {"pycryptodome": "Crypto"}.get(project, project)
    return importlib.util.find_spec(module) is not None


def _in_winpe() -> bool:
    """WinPE marks itself with the MiniNT key (Microsoft's documented test)."""
    if sys.platform != "win32":
        return False
    import winreg

    try:
        winreg.CloseKey(winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\MiniNT"))
        return True
    except OSError:
        return False


def cache_roots(archive: str) -> list:
    """Where to unpack, best first: $BITLOCKER_TOOLS_CACHE; in WinPE the folder of the archive
    (the USB stick: WinPE's X: RAM disk may have as little as 32 MB of scratch space, and the
    stick keeps the unpacked wheels across reboots); the per-user cache; the temp folder."""
    roots = []
    if os.environ.get(ENV_CACHE):
        roots.append(os.environ[ENV_CACHE])
    if _in_winpe():
        roots.append(os.path.join(os.path.dirname(os.path.abspath(archive)), "bitlocker-tools-cache"))
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        roots.append(os.path.join(base, "bitlocker-tools", "Cache", "pyz"))
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        roots.append(os.path.join(base, "bitlocker-tools", "pyz"))
    roots.append(os.path.join(tempfile.gettempdir(), "bitlocker-tools-pyz"))
    return roots


def _skip(name: str) -> bool:
    """Members not unpacked: test suites (numpy's are 6 MB) and compiled bytecode."""
    return "/tests/" in name or name.endswith(".pyc")


def unpack(zf: zipfile.ZipFile, wheel: dict, roots: list) -> str:
    """The folder holding ``wheel`` unpacked, made on first use; the name carries the wheel's
    SHA-256, so a rebuilt archive with other wheels never uses stale files."""
    name = f"{wheel['project']}-{wheel['version']}-{wheel['sha256'][:16]}"
    for root in roots:
        final = os.path.join(root, name)
        if os.path.isdir(final):
            return final
    data = zf.read("_pyz/wheels/" + wheel["file"])
    if hashlib.sha256(data).hexdigest() != wheel["sha256"]:
        raise BootError(f"the archive is damaged: {wheel['file']} does not match its SHA-256")
    problems = []
    for root in roots:
        final = os.path.join(root, name)
        try:
            os.makedirs(root, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=name + ".part-", dir=root)
        except OSError as exc:
            problems.append(f"{root}: {exc.strerror or exc}")
            continue
        try:
            import io

            with zipfile.ZipFile(io.BytesIO(data)) as whl:
                whl.extractall(tmp, [m for m in whl.namelist() if not _skip(m)])
            os.rename(tmp, final)  # complete, or not there at all
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if os.path.isdir(final):  # another run unpacked it first
                return final
            problems.append(f"{root}: {getattr(exc, 'strerror', None) or exc}")
            continue
        return final
    raise BootError(f"cannot unpack {wheel['file']} (set {ENV_CACHE} to a writable folder): {'; '.join(problems)}")


def prepare(archive: str) -> list:
    """Unpack what this interpreter needs; return the folders to put on sys.path."""
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        roots = cache_roots(archive)
        return [unpack(zf, w, roots) for w in choose(manifest["wheels"])]


def main() -> None:
    archive = os.path.dirname(os.path.abspath(__file__))
    if archive not in sys.path:  # python.exe puts it there even in ._pth mode; be sure anyway
        sys.path.insert(0, archive)
    try:
        folders = prepare(archive)
    except (BootError, OSError, KeyError, ValueError) as exc:
        sys.stderr.write(f"bitlocker-tools: cannot start: {exc}\n")
        sys.exit(3)
    at = sys.path.index(archive) + 1
    sys.path[at:at] = folders
    from bitlocker_tools.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
