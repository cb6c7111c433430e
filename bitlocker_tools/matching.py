"""Which escrowed key opens which volume, proved.

The order is the one that keeps the crypto small and the answer honest:

1. **By identifier.** A key whose protector GUID, or the 8-hex-digit Key ID (or Windows 7's
   16-character prefix) it was escrowed under, names a protector of a volume is a candidate for
   that protector; a ``.BEK`` is also a candidate for the volume its header names.
2. **Proof.** Every candidate pair is tried cryptographically: identifiers collide (an 8-digit
   prefix is shared somewhere among 10,000 keys with a chance of about 1.2 %) and escrow keeps a
   computer's old keys. Recovery passwords are stretched with the batched core on all cores, one
   batch per protector salt; startup keys, VMKs and FVEKs need no stretch.
3. **Keys without an identifier** are tried against every recovery-password protector of every
   volume still locked, up to a limit on the number of stretches (announced before it runs);
   past the limit only when asked (``try_all``).
4. **What is left** is reported, not dropped: keys whose identifier matches but whose key does
   not (stale: rotated or mistyped), keys of the same computer older than every protector of its
   volume (stale), keys that match nothing, malformed keys, the same key in several places,
   one identifier with different keys, and the volumes left locked with their backup hints.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from ._core import load
from .crypto import kdf
from .crypto.sector_key import sector_key
from .errors import AuthenticationError, BadInputError, WrongKeyError
from .escrow.record import FVEK, RECOVERY_PASSWORD, STARTUP_KEY, VMK, EscrowRecord
from .format.constants import EncryptionMethod, ProtectorType, ValueType
from .metadata import Protector, StretchKeyValue
from .protectors import prove_fvek, try_vmk, unwrap_key

if TYPE_CHECKING:
    from ._core import Core
    from .volume import BitLockerVolume

#: Stretches the identifier-less phase runs without being asked (about a minute on two cores).
DEFAULT_TRY_LIMIT = 5_000
#: Candidates per call of the batched core in the identifier-less phase: large enough to keep
#: every core's pipelines full, small enough for a progress bar that moves.
BATCH = 512

BY_PROTECTOR_ID = "protector_id"
BY_KEY_ID_PREFIX = "key_id_prefix"
BY_VOLUME_GUID = "volume_guid"
BY_TRYING = "try_all"


@dataclass
class VolumeRef:
    """A BitLocker volume found in the evidence, and where."""

    source: str
    partition: int | None
    offset: int
    volume: BitLockerVolume

    @property
    def computer_name(self) -> str | None:
        """The computer the volume was encrypted on, from its description
        ("<computer> <drive or label> <date>")."""
        text = self.volume.metadata.description
        return text.split()[0].upper() if text and text.split() else None


@dataclass
class Match:
    """A key proved to open a volume."""

    ref: VolumeRef
    protector: Protector | None  # None for an FVEK (it opens no protector)
    record: EscrowRecord
    matched_by: str  # BY_PROTECTOR_ID, BY_KEY_ID_PREFIX, BY_VOLUME_GUID or BY_TRYING


@dataclass
class Stale:
    """An escrowed key that belongs to a volume but does not open it (any more)."""

    ref: VolumeRef
    protector: Protector | None
    record: EscrowRecord
    reason: str


@dataclass
class TryAll:
    """The identifier-less phase: its cost, and whether it ran."""

    keys: int = 0
    protectors: int = 0
    ran: bool = False
    reason: str | None = None

    @property
    def stretches(self) -> int:
        return self.keys * self.protectors


@dataclass
class MatchReport:
    volumes: list[VolumeRef]
    matches: list[Match] = field(default_factory=list)
    stale: list[Stale] = field(default_factory=list)
    unmatched: list[EscrowRecord] = field(default_factory=list)
    malformed: list[EscrowRecord] = field(default_factory=list)
    duplicates: list[list[EscrowRecord]] = field(default_factory=list)
    conflicts: list[list[EscrowRecord]] = field(default_factory=list)
    try_all: TryAll = field(default_factory=TryAll)

    @property
    def locked(self) -> list[VolumeRef]:
        opened = {id(m.ref) for m in self.matches}
        return [r for r in self.volumes if id(r) not in opened and not _needs_no_key(r)]


def _needs_no_key(ref: VolumeRef) -> bool:
    md = ref.volume.metadata
    clear = any(p.type == ProtectorType.CLEAR_KEY for p in md.protectors)
    return md.method == EncryptionMethod.NONE or clear


# --- the candidates ---------------------------------------------------------------------------------


_KIND_OPENS = {RECOVERY_PASSWORD: ProtectorType.RECOVERY_PASSWORD, STARTUP_KEY: ProtectorType.STARTUP_KEY}


@dataclass
class _Index:
    """Every protector of every volume, by GUID, so that 10,000 escrowed keys find theirs without
    comparing each against each (a prefix still compares: prefixes are few, and of any length)."""

    volumes: list[VolumeRef]
    by_guid: dict[str, list[tuple[VolumeRef, Protector]]] = field(default_factory=dict)
    all: list[tuple[VolumeRef, Protector]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for ref in self.volumes:
            for p in ref.volume.metadata.protectors:
                self.by_guid.setdefault(p.guid, []).append((ref, p))
                self.all.append((ref, p))


def _candidates(record: EscrowRecord, index: _Index) -> list[tuple[VolumeRef, Protector | None, str]]:
    """The (volume, protector, how) pairs a record's identifiers point at."""
    out: list[tuple[VolumeRef, Protector | None, str]] = []
    kind = _KIND_OPENS.get(record.kind)
    if record.key_id:
        if record.full_key_id:
            named = [(ref, p, BY_PROTECTOR_ID) for ref, p in index.by_guid.get(record.key_id, [])]
        else:
            named = [(ref, p, BY_KEY_ID_PREFIX) for ref, p in index.all if p.guid.startswith(record.key_id)]
        out += [(ref, p, how) for ref, p, how in named if kind is None or p.type == kind]
    if record.volume_guid:
        for ref in index.volumes:
            if ref.volume.metadata.volume_guid == record.volume_guid and not any(r is ref for r, _, _ in out):
                protectors = [p for p in ref.volume.metadata.protectors if kind is None or p.type == kind]
                out += [(ref, p, BY_VOLUME_GUID) for p in protectors] or [(ref, None, BY_VOLUME_GUID)]
    return out


