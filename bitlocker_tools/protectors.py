"""Credential -> VMK -> FVEK: opening a volume's key protectors.

Every protector of the credential's type is tried (a volume can have several recovery passwords
or passwords; the older tools used only the first). Each failure says which protector and why.
After the VMK is known, the FVEK is unwrapped and the metadata's own authenticated validation
(SHA-256 of the block under the VMK) is checked where the volume has one. An FVEK given directly
opens no protector, so it is proved by decrypting a sector whose plaintext is known.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ._core import load
from .credentials import Credentials
from .crypto import kdf
from .crypto.ccm import unwrap
from .crypto.sector_key import sector_key
from .errors import AuthenticationError, BadInputError, CredentialFormatError, UnsupportedError, WrongKeyError
from .filesystems import identify_filesystem
from .format.boot_sector import NtfsBootSector, VistaBootSector
from .format.constants import EncryptionMethod, KeyMethod, ProtectorType, ValueType
from .metadata import AesCcmValue, KeyValue, MetadataBlock, Protector, StretchKeyValue, parse_entries
from .secret import masked_repr
from .sources import read_at
from .unreadable import is_read_error
from .volume import BitLockerVolume

if TYPE_CHECKING:
    from ._core import Core


class Via(str, enum.Enum):
    """How a volume was opened; the value is the JSON spelling (``verify``'s ``via``)."""

    RECOVERY_PASSWORD = "recovery_password"
    PASSWORD = "password"
    STARTUP_KEY = "startup_key"
    CLEAR_KEY = "clear_key"
    VMK = "vmk"  # a VMK given directly (from memory, a hibernation file, a TPM sniff)
    FVEK = "fvek"  # an FVEK given directly: no protector is opened
    NONE = "none"  # a fully decrypted volume: no key is needed


@masked_repr("sector_key", "vmk", "fvek", "credential")
@dataclass
class UnlockResult:
    """The keys of an unlocked volume and how they were obtained."""

    method: EncryptionMethod
    sector_key: bytes  # what the sector cipher takes (see crypto.sector_key); empty for NONE
    vmk: bytes | None
    protector: Protector | None  # None when unlocked with --fvek/--vmk or no key was needed
    via: Via
    metadata_validated: bool | None  # None: the volume has no validation entry to check
    #: the FVEK as the metadata stores it (the datum's key; for the diffuser methods 64 bytes: an
    #: FVEK given as FVEK||TWEAK is laid out so); empty when no key is needed
    fvek: bytes = b""
    #: the credential that opened the protector (a RecoveryPassword, a password, a StartupKey);
    #: kept in memory for the keychain, never printed
    credential: object = None
    #: an FVEK given directly: did a sector of known plaintext prove it? (None: not an FVEK unlock)
    fvek_proved: bool | None = None
    #: per metadata copy (by volume offset): does its SHA-256 validate under the VMK?
    #: None where the copy did not parse, carries no validation, or no VMK is known
    copy_validation: dict[int, bool | None] = field(default_factory=dict)
    #: what is wrong but did not stop the unlock (one line each)
    warnings: list[str] = field(default_factory=list)


def unwrap_key(key: bytes, blob: AesCcmValue, core: Core | None = None) -> KeyValue:
    """Unwrap a blob whose plaintext is a KEY entry (VMK, FVEK, validation hash, key16)."""
    plain = unwrap(key, blob.nonce, blob.mac, blob.data, core)
    entries = parse_entries(plain, 0, len(plain))
    if not entries or not isinstance(entries[0].value, KeyValue):
        raise AuthenticationError("unwrapped blob does not hold a KEY entry")
    return entries[0].value


def _vmk_blob(protector: Protector) -> AesCcmValue | None:
    child = protector.entry.child(ValueType.AES_CCM)
    return child.value if child is not None else None  # type: ignore[return-value]


def try_vmk(protector: Protector, key: bytes, core: Core | None = None) -> bytes | None:
    """The VMK, when ``key`` opens the protector's VMK blob; None when it does not."""
    blob = _vmk_blob(protector)
    if blob is None:
        return None
    try:
        value = unwrap_key(key, blob, core)
    except AuthenticationError:
        return None
    return value.key if len(value.key) == 32 else None


def _stretched(protector: Protector, initial: bytes, core: Core) -> bytes | None:
    child = protector.entry.child(ValueType.STRETCH_KEY)
    if child is None or not isinstance(child.value, StretchKeyValue):
        return None
    return kdf.stretch(initial, child.value.salt, core)


def _of_type(md: MetadataBlock, kind: ProtectorType) -> list[Protector]:
    return [p for p in md.protectors if p.type == kind]


def find_vmk(volume: BitLockerVolume, creds: Credentials,
             core: Core | None = None) -> tuple[bytes, Protector, Via, object]:
    """Open the first protector any credential fits: (VMK, protector, how, the credential that
    did it). Raises WrongKeyError saying what was tried."""
    core = core or load()
    md = volume.metadata
    tried: list[str] = []

    if creds.clear_key:
        for p in _of_type(md, ProtectorType.CLEAR_KEY):
            key = p.entry.child(ValueType.KEY)
            if key is not None and isinstance(key.value, KeyValue):
                vmk = try_vmk(p, key.value.key, core)
                if vmk:
                    return vmk, p, Via.CLEAR_KEY, None
        tried.append("clear key")

    for sk in creds.startup_keys:
        candidates = _of_type(md, ProtectorType.STARTUP_KEY)
        # The .BEK names its protector; try that one first, then any other startup key.
        candidates.sort(key=lambda p: p.guid != sk.guid)
        for p in candidates:
            vmk = try_vmk(p, sk.key, core)
            if vmk:
                return vmk, p, Via.STARTUP_KEY, sk
        tried.append(f"startup key {sk.guid} from {sk.path}")

    # Secrets that go through the stretch, each tried against every protector of its kind.
    stretched: list[tuple[ProtectorType, bytes, str, object]] = [
        (ProtectorType.RECOVERY_PASSWORD, kdf.recovery_initial(rp.key16), "recovery password", rp)
        for rp in creds.recovery_passwords]
    stretched += [(ProtectorType.PASSWORD, kdf.password_initial(pw), "password", pw) for pw in creds.passwords]
    for kind, initial, label, credential in stretched:
        for p in _of_type(md, kind):
            key = _stretched(p, initial, core)
            vmk = try_vmk(p, key, core) if key else None
            if vmk:
                return vmk, p, Via(kind.value), credential
        tried.append(label)

    if not tried:
        raise CredentialFormatError("no credential given")
    available = ", ".join(f"{p.type.value} {p.key_id}" for p in md.protectors) or "none"
    tpm_only = md.protectors and all(p.type.needs_tpm for p in md.protectors)
    if tpm_only:
        raise UnsupportedError(f"{volume.name}: every protector needs the TPM; give a recovery password or the FVEK")
    raise WrongKeyError(f"{volume.name}: the {' / '.join(tried)} opened no protector (volume has: {available})")


def validate_metadata(md: MetadataBlock, vmk: bytes, core: Core | None = None) -> bool | None:
    """Check the validation entry (SHA-256 of the block, wrapped with the VMK); None if absent."""
    entry = md.validation_entry
    if entry is None or not isinstance(entry.value, AesCcmValue):
        return None
    try:
        value = unwrap_key(vmk, entry.value, core)
    except AuthenticationError:
        return False
    if value.method != KeyMethod.VALIDATION_HASH:
        return None
    return value.key[:32] == hashlib.sha256(md.covered).digest()


# --- proving an FVEK ------------------------------------------------------------------------------

#: (what the sector is, volume offset where its ciphertext is stored, test of its plaintext)
_Probe = tuple[str, int, Callable[[bytes], bool]]


def _is_mft_record(plain: bytes) -> bool:
    return plain[:4] == b"FILE"


def _known_plaintext(volume: BitLockerVolume) -> list[_Probe]:
    """Sectors whose plaintext is known without the key, where their ciphertext is stored.

    Windows 7 and later: the volume's own boot sector, relocated and encrypted at the volume
    header offset. Where the boot sector can be read without the key (Vista keeps it in the clear;
    a used-space-only conversion may have left it plain), an NTFS boot sector names the MFT and
    its mirror, whose first records start ``FILE``.
    """
    ss = volume.sector_size
    probes: list[_Probe] = []
    mft = mirror = None
    if volume.version >= 2:
        vh = volume.volume_header[0]
        probes.append(("the boot sector to a known filesystem", vh, lambda p: identify_filesystem(p) is not None))
        if 0 < vh < volume.size and not volume.state_run(vh, ss)[0]:
            try:
                raw = read_at(volume.fh, volume.offset + vh, NtfsBootSector.sizeof())
            except OSError as exc:  # a bad sector: no MFT probes from it
                if not is_read_error(exc):
                    raise
                raw = b""
            if identify_filesystem(raw) == "NTFS":
                ntfs = NtfsBootSector.parse(raw)
                mft, mirror = ntfs.mft_cluster, ntfs.mft_mirror_cluster
    else:
        vista = VistaBootSector.parse(read_at(volume.fh, volume.offset, VistaBootSector.sizeof()))
        mft, mirror = vista.mft_cluster, volume.metadata.volume_header_offset  # v1 keeps the mirror there
    if mft is not None:
        cs = volume.cluster_size
        probes += [("the MFT to NTFS file records", mft * cs, _is_mft_record),
                   ("the MFT mirror to NTFS file records", mirror * cs, _is_mft_record)]
    return probes


def prove_fvek(volume: BitLockerVolume, key: bytes, core: Core | None = None) -> bool:
    """True when ``key`` (sector-key material) decrypts a sector of known plaintext; raise
    WrongKeyError when it does not; False when the evidence holds no such sector in ciphertext.

    A probe sector that holds plaintext (above a conversion boundary), lies beyond the evidence or
    is all zeros (a sparse or wiped image keeps no ciphertext there) proves nothing and is
    skipped; when no probe is left the key is unproven: the caller decides what that means.
    """
    core = core or load()
    ss = volume.sector_size
    for what, physical, check in _known_plaintext(volume):
        if physical <= 0 or physical + ss > volume.size:
            continue
        if not volume.state_run(physical, ss)[0]:
            continue
        try:
            raw = read_at(volume.fh, volume.offset + physical, ss)
        except OSError as exc:  # a bad sector (a failing disk): it proves nothing, like one beyond the evidence
            if not is_read_error(exc):
                raise
            continue
        if len(raw) < ss or not any(raw):
            continue
        if check(bytes(core.crypt_sectors(int(volume.method), key, raw, physical, ss, True))):
            return True
        raise WrongKeyError(f"{volume.name}: the FVEK does not decrypt {what}")
    return False


def fvek_datum(method: EncryptionMethod, key: bytes) -> bytes:
    """An FVEK as the metadata lays it out: the diffuser methods' FVEK half and tweak half of 32
    bytes each, so that a key given as AES-128's 16-byte FVEK||16-byte TWEAK exports the same
    way as the one the metadata holds (its unused bytes zero)."""
    if method == EncryptionMethod.AES_128_DIFFUSER and len(key) == 32:
        return key[:16] + bytes(16) + key[16:] + bytes(16)
    return key


UNPROVEN_FVEK = ("the FVEK cannot be proved on this evidence: no sector whose plaintext is known (the "
                 "relocated boot sector, the MFT, its mirror) holds ciphertext in it")


def _validated(volume: BitLockerVolume, result: UnlockResult, core: Core | None, strict: bool) -> UnlockResult:
    """Check every parsed copy's authenticated validation under the VMK; warn (or, strict,
    refuse) when the copy in use fails it and no other copy passes."""
    if result.vmk is not None:
        result.copy_validation = {c.offset: validate_metadata(c.block, result.vmk, core) if c.block else None
                                  for c in volume.copies}
    if result.fvek_proved is False:
        if strict:
            raise BadInputError(f"{volume.name}: {UNPROVEN_FVEK}; refused under --strict")
        result.warnings.append(f"{volume.name}: {UNPROVEN_FVEK} (--strict refuses)")
    if result.metadata_validated is False:
        message = (f"{volume.name}: the metadata's authenticated validation fails (the SHA-256 under the VMK "
                   f"does not match the copy at {volume.metadata.offset:#x}): tampered or mixed metadata")
        if strict:
            raise BadInputError(message + "; refused under --strict")
        result.warnings.append(message + " (--strict refuses)")
    return result


def unlock(volume: BitLockerVolume, creds: Credentials, core: Core | None = None,
           strict: bool = False) -> UnlockResult:
    """Derive the sector key for ``volume`` from ``creds``.

    ``strict``: refuse a volume whose metadata fails its authenticated validation, instead of
    opening it with a warning.
    """
    result = _unlock(volume, creds, core)
    if result.metadata_validated is False:
        # a copy that passes its authenticated validation beats one that only passes its CRC
        good = next((c for c in volume.copies if c.block is not None and c.block is not volume.metadata
                     and result.vmk is not None and validate_metadata(c.block, result.vmk, core)), None)
        if good is not None:
            bad = volume.metadata.offset
            volume.use_copy(good)
            result = _unlock(volume, creds, core)
            volume.warnings.append(f"{volume.name}: the metadata copy at {bad:#x} fails its authenticated validation "
                                   f"(tampered, or mixed copies); using the copy at {good.offset:#x}, which passes")
    return _validated(volume, result, core, strict)


def _unlock(volume: BitLockerVolume, creds: Credentials, core: Core | None) -> UnlockResult:
    md = volume.metadata
    method = volume.method
    if method == EncryptionMethod.NONE:
        # Fully decrypted: no key is needed. A credential given anyway is still checked against
        # the protectors that remain (Windows usually removes them all).
        if creds.is_empty() or not md.protectors or creds.fvek is not None:
            return UnlockResult(method, b"", None, None, Via.NONE, None)
        if creds.vmk is not None:
            return UnlockResult(method, b"", creds.vmk, None, Via.VMK, validate_metadata(md, creds.vmk, core))
        vmk, protector, via, credential = find_vmk(volume, creds, core)
        return UnlockResult(method, b"", vmk, protector, via, validate_metadata(md, vmk, core), credential=credential)
    if creds.fvek is not None:
        key = creds.fvek
        if len(key) != method.key_material_size and len(key) != method.fvek_datum_size:
            raise CredentialFormatError(
                f"FVEK for {method.label} must be {method.key_material_size} bytes (hex "
                f"{2 * method.key_material_size} digits), got {len(key)}"
            )
        material = sector_key(method, key)
        proved = prove_fvek(volume, material, core)
        return UnlockResult(method, material, None, None, Via.FVEK, None, fvek=fvek_datum(method, key),
                            fvek_proved=proved)

    protector, credential = None, None
    if creds.vmk is not None:
        vmk, via = creds.vmk, Via.VMK
    else:
        vmk, protector, via, credential = find_vmk(volume, creds, core)

    entry = md.fvek_entry
    if entry is None:
        raise BadInputError(f"{volume.name}: the metadata has no FVEK entry")
    try:
        fvek = unwrap_key(vmk, entry.value, core)  # type: ignore[arg-type]
    except AuthenticationError:
        if via == Via.VMK:
            raise WrongKeyError(f"{volume.name}: the VMK does not unwrap the FVEK") from None
        raise BadInputError(f"{volume.name}: the FVEK entry is damaged (its AES-CCM tag fails)") from None
    return UnlockResult(method, sector_key(method, fvek.key), vmk, protector, via,
                        validate_metadata(md, vmk, core), fvek=fvek.key, credential=credential)
