"""dissect.target with bitlocker-tools' BitLocker volume system (bitlocker_tools.dissect_target).

The corpus images keep only their metadata, so an NTFS made by mkntfs/ntfscp is sealed into
copies of them (tests/sealed_ntfs.py; Windows' metadata untouched). What dissect.target reads
through our class is checked against the files put in, against dissect's own class (dissect.fve,
an independent implementation) on the same volume, and through the stock command-line tools.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dissect.target")
pytest.importorskip("dissect.fve")

import diskbuild  # noqa: E402
import sealed_ntfs  # noqa: E402
from dissect.target import Target  # noqa: E402
from dissect.target import volume as dissect_volume  # noqa: E402
from dissect.target.helpers import keychain  # noqa: E402

from bitlocker_tools.credentials import collect  # noqa: E402
from bitlocker_tools.dissect_target import (  # noqa: E402
    BitLockerToolsVolumeSystem,
    install,
    installed,
    plugin_path,
    uninstall,
)
from bitlocker_tools.protectors import Via  # noqa: E402
from bitlocker_tools.stream import DecryptedStream  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# --- the volumes -----------------------------------------------------------------------------------


def _entry(manifest: dict, name: str) -> dict:
    return next(v for v in manifest["volumes"] if v["file"] == name + ".gz")


def _protector(entry: dict, kind: str) -> str:
    return next(p["id"] for p in entry["protectors"] if p["type"] == kind)


@pytest.fixture(scope="session")
def files() -> dict[str, bytes]:
    return sealed_ntfs.sample_files()


@pytest.fixture(scope="session")
def plain_ntfs(tmp_path_factory, files) -> bytes:
    if not sealed_ntfs.have_ntfs_tools():
        pytest.skip("mkntfs and ntfscp (Debian ntfs-3g) are needed to make the NTFS")
    return sealed_ntfs.make_ntfs(tmp_path_factory.mktemp("ntfs") / "plain.img", 32 << 20, files)


@pytest.fixture(scope="session")
def sealed(tmp_path_factory, corpus_dir, manifest, plain_ntfs):
    """``sealed(name)``: corpus volume ``name`` with the NTFS inside (made once per session)."""
    folder = tmp_path_factory.mktemp("sealed")
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            c = _entry(manifest, name)["credentials"]
            creds = collect(recovery_password=[c["recovery_password"]] if "recovery_password" in c else None,
                            password=[c["password"]] if "password" in c else None,
                            bek=[str(corpus_dir / c["bek"])] if "bek" in c else None,
                            clear_key=bool(c.get("clear_key")), use_env=False)
            made[name] = folder / name
            sealed_ntfs.seal(corpus_dir / name, creds, plain_ntfs, made[name])
        return made[name]

    return make


@pytest.fixture(autouse=True)
def clean_keychain():
    """dissect's keychain is one list per process: each test starts and ends with it empty."""
    before = keychain.KEYCHAIN[:]
    keychain.KEYCHAIN.clear()
    yield
    keychain.KEYCHAIN[:] = before


@pytest.fixture
def fve_opens(monkeypatch) -> list:
    """Every dissect.fve BDE object made while the test runs (dissect's class makes one per volume)."""
    from dissect.fve import bde

    made = []
    real = bde.BDE

    class Counted(real):
        def __init__(self, *args, **kwargs):
            made.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bde, "BDE", Counted)
    return made


def _recovery_key(manifest: dict, name: str = "recovery_password.bin") -> tuple[str, str]:
    entry = _entry(manifest, name)
    return entry["credentials"]["recovery_password"], _protector(entry, "recovery_password")


def _bitlocker(target) -> list:
    """The decrypted BitLocker volumes of a target (dissect's class or ours)."""
    return [v for v in target.volumes if v.vs is not None and v.vs.__type__ == "bitlocker"]


def _root(target) -> list[str]:
    """The user's files in the root of the target's one filesystem (no NTFS system files)."""
    return sorted(n for n in target.fs.listdir("/") if not n.startswith("$"))


# --- install -----------------------------------------------------------------------------------------


def test_install_is_idempotent_puts_ours_first_and_takes_dissects_out():
    managers = dissect_volume.ENCRYPTED_VOLUME_MANAGERS
    stock = managers[:]
    try:
        install()
        install()
        assert managers[0] is BitLockerToolsVolumeSystem
        assert managers.count(BitLockerToolsVolumeSystem) == 1
        # dissect opens a volume with every class that recognises it: its own must have left
        assert len(managers) == len(stock) and repr(managers[1:]) == repr(stock[1:])
        uninstall()
        assert BitLockerToolsVolumeSystem not in managers
        assert [repr(m) for m in managers] == [repr(m) for m in stock]
        before = managers[:]
        with installed():
            assert managers[0] is BitLockerToolsVolumeSystem
        assert all(a is b for a, b in zip(managers, before)) and len(managers) == len(before)
    finally:
        managers[:] = stock