# --- proving a pair -----------------------------------------------------------------------------------


def _salt(protector: Protector) -> bytes | None:
    child = protector.entry.child(ValueType.STRETCH_KEY)
    return child.value.salt if child is not None and isinstance(child.value, StretchKeyValue) else None


def _opens_volume_with_vmk(volume: BitLockerVolume, vmk: bytes, core: Core) -> bool:
    entry = volume.metadata.fvek_entry
    if entry is None:
        return False
    try:
        unwrap_key(vmk, entry.value, core)  # type: ignore[arg-type]
    except AuthenticationError:
        return False
    return True


def _proves_direct(ref: VolumeRef, protector: Protector | None, record: EscrowRecord, core: Core) -> bool:
    """Keys that need no stretch: a startup key opens its protector, a VMK the FVEK, an FVEK a
    sector of known plaintext."""
    assert record.secret is not None
    if record.kind == STARTUP_KEY:
        return protector is not None and try_vmk(protector, record.secret, core) is not None
    if record.kind == VMK:
        return _opens_volume_with_vmk(ref.volume, record.secret, core)
    if record.kind == FVEK:
        method = ref.volume.method
        if method == EncryptionMethod.NONE or len(record.secret) not in (method.key_material_size,
                                                                           method.fvek_datum_size):
            return False
        try:  # an FVEK the evidence cannot prove is no match: it may be anyone's key
            return prove_fvek(ref.volume, sector_key(method, record.secret), core)
        except (WrongKeyError, BadInputError):
            return False
    return False


def _prove_recovery_passwords(pairs: list[tuple[Protector, EscrowRecord]], core: Core) -> set[tuple[int, int]]:
    """Which (protector, record) pairs open: one batched stretch per protector salt."""
    by_protector: dict[int, tuple[Protector, list[EscrowRecord]]] = {}
    for p, r in pairs:
        by_protector.setdefault(id(p), (p, []))[1].append(r)
    opened: set[tuple[int, int]] = set()
    for p, records in by_protector.values():
        salt = _salt(p)
        if salt is None:
            continue
        initials = [kdf.recovery_initial(r.recovery_password.key16) for r in records]  # type: ignore[union-attr]
        for r, key in zip(records, kdf.stretch_batch(initials, salt, core)):
            if try_vmk(p, key, core) is not None:
                opened.add((id(p), id(r)))
    return opened


