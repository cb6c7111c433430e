"""Build script for the optional C core ``bitlocker_tools._core._native``.

All metadata lives in pyproject.toml; this file only adds the extension. The extension is
optional: when there is no compiler, the compiler fails, or ``BITLOCKER_TOOLS_NO_EXT=1`` is set,
the build goes on without it and the package runs on its pure-Python twin
(``bitlocker_tools._core._pure``).

The SIMD kernels (SHA-NI, AES-NI, AVX2, AVX-512) are compiled per function with
``__attribute__((target(...)))`` and chosen at run time from cpuid, so one build runs on any
x86-64 CPU; no -march/-msha flags are passed. Build in place for development with
``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Path("bitlocker_tools") / "_core" / "native"
SOURCES = [
    "module.c",
    "bt_cpu.c",
    "bt_sha256.c",
    "bt_sha256_shani.c",
    "bt_sha256_lanes.c",
    "bt_stretch.c",
    "bt_aes.c",
    "bt_diffuser.c",
    "bt_ccm.c",
]


def _skip_ext() -> bool:
    return os.environ.get("BITLOCKER_TOOLS_NO_EXT", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: without the extension the pure core is used."""

    def build_extensions(self) -> None:
        ctype = getattr(self.compiler, "compiler_type", "")
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args = ["/O2"]
            else:
                ext.extra_compile_args = ["-O3", "-fvisibility=hidden", "-Wall"]
        super().build_extensions()

    def run(self) -> None:
        if _skip_ext():
            print("BITLOCKER_TOOLS_NO_EXT set: skipping the C core (pure-Python fallback)")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler at all, or a platform setuptools cannot handle
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, missing compiler, ...
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        sys.stderr.write(
            "WARNING: the C core of bitlocker_tools could not be built "
            f"({type(exc).__name__}: {exc}); using the pure-Python core.\n"
        )


EXTENSIONS = [
    Extension(
        "bitlocker_tools._core._native",
        sources=[str(NATIVE / s) for s in SOURCES],
        depends=[str(p) for p in sorted(NATIVE.glob("*.h"))],
        include_dirs=[str(NATIVE)],
        optional=True,
    )
]

setup(
    # with BITLOCKER_TOOLS_NO_EXT=1 there is no extension at all (and a pure-Python wheel)
    ext_modules=[] if _skip_ext() else EXTENSIONS,
    cmdclass={"build_ext": OptionalBuildExt},
)
