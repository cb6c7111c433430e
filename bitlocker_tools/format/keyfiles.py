"""Files that carry keys outside the volume.

* The ``.BEK`` startup/recovery key file Windows writes to a USB stick: a 48-byte header laid
  out as the metadata header (its GUID field names the key, not a volume), then one EXTERNAL KEY
  entry naming the protector, with the 32-byte key nested in it.
* The FVEK file of dislocker (``-k``) and of memory-forensics plugins: the u16 encryption method,
  then the key material padded to 64 bytes (66 bytes in all).
"""

from __future__ import annotations

from construct import Bytes, Int16ul, Struct

from .metadata import MetadataHeader

#: The .BEK file's header (the metadata header's layout).
BekHeader = MetadataHeader

FVEK_FILE_KEY_SIZE = 64
FvekFileMethod = Struct("method" / Int16ul)
FvekFile = Struct(*FvekFileMethod.subcons, "key" / Bytes(FVEK_FILE_KEY_SIZE))
FVEK_FILE_SIZE = FvekFile.sizeof()
