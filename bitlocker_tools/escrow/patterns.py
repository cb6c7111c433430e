"""The regular expressions the importers share: identifiers, 48-digit keys, hex keys.

Definitions only; :mod:`.text` applies them. Every pattern works on text that went through
:data:`NORMALISE` first (Unicode dashes, spaces and full-width digits made ASCII, character for
character, so positions and line numbers do not move), and none depends on wording: Windows,
manage-bde and the portals are localised, the identifiers and digits are not.
"""

from __future__ import annotations

import re

#: One character for one character, so that offsets stay valid: every dash Windows, Word, e-mail
#: and OCR produce becomes "-", every space (no-break, thin, ideographic, zero-width) a space,
#: full-width digits ASCII digits.
NORMALISE = {
    **{cp: "-" for cp in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63, 0xFF0D)},
    **{cp: " " for cp in (0x00A0, *range(0x2000, 0x200C), 0x202F, 0x205F, 0x3000, 0xFEFF, 0x2060)},
    **{0xFF10 + d: str(d) for d in range(10)},
}

_HEX = "[0-9A-Fa-f]"

#: A whole GUID, braces optional; group 1 is the GUID.
GUID = re.compile(rf"(?<![0-9A-Za-z-])\{{?({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})\}}?(?![0-9A-Za-z])")
#: Windows 7's "Recovery key identification": the GUID's first 16 characters.
WIN7_PREFIX = re.compile(rf"(?<![0-9A-Za-z-]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{2}}(?![0-9A-Za-z-])")
#: The 8-hex-digit Key ID of the recovery screen and the Microsoft account page, as a token of its
#: own. In free text only a token with a letter counts (an all-digit one is as likely a date).
KEY_ID_8 = re.compile(rf"(?<![0-9A-Za-z-]){_HEX}{{8}}(?![0-9A-Za-z-])")
#: A GUID or a dashed prefix of one, at the start of a file name (Windows names the TXT file
#: after the identifier, sometimes cut to 8-4-4-4).
NAME_ID = re.compile(rf"(?<![0-9A-Za-z]){_HEX}{{8}}(?:-{_HEX}{{4}}){{0,3}}(?:-{_HEX}{{12}})?(?![0-9A-Za-z])")

#: Digit groups joined by dashes or dots (spaces allowed around them): a key as written, or a
#: key mistyped (a group too long or short, a dash lost, 7 or 9 groups). Classified in
#: :func:`.text.classify_digits`.
DASHED_RUN = re.compile(r"(?<![0-9])[0-9]{1,16}(?:[ \t]?[-.][ \t]?[0-9]{1,16}){4,10}(?![0-9])")
#: Digit groups joined by spaces only (a key read aloud or copied from a PDF).
SPACED_RUN = re.compile(r"(?<![0-9])(?<![0-9][-.])[0-9]{4,8}(?:[ \t]+[0-9]{4,8}){6,}(?![0-9])(?![-.][0-9])")
#: Digits without any separator: 48 is a key, 47 or 49 one with a digit lost or doubled.
BARE_RUN = re.compile(r"(?<![0-9])[0-9]{47,49}(?![0-9])")
#: What a run must hold to be taken for a key at all (a date or a phone number is not one).
RUN_GROUPS = range(7, 10)  # 7, 8 or 9 groups
RUN_DIGITS = range(40, 57)

#: A labelled hex key: "VMK: <hex>", "FVEK = 0x<hex>", "[FVEK] FVEK: <hex>:<hex>" (libbde's
#: FVEK:TWEAK), "Volume Master Key <hex bytes separated by spaces>", "TWEAK: <hex>". Group 1 is
#: the label, group 2 the value. An unlabelled hex string is never a key here: it is as likely a
#: hash.
HEX_KEY = re.compile(
    r"(?<![0-9A-Za-z])(VMK|FVEK|TWEAK|Volume[ _]Master[ _]Key|Full[ _]Volume[ _]Encryption[ _]Key)(?![0-9A-Za-z])"
    r"(?:[ \t]*\([^)\n]{0,20}\))?[ \t]*[:=]?[ \t]*(?:0x)?"
    r"((?:[0-9A-Fa-f]{2}[ :]){15,127}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{32,128}(?::[0-9A-Fa-f]{32,128})?)"
    r"(?![0-9A-Za-z])",
    re.IGNORECASE,
)
#: A file that is nothing but one hex key (no label): named ``*.vmk`` or ``*.fvek`` it is one.
BARE_HEX = re.compile(r"^\s*(?:0x)?([0-9A-Fa-f]{32}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{128})\s*$")

#: A line of a text file: CRLF, LF or CR (not the other separators ``str.splitlines`` knows).
LINE_BREAK = re.compile(r"\r\n|\r|\n")
