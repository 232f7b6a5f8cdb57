"""The SLURM executor: each heavy artifact build as one SLURM job, submitted and run by submitit.

The submitter claims the key (``pynqrepro.core.claims``), submits a ``StoreJob`` with the
resources of its kind and writes the job id into the claim. The job checks that it sees the
submitter's store, builds in the key's work directory and publishes the artifact itself, so the
artifact lands even if every session that asked for it has gone. Waiters (any session, any host)
read the claim and ask SLURM for the job's state (``scontrol``; ``sacct`` where accounting runs):
queued or running, they wait; ended without the artifact, they say why in one line.

Faults: SLURM signals a job before its time limit and (``preempt_send_user_signal``) at preemption;
submitit then checkpoints the StoreJob and requeues it (up to ``max_requeues`` time limits), and a
resumable build continues from the last epoch checkpoint in its work directory, to the same
weights as an uninterrupted run. A job killed outright (scancel, node failure, requeue) keeps its
work directory too: the next run, requeued or asked for again, resumes from it.
"""

import io
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
import tomllib
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field, replace
from pathlib import Path

import submitit

from pynqrepro.core import claims
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import JOB_POLL_S, KINDS, PROCESS_POLL_S, JobFailed

TOOLS = ("sbatch", "srun", "scontrol", "sinfo")
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
          "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING"}
DEFAULT_TIME_MIN = {"train": 24 * 60, "finn": 2 * 60, "vivado": 12 * 60}
SHARE_WAIT_S = 15.0  # how long a job looks for the submitter's store before calling it unshared
NFS_GRACE_S = 60.0  # how long a completed job's artifact may take to appear on the waiter's host
OOM = re.compile(r"exceeded (job )?memory limit|oom[-_ ]kill|out of memory", re.IGNORECASE)


@dataclass(frozen=True)
class JobClass:
    """The SLURM resources of one job kind (``[train]``, ``[finn]``, ``[vivado]`` in the settings)."""

    kind: str
    partition: str | None = None  # None: the cluster's default partition
    constraint: str | None = None  # node features, e.g. "vivado"
    account: str | None = None
    qos: str | None = None
    time_min: int | None = None  # None: the kind's default, capped at the partition's limit
    cpus: int = 1  # per task; also the job's torch threads
    mem_gb: float | None = None  # None: the partition's default
    gpus: int = 1  # per node, for workloads that want GPUs (paper-scale training)
    nodes: int = 1  # distributed training only
    tasks_per_node: int = 1  # distributed training only (one process per GPU)
    setup: tuple = ()  # shell lines run before the job, e.g. "source /opt/Xilinx/Vivado/2024.2/settings64.sh"
    max_requeues: int = 3  # time limits survived by requeueing (preemptions are not counted)
    origin: tuple = ()  # (key, where it was set) pairs, for messages


# setting -> rule; the resource keys may appear at the top of the file and under [train]/[finn]/[vivado]
RESOURCE_KEYS = {"partition": "name", "constraint": "name", "account": "name", "qos": "name",
                 "time_min": "positive", "cpus": "positive", "mem_gb": "number", "gpus": "count",
                 "nodes": "positive", "tasks_per_node": "positive", "setup": "lines", "max_requeues": "count"}
GLOBAL_KEYS = {"log_dir": "name", "poll_s": "number", "python": "name"}
SHAPES = {"name": "a non-empty string", "positive": "an integer >= 1", "count": "an integer >= 0",
          "number": "a positive number", "lines": "a list of shell lines"}


