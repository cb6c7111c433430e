"""Which importer reads a file: decided by its content, not its name.

Escrow files are renamed, exported without extensions, pasted into ``.txt`` files, so the
bytes decide: a ``.BEK`` or FVEK file by its binary layout, text by the first format in
:data:`TEXT_FORMATS` whose shape it has (the most specific first: a JSON document, an HTML
page, LDIF, PowerShell's list and table views, AD's VBScript and DSInternals lines, a CSV with
a header we understand, manage-bde, a pasted Microsoft account table, the Windows TXT file),
and anything else as free text. Only a ``.BEK`` is taken by its name, so that a broken one
says why instead of passing for text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

from . import (
    ad_text,
    csv_export,
    free_text,
    graph_json,
    hex_keys,
    keyfile,
    ldif,
    manage_bde,
    msa,
    patterns,
    powershell,
    windows_txt,
)
from .record import EscrowProblem, Found, Locator
from .text import decode, looks_like_text


@dataclass(frozen=True)
class TextFormat:
    name: str
    detect: Callable[[str, str], bool]  # (text, file name)
    read: Callable[[str, str], Iterator[Found]]  # (text, file name)


TEXT_FORMATS: tuple[TextFormat, ...] = (
    TextFormat("json", lambda t, f: _is_json(t), graph_json.read),
    TextFormat("html", lambda t, f: msa.detect_html(t), msa.read_html),
    TextFormat("ldif", lambda t, f: ldif.detect(t), ldif.read),
    TextFormat("powershell_list", lambda t, f: powershell.detect_list(t), powershell.read_list),
    TextFormat("ad_text", lambda t, f: ad_text.detect(t), ad_text.read),
    TextFormat("powershell_table", lambda t, f: powershell.detect_table(t), powershell.read_table),
    TextFormat("csv", lambda t, f: csv_export.detect(t), csv_export.read),
    TextFormat("manage_bde", lambda t, f: manage_bde.detect(t), manage_bde.read),
    TextFormat("msa_text", lambda t, f: msa.detect_text(t), msa.read_text),
    TextFormat("windows_txt", windows_txt.detect, windows_txt.read),
)
FREE_TEXT = TextFormat("text", lambda t, f: True, free_text.read)


def _is_json(text: str) -> bool:
    head = text.lstrip()[:64]
    if head.startswith("{"):
        return True
    return head.startswith("[") and head[1:].lstrip()[:1] in ('{', '[', '"', "]")


@dataclass(frozen=True)
class Recognised:
    """What a file was taken for, and what it gave."""

    format: str  # a TEXT_FORMATS name, "text", "key_file", "hex_file", "binary"
    items: list[Found]


def read_bytes(raw: bytes, file: str, explicit: bool = True) -> Recognised:
    """Every record and problem of one file's bytes. ``explicit``: the user named this file
    (a binary or empty one is then a problem; found while walking a directory, it is skipped)."""
    if keyfile.is_key_file(raw, file):
        try:
            return Recognised("key_file", list(keyfile.read(raw, file)))
        except Exception as exc:  # one unreadable file must not end the run
            return Recognised("key_file", [EscrowProblem(Locator(file), f"unreadable key file ({type(exc).__name__}: {exc})")])
    text, _ = decode(raw)
    if not looks_like_text(raw, text):
        items: list[Found] = [EscrowProblem(Locator(file), "not text, and not a .BEK or FVEK file")] if explicit else []
        return Recognised("binary", items)
    if patterns.BARE_HEX.match(text):
        return Recognised("hex_file", list(hex_keys.bare_file(text, file)))
    failed: list[Found] = []
    for fmt in TEXT_FORMATS:
        if fmt.detect(text, file):
            try:
                items = list(fmt.read(text, file))
            except Exception as exc:  # one unreadable file must not end the run
                failed.append(EscrowProblem(Locator(file), f"could not be read as {fmt.name} "
                                                           f"({type(exc).__name__}: {exc}); read as text instead"))
                break
            if items:
                return Recognised(fmt.name, items)
    items = failed + list(FREE_TEXT.read(text, file))
    if not items and explicit:
        items = [EscrowProblem(Locator(file), "no key found in this file")]
    return Recognised(FREE_TEXT.name, items)
