"""Keeping secrets out of reprs, the process title and the environment.

Keys and passwords must never reach a log, a traceback or ``ps``. Three places Python puts them
without being asked:

* a ``repr``: a dataclass prints every field, and an exception message or a debugger shows it.
  :func:`masked_repr` gives the classes that hold secrets a repr naming the secret fields
  without their values.
* the process title: ``/proc/PID/cmdline`` (what ``ps`` and ``top`` show every local user) is
  the original argv memory of the process, which Python copies and never changes. A credential
  typed on the command line (``-r 123456-...``) stays there for the life of the process, and of
  a forked child such as ``mount``'s background server. :func:`hide_arguments` overwrites those
  values in place, on Linux, as soon as the CLI starts; a credential given as ``-``, ``@FILE``
  or in the environment never appears there at all (the recommended ways).
* the environment: ``BITLOCKER_PASSWORD`` and ``BITLOCKER_RECOVERY_PASSWORD`` are inherited by
  every child and readable in ``/proc/PID/environ`` (by the same user and root).
  :func:`scrub_environment` removes them once read, and blanks their original bytes.

What cannot be promised is said in docs/reliability.md ("Secrets"): the title is readable from
the exec until :func:`hide_arguments` runs (start-up, about 0.2 s), and the shell history keeps
what was typed; Python's own ``bytes`` and ``str`` are immutable and are never wiped.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

MASK = "<hidden>"

#: Options whose value is a secret (or, for ``recover --pattern``, most of one).
SECRET_OPTIONS = ("--recovery-password", "-r", "--password", "-p", "--vmk", "--fvek", "--pattern", "-P")
#: The environment variables that carry credentials (read by :mod:`.credentials`, scrubbed here).
ENV_RECOVERY_PASSWORD = "BITLOCKER_RECOVERY_PASSWORD"
ENV_PASSWORD = "BITLOCKER_PASSWORD"
SECRET_ENV = (ENV_RECOVERY_PASSWORD, ENV_PASSWORD)


def masked_repr(*secret_fields: str) -> Callable[[type[T]], type[T]]:
    """Class decorator for a dataclass: its repr shows ``secret_fields`` as ``<hidden>`` (or
    ``None``/empty as such, so a repr still tells what is set). Apply it above ``@dataclass``."""

    def decorate(cls: type[T]) -> type[T]:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = set(secret_fields) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")

        def __repr__(self) -> str:  # noqa: N807 - the dunder being defined
            parts = []
            for name in names:
                value = getattr(self, name)
                if name in secret_fields and value not in (None, b"", "", [], ()):
                    shown = f"[{len(value)} x {MASK}]" if isinstance(value, list) else MASK
                else:
                    shown = repr(value)
                parts.append(f"{name}={shown}")
            return f"{cls.__qualname__}({', '.join(parts)})"

        cls.__repr__ = __repr__  # type: ignore[assignment]
        return cls

    return decorate


def secret_spans(args: list[str]) -> list[tuple[int, int, int]]:
    """Where the secret values are in ``args`` (the process's argv): (index, start, end) of each
    value given literally to one of :data:`SECRET_OPTIONS`, as a separate word, ``--opt=VALUE``
    or ``-rVALUE``. ``-`` and ``@FILE`` are not secrets (they name where the secret is)."""
    spans = []
    longs = tuple(o for o in SECRET_OPTIONS if o.startswith("--"))
    shorts = tuple(o for o in SECRET_OPTIONS if not o.startswith("--"))

    def literal(value: str) -> bool:
        return value not in ("", "-") and not value.startswith("@")

    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg in SECRET_OPTIONS:
            if i + 1 < len(args) and literal(args[i + 1]):
                spans.append((i + 1, 0, len(args[i + 1])))
            i += 2
            continue
        if arg.startswith(tuple(o + "=" for o in longs)):
            start = arg.index("=") + 1
            if literal(arg[start:]):
                spans.append((i, start, len(arg)))
        elif arg.startswith(shorts) and not arg.startswith("--") and len(arg) > 2 and literal(arg[2:]):
            spans.append((i, 2, len(arg)))
        i += 1
    return spans


def _proc_stat_fields() -> list[str]:
    with open("/proc/self/stat", "rb") as fh:
        text = fh.read().decode("ascii", "replace")
    return text[text.rindex(")") + 2:].split()  # fields from the third (state) on


def _overwrite(start: int, end: int, original: bytes, edits: Iterable[tuple[int, int]]) -> bool:
    """Write '*' over byte ranges of our own memory [start, end), after checking that it still
    holds ``original`` (what /proc says is there); False, touching nothing, when it does not."""
    import ctypes

    if end - start != len(original) or ctypes.string_at(start, len(original)) != original:
        return False
    for lo, hi in edits:
        ctypes.memset(start + lo, ord("*"), hi - lo)
    return True


def hide_arguments() -> bool:
    """Overwrite the literal secrets in this process's original argv, so that
    ``/proc/PID/cmdline`` and ``ps`` show ``*`` in their place. Linux only (elsewhere, or when
    the memory is not where ``/proc/self/stat`` says, it does nothing and returns False).
    ``sys.argv`` is a copy and keeps the values, so the command line still parses."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            raw = fh.read()
        words = raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
        # latin-1: one character per byte, so the spans found are byte offsets (the option names
        # are ASCII; a value's bytes, whatever its encoding, are covered one for one)
        args = [w.decode("latin-1") for w in words]
        spans = secret_spans(args)
        if not spans:
            return True
        offsets, pos = [], 0
        for w in words:
            offsets.append(pos)
            pos += len(w) + 1
        edits = [(offsets[index] + lo, offsets[index] + hi) for index, lo, hi in spans]
        fields = _proc_stat_fields()
        arg_start, arg_end = int(fields[45]), int(fields[46])  # stat fields 48 and 49
        return _overwrite(arg_start, arg_end, raw, edits)
    except (OSError, ValueError, IndexError, ImportError, AttributeError):
        return False


def scrub_environment(names: Iterable[str] = SECRET_ENV) -> None:
    """Remove the credential variables from the environment once they have been read: no child
    inherits them (``os.environ`` removal calls ``unsetenv``), and on Linux their original bytes,
    which ``/proc/PID/environ`` keeps showing and a forked child copies, are overwritten."""
    present = [n for n in names if n in os.environ]
    for name in present:
        os.environ.pop(name, None)
    if not present or not sys.platform.startswith("linux"):
        return
    try:
        with open("/proc/self/environ", "rb") as fh:
            raw = fh.read()
        edits, pos = [], 0
        for entry in raw.split(b"\0"):
            key, sep, value = entry.partition(b"=")
            if sep and key.decode("ascii", "replace") in present and value:
                edits.append((pos + len(key) + 1, pos + len(entry)))
            pos += len(entry) + 1
        fields = _proc_stat_fields()
        _overwrite(int(fields[47]), int(fields[48]), raw, edits)  # stat fields 50 and 51
    except (OSError, ValueError, IndexError, ImportError, AttributeError):
        pass