def _checked(value, key: str, where: str):
    """``value`` of setting ``key`` if it follows the key's rule, else a UserError naming ``where``."""
    rule = {**RESOURCE_KEYS, **GLOBAL_KEYS}[key]
    integral = isinstance(value, int) and not isinstance(value, bool)
    ok = {"name": isinstance(value, str) and value != "",
          "positive": integral and value >= 1,
          "count": integral and value >= 0,
          "number": isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
          "lines": isinstance(value, list) and all(isinstance(line, str) for line in value)}[rule]
    if not ok:
        raise UserError(f"{key} = {value!r} ({where}) must be {SHAPES[rule]}: fix the cluster config")
    return tuple(value) if rule == "lines" else value


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster settings: per-kind resources plus where job logs go and how often to ask SLURM.

    Read from a TOML file: top-level resource keys apply to every kind, ``[train]``, ``[finn]`` and
    ``[vivado]`` override them; ``--slurm-partition`` places kinds the file does not place and
    ``--slurm-account`` charges every job. Without a file, every job goes to the default partition
    with one CPU, which works on a single-partition cluster.
    """

    classes: dict = field(default_factory=dict)
    log_dir: Path | None = None  # None: <store>/_slurm
    poll_s: float = JOB_POLL_S
    python: str | None = None  # how nodes start Python; default this interpreter (same path on the nodes)
    source: str = "built-in defaults"

    @classmethod
    def load(cls, path: Path | None = None, partition: str | None = None,
             account: str | None = None) -> "ClusterConfig":
        data, source = {}, "built-in defaults"
        if path is not None:
            source = str(path)
            try:
                data = tomllib.loads(Path(path).read_text())
            except FileNotFoundError:
                raise UserError(f"--cluster-config {path} does not exist: pass a TOML file "
                                f"(README: Running on a cluster)") from None
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise UserError(f"--cluster-config {path} is not readable TOML ({exc}): fix the file") from None
        known = set(RESOURCE_KEYS) | set(GLOBAL_KEYS) | set(KINDS)
        for key in data:
            if key not in known:
                raise UserError(f"unknown setting {key!r} in {source}: use {', '.join(sorted(known))}")
        base = {k: _checked(v, k, f"{k} in {source}") for k, v in data.items() if k in RESOURCE_KEYS}
        origin = {k: f"{k} in {source}" for k in base}
        if partition:
            base.setdefault("partition", partition)
            origin.setdefault("partition", "--slurm-partition")
        classes = {}
        for kind in KINDS:
            section = data.get(kind, {})
            if not isinstance(section, dict):
                raise UserError(f"{kind} in {source} must be a table ([{kind}]): fix the file")
            for key in section:
                if key not in RESOURCE_KEYS:
                    raise UserError(f"unknown setting {key!r} under [{kind}] in {source}: "
                                    f"use {', '.join(sorted(RESOURCE_KEYS))}")
            values = {**base, **{k: _checked(v, k, f"[{kind}] {k} in {source}") for k, v in section.items()}}
            where = {**origin, **{k: f"[{kind}] {k} in {source}" for k in section}}
            if account:
                values["account"], where["account"] = account, "--slurm-account"
            classes[kind] = JobClass(kind, **values, origin=tuple(where.items()))
        settings = {k: _checked(data[k], k, f"{k} in {source}") for k in GLOBAL_KEYS if k in data}
        log_dir = Path(settings["log_dir"]).expanduser().absolute() if "log_dir" in settings else None
        return cls(classes, log_dir, float(settings.get("poll_s", JOB_POLL_S)), settings.get("python"), source)

    def where(self, kind: str, key: str) -> str:
        """Where a kind's setting comes from, for the fix in a message."""
        return dict(self.classes[kind].origin).get(key, f"[{kind}] {key} in the cluster config (--cluster-config)")


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _minutes(limit: str) -> int | None:
    """A SLURM time limit ("infinite", "2-00:00:00", "4:00:00", "30:00", "30") in minutes."""
    if limit.lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    hours, minutes, seconds = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)


def cluster_partitions() -> tuple[dict[str, dict], str | None]:
    """{partition: {"limit_min": int|None, "features": set}} and the default partition, from sinfo."""
    result = _run("sinfo", "-h", "-o", "%P|%l|%f")
    if result.returncode != 0:
        raise UserError(f"sinfo failed ({result.stderr.strip() or result.returncode}): "
                        f"check that SLURM's controller is reachable from this host")
    partitions, default = {}, None
    for line in result.stdout.splitlines():
        name, limit, features = line.split("|")
        if name.endswith("*"):
            name = name[:-1]
            default = name
        entry = partitions.setdefault(name, {"limit_min": _minutes(limit), "features": set()})
        entry["features"] |= {f for f in features.split(",") if f and f != "(null)"}
    return partitions, default


