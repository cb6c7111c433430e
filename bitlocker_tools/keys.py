"""Every key a volume holds, from one unlock.

An examiner may hold a suspended volume's clear key, a user password, a ``.BEK``, or a VMK or
FVEK pulled from memory, while Windows, escrow audits and other tools want the 48-digit recovery
password and its Key ID. The volume keeps them: inside each recovery-password protector's stretch
key, Windows stores the 16-byte key behind the 48 digits wrapped with the VMK (Vista as a plain
property, Windows 7+ as entry type 0x0012; Windows 10+ also keeps the stretched key, 0x0013).
With the VMK, :func:`volume_keys` unwraps that copy and proves it: the recovered password, run
through the stretch with the protector's salt, must open the protector's VMK blob.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._core import load
from .crypto import kdf
from .errors import AuthenticationError
from .format.constants import KeyMethod, ProtectorType, ValueType
from .keyfiles import StartupKey
from .metadata import AesCcmValue, Protector, StretchKeyValue
from .protectors import UnlockResult, Via, try_vmk, unwrap_key
from .recovery_password import RecoveryPassword

if TYPE_CHECKING:
    from ._core import Core
    from .volume import BitLockerVolume


@dataclass
class RecoveredPassword:
    """The recovery password of one protector, or why it could not be recovered."""

    protector: Protector
    password: RecoveryPassword | None
    note: str | None = None  # why ``password`` is None


@dataclass
class ProtectorState:
    """A protector as the unlock left it."""

    protector: Protector
    opened: bool  # the credential given opened this protector


@dataclass
class VolumeKeys:
    """What one unlock yields: the protectors, the recovery passwords behind them, the keys."""

    unlocked: UnlockResult
    protectors: list[ProtectorState] = field(default_factory=list)
    recovery_passwords: list[RecoveredPassword] = field(default_factory=list)


def recover_password(protector: Protector, vmk: bytes | None, core: Core | None = None) -> RecoveredPassword:
    """Unwrap the copy of a recovery-password protector's 16-byte key with the VMK, and prove it
    by opening the protector with it (one stretch)."""
    if vmk is None:
        return RecoveredPassword(protector, None, "no VMK: an FVEK opens no protector, and the stored copy of "
                                                  "the recovery password is wrapped with the VMK")
    stretch = protector.entry.child(ValueType.STRETCH_KEY)
    if stretch is None or not isinstance(stretch.value, StretchKeyValue):
        return RecoveredPassword(protector, None, "the protector has no stretch-key entry")
    copies = [c.value for c in stretch.children if isinstance(c.value, AesCcmValue)]
    for blob in copies:
        try:
            value = unwrap_key(vmk, blob, core)
        except AuthenticationError:
            continue
        if value.method != KeyMethod.STRETCH or len(value.key) != 16:
            continue  # Windows 10's stretched-key copy (0x2008), not the 16-byte key
        password = RecoveryPassword.from_key16(value.key)
        stretched = kdf.stretch(kdf.recovery_initial(password.key16), stretch.value.salt, core)
        if try_vmk(protector, stretched, core) == vmk:
            return RecoveredPassword(protector, password)
        return RecoveredPassword(protector, None, "the stored copy does not open its protector (damaged metadata)")
    if not copies:
        return RecoveredPassword(protector, None, "the protector stores no copy of its recovery password")
    return RecoveredPassword(protector, None, "no stored copy unwraps with this VMK")


def volume_keys(volume: BitLockerVolume, unlocked: UnlockResult, core: Core | None = None) -> VolumeKeys:
    """Every protector of ``volume`` and, for each recovery-password protector, its password."""
    core = core or load()
    opened = unlocked.protector.guid if unlocked.protector is not None else None
    keys = VolumeKeys(unlocked)
    for p in volume.metadata.protectors:
        keys.protectors.append(ProtectorState(p, p.guid == opened))
        if p.type == ProtectorType.RECOVERY_PASSWORD:
            keys.recovery_passwords.append(recover_password(p, unlocked.vmk, core))
    return keys


def mask(password: RecoveryPassword) -> str:
    """The password with every group but the last hidden: enough to tell keys apart, not to use one."""
    groups = str(password).split("-")
    return "-".join(["******"] * (len(groups) - 1) + groups[-1:])


def keychain_rows(keys: VolumeKeys) -> list[tuple[str, str, str, str]]:
    """dissect.target keychain rows (``provider, key_type, identifier, value``) that open the
    volume again: each recovered recovery password under its protector's GUID, the password or
    the ``.BEK`` that opened a protector, and, when none of those exists, the FVEK as a raw key
    bound to one of the volume's protector GUIDs (a raw key is tried without any check)."""
    rows = [("bitlocker", "recovery_key", r.protector.guid, str(r.password))
            for r in keys.recovery_passwords if r.password is not None]
    unlocked = keys.unlocked
    p, credential = unlocked.protector, unlocked.credential
    if p is not None and unlocked.via == Via.PASSWORD and isinstance(credential, str):
        rows.append(("bitlocker", "passphrase", p.guid, credential))
    if p is not None and unlocked.via == Via.STARTUP_KEY and isinstance(credential, StartupKey):
        rows.append(("bitlocker", "file", p.guid, os.path.abspath(credential.path)))
    if not rows and unlocked.fvek and keys.protectors:
        rows.append(("bitlocker", "raw", keys.protectors[0].protector.guid, unlocked.fvek.hex()))
    return rows
