"""Loaded by the dissect tools from a plugin path: BitLocker volumes open through bitlocker-tools.

dissect.target runs this file by its path (as a module named after the file) after it has read
the keychain options and before it opens the target. The package is imported by its own name, so
there is one copy of its classes however this file was reached; where that name does not resolve
(a source checkout that was never installed), the copy this file belongs to is the one used.
"""

import sys
from pathlib import Path

try:
    from bitlocker_tools.dissect_target import install
except ImportError:
    sys.path.append(str(Path(__file__).resolve().parent.parent.parent))
    from bitlocker_tools.dissect_target import install

install()
