"""The optimised core behind one interface: the C extension, or its pure-Python twin.

Nothing outside this package imports the extension. The choice is made on each call of
:func:`load` (no module-level state): the extension when it is importable and
``BITLOCKER_TOOLS_PURE`` is not set to 1, the pure-Python twin otherwise. Both give identical
results; the tests run both against the same vectors.
"""

from __future__ import annotations

import os
from types import ModuleType


def load(pure: bool | None = None) -> ModuleType:
    """Return the backend module: ``_native`` if available and wanted, else ``_pure``."""
    if pure is None:
        pure = os.environ.get("BITLOCKER_TOOLS_PURE", "") not in ("", "0")
    if not pure:
        try:
            from . import _native

            return _native
        except ImportError:
            pass
    from . import _pure

    return _pure


def backend_name(module: ModuleType) -> str:
    return "native" if module.__name__.endswith("_native") else "pure-python"
