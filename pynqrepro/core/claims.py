"""Build claims: which process or SLURM job is building an artifact, visible to every host that
shares the store, with fencing tokens so that a holder judged dead can never publish over its
successor.

A key's claims are generation-numbered files ``<stage>/.<key>.claim-<n>``, each a JSON record of
its holder; the highest generation is the claim in force. A claim is taken by creating generation
n+1 with link(2) from a private temporary file, which either creates the name or fails with EEXIST
atomically on local filesystems, NFS v3/v4, Lustre, GPFS (Spectrum Scale), BeeGFS and CephFS; a
lost NFS reply is settled by the temporary file's link count, as open(2) recommends. So of any
number of waiters that judge generation n's holder dead at once, exactly one takes n+1, and nothing
is ever renamed aside or put back. A generation file is written only by its own holder (its job
included); a holder releases by marking its record ``released`` (the highest file is never deleted,
so generation numbers are never reused and a token is unique per file), and the winner of n+1
deletes the superseded generations. Before publishing, a holder checks that its generation is still
the highest (``holds``): a holder judged dead that was not is fenced out. Nothing relies on
flock/fcntl locks, which need NFS's lock manager and outlive a dead compute node. Filesystems
without hard links (SMB/CIFS, object-store FUSE mounts) cannot hold a shared store.

Whether the holder still lives is read from the record: a SLURM job by SLURM's job state; a
process on this host by its pid and start time; a process on another host by its heartbeat (it
touches its claim file every HEARTBEAT_S; a waiter that sees no change for STALE_S seconds of its
own clock takes it for dead, so the hosts' clocks need not agree).
"""

import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

HEARTBEAT_S = 30.0
STALE_S = 300.0
RELEASED = "released"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a reused pid from the holder), None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


HOST = socket.gethostname()
BOOT = _boot_id()


@dataclass(frozen=True)
class ClaimRecord:
    """Who builds ``stage/key``: a process, and once submitted its SLURM job."""

    stage: str
    key: str
    session: str  # the store session that made the claim (a failure is news to it)
    executor: str = "local"
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = HOST
    boot: str = BOOT
    pid: int = field(default_factory=os.getpid)
    pid_start: str | None = field(default_factory=lambda: _process_start(os.getpid()))
    kind: str | None = None  # the job's resource class (train, finn, vivado)
    job_id: str | None = None
    log: str | None = None  # the job's stderr log
    state: str = "building"  # building (a process holds it) | submitted (a SLURM job does) | failed | released
    error: str | None = None  # one line, when state is failed
    generation: int = 1  # the fencing token's order: the claim file's number


@dataclass(frozen=True)
class HolderStatus:
    """What a waiter learns about a claim's holder."""

    alive: bool
    describe: str  # e.g. "SLURM job 12 RUNNING on node3", "pid 4711 on login1"
    error: str | None = None  # why it ended, one line naming the fix, when it failed
    job_id: str | None = None  # set when the holder is a SLURM job


def claim_file(base: Path, generation: int) -> Path:
    """Generation ``generation``'s file of the claims ``base`` (``<stage>/.<key>.claim``)."""
    return base.with_name(f"{base.name}-{generation}")


def generations(base: Path) -> list[int]:
    """The generations of ``base``'s claim files that exist, ascending."""
    pattern = re.compile(re.escape(base.name) + r"-(\d+)$")
    try:
        names = os.listdir(base.parent)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def current(base: Path) -> tuple[int, ClaimRecord | None] | None:
    """The claim in force: (its generation, its record, None if unreadable); None if there is none."""
    found = generations(base)
    if not found:
        return None
    return found[-1], read_claim(claim_file(base, found[-1]))


def _write_private(path: Path, record: ClaimRecord) -> Path:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as handle:
        json.dump(asdict(record), handle)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def try_claim(base: Path, record: ClaimRecord) -> bool:
    """Create generation ``record.generation`` of the claims ``base`` unless it exists; True if it is
    ours. The winner then removes the superseded generations."""
    path = claim_file(base, record.generation)
    tmp = _write_private(path, record)
    try:
        os.link(tmp, path)
        won = True
    except FileExistsError:
        won = False
    except OSError:
        won = os.stat(tmp).st_nlink == 2  # NFS: the link was made but its reply was lost
    finally:
        tmp.unlink(missing_ok=True)
    if won:
        for old in generations(base):
            if old < record.generation:
                claim_file(base, old).unlink(missing_ok=True)
    return won


def read_claim(path: Path) -> ClaimRecord | None:
    try:
        return ClaimRecord(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def update_claim(base: Path, record: ClaimRecord) -> None:
    """Replace our own generation's record (e.g. with the job id). Only its holder writes a
    generation file, so this is no read-then-act race: if a successor superseded (and deleted) it,
    the rewritten file is a lower generation than the claim in force, which ignores it."""
    path = claim_file(base, record.generation)
    os.replace(_write_private(path, record), path)


def release_claim(base: Path, record: ClaimRecord) -> None:
    """Mark our claim released (the next claimant takes the next generation)."""
    update_claim(base, replace(record, state=RELEASED))


def holds(base: Path, record: ClaimRecord) -> bool:
    """Whether ``record`` is still the claim in force (the fencing check before publishing)."""
    now = current(base)
    return (now is not None and now[0] == record.generation and now[1] is not None
            and now[1].token == record.token and now[1].state != RELEASED)


class Heartbeat:
    """Touches a claim file every HEARTBEAT_S while a local process builds, for waiters on other
    hosts. A failed touch (an NFS hiccup) is retried at the next beat, not taken as the end."""

    def __init__(self, path: Path, interval: float | None = None):
        self._path, self._interval = Path(path), interval or HEARTBEAT_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="pynqrepro-heartbeat")
        self.failures = 0

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                os.utime(self._path)
            except OSError:
                self.failures += 1

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class StaleWatch:
    """A waiter's view of heartbeats: when it last saw each claim file change, by its own clock."""

    def __init__(self, stale_after: float | None = None):
        self.stale_after = stale_after or STALE_S
        self._seen: dict[str, tuple[float, float]] = {}
        self._first: dict[str, float] = {}

    def seconds_since_first(self, event: str) -> float:
        """Seconds since this waiter first noted ``event`` (0 the first time)."""
        now = time.monotonic()
        return now - self._first.setdefault(event, now)

    def forget(self, event: str) -> None:
        """Start ``event``'s count afresh at its next note."""
        self._first.pop(event, None)

    def quiet_for(self, path: Path, token: str) -> float:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return 0.0
        now = time.monotonic()
        last = self._seen.get(token)
        if last is None or last[0] != mtime:
            self._seen[token] = (mtime, now)
            return 0.0
        return now - last[1]


def process_status(path: Path, record: ClaimRecord, watch: StaleWatch) -> HolderStatus:
    """Liveness of a claim held by a process (a local build, or a submitter before sbatch answered)."""
    where = f"pid {record.pid} on {record.host}"
    if record.host == HOST and record.boot == BOOT:
        try:
            os.kill(record.pid, 0)
            alive = record.pid_start is None or _process_start(record.pid) == record.pid_start
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        return HolderStatus(alive, where)
    quiet = watch.quiet_for(path, record.token)
    return HolderStatus(quiet < watch.stale_after, f"{where} (heartbeat {quiet:.0f} s ago)")
