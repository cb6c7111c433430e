"""Type stub of the C extension ``bitlocker_tools._core._native`` (``native/module.c``).

The public functions are those of the contract (``_contract.Core``); each also takes a
keyword-only test and benchmark argument that forces a kernel path: ``_sha=`` for the SHA-256
kernels, ``_aes=`` for AES-NI or the portable AES. A path the CPU lacks raises ValueError. The
underscore functions are test and benchmark hooks. ``tests/test_core_native.py`` checks that this
stub and the extension's own text signatures name the same functions and parameters.
"""

from typing import Any, Callable, Iterable, Literal, Optional, Sequence, Tuple, TypedDict

from ._contract import ReadableBuffer, WritableBuffer

ShaPath = Literal["auto", "scalar", "shani", "avx2", "avx512"]
AesPath = Literal["auto", "aesni", "scalar"]

def stretch(initial: ReadableBuffer, salt: ReadableBuffer, rounds: int, *,
            _sha: ShaPath = "auto") -> bytes: ...
def stretch_many(initials: Iterable[ReadableBuffer], salt: ReadableBuffer, rounds: int, *,
                 _sha: ShaPath = "auto") -> list[bytes]: ...
def crypt_sectors(method: int, key: ReadableBuffer, data: ReadableBuffer, offset: int,
                  sector_size: int, decrypt: bool = True, *,
                  _aes: AesPath = "auto") -> bytearray: ...
def crypt_sectors_into(method: int, key: ReadableBuffer, data: ReadableBuffer, offset: int,
                       sector_size: int, decrypt: bool, out: WritableBuffer, *,
                       _aes: AesPath = "auto") -> None: ...
def ccm_decrypt(key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer,
                mac: ReadableBuffer, *, _aes: AesPath = "auto") -> Optional[bytes]: ...
def ccm_encrypt(key: ReadableBuffer, nonce: ReadableBuffer, data: ReadableBuffer, *,
                _aes: AesPath = "auto") -> Tuple[bytes, bytes]: ...
def expand_groups(groups: Sequence[Sequence[int]]) -> bytes: ...
def sha256_many(data: ReadableBuffer, item_len: int, *,
                _sha: Literal["auto", "scalar", "shani"] = "auto") -> bytes: ...

class _KernelInfo(TypedDict):
    lanes: int
    path: str
    ms_per_key_estimate: float

class _Features(TypedDict):
    sha_ni: bool
    aesni: bool
    avx2: bool
    avx512: bool
    vaes: bool
    arch: str
    sha_paths: list[str]
    aes_paths: list[str]
    stretch_single_path: str
    aes_path: str
    calibrated: bool
    kernels: dict[str, _KernelInfo]

def _features() -> _Features: ...
def _calibrate() -> None: ...
def _stretch_kernel(name: str, initials: Iterable[ReadableBuffer], salt: ReadableBuffer,
                    rounds: int, /) -> list[bytes]: ...
def _wipe_audit(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Optional[dict] = None,
                wipes: bool = True, /) -> Tuple[Any, list[bytes], bytes]: ...
def _diffuser_test(which: Literal["a", "b"], decrypt: bool, data: ReadableBuffer, /) -> bytearray: ...