def check_cluster(config: ClusterConfig) -> ClusterConfig:
    """The settings checked against this cluster (tools, partitions, features, time limits), with
    each kind's time limit resolved; a UserError naming the fix before any work starts."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise UserError(f"--executor slurm needs SLURM's {tool} on PATH and there is none: run on a "
                            f"cluster login node (or load SLURM's module), or use --executor local")
    partitions, default = cluster_partitions()
    resolved = {}
    for kind, job in config.classes.items():
        name = job.partition or default
        if name not in partitions:
            if job.partition is None:
                raise UserError(f"the cluster has no default partition: set partition (or --slurm-partition) "
                                f"to one of {', '.join(sorted(partitions))}")
            raise UserError(f"unknown SLURM partition {name!r} for {kind} jobs ({config.where(kind, 'partition')}): "
                            f"use one of {', '.join(sorted(partitions))}")
        features = partitions[name]["features"]
        wanted = set(re.findall(r"[A-Za-z_][\w.-]*", job.constraint or ""))
        if wanted - features:
            raise UserError(f"no node of partition {name!r} has feature(s) {', '.join(sorted(wanted - features))} "
                            f"({config.where(kind, 'constraint')}): its nodes offer "
                            f"{', '.join(sorted(features)) or 'no features'}; fix the constraint")
        limit = partitions[name]["limit_min"]
        time_min = job.time_min
        if time_min is None:
            time_min = DEFAULT_TIME_MIN[kind] if limit is None else min(DEFAULT_TIME_MIN[kind], limit)
        elif limit is not None and time_min > limit:
            raise UserError(f"time_min {time_min} for {kind} jobs ({config.where(kind, 'time_min')}) exceeds "
                            f"partition {name!r}'s limit of {limit} min: lower it (requeueing continues "
                            f"long trainings)")
        resolved[kind] = replace(job, time_min=time_min)
    return replace(config, classes=resolved)


@contextmanager
def _submission_env():
    """Submit as from a login shell: without the variables of a SLURM allocation we may run in
    (they would leak into the new job), but keeping SLURM_CONF, which names the cluster."""
    names = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    hidden = {k: os.environ.pop(k) for k in list(os.environ)
              if (k.startswith(("SLURM_", "SLURMD_", "SRUN_", "SBATCH_", "SUBMITIT_")) and k != "SLURM_CONF")
              or k in names}
    try:
        yield
    finally:
        os.environ.update(hidden)


def _sbatch_message(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if "error" in line.lower() and line.strip()]
    return (lines[-1] if lines else str(exc).strip().splitlines()[-1]).removeprefix("sbatch: error: ")


class SlurmExecutor:
    """Submits builds as SLURM jobs with their kind's resources; reports progress while waiting."""

    name = "slurm"

    def __init__(self, config: ClusterConfig, progress=None):
        self.config = check_cluster(config)
        self.progress = progress
        self._monitors: dict[Path, JobMonitor] = {}

    def provides(self, resource: str) -> bool:
        if resource == "gpu":
            return self.config.classes["train"].gpus > 0
        return resource == "vivado"

    def parameters(self, task) -> dict:
        """submitit's SlurmExecutor parameters for ``task``'s job."""
        job = self.config.classes[task.job.kind]
        distributed = task.job.distributed
        params = dict(job_name=f"pynqrepro-{task.stage}-{task.key[:8]}", time=job.time_min,
                      cpus_per_task=job.cpus, nodes=job.nodes if distributed else 1,
                      ntasks_per_node=job.tasks_per_node if distributed else 1, setup=list(job.setup))
        optional = dict(partition=job.partition, constraint=job.constraint, account=job.account, qos=job.qos,
                        mem=f"{math.ceil(job.mem_gb * 1024)}M" if job.mem_gb else None,
                        gpus_per_node=job.gpus if task.job.gpu and job.gpus else None)
        params.update({k: v for k, v in optional.items() if v is not None})
        if task.resumable:
            params["additional_parameters"] = {"requeue": True}
        return params

    def log_dir(self, root: Path) -> Path:
        return self.config.log_dir or Path(root).absolute() / "_slurm"

    def start(self, task, record: claims.ClaimRecord) -> bool:
        from pynqrepro.core.store import store_id

        job_class = self.config.classes[task.job.kind]
        try:
            task.prepare()
            executor = submitit.SlurmExecutor(folder=self.log_dir(task.root) / "%j",
                                              max_num_timeout=job_class.max_requeues, python=self.config.python)
            executor.update_parameters(**self.parameters(task))
            with _submission_env(), redirect_stderr(io.StringIO()):  # sbatch's complaint goes into the error
                job = executor.submit(StoreJob(task, record.token, store_id(task.root), claims.HOST))
        except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
            claims.release_claim(task.claim, record.token)
            raise JobFailed(f"sbatch refused the {task.describe()} job ({_sbatch_message(exc)}): check the "
                            f"{task.job.kind} settings in {self.config.source} (partition, constraint, gpus, "
                            f"cpus, mem_gb, time_min)") from None
        except BaseException:
            claims.release_claim(task.claim, record.token)
            raise
        claims.update_claim(task.claim, replace(record, executor=self.name, kind=task.job.kind, job_id=job.job_id,
                                                log=str(job.paths.stderr), state="submitted"))
        return False

    def monitor(self, root: Path) -> "JobMonitor":
        return self._monitors.setdefault(Path(root), JobMonitor(Path(root)))

    def wait(self, task, status: claims.HolderStatus) -> None:
        if self.progress is not None and self.progress.due():  # SLURM is asked per job: only for a line shown
            summary = self.monitor(task.root).line()
            self.progress(f"{summary}; waiting for {task.describe()}: {status.describe}" if summary
                          else f"pynqrepro: waiting for {task.describe()}: {status.describe}")
        time.sleep(self.config.poll_s if status.job_id else PROCESS_POLL_S)