# --- the whole match ------------------------------------------------------------------------------------


def _representatives(records: list[EscrowRecord]) -> tuple[list[EscrowRecord], list[list[EscrowRecord]]]:
    """One record per distinct (kind, key, identifier), and the groups of the same key found in
    several places (reported as duplicates; proving one proves them all)."""
    groups: dict[tuple[str, str], list[EscrowRecord]] = defaultdict(list)
    for r in records:
        groups[(r.kind, r.value_text())].append(r)
    duplicates = [g for g in groups.values() if len({str(r.locator) for r in g}) > 1]
    seen: dict[tuple[str, str, str | None], EscrowRecord] = {}
    for r in records:
        seen.setdefault((r.kind, r.value_text(), r.key_id), r)
    return list(seen.values()), duplicates


def _conflicts(records: list[EscrowRecord]) -> list[list[EscrowRecord]]:
    """Records under one full protector GUID whose keys differ."""
    by_id: dict[str, list[EscrowRecord]] = defaultdict(list)
    for r in records:
        if r.full_key_id and r.kind == RECOVERY_PASSWORD:
            by_id[r.key_id].append(r)  # type: ignore[index]
    return [g for g in by_id.values() if len({r.value_text() for r in g}) > 1]


def match_keys(volumes: list[VolumeRef], records: Iterable[EscrowRecord], try_all: bool = False,
               try_limit: int = DEFAULT_TRY_LIMIT, core: Core | None = None,
               announce: Callable[[TryAll], None] | None = None,
               progress: Callable[[int], None] | None = None) -> MatchReport:
    """Match escrowed ``records`` to ``volumes``; see the module docstring for the order.

    ``announce`` is told the cost of the identifier-less phase before it runs (or is skipped);
    ``progress`` is called with the number of stretches done as it runs.
    """
    core = core or load()
    records = list(records)
    report = MatchReport(volumes)
    report.malformed = [r for r in records if not r.well_formed]
    good = [r for r in records if r.well_formed]
    report.conflicts = _conflicts(good)
    candidates_of, report.duplicates = _representatives(good)
    opened_volumes: set[int] = set()
    tried: set[int] = set()

    # 1 and 2: by identifier, every pair proved
    index = _Index(volumes)
    pairs = [(r, *c) for r in candidates_of for c in _candidates(r, index)]
    rp_pairs = [(p, r) for r, ref, p, _ in pairs if r.kind == RECOVERY_PASSWORD and p is not None]
    opened_rp = _prove_recovery_passwords(rp_pairs, core)
    for r, ref, p, how in pairs:
        tried.add(id(r))
        if r.kind == RECOVERY_PASSWORD:
            ok = p is not None and (id(p), id(r)) in opened_rp
        else:
            ok = _proves_direct(ref, p, r, core)
        if ok:
            report.matches.append(Match(ref, p if r.kind != FVEK and r.kind != VMK else None, r, how))
            opened_volumes.add(id(ref))
        elif how == BY_PROTECTOR_ID or (how == BY_VOLUME_GUID and r.kind != FVEK):
            report.stale.append(Stale(ref, p, r, "the identifier matches but the key does not open it "
                                                 "(an old, rotated or mistyped key)"))
    # a prefix that named several protectors and opened one of them is no stale key elsewhere
    matched_records = {id(m.record) for m in report.matches}
    report.stale = [s for s in report.stale if id(s.record) not in matched_records]
    # a Key ID that names exactly one protector, whose key does not open it: stale too (the
    # recovery screen's 8 digits rarely collide within one case)
    named: dict[int, list[tuple[VolumeRef, Protector | None]]] = defaultdict(list)
    for r, ref, p, how in pairs:
        if how == BY_KEY_ID_PREFIX:
            named[id(r)].append((ref, p))
    for r in candidates_of:
        hits = named.get(id(r), [])
        if len(hits) == 1 and id(r) not in matched_records:
            ref, p = hits[0]
            report.stale.append(Stale(ref, p, r, "the Key ID names this protector but the key does not open it "
                                                 "(an old, rotated or mistyped key)"))

    # 3: keys without an identifier. Those that need no stretch (an FVEK, a VMK, a startup key
    # that named no protector here) cost microseconds: tried on every volume still locked.
    locked = [ref for ref in volumes if id(ref) not in opened_volumes and not _needs_no_key(ref)]
    for r in candidates_of:
        if r.kind == RECOVERY_PASSWORD or id(r) in matched_records or id(r) in tried:
            continue
        for ref in locked:
            if id(ref) in opened_volumes:
                continue
            protectors = [p for p in ref.volume.metadata.protectors if p.type == ProtectorType.STARTUP_KEY] \
                if r.kind == STARTUP_KEY else [None]
            hit = next((p for p in protectors if _proves_direct(ref, p, r, core)), False)
            if hit is not False:
                report.matches.append(Match(ref, hit, r, BY_TRYING))
                opened_volumes.add(id(ref))
                break
    matched_records = {id(m.record) for m in report.matches}
    # ... and recovery passwords, against every recovery-password protector still locked
    idless = [r for r in candidates_of if r.kind == RECOVERY_PASSWORD and not r.key_id and id(r) not in matched_records]
    locked = [ref for ref in volumes if id(ref) not in opened_volumes and not _needs_no_key(ref)]
    targets = [(ref, p) for ref in locked for p in ref.volume.metadata.protectors
               if p.type == ProtectorType.RECOVERY_PASSWORD and _salt(p) is not None]
    report.try_all = TryAll(len(idless), len(targets))
    if idless and targets:
        if report.try_all.stretches > try_limit and not try_all:
            report.try_all.reason = (f"{report.try_all.stretches} stretches ({len(idless)} keys without an identifier × "
                                     f"{len(targets)} protectors) exceed the limit of {try_limit}; --try-all runs them")
            if announce:
                announce(report.try_all)
        else:
            report.try_all.ran = True
            if announce:
                announce(report.try_all)
            for r in _try_every(idless, targets, opened_volumes, report, core, progress):
                tried.add(id(r))
    matched_records = {id(m.record) for m in report.matches}

    # 4: the rest
    stale_records = {id(s.record) for s in report.stale}
    for r in candidates_of:
        if id(r) in matched_records or id(r) in stale_records:
            continue
        older = _older_key_of(r, volumes)
        if older is not None:
            report.stale.append(Stale(older, None, r, "a key of the same computer, older than every protector "
                                                      "of its volume"))
        else:
            report.unmatched.append(r)
    return report