# --- reading through dissect.target -----------------------------------------------------------------


def test_target_open_lists_and_reads_the_ntfs_through_ours(sealed, manifest, files, fve_opens):
    rp, guid = _recovery_key(manifest)
    # a GUID as Windows prints it (upper case, braces): dissect's identifiers are compared lowered
    keychain.register_key(keychain.KeyType.RECOVERY_KEY, rp, identifier="{" + guid.upper() + "}", provider="bitlocker")
    with installed():
        target = Target.open(sealed("recovery_password.bin"))
    [vol] = _bitlocker(target)
    assert type(vol.vs) is BitLockerToolsVolumeSystem
    assert isinstance(vol.fh, DecryptedStream)
    assert vol.vs.unlocked.via == Via.RECOVERY_PASSWORD and vol.vs.unlocked.protector.guid == guid
    assert fve_opens == [], "dissect.fve opened the volume"
    assert vol.fs is not None and vol.fs.__type__ == "ntfs"
    assert _root(target) == sorted(files)
    for name, content in files.items():
        assert target.fs.open("/" + name).read() == content, name


def _register_from_manifest(manifest: dict, name: str) -> None:
    """The volume's recovery password (bound to its protector) or else its password, as keychain rows."""
    entry = _entry(manifest, name)
    c = entry["credentials"]
    if "recovery_password" in c:
        guid = _protector(entry, "recovery_password")
        keychain.register_key(keychain.KeyType.RECOVERY_KEY, c["recovery_password"], identifier=guid,
                              provider="bitlocker")
    else:
        keychain.register_key(keychain.KeyType.PASSPHRASE, c["password"], provider="bitlocker")


# Windows 10 AES-XTS; a used-space-only conversion in progress (the encrypt-on-write chunk map);
# Windows 7 AES-256-CBC, conversion part way (and a clear key); AES-CBC with the Elephant diffuser
AGREEMENT = ["recovery_password.bin", "eow_partial.bin", "win7_partial.bin", "aes_256_diffuser.bin"]


@pytest.mark.parametrize("name", AGREEMENT)
def test_the_listing_and_the_files_agree_with_dissect_fve(name, sealed, manifest, files, fve_opens):
    _register_from_manifest(manifest, name)
    path = sealed(name)
    with installed():
        ours = Target.open(path)
    assert fve_opens == []
    assert [type(v.vs) for v in _bitlocker(ours)] == [BitLockerToolsVolumeSystem]
    theirs = Target.open(path)  # dissect's own class, dissect.fve underneath
    assert len(fve_opens) == 1
    [vol] = _bitlocker(theirs)
    assert type(vol.vs).__name__ == "BitlockerVolumeSystem" and type(vol.vs) is not BitLockerToolsVolumeSystem
    # the whole root, NTFS system files included, and a folder below it
    assert sorted(ours.fs.listdir("/")) == sorted(theirs.fs.listdir("/"))
    assert sorted(ours.fs.listdir("/$Extend")) == sorted(theirs.fs.listdir("/$Extend"))
    assert _root(theirs) == sorted(files)
    for file in sorted(files) + ["$MFT", "$Boot", "$LogFile"]:
        mine = ours.fs.open("/" + file).read()
        assert mine == theirs.fs.open("/" + file).read(), file
        assert file not in files or mine == files[file], file


def _fvek(manifest: dict, name: str) -> str:
    return _entry(manifest, name)["credentials"]["fvek"]


