"""The 48-digit recovery password: parsing, the per-group check, and key16.

Eight groups of six digits; each group is 11 x a 16-bit word, so it must be divisible by 11 and
below 720896. The check runs before any crypto and names the bad groups, because a key typed
from paper or OCR has passed no check at all (a key Windows rejected as wrong has passed it).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import CredentialFormatError
from .secret import masked_repr

GROUPS = 8
GROUP_LIMIT = 720896  # 65536 * 11


@masked_repr("groups")  # str() is the key (for --show-keys and keychains); repr() never is
@dataclass(frozen=True)
class RecoveryPassword:
    groups: tuple[int, ...]

    @property
    def key16(self) -> bytes:
        """The 16-byte key: the eight words group/11, little-endian."""
        return struct.pack("<8H", *(g // 11 for g in self.groups))

    def __str__(self) -> str:
        return "-".join(f"{g:06d}" for g in self.groups)

    @classmethod
    def from_key16(cls, key16: bytes) -> RecoveryPassword:
        return cls(tuple(w * 11 for w in struct.unpack("<8H", key16)))


def group_is_valid(group: int) -> bool:
    return group % 11 == 0 and group < GROUP_LIMIT


def parse(text: str) -> RecoveryPassword:
    """Parse a recovery password written with dashes, spaces or nothing between groups.

    Separators are not trusted (keys are copied from paper, e-mail and OCR with doubled or
    missing dashes): when the text holds 48 digits they are the key. The error says what is
    wrong where it can: a group that is not six digits long, or a group that fails the check.
    """
    cleaned = text.strip()
    if re.search(r"[^\d\s-]", cleaned):
        raise CredentialFormatError("recovery password: only digits, dashes and spaces are allowed")
    digits = re.sub(r"[-\s]", "", cleaned)
    if len(digits) != 48:
        parts = [p for p in re.split(r"[-\s]+", cleaned) if p]
        if len(parts) == GROUPS:
            short = [f"group {i + 1} has {len(p)}" for i, p in enumerate(parts) if len(p) != 6]
            raise CredentialFormatError(
                f"recovery password: {', '.join(short)} digits; each of the 8 groups has 6"
            )
        raise CredentialFormatError(
            f"recovery password: expected 48 digits (8 groups of 6), got {len(digits)} digits"
        )
    groups = tuple(int(digits[i : i + 6]) for i in range(0, 48, 6))
    bad = [str(i + 1) for i, g in enumerate(groups) if not group_is_valid(g)]
    if bad:
        which = "group " + bad[0] if len(bad) == 1 else "groups " + ", ".join(bad)
        raise CredentialFormatError(
            f"recovery password: {which} failed the check (each group must be a multiple of 11 "
            "below 720896): a typo, or not a BitLocker recovery password"
        )
    return RecoveryPassword(groups)
