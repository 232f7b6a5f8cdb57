"""What SLURM says about a job: its state (alive while queued or running), why it ended without
its artifact (one line naming the fix), and the count of a store's queued/running/finished jobs."""

import pickle
import re
import shutil
import subprocess
from pathlib import Path

from pynqrepro.core import claims
from pynqrepro.core.cluster.tools import run_tool

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
          "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING"}
NFS_GRACE_S = 60.0  # how long a completed job's artifact may take to appear on the waiter's host
REQUEUE_GRACE_S = 120.0  # how long a job submitit requeued may read as ended before SLURM queues it again
UNANSWERED_S = 3600.0  # how long a waiter waits on a job SLURM cannot be asked about before giving up
OOM = re.compile(r"exceeded (job )?memory limit|oom[-_ ]kill|out of memory", re.IGNORECASE)
NOT_ANSWERING = "NOT_ANSWERING"  # SLURM's controller did not answer: no news, keep waiting


def job_info(job_id: str) -> dict | None:
    """SLURM's record of a job (JobState, Reason, NodeList, Restarts, ExitCode, ...); None when SLURM
    no longer knows it (ended longer than MinJobAge ago, without accounting); JobState NOT_ANSWERING
    when the controller cannot be asked right now."""
    try:
        result = run_tool("scontrol", "show", "job", "-o", str(job_id))
    except subprocess.TimeoutExpired:
        return {"JobState": NOT_ANSWERING}
    if result.returncode == 0 and "JobState=" in result.stdout:
        return dict(re.findall(r"(\w+)=(\S*)", result.stdout))
    if shutil.which("sacct") is not None:
        accounted = run_tool("sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,NodeList,ExitCode")
        if accounted.returncode == 0 and accounted.stdout.strip():
            state, nodes, exit_code = accounted.stdout.splitlines()[0].split("|")
            return {"JobState": state.split()[0], "NodeList": nodes, "ExitCode": exit_code}
    if "invalid job id" in result.stderr.lower():
        return None
    return {"JobState": NOT_ANSWERING}


def job_status(record: claims.ClaimRecord, watch: claims.StaleWatch) -> claims.HolderStatus:
    """Is the job holding ``record`` queued or running, and if it ended, why (one line)?"""
    name = f"SLURM job {record.job_id}"
    if record.state == "failed":
        return claims.HolderStatus(False, name, error=record.error, job_id=record.job_id)
    info = job_info(record.job_id) if shutil.which("scontrol") is not None else None
    state = info["JobState"] if info else "UNKNOWN"
    unanswered = f"{record.token}:unanswered"
    if shutil.which("scontrol") is None or state == NOT_ANSWERING:
        why = ("SLURM cannot be asked from this host (no scontrol on PATH)" if shutil.which("scontrol") is None
               else "SLURM's controller is not answering")
        waited = watch.seconds_since_first(unanswered)
        if waited < UNANSWERED_S:
            return claims.HolderStatus(True, f"{name} ({why})", job_id=record.job_id)
        return claims.HolderStatus(False, name, job_id=record.job_id, error=(
            f"{name} ({record.stage} {record.key[:8]}): {why} for {waited / 60:.0f} min: wait from a host with "
            f"SLURM's tools (or check the controller: scontrol ping); the job, if it runs, still publishes "
            f"into the store, so ask again later"))
    watch.forget(unanswered)  # SLURM answered: a later silence starts its own ceiling
    node = (info or {}).get("BatchHost") or (info or {}).get("NodeList") or "?"
    describe = f"{name} {state}" + (f" on {node}" if state not in QUEUED and node not in ("?", "", "(null)") else "")
    if state in ACTIVE:
        watch.forget(f"{record.token}:requeued")  # a later requeue gets its own grace
        return claims.HolderStatus(True, describe, job_id=record.job_id)
    if state == "COMPLETED" and watch.seconds_since_first(f"{record.token}:completed") < NFS_GRACE_S:
        return claims.HolderStatus(True, f"{name} completed, waiting for its artifact", job_id=record.job_id)
    if (state != "COMPLETED" and requeued_by_submitit(record)
            and watch.seconds_since_first(f"{record.token}:requeued") < REQUEUE_GRACE_S):
        # the requeueing job exits (ExitCode 1:0 once measured) a moment before SLURM shows it PENDING again
        return claims.HolderStatus(True, f"{name} requeued, waiting for SLURM to queue it again", job_id=record.job_id)
    return claims.HolderStatus(False, describe, error=explain_end(record, state, info or {}), job_id=record.job_id)