class StoreNotShared(UserError):
    """The job's node does not see the submitter's store."""


class StoreJob(submitit.helpers.Checkpointable):
    """What runs in the SLURM job: check the store is shared, build, publish, release the claim.

    Checkpointable: at a time limit or preemption submitit requeues this same callable; it then
    rebuilds from the work directory, which a resumable build continues from.
    """

    def __init__(self, task, token: str, store_id: str, submit_host: str):
        self.task, self.token, self.store_id, self.submit_host = task, token, store_id, submit_host

    def __call__(self) -> dict:
        env = submitit.JobEnvironment()
        task, rank = self.task, env.global_rank
        self._check_store(env)
        if not self._still_ours(env):
            return {"built": False, "reason": "built or claimed elsewhere"}
        _use_cpus(int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
        if task.job.distributed and env.num_tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        try:
            if rank == 0:
                task.prepare()
            task.build(task.work)
        except Exception as exc:
            if rank == 0:
                self._record_failure(env, exc)
            raise
        built_by = {"executor": "slurm", "job_id": env.job_id, "node": env.hostname, "nodes": env.hostnames,
                    "tasks": env.num_tasks, "log": str(env.paths.stderr),
                    "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0")), "submitted_from": self.submit_host}
        if rank == 0:
            task.publish(built_by)
            claims.release_claim(task.claim, self.token)
        return {"built": True, **built_by}

    def _check_store(self, env) -> None:
        """Fail before any work unless this node sees the very store the submitter wrote to."""
        from pynqrepro.core.store import STORE_ID

        marker, deadline = Path(self.task.root) / STORE_ID, time.monotonic() + SHARE_WAIT_S
        while True:
            try:
                os.listdir(marker.parent)  # refreshes an NFS client's cached view of the directory
                if json.loads(marker.read_text()).get("id") == self.store_id:
                    return
                seen = "a different store at that path"
            except (OSError, ValueError):
                seen = f"no {marker}"
            if time.monotonic() > deadline:
                raise StoreNotShared(
                    f"node {env.hostname} does not see the store {self.task.root} that {self.submit_host} submitted "
                    f"from ({seen}): put --store-dir on a filesystem shared by {self.submit_host} and the compute "
                    f"nodes (NFS, Lustre, GPFS, BeeGFS, CephFS), at the same path")
            time.sleep(1.0)

    def _still_ours(self, env) -> bool:
        """Our claim stands (not built, not broken and re-claimed); wait until it names this job."""
        deadline = time.monotonic() + 120.0
        while True:
            if self.task.is_built():
                return False
            record = claims.read_claim(self.task.claim)
            if record is None or record.token != self.token:
                return False
            if record.job_id == env.job_id or time.monotonic() > deadline:
                return True
            time.sleep(0.5)

    def _record_failure(self, env, exc: Exception) -> None:
        record = claims.read_claim(self.task.claim)
        if record is None or record.token != self.token:
            return
        head = f"SLURM job {env.job_id} ({self.task.describe()})"
        if isinstance(exc, MemoryError):
            error = (f"{head} ran out of memory on {env.hostname}: raise mem_gb under [{self.task.job.kind}] "
                     f"in the cluster config (log: {env.paths.stderr})")
        else:
            lines = str(exc).strip().splitlines() or [""]
            what = lines[0] if isinstance(exc, UserError) else f"{type(exc).__name__}: {lines[0]}"
            error = f"{head} failed on {env.hostname}: {what} (log: {env.paths.stderr})"
        claims.update_claim(self.task.claim, replace(record, state="failed", error=error))


