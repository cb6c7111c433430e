"""dissect.target opens BitLocker volumes through bitlocker-tools.

dissect.target finds encrypted volumes by asking each class in
``dissect.target.volume.ENCRYPTED_VOLUME_MANAGERS`` whether it recognises a volume, and opens the
volume with every class that does; its BitLocker class is backed by dissect.fve, pure Python (in
docs/performance.md's bench table a key stretch takes 574 ms and AES-XTS-128 runs at 4.2 MB/s).
The class here takes the same keys from dissect's keychain (``-K FILE``, ``-Kv VALUE``,
``DISSECT_KEYCHAIN_VALUE``, ``keychain.register_key``) and opens the volume with our C core, so
``target-query``, ``target-shell`` and ``Target.open()`` read BitLocker evidence at the speed of
``bitlocker-tools decrypt``.

:func:`install` puts it in dissect's place; that list is walked in full (every class that
recognises a volume opens it), so dissect's own class is taken out of it rather than left behind
ours, and is called by ours for what ours cannot open: a volume whose metadata we cannot read, or
a key we cannot parse where no other key opens the volume. The stock command line loads it from
the plugin folder :func:`plugin_path` names (``--plugin-path``, ``DISSECT_PLUGINS``)::

    target-query -K keys.csv --plugin-path="$(python3 -m bitlocker_tools.dissect_target)" -f walkfs disk.E01

Keys are never logged. A volume no key opens stays locked the way dissect leaves it: an error
logged by dissect, no decrypted volume, the rest of the target opened as usual.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator

from dissect.target import volume as dissect_volume
from dissect.target.exceptions import VolumeSystemError
from dissect.target.helpers.keychain import Key, KeyType
from dissect.target.helpers.lazy import LazyAttr, import_lazy
from dissect.target.volume import EncryptedVolumeSystem, Volume

from .boot_sector import parse_boot_sector
from .credentials import Credentials, key_bytes_from
from .errors import BadInputError, BitLockerError, CredentialFormatError, UnsupportedError, WrongKeyError
from .format.boot_sector import BOOT_SECTOR_SIZE
from .format.constants import EncryptionMethod, ProtectorType
from .keyfiles import parse_bek
from .recovery_password import parse as parse_recovery_password

if TYPE_CHECKING:
    from .protectors import UnlockResult
    from .volume import BitLockerVolume

#: Under dissect's logger tree, so that ``-v`` / ``-q`` of the dissect tools govern these lines too.
log = logging.getLogger("dissect.target.bitlocker_tools")

_DISSECT_MODULE = "dissect.target.volumes.bde"
_DISSECT_CLASS = "BitlockerVolumeSystem"
PLUGIN_DIR = Path(__file__).resolve().parent / "dissect_plugins"


class BitLockerToolsVolumeSystemError(VolumeSystemError):
    """No key in the keychain opens the volume (what dissect's own class raises, by another name)."""


class _Unusable(Exception):
    """A keychain key that is not a credential we can use (malformed, unreadable file)."""


def _credentials_for(key: Key) -> Credentials:
    """The one credential a keychain key stands for; _Unusable says why there is none."""
    value = key.value
    try:
        if key.key_type == KeyType.PASSPHRASE:
            return Credentials(passwords=[value.decode() if isinstance(value, bytes) else str(value)])
        if key.key_type == KeyType.RECOVERY_KEY:
            return Credentials(recovery_passwords=[parse_recovery_password(str(value))])
        if key.key_type == KeyType.FILE:
            # Not credentials.startup_key_from: that gives ``-`` (stdin) and a leading ``@`` a
            # meaning of the command line, and a keychain row's path is only ever a path.
            path = Path(str(value))
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise _Unusable(f"cannot read the key file {path}: {exc.strerror}") from None
            return Credentials(startup_keys=[parse_bek(raw, str(path))])
        if key.key_type == KeyType.RAW:
            # register_key turns a raw key's hex into bytes (and drops what bytes.fromhex refuses,
            # FVEK:TWEAK among it); a Key built by hand may keep the text, read here as --fvek
            # reads it (FVEK, FVEK:TWEAK, spaced hex), but never as ``-`` / ``@FILE``.
            if isinstance(value, bytes):
                return Credentials(fvek=value)
            text = str(value).strip()
            if text == "-" or text.startswith("@"):
                raise _Unusable("a raw key must be hex digits")
            return Credentials(fvek=key_bytes_from(text, "FVEK"))
    except (CredentialFormatError, BadInputError, ValueError) as exc:
        raise _Unusable(str(exc)) from None
    raise _Unusable(f"key type {key.key_type} is not a BitLocker credential")


def _describe(key: Key) -> str:
    """A key for the log: its type and what it is bound to, never its value."""
    bound = f" for {key.identifier}" if key.identifier else ""
    return f"{key.key_type.value} key{bound}" + (" (wildcard)" if key.is_wildcard else "")


def _identifiers(volume: BitLockerVolume) -> set[str]:
    """What a keychain row may name a volume by: its protectors' GUIDs (what dissect matches),
    and their Key IDs, the 8 hex digits the Windows recovery screen shows."""
    ids = set()
    for p in volume.metadata.protectors:
        ids.add(p.guid.lower())
        ids.add(p.key_id.lower())
    return ids


class BitLockerToolsVolumeSystem(EncryptedVolumeSystem):
    """dissect.target's encrypted volume system for BitLocker, backed by bitlocker-tools.

    After opening, :attr:`bitlocker` is the parsed volume and :attr:`unlocked` the keys and how
    they were found (the protector, ``via``); the decrypted :class:`Volume` reads through
    :class:`bitlocker_tools.stream.DecryptedStream`.
    """

    #: dissect's provider name: keychain rows ``bitlocker,...`` are ours, as they are dissect's
    __type__ = "bitlocker"

    def __init__(self, fh: BinaryIO, *args: Any, **kwargs: Any):
        super().__init__(fh, *args, **kwargs)
        self.bitlocker: BitLockerVolume | None = None
        self.unlocked: UnlockResult | None = None

    @staticmethod
    def _detect(fh: BinaryIO) -> bool:
        if parse_boot_sector(fh.read(BOOT_SECTOR_SIZE)) is not None:
            return True
        # Whatever dissect.fve recognises and we do not, it shall still open (through the fallback).
        dissect_cls = _dissect_class()
        if dissect_cls is None:
            return False
        fh.seek(0)
        return bool(dissect_cls._detect(fh))

    # --- opening --------------------------------------------------------------------------------

    def _name(self) -> str:
        fh = self.fh
        if isinstance(fh, Volume):
            return f"volume {fh.number}" + (f" ({fh.name})" if fh.name else "")
        return "volume"

    def _volumes(self) -> Iterator[Volume]:
        from .stream import DecryptedStream
        from .volume import BitLockerVolume

        name = self._name()
        try:
            bitlocker = BitLockerVolume(self.fh, 0, getattr(self.fh, "size", None), name=name)
            result, unusable = self._unlock(bitlocker)
            stream = DecryptedStream(bitlocker, result) if result is not None else None
        except Exception as exc:  # noqa: BLE001 - any failure of ours must leave dissect's path open
            reason = str(exc) if isinstance(exc, BitLockerError) else f"{type(exc).__name__}: {exc}"
            yield from self._fallback(f"bitlocker-tools cannot open {name}: {reason}")
            return
        if stream is None:
            if unusable:
                yield from self._fallback(f"no key opens {name} for bitlocker-tools, which cannot use "
                                          f"{len(unusable)} of them ({'; '.join(unusable)})")
                return
            tried = len(self._keys_for(bitlocker))
            raise BitLockerToolsVolumeSystemError(
                f"Failed to unlock BDE volume: {name}: none of the {tried} keychain key(s) for it opens it")
        self.bitlocker, self.unlocked = bitlocker, result
        for warning in [*bitlocker.warnings, *result.warnings]:
            log.warning("%s", warning)
        yield Volume(fh=stream, size=stream.size, raw=self.fh, disk=self.disk, vs=self, **self._details())

    def _details(self) -> dict[str, Any]:
        """Number, offset, type, name and GUID of the decrypted volume: the encrypted one's."""
        fh = self.fh
        if isinstance(fh, Volume):
            return {"number": fh.number, "offset": fh.offset, "vtype": fh.type, "name": fh.name, "guid": fh.guid}
        return {"number": 1, "offset": 0, "vtype": None, "name": None}

    def _keys_for(self, bitlocker: BitLockerVolume) -> list[Key]:
        """The keychain keys to try, in dissect's order: those bound to this volume, then the
        unbound ones."""
        ids = _identifiers(bitlocker)
        bound = [k for k in self.keys if k.identifier and k.identifier.strip("{}").lower() in ids]
        return bound + self.get_keys_without_identifier()

    def _unlock(self, bitlocker: BitLockerVolume) -> tuple[UnlockResult | None, list[str]]:
        """The first key that opens the volume (a clear key or no key at all needing none), and
        the keys that could not be used (non-wildcard ones only: a wildcard value is tried as
        every key type and is expected not to parse as most)."""
        from .protectors import unlock

        name = bitlocker.name
        if bitlocker.method == EncryptionMethod.NONE:
            log.info("%s: opened by bitlocker-tools: fully decrypted, no key needed", name)
            return unlock(bitlocker, Credentials()), []
        if any(p.type == ProtectorType.CLEAR_KEY for p in bitlocker.metadata.protectors):
            try:
                result = unlock(bitlocker, Credentials(clear_key=True))
                log.info("%s: opened by bitlocker-tools with its clear key (protection suspended)", name)
                return result, []
            except (WrongKeyError, UnsupportedError) as exc:
                log.warning("%s: the clear key does not open it (%s); trying the keychain", name, exc)
        unusable: list[str] = []
        for key in self._keys_for(bitlocker):
            try:
                creds = _credentials_for(key)
            except _Unusable as exc:
                if not key.is_wildcard:
                    log.warning("%s: skipping the %s: %s", name, _describe(key), exc)
                    unusable.append(f"{_describe(key)}: {exc}")
                continue
            try:
                result = unlock(bitlocker, creds)
            except (WrongKeyError, UnsupportedError) as exc:
                if not key.is_wildcard:
                    log.info("%s: the %s does not open it: %s", name, _describe(key), exc)
                continue
            via = result.via.value + (f" protector {result.protector.guid}" if result.protector else "")
            log.info("%s: opened by bitlocker-tools with the %s (%s)", name, _describe(key), via)
            return result, []
        return None, unusable

    def _fallback(self, reason: str) -> Iterator[Volume]:
        """Hand the volume to dissect's own BitLocker class (dissect.fve)."""
        dissect_cls = _dissect_class()
        if dissect_cls is None:
            raise BitLockerToolsVolumeSystemError(f"{reason}; dissect.fve, the fallback, is not installed")
        log.warning("%s; trying dissect.fve", reason)
        self.fh.seek(0)
        yield from dissect_cls(self.fh, disk=self.disk).volumes


def _dissect_class() -> type[EncryptedVolumeSystem] | None:
    """dissect's own BitLocker volume system (imports dissect.fve); None when it is missing."""
    try:
        module = __import__(_DISSECT_MODULE, fromlist=[_DISSECT_CLASS])
    except ImportError:
        return None
    return getattr(module, _DISSECT_CLASS)


def _is_dissect_bde(manager: object) -> bool:
    """Whether an entry of the manager list is dissect's own BitLocker class. The list holds
    lazy references (touching their attributes would import dissect.fve), so those are told by
    the module and name they point at."""
    if isinstance(manager, LazyAttr):
        return manager._module._module_name == _DISSECT_MODULE and manager._attr == _DISSECT_CLASS
    return isinstance(manager, type) and manager.__module__ == _DISSECT_MODULE and manager.__name__ == _DISSECT_CLASS


def install() -> None:
    """Make dissect.target open BitLocker volumes with bitlocker-tools, in this process.

    Idempotent. Ours goes first in ``ENCRYPTED_VOLUME_MANAGERS`` and dissect's own BitLocker
    class leaves the list (dissect opens a volume with every class that recognises it; leaving
    both would open each volume twice); ours calls dissect's for what it cannot open.
    """
    managers = dissect_volume.ENCRYPTED_VOLUME_MANAGERS
    rest = [m for m in managers if m is not BitLockerToolsVolumeSystem and not _is_dissect_bde(m)]
    managers[:] = [BitLockerToolsVolumeSystem, *rest]


def uninstall() -> None:
    """Give dissect.target its own BitLocker class back, where ours was."""
    managers = dissect_volume.ENCRYPTED_VOLUME_MANAGERS
    if BitLockerToolsVolumeSystem not in managers:
        return
    at = managers.index(BitLockerToolsVolumeSystem)
    stock = getattr(import_lazy(_DISSECT_MODULE), _DISSECT_CLASS)
    managers[:] = [m for m in managers if m is not BitLockerToolsVolumeSystem]
    if not any(_is_dissect_bde(m) for m in managers):
        managers.insert(at, stock)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """``with installed():`` ours in place for the block, the list as it was afterwards."""
    managers = dissect_volume.ENCRYPTED_VOLUME_MANAGERS
    before = managers[:]
    install()
    try:
        yield
    finally:
        managers[:] = before


def plugin_path() -> Path:
    """The folder for dissect's ``--plugin-path`` or ``DISSECT_PLUGINS``: its one module calls
    :func:`install` when the dissect tools load it."""
    return PLUGIN_DIR


if __name__ == "__main__":
    print(plugin_path())
