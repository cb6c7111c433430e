"""The optimised core behind one interface: the C extension, or its pure-Python twin.

Nothing outside this package imports the extension. The choice is made on each call of
:func:`load` (no module-level state): the extension when it is importable and
``BITLOCKER_TOOLS_PURE`` is not set to 1, the pure-Python twin otherwise. Both give identical
results and both satisfy :class:`Core` (``_contract.py``), the typed list of what callers may use;
the tests run both against the same published vectors (``tests/vectors/``).
"""

from __future__ import annotations

import os

from ._contract import Core, ReadableBuffer, WritableBuffer

__all__ = ["Core", "ReadableBuffer", "WritableBuffer", "backend_name", "load"]


def load(pure: bool | None = None) -> Core:
    """Return the backend module, typed as the contract: ``_native`` if available and wanted,
    else ``_pure``."""
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


def backend_name(module: Core) -> str:
    """'native' or 'pure-python': which backend :func:`load` returned (for reports and logs)."""
    return "native" if getattr(module, "__name__", "").endswith("_native") else "pure-python"
