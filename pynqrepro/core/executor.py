"""Executors: where the store's heavy builds run.

``local`` (the default) builds in the process that asks, as always. ``slurm`` submits each build
that names a JobSpec (a training, each pruning step, a FINN HW model, a Vivado build) as one SLURM
job through submitit (``pynqrepro.core.slurm``), with the resources of its kind from the cluster
settings, and waits for it. Either way the store's claim decides who builds; everyone else waits.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pynqrepro.core import claims
from pynqrepro.core.errors import UserError
from pynqrepro.core.logs import build_log, log_file, user_stream

EXECUTORS = ("local", "slurm")
KINDS = ("train", "finn", "vivado")  # resource classes of the cluster settings
EXECUTOR_ENV = "PYNQREPRO_EXECUTOR"
CLUSTER_CONFIG_ENV = "PYNQREPRO_CLUSTER_CONFIG"
PROCESS_POLL_S = 0.5  # between looks at a claim held by a process
JOB_POLL_S = 10.0  # between questions to SLURM about a claim held by a job (cluster config: poll_s)


@dataclass(frozen=True)
class JobSpec:
    """What one artifact build asks of a cluster (the local executor runs it in-process).

    ``kind``: its resource class (train: training and fine-tuning; finn: FINN HW models; vivado:
    synthesis). ``gpu``: the workload wants the class's GPUs (paper-scale training).
    ``resumable``: the build continues from what its work directory holds (epoch checkpoints), so a
    requeued or cancelled job loses at most an epoch. ``distributed``: the build runs on every task
    of a multi-task job and trains with torch.distributed (``tasks_per_node``/``nodes`` of its class).
    """

    kind: str
    gpu: bool = False
    resumable: bool = False
    distributed: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}: one of {', '.join(KINDS)}")


class JobFailed(UserError):
    """A build failed where it ran: one line with what happened, the fix and the job's log."""


class Executor(Protocol):
    name: str

    def start(self, task, record: claims.ClaimRecord) -> bool:
        """Build ``task`` under its claim ``record``: here and now (True: published, its checksums
        taken from the files as they were written), or by submitting a job that will (False)."""

    def wait(self, task, status: claims.HolderStatus) -> None:
        """Pause while another holder builds ``task`` (reporting progress where there is any)."""

    def provides(self, resource: str) -> bool:
        """Whether jobs bring ``resource`` ("gpu", "vivado") that this machine may lack."""


class LocalExecutor:
    """Builds in this process; the claim's heartbeat tells waiters on other hosts it is still at it."""

    name = "local"

    def start(self, task, record: claims.ClaimRecord) -> bool:
        try:
            with claims.Heartbeat(task.claim), build_log(log_file(task.root, f"{task.stage}-{task.key}")):
                task.prepare()
                task.build(task.work)
                task.publish({"executor": "local", "host": claims.HOST, "pid": os.getpid()})
        except BaseException:
            task.discard()
            raise
        finally:
            claims.release_claim(task.claim, record.token)
        return True

    def wait(self, task, status: claims.HolderStatus) -> None:
        time.sleep(JOB_POLL_S if status.job_id else PROCESS_POLL_S)

    def provides(self, resource: str) -> bool:
        return False


LOCAL = LocalExecutor()


def holder_status(path: Path, record: claims.ClaimRecord, watch: claims.StaleWatch) -> claims.HolderStatus:
    """Is the claim's holder still building? A job by SLURM's word, a process by pid or heartbeat."""
    if record.job_id is not None:
        from pynqrepro.core.slurm import job_status

        return job_status(record, watch)
    return claims.process_status(path, record, watch)


def _write_to_user(line: str) -> None:
    print(line, file=user_stream(), flush=True)


class ProgressLine:
    """Job progress as one line through ``write`` (None: nowhere, as on an xdist worker), written
    when it changes but at most every ``every`` seconds, so that a long reproduction prints a few
    dozen lines, not a wall of logs."""

    def __init__(self, write, every: float = 30.0):
        self._write = write
        self._every = every
        self._shown, self._pending = None, None
        self._shown_at = self._offered_at = -float("inf")

    def due(self) -> bool:
        """Whether a line offered now could be written: a caller whose line costs work (a question
        to SLURM per job) makes it only then."""
        return self._write is not None and time.monotonic() - self._offered_at >= self._every

    def __call__(self, line: str) -> None:
        self._offered_at = time.monotonic()
        if self._write is None:
            return
        if line != self._shown:
            self._pending = line
        if self._pending is not None and time.monotonic() - self._shown_at >= self._every:
            self.flush()

    def flush(self) -> None:
        """Write the latest line if it has not been written (at the end of a session)."""
        if self._pending is not None:
            self._write(self._pending)
            self._shown, self._pending, self._shown_at = self._pending, None, time.monotonic()


def executor_options() -> list[tuple[tuple[str, ...], dict]]:
    """The options choosing and configuring the executor, for argparse and pytest alike."""
    return [
        (("--executor",), dict(
            choices=EXECUTORS, default=os.environ.get(EXECUTOR_ENV, "local"),
            help=f"where heavy builds run: local (this process) or slurm (one SLURM job each, via "
                 f"submitit; the store must be on a filesystem the nodes share); default ${EXECUTOR_ENV} or local")),
        (("--cluster-config",), dict(
            type=Path, default=os.environ.get(CLUSTER_CONFIG_ENV),
            help=f"TOML file of SLURM settings per job kind ({', '.join(KINDS)}): partition, constraint, "
                 f"account, gpus, cpus, mem_gb, time_min, ...; default ${CLUSTER_CONFIG_ENV} (README: "
                 f"Running on a cluster)")),
        (("--slurm-partition",), dict(
            default=None, help="partition of every job kind the cluster config does not place "
                               "(default: the cluster's default partition)")),
        (("--slurm-account",), dict(
            default=None, help="SLURM account the jobs are charged to (default: the user's default account)")),
    ]


def add_executor_options(add) -> None:
    """Register the executor options with ``parser.add_argument`` or pytest's ``group.addoption``."""
    for flags, kwargs in executor_options():
        add(*flags, **kwargs)


def make_executor(name: str, cluster_config: Path | None = None, partition: str | None = None,
                  account: str | None = None, progress=None) -> Executor:
    """The executor ``name``; for slurm the settings are read and checked against the cluster now,
    before any work starts (UserError naming the fix)."""
    if name == "local":
        return LOCAL
    if name != "slurm":
        raise UserError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    from pynqrepro.core.slurm import ClusterConfig, SlurmExecutor

    config = ClusterConfig.load(Path(cluster_config) if cluster_config else None, partition, account)
    return SlurmExecutor(config, progress=progress or ProgressLine(_write_to_user))


def executor_from_args(args) -> Executor:
    """The executor a CLI command's parsed ``add_executor_options`` ask for."""
    return make_executor(args.executor, args.cluster_config, args.slurm_partition, args.slurm_account)