# (corpus volume, keychain rows as register_key arguments, how ours must have opened it)
KEYS = {
    "passphrase, no provider, no identifier": (
        "recovery_password.bin", lambda m, cdir: [(keychain.KeyType.PASSPHRASE, "password12!@", None, None)],
        Via.PASSWORD),
    "recovery key bound to the Key ID": (
        "recovery_password.bin",
        lambda m, cdir: [(keychain.KeyType.RECOVERY_KEY, _recovery_key(m)[0], _recovery_key(m)[1][:8].upper(),
                          "bitlocker")], Via.RECOVERY_PASSWORD),
    "a wrong key first, then the right one": (
        "recovery_password.bin",
        lambda m, cdir: [(keychain.KeyType.PASSPHRASE, "not the password", None, "bitlocker"),
                         (keychain.KeyType.RECOVERY_KEY, _recovery_key(m)[0], None, "bitlocker")],
        Via.RECOVERY_PASSWORD),
    ".BEK file": (
        "startup_key.bin", lambda m, cdir: [(keychain.KeyType.FILE, str(cdir / "startup_key.bek"), None, "bitlocker")],
        Via.STARTUP_KEY),
    "raw FVEK (the corpus manifest's)": (
        "aes-xts_128.bin", lambda m, cdir: [(keychain.KeyType.RAW, _fvek(m, "aes-xts_128.bin"), None, "bitlocker")],
        Via.FVEK),
    "no key: a suspended volume's clear key": ("suspended.bin", lambda m, cdir: [], Via.CLEAR_KEY),
    "no key: a fully decrypted volume": ("decrypted.bin", lambda m, cdir: [], Via.NONE),
}


@pytest.mark.parametrize("case", list(KEYS))
def test_every_keychain_key_type_opens_through_ours(case, sealed, manifest, corpus_dir, files, fve_opens):
    name, rows, via = KEYS[case]
    path = sealed(name)
    for key_type, value, identifier, provider in rows(manifest, corpus_dir):
        keychain.register_key(key_type, value, identifier=identifier, provider=provider)
    with installed():
        target = Target.open(path)
    [vol] = _bitlocker(target)
    assert type(vol.vs) is BitLockerToolsVolumeSystem and vol.vs.unlocked.via == via
    assert fve_opens == []
    assert _root(target) == sorted(files)


def test_a_wildcard_value_opens_like_target_query_kv(sealed, manifest, files, fve_opens):
    """``-Kv VALUE`` registers the value as every key type at once; the types it is not must be
    passed over quietly, without handing the volume to dissect.fve."""
    keychain.register_wildcard_value(_recovery_key(manifest)[0])
    with installed():
        target = Target.open(sealed("recovery_password.bin"))
    [vol] = _bitlocker(target)
    assert vol.vs.unlocked.via == Via.RECOVERY_PASSWORD and fve_opens == []
    assert _root(target) == sorted(files)


def _spaced(hexkey: str) -> str:
    return " ".join(hexkey[i:i + 4] for i in range(0, len(hexkey), 4))


# A raw keychain value as --fvek takes it. register_key passes only what bytes.fromhex reads (and
# drops FVEK:TWEAK), so these are Keys built by hand, as a caller of dissect's API may make them.
RAW_TEXT = {
    "FVEK:TWEAK": lambda fvek: f"{fvek[:len(fvek) // 2]}:{fvek[len(fvek) // 2:]}",
    "hex spaced in groups of four, upper case": lambda fvek: _spaced(fvek.upper()),
}


@pytest.mark.parametrize("form", list(RAW_TEXT))
def test_a_raw_key_as_text_reads_as_the_fvek_option_does(form, sealed, manifest, files, fve_opens):
    value = RAW_TEXT[form](_fvek(manifest, "aes-xts_128.bin"))
    keychain.KEYCHAIN.append(keychain.Key(keychain.KeyType.RAW, value, provider="bitlocker"))
    with installed():
        target = Target.open(sealed("aes-xts_128.bin"))
    [vol] = _bitlocker(target)
    assert type(vol.vs) is BitLockerToolsVolumeSystem and vol.vs.unlocked.via == Via.FVEK
    assert fve_opens == []
    assert _root(target) == sorted(files)


@pytest.mark.parametrize("value", ["-", "@/etc/hostname"])
def test_a_raw_key_never_reads_stdin_or_a_file(value, monkeypatch):
    """``-`` and ``@FILE`` mean something on our command line, nothing in a keychain row."""
    from bitlocker_tools import dissect_target

    monkeypatch.setattr(sys, "stdin", None)  # reading it would raise AttributeError, not _Unusable
    with pytest.raises(dissect_target._Unusable, match="hex digits"):
        dissect_target._credentials_for(keychain.Key(keychain.KeyType.RAW, value, provider="bitlocker"))