def _use_cpus(cpus: int) -> None:
    """The job's torch threads are its CPUs (torch would otherwise take every core of the node)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(cpus))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(cpus)


NOT_ANSWERING = "NOT_ANSWERING"  # SLURM's controller did not answer: no news, keep waiting


def job_info(job_id: str) -> dict | None:
    """SLURM's record of a job (JobState, Reason, NodeList, Restarts, ExitCode, ...); None when SLURM
    no longer knows it (ended longer than MinJobAge ago, without accounting); JobState NOT_ANSWERING
    when the controller cannot be asked right now."""
    try:
        result = _run("scontrol", "show", "job", "-o", str(job_id))
    except subprocess.TimeoutExpired:
        return {"JobState": NOT_ANSWERING}
    if result.returncode == 0 and "JobState=" in result.stdout:
        return dict(re.findall(r"(\w+)=(\S*)", result.stdout))
    if shutil.which("sacct") is not None:
        accounted = _run("sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,NodeList,ExitCode")
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
    if shutil.which("scontrol") is None:
        return claims.HolderStatus(True, f"{name} (SLURM cannot be asked from this host)", job_id=record.job_id)
    info = job_info(record.job_id)
    state = info["JobState"] if info else "UNKNOWN"
    if state == NOT_ANSWERING:
        return claims.HolderStatus(True, f"{name} (SLURM's controller is not answering)", job_id=record.job_id)
    node = (info or {}).get("BatchHost") or (info or {}).get("NodeList") or "?"
    describe = f"{name} {state}" + (f" on {node}" if state not in QUEUED and node not in ("?", "", "(null)") else "")
    if state in ACTIVE:
        return claims.HolderStatus(True, describe, job_id=record.job_id)
    if state == "COMPLETED" and watch.seconds_since_first(f"{record.token}:completed") < NFS_GRACE_S:
        return claims.HolderStatus(True, f"{name} completed, waiting for its artifact", job_id=record.job_id)
    return claims.HolderStatus(False, describe, error=explain_end(record, state, info or {}), job_id=record.job_id)


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
        for path in self.root.glob("*/.*.claim"):
            record = claims.read_claim(path)
            if record is None or record.job_id is None:
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
