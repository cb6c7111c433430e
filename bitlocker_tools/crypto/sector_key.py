"""From the FVEK the metadata stores to the key the sector cipher takes.

The FVEK datum holds, by method: the AES-CBC key (16 or 32 bytes); the two XTS keys (32 or 64);
for the Elephant-diffuser methods always 64 bytes, an FVEK half and a tweak-key half of 32 bytes
each, of which AES-128 uses the first 16 bytes of each half. The core takes the key material as
one buffer of :attr:`EncryptionMethod.key_material_size` bytes. The reader (after unwrapping), an
FVEK given by the user and the forge all go through :func:`sector_key`.
"""

from __future__ import annotations

from ..errors import BadInputError
from ..format.constants import EncryptionMethod


def sector_key(method: EncryptionMethod, fvek: bytes) -> bytes:
    """The sector-crypto key material for ``method`` from an FVEK datum's key (or from key
    material already in the core's layout, which passes through unchanged)."""
    if method == EncryptionMethod.AES_128_DIFFUSER and len(fvek) == 64:
        return fvek[0:16] + fvek[32:48]
    need = method.key_material_size
    if len(fvek) < need:
        raise BadInputError(f"FVEK for {method.label} must be {need} bytes, got {len(fvek)}")
    return fvek[:need]
