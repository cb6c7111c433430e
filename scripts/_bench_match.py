"""Key-matching figures for scripts/bench.py (issue #16): 10,000 escrowed keys matched by ID against
the corpus, and the identifier-less path's rate beside the batched core's.

Run alone: ``python scripts/_bench_match.py`` prints the figures without touching the docs.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bitlocker_tools.crypto import kdf  # noqa: E402
from bitlocker_tools.escrow import load_keys  # noqa: E402
from bitlocker_tools.escrow.record import RECOVERY_PASSWORD, EscrowRecord, Locator  # noqa: E402
from bitlocker_tools.matching import VolumeRef, match_keys  # noqa: E402
from bitlocker_tools.recovery_password import RecoveryPassword  # noqa: E402
from bitlocker_tools.volume import BitLockerVolume  # noqa: E402


def _password(rng: random.Random) -> str:
    return str(RecoveryPassword(tuple(rng.randrange(65536) * 11 for _ in range(8))))


def write_escrow(folder: Path, manifest: dict, n: int = 10_000) -> None:
    """n random keys (valid checksums, random GUIDs) as a Graph JSON export, with the corpus
    recovery passwords among them under their protector GUIDs."""
    rng = random.Random(16)
    value = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "key": _password(rng),
              "createdDateTime": "2025-03-02T22:07:55Z", "volumeType": 1} for _ in range(n)]
    for v in manifest["volumes"]:
        rp = v["credentials"].get("recovery_password")
        if rp:
            pid = next(p["id"] for p in v["protectors"] if p["type"] == "recovery_password")
            value.insert(rng.randrange(len(value)), {"id": pid, "key": rp, "volumeType": 1})
    (folder / "recoveryKeys.json").write_text(json.dumps({"value": value}))


def _volumes(cdir: Path, manifest: dict) -> list[VolumeRef]:
    out = []
    for v in manifest["volumes"]:
        name = v["file"][: -len(".gz")]
        out.append(VolumeRef(name, None, 0, BitLockerVolume((cdir / name).open("rb"), name=name)))
    return out


def by_id(cdir: Path, manifest: dict) -> dict[str, float]:
    """Load 10,000 keys and match them by ID against the 14 corpus volumes; the time beyond the
    crypto proofs is the whole minus the time inside the batched stretch."""
    spent = [0.0]
    real = kdf.stretch_batch

    def timed(*args, **kw):
        t0 = time.perf_counter()
        try:
            return real(*args, **kw)
        finally:
            spent[0] += time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        write_escrow(Path(tmp), manifest)
        refs = _volumes(cdir, manifest)
        kdf.stretch_batch = timed
        try:
            t0 = time.perf_counter()
            loaded = load_keys([tmp])
            t_load = time.perf_counter() - t0
            report = match_keys(refs, loaded.records)
            total = time.perf_counter() - t0
        finally:
            kdf.stretch_batch = real
    return {"keys": len(loaded.records), "matched": len(report.matches), "load_s": t_load, "total_s": total,
            "crypto_s": spent[0], "beyond_s": total - spent[0]}


def idless_rate(cdir: Path, n: int = 512) -> dict[str, float]:
    """n keys without an identifier against vista.bin's one recovery-password protector (the key
    is not among them, so every candidate is stretched): candidates per second, all cores."""
    rng = random.Random(7)
    records = []
    for i in range(n):
        r = EscrowRecord(RECOVERY_PASSWORD, "bench", Locator("bench", line=i + 1))
        r.recovery_password = RecoveryPassword(tuple(rng.randrange(65536) * 11 for _ in range(8)))
        records.append(r)
    ref = VolumeRef("vista.bin", None, 0, BitLockerVolume((cdir / "vista.bin").open("rb")))
    t0 = time.perf_counter()
    report = match_keys([ref], records, try_limit=n)
    secs = time.perf_counter() - t0
    assert report.try_all.ran and not report.matches
    return {"keys": n, "secs": secs, "keys_per_s": n / secs}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "scripts"))
    import fetch_corpus  # type: ignore[import-not-found]

    cdir = Path(fetch_corpus.ensure_corpus())
    man = json.loads((ROOT / "tests" / "corpus_manifest.json").read_text())
    print(by_id(cdir, man))
    print(idless_rate(cdir))
    t0 = time.perf_counter()
    salt = bytes(16)
    kdf.stretch_batch([bytes(32)] * 512, salt)
    print({"batched_core_keys_per_s": 512 / (time.perf_counter() - t0)})


def recover_rate(cdir: Path, shards: int = 64) -> dict[str, float]:
    """``recover``'s rate on all cores: one 64th of a whole unknown group (1,024 candidates) against
    recovery_password.bin's protector, the key not among them (group 1 is wrong), so every
    candidate is stretched and tried."""
    from bitlocker_tools.recover import run_search, volume_targets
    from bitlocker_tools.search import SearchSpace, parse_pattern

    rp = "284867-596541-514998-422114-660297-261613-215424-199408".split("-")
    rp[1], rp[3] = "000000", "??????"
    vol = BitLockerVolume((cdir / "recovery_password.bin").open("rb"))
    space = SearchSpace(parse_pattern("-".join(rp)))
    t0 = time.perf_counter()
    result = run_search(space, volume_targets(vol), shard=(1, shards))
    secs = time.perf_counter() - t0
    assert result.key16 is None
    return {"candidates": result.tried, "secs": secs, "per_s": result.tried / secs}


def hashcat_rate() -> float | None:
    """``hashcat -b -m 22100`` on this machine (Debian's hashcat, the CPU through PoCL), H/s."""
    import shutil
    import subprocess

    if shutil.which("hashcat") is None:
        return None
    proc = subprocess.run(["hashcat", "-b", "-m", "22100", "--machine-readable", "--quiet"], capture_output=True,
                          text=True, timeout=600)
    rates = [float(line.split(":")[-1]) for line in proc.stdout.splitlines() if line.count(":") >= 5
             and line.split(":")[1] == "22100"]
    return sum(rates) if rates else None
