"""Executors: where the store's heavy builds run.

``local`` (the default) builds in the process that asks, as always. ``slurm`` submits each build
that names a JobSpec (a training, each pruning step, a FINN HW model, a Vivado build) as one SLURM
job through submitit (``pynqrepro.core.cluster``), with the resources of its kind from the cluster
settings, and waits for it. Either way the store's claim decides who builds; everyone else waits.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pynqrepro.core import claims
from pynqrepro.core.cluster.diagnosis import job_status
from pynqrepro.core.errors import UserError
from pynqrepro.core.logs import build_log, log_file

KINDS = ("train", "finn", "vivado")  # resource classes of the cluster settings
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
        taken from the files as they were written), or by submitting a job that will (False; also
        when the claim was superseded before publishing, and a successor builds)."""

    def wait(self, task, status: claims.HolderStatus) -> None:
        """Pause while another holder builds ``task`` (reporting progress where there is any)."""

    def provides(self, resource: str) -> bool:
        """Whether jobs bring ``resource`` ("gpu", "vivado") that this machine may lack."""


class LocalExecutor:
    """Builds in this process; the claim's heartbeat tells waiters on other hosts it is still at it."""

    name = "local"

    def start(self, task, record: claims.ClaimRecord) -> bool:
        try:
            with claims.Heartbeat(task.claim_file), build_log(log_file(task.root, f"{task.stage}-{task.key}")):
                task.prepare()
                task.build(task.work)
                published = task.publish({"executor": "local", "host": claims.HOST, "pid": os.getpid()})
        except BaseException:
            task.discard()
            raise
        finally:
            claims.release_claim(task.claim, record)
        return published

    def wait(self, task, status: claims.HolderStatus) -> None:
        time.sleep(JOB_POLL_S if status.job_id else PROCESS_POLL_S)

    def provides(self, resource: str) -> bool:
        return False


LOCAL = LocalExecutor()


def holder_status(path: Path, record: claims.ClaimRecord, watch: claims.StaleWatch) -> claims.HolderStatus:
    """Is the claim's holder still building? A job by SLURM's word, a process by pid or heartbeat."""
    if record.job_id is not None:
        return job_status(record, watch)
    return claims.process_status(path, record, watch)
