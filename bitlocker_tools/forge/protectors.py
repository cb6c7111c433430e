"""The VMK entries: one key protector each, as Windows writes them (docs/format.md section 3).

A VMK entry is the protector's GUID, time and protection code, then its properties: what the
kind needs to derive its key (a stretch key's salt, a TPM blob, a clear key), with the UNICODE
name Windows 7+ gives some kinds, and last the VMK wrapped with that key. The writing side of
what :mod:`bitlocker_tools.protectors` opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .._core import load
from ..crypto import kdf
from ..format.constants import KEY16_ENTRY_TYPE, EntryType, KeyMethod, ProtectorType, ValueType
from ..format.metadata import BackupInfoValue, TpmValue, UseKeyValue, VmkValue
from ..format.types import datetime_to_filetime
from ..recovery_password import RecoveryPassword
from ..recovery_password import parse as parse_recovery_password
from .entries import CcmSealer, entry, key_entry, stretch_key_entry, unicode_entry
from .randomness import SeededRandom
from .result import ForgedProtector, bek_file
from .spec import PROTECTOR_KEY_SIZE, WRITABLE_PROTECTORS, ProtectorSpec

#: Protector ``i`` is made this many seconds after the volume, plus ``i``.
FIRST_PROTECTOR_SECONDS = 2
SALT_SIZE = 16
#: The TPM-sealed blob of a TPM_ENCODED property.
TPM_BLOB_SIZE = 0x5E

#: What a kind adds to its VMK entry: (its properties, the key that wraps the VMK).
_Properties = tuple[list[bytes], bytes]


@dataclass
class ProtectorWriter:
    """Writes the VMK entries of one block; the nonces come from the block's sealer."""

    rng: SeededRandom
    ccm: CcmSealer
    vmk: bytes
    created: datetime
    v1: bool

    def vmk_entry(self, index: int, spec: ProtectorSpec) -> tuple[bytes, ForgedProtector]:
        """Protector ``index``'s VMK entry, and its credentials for the caller."""
        kind = ProtectorType(spec.type)
        guid = spec.guid or self.rng.guid(f"protector-{index}-guid")
        when = self.created + timedelta(seconds=FIRST_PROTECTOR_SECONDS + index)
        out = ForgedProtector(kind, guid, kind.code)
        props, key = _KINDS[kind](self, spec, out, f"protector-{index}", when)
        props.append(self.ccm.wrapped_key(key, KeyMethod.VMK, self.vmk, when))
        props += [_backup_entry(when, method, backed_up) for method, backed_up in spec.backups]
        # 3 as on the suspended Windows 7+ volume of the corpus; no Vista sample, so 1 there
        version = 3 if kind == ProtectorType.CLEAR_KEY and not self.v1 else 1
        fixed = VmkValue.build(dict(guid=guid, creation_time=datetime_to_filetime(when), unknown=0,
                                    protection=kind.code))
        return entry(EntryType.VMK, ValueType.VMK, fixed + b"".join(props), version=version), out

    def _named(self, name: str) -> list[bytes]:
        """The UNICODE name Windows 7+ gives the protector; the Vista volume has none."""
        return [] if self.v1 else [unicode_entry(name)]

    def _recovery_password(self, spec: ProtectorSpec, out: ForgedProtector, label: str,
                           when: datetime) -> _Properties:
        if spec.secret is not None:
            rp = parse_recovery_password(str(spec.secret))
        else:
            rp = RecoveryPassword.from_key16(self.rng.bytes(label + "-key16", 16))
        out.recovery_password = str(rp)
        salt = self.rng.bytes(label + "-salt", SALT_SIZE)
        key = kdf.stretch(kdf.recovery_initial(rp.key16), salt, load())
        # Windows keeps key16 wrapped with the VMK inside the stretch key.
        nested = self.ccm.wrapped_key(self.vmk, KeyMethod.STRETCH, rp.key16, when,
                                      entry_type=EntryType.PROPERTY if self.v1 else KEY16_ENTRY_TYPE)
        return self._named("DiskPassword") + [stretch_key_entry(KeyMethod.STRETCH, salt, nested)], key

    def _password(self, spec: ProtectorSpec, out: ForgedProtector, label: str, when: datetime) -> _Properties:
        out.password = str(spec.secret)
        salt = self.rng.bytes(label + "-salt", SALT_SIZE)
        key = kdf.stretch(kdf.password_initial(str(spec.secret)), salt, load())
        return [stretch_key_entry(KeyMethod.STRETCH_2, salt)], key

    def _startup_key(self, spec: ProtectorSpec, out: ForgedProtector, label: str, when: datetime) -> _Properties:
        key = self._secret(spec, label + "-external-key")
        out.startup_key = key
        out.bek_name = out.guid.upper() + ".BEK"
        out.bek = bek_file(out.guid, key, when)
        # The USE KEY property holds the external key wrapped with the VMK.
        use = UseKeyValue.build(dict(method=KeyMethod.EXTERNAL_KEY))
        use += self.ccm.wrapped_key(self.vmk, KeyMethod.EXTERNAL_KEY, key, when)
        return self._named("ExternalKey") + [entry(EntryType.PROPERTY, ValueType.USE_KEY, use)], key

    def _clear_key(self, spec: ProtectorSpec, out: ForgedProtector, label: str, when: datetime) -> _Properties:
        key = self._secret(spec, label + "-clear-key")
        out.clear_key = key
        return [key_entry(KeyMethod.CLEAR_KEY, key)], key

    def _tpm(self, spec: ProtectorSpec, out: ForgedProtector, label: str, when: datetime) -> _Properties:
        """TPM, TPM + PIN: the key is sealed in a TPM this volume never had."""
        sealed = self.rng.bytes(label + "-tpm-key", PROTECTOR_KEY_SIZE)
        blob = self.rng.bytes(label + "-tpm-blob", TPM_BLOB_SIZE)
        props = [entry(EntryType.PROPERTY, ValueType.TPM_ENCODED, TpmValue.build(dict(unknown=0, blob=blob)))]
        if out.type == ProtectorType.TPM_PIN:
            props.append(stretch_key_entry(KeyMethod.STRETCH_2, self.rng.bytes(label + "-salt", SALT_SIZE)))
        return props, sealed

    def _secret(self, spec: ProtectorSpec, label: str) -> bytes:
        """The spec's 32-byte key, or one from the seed."""
        return spec.secret if isinstance(spec.secret, bytes) else self.rng.bytes(label, PROTECTOR_KEY_SIZE)


#: The flags of every backup-information entry seen on Windows volumes (meaning unknown).
BACKUP_FLAGS = 0x0002


def _backup_entry(created: datetime, method: int, backed_up: datetime) -> bytes:
    """A backup-information property, as Windows nests it last in a recovery-password VMK."""
    value = BackupInfoValue.build(dict(creation_time=datetime_to_filetime(created),
                                       backup_time=datetime_to_filetime(backed_up), method=method,
                                       flags=BACKUP_FLAGS))
    return entry(EntryType.PROPERTY, ValueType.BACKUP_INFO, value)


_KINDS: dict[ProtectorType, Callable[..., _Properties]] = {
    ProtectorType.RECOVERY_PASSWORD: ProtectorWriter._recovery_password,
    ProtectorType.PASSWORD: ProtectorWriter._password,
    ProtectorType.STARTUP_KEY: ProtectorWriter._startup_key,
    ProtectorType.CLEAR_KEY: ProtectorWriter._clear_key,
    ProtectorType.TPM: ProtectorWriter._tpm,
    ProtectorType.TPM_PIN: ProtectorWriter._tpm,
}
assert set(_KINDS) == set(WRITABLE_PROTECTORS), "every writable protector kind needs a writer"