def _try_every(idless: list[EscrowRecord], targets: list[tuple[VolumeRef, Protector]], opened_volumes: set[int],
               report: MatchReport, core: Core, progress: Callable[[int], None] | None) -> list[EscrowRecord]:
    """Stretch every identifier-less key against each target protector in batches, skipping a
    volume once it opens; return the keys that opened something."""
    found: list[EscrowRecord] = []
    initials = [kdf.recovery_initial(r.recovery_password.key16) for r in idless]  # type: ignore[union-attr]
    for ref, p in targets:
        salt = _salt(p)
        assert salt is not None
        for start in range(0, len(idless), BATCH):
            if id(ref) in opened_volumes:
                if progress:
                    progress(len(idless) - start)
                break
            batch = initials[start : start + BATCH]
            for i, key in enumerate(kdf.stretch_batch(batch, salt, core)):
                if try_vmk(p, key, core) is not None:
                    r = idless[start + i]
                    report.matches.append(Match(ref, p, r, BY_TRYING))
                    opened_volumes.add(id(ref))
                    found.append(r)
                    break
            if progress:
                progress(len(batch))
    return found


def _older_key_of(record: EscrowRecord, volumes: list[VolumeRef]) -> VolumeRef | None:
    """The volume of the record's computer when the record is older than every one of its
    protectors: AD keeps every key a computer ever escrowed."""
    if not record.computer_name or record.created_at is None:
        return None
    name = record.computer_name.upper()
    for ref in volumes:
        times = [p.creation_time for p in ref.volume.metadata.protectors if p.creation_time]
        if ref.computer_name == name and times and record.created_at < min(times):
            return ref
    return None


def keys_for_key_id(prefix: str, records: Iterable[EscrowRecord]) -> list[EscrowRecord]:
    """The helpdesk's question at the recovery screen: every escrowed key whose identifier starts
    with the Key ID shown (8 hex digits or more), newest first."""
    want = prefix.strip().strip("{}").lower()
    found = [r for r in records if r.key_id and (r.key_id.startswith(want) or want.startswith(r.key_id))]
    return sorted(found, key=lambda r: (r.created_at is None, -(r.created_at.timestamp() if r.created_at else 0)))
