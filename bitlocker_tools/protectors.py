"""Credential -> VMK -> FVEK: opening a volume's key protectors.

Every protector of the credential's type is tried (a volume can have several recovery passwords
or passwords; the older tools used only the first). Each failure says which protector and why.
After the VMK is known, the FVEK is unwrapped and the metadata's own authenticated validation
(SHA-256 of the block under the VMK) is checked where the volume has one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import ModuleType

from ._core import load
from .credentials import Credentials
from .crypto import kdf
from .crypto.ccm import AuthenticationError, unwrap_key
from .errors import BadInputError, CredentialFormatError, UnsupportedError, WrongKeyError
from .format.constants import EncryptionMethod, KeyMethod, ProtectorType, ValueType
from .metadata import AesCcmValue, KeyValue, MetadataBlock, Protector, StretchKeyValue
from .volume import BitLockerVolume


@dataclass
class UnlockResult:
    """The keys of an unlocked volume and how they were obtained."""

    method: EncryptionMethod
    key: bytes  # sector-crypto key material in the core's layout (see fvek_material)
    vmk: bytes | None
    protector: Protector | None  # None when unlocked with --fvek/--vmk or no key was needed
    via: str  # "recovery_password", "password", "startup_key", "clear_key", "vmk", "fvek", "none"
    metadata_validated: bool | None  # None: the volume has no validation entry to check


def fvek_material(method: EncryptionMethod, key: bytes) -> bytes:
    """Sector-crypto key from the FVEK datum: diffuser methods keep FVEK||TWEAK in two 32-byte
    halves of which AES-128 uses the first 16 bytes each; the core takes two equal halves."""
    if method.has_diffuser and len(key) == 64 and method == EncryptionMethod.AES_128_DIFFUSER:
        return key[0:16] + key[32:48]
    need = method.fvek_size
    if len(key) < need:
        raise BadInputError(f"FVEK for {method.label} must be {need} bytes, got {len(key)}")
    return key[:need]


def _vmk_blob(protector: Protector) -> AesCcmValue | None:
    child = protector.entry.child(ValueType.AES_CCM)
    return child.value if child is not None else None  # type: ignore[return-value]


def _try_vmk(protector: Protector, key: bytes) -> bytes | None:
    blob = _vmk_blob(protector)
    if blob is None:
        return None
    try:
        value = unwrap_key(key, blob)
    except AuthenticationError:
        return None
    return value.key if len(value.key) == 32 else None


def _stretched(protector: Protector, initial: bytes, core: ModuleType) -> bytes | None:
    child = protector.entry.child(ValueType.STRETCH_KEY)
    if child is None or not isinstance(child.value, StretchKeyValue):
        return None
    return kdf.stretch(initial, child.value.salt, core)


def _of_type(md: MetadataBlock, kind: ProtectorType) -> list[Protector]:
    return [p for p in md.protectors if p.type == kind]


def find_vmk(volume: BitLockerVolume, creds: Credentials,
             core: ModuleType | None = None) -> tuple[bytes, Protector, str]:
    """Open the first protector any credential fits; raise WrongKeyError saying what was tried."""
    core = core or load()
    md = volume.metadata
    tried: list[str] = []

    if creds.clear_key:
        for p in _of_type(md, ProtectorType.CLEAR_KEY):
            key = p.entry.child(ValueType.KEY)
            if key is not None and isinstance(key.value, KeyValue):
                vmk = _try_vmk(p, key.value.key)
                if vmk:
                    return vmk, p, "clear_key"
        tried.append("clear key")

    for sk in creds.startup_keys:
        candidates = _of_type(md, ProtectorType.STARTUP_KEY)
        # The .BEK names its protector; try that one first, then any other startup key.
        candidates.sort(key=lambda p: p.guid != sk.guid)
        for p in candidates:
            vmk = _try_vmk(p, sk.key)
            if vmk:
                return vmk, p, "startup_key"
        tried.append(f"startup key {sk.guid} from {sk.path}")

    # Secrets that go through the stretch, each tried against every protector of its kind.
    stretched = [(ProtectorType.RECOVERY_PASSWORD, kdf.recovery_initial(rp.key16), "recovery password")
                 for rp in creds.recovery_passwords]
    stretched += [(ProtectorType.PASSWORD, kdf.password_initial(pw), "password") for pw in creds.passwords]
    for kind, initial, label in stretched:
        for p in _of_type(md, kind):
            key = _stretched(p, initial, core)
            vmk = _try_vmk(p, key) if key else None
            if vmk:
                return vmk, p, kind.value
        tried.append(label)

    if not tried:
        raise CredentialFormatError("no credential given")
    available = ", ".join(f"{p.type.value} {p.key_id}" for p in md.protectors) or "none"
    tpm_only = md.protectors and all(p.type.needs_tpm for p in md.protectors)
    if tpm_only:
        raise UnsupportedError(f"{volume.name}: every protector needs the TPM; give a recovery password or the FVEK")
    raise WrongKeyError(f"{volume.name}: the {' / '.join(tried)} opened no protector (volume has: {available})")


def validate_metadata(md: MetadataBlock, vmk: bytes) -> bool | None:
    """Check the validation entry (SHA-256 of the block, wrapped with the VMK); None if absent."""
    entry = md.validation_entry
    if entry is None or not isinstance(entry.value, AesCcmValue):
        return None
    try:
        value = unwrap_key(vmk, entry.value)
    except AuthenticationError:
        return False
    if value.method != KeyMethod.VALIDATION_HASH:
        return None
    return value.key[:32] == hashlib.sha256(md.covered).digest()


def unlock(volume: BitLockerVolume, creds: Credentials, core: ModuleType | None = None) -> UnlockResult:
    """Derive the sector key for ``volume`` from ``creds``."""
    md = volume.metadata
    method = volume.method
    if method == EncryptionMethod.NONE:
        # Fully decrypted: no key is needed. A credential given anyway is still checked against
        # the protectors that remain (Windows usually removes them all).
        if creds.is_empty() or not md.protectors or creds.fvek is not None:
            return UnlockResult(method, b"", None, None, "none", None)
        if creds.vmk is not None:
            return UnlockResult(method, b"", creds.vmk, None, "vmk", validate_metadata(md, creds.vmk))
        vmk, protector, via = find_vmk(volume, creds, core)
        return UnlockResult(method, b"", vmk, protector, via, validate_metadata(md, vmk))
    if creds.fvek is not None:
        key = creds.fvek
        if len(key) != method.fvek_size and not (method.has_diffuser and len(key) == 64):
            raise CredentialFormatError(
                f"FVEK for {method.label} must be {method.fvek_size} bytes (hex "
                f"{2 * method.fvek_size} digits), got {len(key)}"
            )
        return UnlockResult(method, fvek_material(method, key), None, None, "fvek", None)

    protector = None
    if creds.vmk is not None:
        vmk, via = creds.vmk, "vmk"
    else:
        vmk, protector, via = find_vmk(volume, creds, core)

    entry = md.fvek_entry
    if entry is None:
        raise BadInputError(f"{volume.name}: the metadata has no FVEK entry")
    try:
        fvek = unwrap_key(vmk, entry.value)  # type: ignore[arg-type]
    except AuthenticationError:
        if via == "vmk":
            raise WrongKeyError(f"{volume.name}: the VMK does not unwrap the FVEK") from None
        raise BadInputError(f"{volume.name}: the FVEK entry is damaged (its AES-CCM tag fails)") from None
    return UnlockResult(method, fvek_material(method, fvek.key), vmk, protector, via,
                        validate_metadata(md, vmk))