def test_a_volume_inside_an_e01_disk_keeps_its_partition(sealed, manifest, files, tmp_path):
    """The usual evidence: a GPT disk in an E01, a FAT partition beside the BitLocker one."""
    for tool in ("sgdisk", "ewfacquire"):
        if not diskbuild.have(tool):
            pytest.skip(f"{tool} is needed to build the disk")
    volume = sealed("recovery_password.bin")
    disk = diskbuild.build_gpt(tmp_path / "disk.raw", [volume])
    e01 = diskbuild.ewf_acquire(disk.path, tmp_path / "disk")
    rp, guid = _recovery_key(manifest)
    keychain.register_key(keychain.KeyType.RECOVERY_KEY, rp, identifier=guid, provider="bitlocker")
    with installed():
        target = Target.open(e01)
    [vol] = _bitlocker(target)
    part = disk.part_for(volume)
    assert type(vol.vs) is BitLockerToolsVolumeSystem
    assert (vol.number, vol.offset, vol.guid) == (part.number, part.offset, vol.raw.guid)
    # dissect.volume sizes a GPT partition as (last LBA - first LBA) sectors, one short of the
    # inclusive last LBA; the decrypted volume is as long as the partition dissect hands over
    assert vol.size == vol.raw.size >= part.size - 512
    assert sorted(fs.__type__ for fs in target.filesystems) == (["fat", "ntfs"] if diskbuild.have("mkfs.fat")
                                                                 else ["ntfs"])
    ntfs = next(fs for fs in target.filesystems if fs.__type__ == "ntfs")
    assert sorted(n for n in ntfs.listdir("/") if not n.startswith("$")) == sorted(files)
    assert ntfs.open("/notes café.txt").read() == files["notes café.txt"]


# --- what ours cannot open ---------------------------------------------------------------------------


def _wrong(rp: str) -> str:
    """A recovery password that passes every group check but is not this volume's."""
    groups = rp.split("-")
    groups[0] = f"{(int(groups[0]) + 11) % 720896:06d}"
    return "-".join(groups)


def _locked_shape(target) -> list:
    return [(v.size, v.vs.__type__ if v.vs else None, v.fs.__type__ if v.fs else None) for v in target.volumes]


def test_a_wrong_key_leaves_the_volume_locked_as_dissect_does(sealed, manifest, fve_opens, caplog):
    rp, guid = _recovery_key(manifest)
    keychain.register_key(keychain.KeyType.RECOVERY_KEY, _wrong(rp), identifier=guid, provider="bitlocker")
    keychain.register_key(keychain.KeyType.PASSPHRASE, "not the password", provider="bitlocker")
    path = sealed("recovery_password.bin")
    with caplog.at_level(logging.INFO, logger="dissect"), installed():
        ours = Target.open(path)  # must not raise
    assert fve_opens == [], "a key that we could read but that is wrong is no reason to ask dissect.fve"
    assert "Failed to unlock BDE volume" in caplog.text and "none of the 2 keychain key(s)" in caplog.text
    assert _wrong(rp) not in caplog.text, "a key was logged"
    theirs = Target.open(path)
    assert len(fve_opens) == 1
    assert _bitlocker(ours) == [] and _bitlocker(theirs) == []
    assert len(ours.filesystems) == len(theirs.filesystems) == 0
    assert _locked_shape(ours) == _locked_shape(theirs)


def test_a_key_we_cannot_parse_goes_to_dissect_fve(sealed, manifest, fve_opens, caplog):
    """A recovery key that fails our checks may be one dissect.fve reads otherwise: it is asked
    (and, the key being wrong, leaves the volume locked too, without an exception)."""
    keychain.register_key(keychain.KeyType.RECOVERY_KEY, "123456-654321", provider="bitlocker")
    with caplog.at_level(logging.WARNING, logger="dissect"), installed():
        target = Target.open(sealed("recovery_password.bin"))
    assert len(fve_opens) == 1 and "trying dissect.fve" in caplog.text
    assert _bitlocker(target) == [] and len(target.filesystems) == 0


def test_a_volume_we_cannot_read_falls_back_to_dissect_fve(sealed, manifest, files, fve_opens, monkeypatch, caplog):
    """Whatever stops our reader (here an injected parse failure) hands the volume to dissect's
    own class, which opens it with the same keychain."""
    from bitlocker_tools import volume as our_volume
    from bitlocker_tools.errors import BadInputError

    def refuse(self, *args, **kwargs):
        raise BadInputError("injected: metadata we cannot read")

    monkeypatch.setattr(our_volume.BitLockerVolume, "__init__", refuse)
    rp, guid = _recovery_key(manifest)
    keychain.register_key(keychain.KeyType.RECOVERY_KEY, rp, identifier=guid, provider="bitlocker")
    with caplog.at_level(logging.WARNING, logger="dissect"), installed():
        target = Target.open(sealed("recovery_password.bin"))
    [vol] = _bitlocker(target)
    assert type(vol.vs).__name__ == "BitlockerVolumeSystem" and len(fve_opens) == 1
    assert "injected: metadata we cannot read" in caplog.text and "trying dissect.fve" in caplog.text
    assert _root(target) == sorted(files)


