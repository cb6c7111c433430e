"""bitlocker-tools: find, inspect, unlock and decrypt BitLocker volumes offline.

The small public API, in the order data flows (evidence is only ever read)::

    from bitlocker_tools import open_source, scan, select, collect, unlock, DecryptedStream

    with open_source("disk.E01") as src:                # image, container or device, read-only
        for report in scan(src).volumes:                  # every partition, BitLocker or not
            print(report.partition, report.bitlocker)
        vol = select(src, volume=2)                       # a BitLockerVolume (metadata parsed)
        keys = unlock(vol, collect(recovery_password=["111111-..."]))
        plain = DecryptedStream(vol, keys)                # seekable file object of the plaintext

Names are imported lazily so that ``import bitlocker_tools`` costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "open_source": "sources",
    "Source": "sources",
    "Partition": "sources",
    "scan": "scan",
    "select": "scan",
    "BitLockerVolume": "volume",
    "Credentials": "credentials",
    "collect": "credentials",
    "parse_bek": "keyfiles",
    "unlock": "protectors",
    "UnlockResult": "protectors",
    "DecryptedStream": "stream",
    "decrypt_to": "decrypt",
    "identify_filesystem": "filesystems",
    "RecoveryPassword": "recovery_password",
    "parse_recovery_password": ("recovery_password", "parse"),
    "BitLockerError": "errors",
    "BadInputError": "errors",
    "WrongKeyError": "errors",
    "NotFoundError": "errors",
    "CredentialFormatError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'bitlocker_tools' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    return getattr(importlib.import_module(f".{module}", __name__), attr)