def requeued_by_submitit(record: claims.ClaimRecord) -> bool:
    """Is the job's last run requeueing itself (submitit's time-limit handler), with no run since?
    submitit logs to the job's stdout (``*_log.out``; ``record.log`` is its stderr beside it) "Calling
    checkpoint method." before it asks SLURM to requeue and "Requeued job <id>" after SLURM answered, by
    when SLURM may already show the job ended: the first line is the mark, unless it then logged why
    it did not requeue."""
    if not record.log:
        return False
    for log in (Path(record.log).with_suffix(".out"), Path(record.log)):
        try:
            tail = log.read_bytes()[-65536:].decode(errors="replace")
        except OSError:
            continue
        run = tail[tail.rfind("Starting with "):]  # the last run's lines (all, before any run started)
        if "Calling checkpoint method." in run and "Job not requeued because" not in run:
            return True
    return False


def _job_error_line(record: claims.ClaimRecord) -> str | None:
    """The last line of the exception the job raised, from submitit's result file beside its log."""
    result = Path(record.log).with_name(f"{record.job_id}_0_result.pkl")
    try:
        outcome, trace = pickle.loads(result.read_bytes())
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, TypeError):
        return None
    if outcome != "error":
        return None
    last = str(trace).strip().splitlines()[-1]
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", last)  # "module.ExceptionType: message"


AGAIN = "a training resumes from its last epoch checkpoint"


def explain_end(record: claims.ClaimRecord, state: str, info: dict) -> str:
    """Why a job ended without publishing its artifact, and the fix, in one line."""
    head = f"SLURM job {record.job_id} ({record.stage} {record.key[:8]})"
    log = Path(record.log) if record.log else None
    node = info.get("BatchHost") or info.get("NodeList") or "its node"
    kind = record.kind or "the job's kind"
    try:
        tail = log.read_bytes()[-65536:].decode(errors="replace") if log else ""
        log_exists = True
    except OSError:
        tail, log_exists = "", False
    if state == "OUT_OF_MEMORY" or OOM.search(tail):
        return f"{head} ran out of memory on {node}: raise mem_gb under [{kind}] in the cluster config (log: {log})"
    if state == "TIMEOUT":
        return (f"{head} hit its time limit on {node} after {info.get('Restarts', '?')} requeues: raise time_min "
                f"or max_requeues under [{kind}] in the cluster config (log: {log})")
    if state == "CANCELLED":
        return f"{head} was cancelled: ask for it again to continue ({AGAIN}) (log: {log})"
    if state in ("NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "DEADLINE"):
        return f"{head} ended {state} on {node}: ask for it again to continue ({AGAIN}) (log: {log})"
    error = _job_error_line(record)
    if error:
        return f"{head} failed on {node}: {error} (log: {log})"
    if state == "COMPLETED":
        return (f"{head} completed on {node} but {claims.HOST} does not see its artifact in the store: the store is "
                f"not shared with the compute nodes; put --store-dir on a filesystem they share (NFS, Lustre, GPFS, "
                f"BeeGFS, CephFS) (log: {log})")
    if log is not None and not log_exists:
        return (f"{head} ended {state} without writing its log {log}: {node} cannot reach {log.parent.parent}; "
                f"put --store-dir (and log_dir) on a filesystem shared by {claims.HOST} and the compute nodes")
    if state == "UNKNOWN":
        return f"SLURM no longer knows {head} and it left no artifact: ask for it again (log: {log})"
    return f"{head} ended {state} (exit {info.get('ExitCode', '?')}) on {node}: see its log {log}"


class JobMonitor:
    """The progress line of a store's SLURM jobs: queued, running, and finished since it started."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._active: dict[str, str] = {}
        self.finished: set[str] = set()
        self.failed: set[str] = set()

    def line(self) -> str | None:
        current, failed_now = {}, set()
        for path in self.root.glob("*/.*.claim-*"):
            record = claims.read_claim(path) if path.name.rsplit("-", 1)[1].isdigit() else None
            if record is None or record.job_id is None or record.state == claims.RELEASED:
                continue
            if record.state == "failed":
                failed_now.add(record.job_id)
                continue
            info = job_info(record.job_id)
            current[record.job_id] = info["JobState"] if info else "UNKNOWN"
        active = {job: state for job, state in current.items() if state in ACTIVE | {NOT_ANSWERING}}
        for job in self._active:
            if job not in active:
                self.finished.add(job)
                if job in failed_now or current.get(job, "COMPLETED") not in ("COMPLETED",):
                    self.failed.add(job)
        self._active = active
        if not (active or self.finished):
            return None
        queued = sum(state in QUEUED for state in active.values())
        failed = f" ({len(self.failed)} failed)" if self.failed else ""
        return (f"pynqrepro: SLURM jobs: {queued} queued, {len(active) - queued} running, "
                f"{len(self.finished)} finished{failed}")
