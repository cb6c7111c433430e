"""The contract of the optimised core: what the rest of the package may call on it.

Both backends, the C extension ``_native`` and its pure-Python twin ``_pure``, are modules that
satisfy :class:`Core`; :func:`bitlocker_tools._core.load` returns one of them typed as ``Core``, so
a caller type-checks against this file and never against one backend. The functions here are the
whole public surface of a core: ``tests/test_core_native.py`` fails when a backend lacks one, has a
public function that is not listed here, or (for the pure twin, and for the extension's text
signatures) spells the parameters differently.

Test and benchmark hooks stay out of the contract: they start with an underscore (the native
``_features``, ``_calibrate``, ``_stretch_kernel``, ``_diffuser_test``, the keyword-only ``_sha=``
and ``_aes=`` that force a kernel path) because the pure twin has no kernel paths to force.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

ReadableBuffer = Union[bytes, bytearray, memoryview]
"""What the cores read from: any of these (the extension takes any contiguous buffer)."""

WritableBuffer = Union[bytearray, memoryview]
"""What ``crypt_sectors_into`` writes to (a writable, contiguous buffer)."""


@runtime_checkable
class Core(Protocol):
    """The functions both core backends provide, with the same signatures and results."""

    def stretch(self, initial: ReadableBuffer, salt: ReadableBuffer, rounds: int) -> bytes:
        """BitLocker's key stretch of one candidate: the key that unwraps a password or
        recovery-password protector's VMK.

        ``rounds`` SHA-256 calls over ``last_hash(32) || initial(32) || salt(16) || LE64(count)``,
        starting from a zero ``last_hash`` and count 0; returns the last hash. ``initial`` is the
        candidate's initial hash (32 bytes), ``salt`` the protector's (16 bytes); BitLocker uses
        0x100000 rounds. A negative ``rounds`` runs none, like ``range``.
        """

    def stretch_many(self, initials: Iterable[ReadableBuffer], salt: ReadableBuffer,
                     rounds: int) -> list[bytes]:
        """:meth:`stretch` for many candidates against one protector, in order: what a
        password or recovery-password search calls, because the extension keeps several chains
        in flight (and releases the GIL, so threads spread batches over cores)."""

    def crypt_sectors(self, method: int, key: ReadableBuffer, data: ReadableBuffer, offset: int,
                      sector_size: int, decrypt: bool = True) -> bytearray:
        """Decrypt (or encrypt) whole sectors of a volume into a new buffer: the bulk path of
        reading a BitLocker volume, and of the forge writing one.

        ``method`` is the metadata's encryption-method code (0x8000/0x8001 AES-CBC with the
        Elephant diffuser, 0x8002/0x8003 AES-CBC, 0x8004/0x8005 XTS-AES). ``key`` is the method's
        key material: CBC the FVEK; XTS key1 || key2; diffuser FVEK || TWEAK key (two equal
        halves). ``offset`` is the volume byte offset of ``data``, which gives each sector its IV
        (CBC: AES(FVEK, LE64(byte offset) || 0^8)) or tweak (XTS: the sector number, ``offset //
        sector_size`` for the first sector, as a 128-bit little-endian integer). ``data`` is a
        whole number of ``sector_size`` sectors.
        """

    def crypt_sectors_into(self, method: int, key: ReadableBuffer, data: ReadableBuffer,
                           offset: int, sector_size: int, decrypt: bool,
                           out: WritableBuffer) -> None:
        """:meth:`crypt_sectors` writing into ``out`` (same length as ``data``; it may be
        ``data`` itself): the decrypting stream calls this to avoid an allocation per read."""

    def ccm_decrypt(self, key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer,
                    mac: ReadableBuffer) -> Optional[bytes]:
        """AES-CCM decryption of a BitLocker key blob (a VMK or FVEK wrapped under a key):
        12-byte ``nonce``, 16-byte tag ``mac``, no associated data. Returns the plaintext, or
        None when the tag does not verify, which is how a wrong candidate key is told apart."""

    def ccm_encrypt(self, key: ReadableBuffer, nonce: ReadableBuffer,
                    data: ReadableBuffer) -> Tuple[bytes, bytes]:
        """AES-CCM encryption as BitLocker wraps a key (12-byte nonce, no associated data):
        ``(ciphertext, tag)`` with a 16-byte tag. The forge uses it to write key blobs."""

    def expand_groups(self, groups: Sequence[Sequence[int]]) -> bytes:
        """Every recovery-password candidate of a search, as key16 values.

        ``groups`` holds, for each of the 8 recovery-password groups, the candidate 16-bit words
        (group value / 11). Each combination becomes 8 little-endian u16 (16 bytes), in
        lexicographic order with group 0 varying slowest; the results are concatenated.
        """

    def sha256_many(self, data: ReadableBuffer, item_len: int) -> bytes:
        """SHA-256 of each consecutive ``item_len``-byte item of ``data``, digests concatenated:
        turns :meth:`expand_groups` output into the candidates' initial hashes in one call."""


if TYPE_CHECKING:  # a type checker proves here that both backends satisfy the contract
    from . import _native, _pure

    _native_is_a_core: Core = _native
    _pure_is_a_core: Core = _pure
