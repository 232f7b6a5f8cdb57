"""Cluster settings: the SLURM resources of each job kind, read from the ``--cluster-config`` TOML
file and checked against ``sinfo`` (partitions, node features, time limits) before any work starts."""

import re
import subprocess
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from pynqrepro.core.cluster.tools import TOOL_TIMEOUT_S, missing_tools, run_tool
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import JOB_POLL_S, KINDS

DEFAULT_TIME_MIN = {"train": 24 * 60, "finn": 2 * 60, "vivado": 12 * 60}


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
            except (OSError, ValueError) as exc:  # TOMLDecodeError, and UnicodeDecodeError of a binary file
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

    def places_vivado(self) -> bool:
        """Whether the settings send Vivado builds to hosts that have Vivado: a [vivado] partition
        or a node feature (constraint) of that kind. Without one, a vivado job would land on the
        default partition, where nothing says Vivado exists, and fail after queueing."""
        job = self.classes["vivado"]
        return job.constraint is not None or dict(job.origin).get("partition", "").startswith("[vivado]")

    def where(self, kind: str, key: str) -> str:
        """Where a kind's setting comes from, for the fix in a message."""
        return dict(self.classes[kind].origin).get(key, f"[{kind}] {key} in the cluster config (--cluster-config)")



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
    unreachable = ("cannot reach SLURM's controller from this host ({}): check that slurmctld runs and "
                   "SLURM_CONF names it (scontrol ping), or use --executor local")
    try:
        result = run_tool("sinfo", "-h", "-o", "%P|%l|%f")
    except subprocess.TimeoutExpired:
        raise UserError(unreachable.format(f"sinfo gave no answer in {TOOL_TIMEOUT_S} s")) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        first = lines[0][:200] if lines else f"sinfo exited {result.returncode}"
        raise UserError(unreachable.format(f"sinfo: {first}"))
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
    missing = missing_tools()
    if missing:
        raise UserError(f"--executor slurm needs SLURM's {', '.join(missing)} on PATH and there is none: run on "
                        f"a cluster login node (or load SLURM's module), or use --executor local")
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