# --- the stock command line ----------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not os.access(found, os.X_OK):
        pytest.skip(f"dissect.target's {name} is not installed")
    return found


def _dissect(tool: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("DISSECT_PLUGINS", None)
    full.update(env or {})
    return subprocess.run([_tool(tool), *args], capture_output=True, env=full, timeout=300, cwd="/")


@pytest.fixture(scope="module")
def keychain_file(tmp_path_factory, sealed, manifest) -> Path:
    """The keychain ``bitlocker-tools keys --keychain`` writes for the sealed volume."""
    out = tmp_path_factory.mktemp("keychain") / "keys.csv"
    rp, guid = _recovery_key(manifest)
    proc = subprocess.run([sys.executable, "-m", "bitlocker_tools", "keys", str(sealed("recovery_password.bin")),
                           "--recovery-password", rp, "--keychain", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"bitlocker,recovery_key,{guid},{rp}" in out.read_text().splitlines()
    return out


def _names(ls_output: bytes) -> list[str]:
    """target-shell's ``ls /`` without the NTFS system files and alternate data streams."""
    return sorted(n for n in ls_output.decode().splitlines() if n and not n.startswith("$") and ":" not in n)


def test_the_stock_command_line_with_the_plugin_path(sealed, keychain_file, files):
    volume = str(sealed("recovery_password.bin"))
    # the folder as the documentation has the examiner find it
    printed = subprocess.run([sys.executable, "-m", "bitlocker_tools.dissect_target"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip() == str(plugin_path()) and plugin_path().is_dir()
    plugins = f"--plugin-path={printed.stdout.strip()}"

    query = _dissect("target-query", volume, "-K", str(keychain_file), plugins, "-v", "-f", "walkfs", "-s")
    assert query.returncode == 0, query.stderr.decode()
    walked = re.findall(r"path='/([^'/]+)'", query.stdout.decode())
    assert sorted(n for n in walked if not n.startswith("$")) == sorted(files)
    assert "opened by bitlocker-tools" in query.stderr.decode()
    shell = _dissect("target-shell", volume, "-K", str(keychain_file), plugins, "-v", "-c", "ls /")
    assert shell.returncode == 0, shell.stderr.decode()
    assert _names(shell.stdout) == sorted(files)
    log = shell.stderr.decode()
    assert "opened by bitlocker-tools with the recovery_key key" in log, log
    assert "unlocked with" not in log, "dissect.fve's class opened the volume"  # its own success line

    cat = _dissect("target-fs", volume, "-K", str(keychain_file), plugins, "-q", "cat", "/notes café.txt")
    assert cat.returncode == 0 and cat.stdout == files["notes café.txt"]

    # DISSECT_PLUGINS does what --plugin-path does, for every dissect tool at once
    env = _dissect("target-shell", volume, "-K", str(keychain_file), "-v", "-c", "ls /",
                   env={"DISSECT_PLUGINS": str(plugin_path())})
    assert _names(env.stdout) == sorted(files) and "opened by bitlocker-tools" in env.stderr.decode()

    # and the same command without the plugin (dissect.fve) lists the same
    stock = _dissect("target-shell", volume, "-K", str(keychain_file), "-v", "-c", "ls /")
    assert stock.returncode == 0 and stock.stdout == shell.stdout
    assert "opened by bitlocker-tools" not in stock.stderr.decode() and "unlocked with" in stock.stderr.decode()


def test_the_stock_command_line_with_a_wrong_key(sealed, manifest, tmp_path):
    rp, guid = _recovery_key(manifest)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(f"bitlocker,recovery_key,{guid},{_wrong(rp)}\n")
    volume = str(sealed("recovery_password.bin"))
    ours = _dissect("target-fs", volume, "-K", str(wrong), f"--plugin-path={plugin_path()}", "cat", "/notes café.txt")
    theirs = _dissect("target-fs", volume, "-K", str(wrong), "cat", "/notes café.txt")
    for proc in (ours, theirs):  # the tool runs on: the file not found, the unlock failure logged
        assert proc.stdout == b"[!] Path doesn't exist\n" and b"Failed to unlock BDE volume" in proc.stderr
    assert ours.returncode == theirs.returncode == 1
    # dissect's class logs the failure with a traceback, whose locals show the key; ours says one line
    assert b"Traceback" not in ours.stderr and _wrong(rp).encode() not in ours.stderr
