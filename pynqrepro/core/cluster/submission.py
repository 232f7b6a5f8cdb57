"""The SLURM executor: each heavy artifact build as one SLURM job, submitted through submitit.

The submitter claims the key (``pynqrepro.core.claims``), submits a ``StoreJob``
(``cluster.jobbody``) with the resources of its kind (``cluster.config``) and writes the job id
into the claim. Waiters (any session, any host) read the claim and ask SLURM for the job's state
(``cluster.diagnosis``): queued or running, they wait; ended without the artifact, they say why in
one line.
"""

import io
import math
import os
import time
from contextlib import contextmanager, redirect_stderr
from dataclasses import replace
from pathlib import Path

import submitit

from pynqrepro.core import claims
from pynqrepro.core.cluster.config import ClusterConfig, check_cluster
from pynqrepro.core.cluster.diagnosis import JobMonitor
from pynqrepro.core.cluster.jobbody import StoreJob
from pynqrepro.core.executor import PROCESS_POLL_S, JobFailed
from pynqrepro.core.store_identity import store_id


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
        if resource == "vivado":  # only where the settings place synthesis on Vivado hosts
            return self.config.places_vivado()
        return False

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
        job_class = self.config.classes[task.job.kind]
        try:
            task.prepare()
            executor = submitit.SlurmExecutor(folder=self.log_dir(task.root) / "%j",
                                              max_num_timeout=job_class.max_requeues, python=self.config.python)
            executor.update_parameters(**self.parameters(task))
            with _submission_env(), redirect_stderr(io.StringIO()):  # sbatch's complaint goes into the error
                job = executor.submit(StoreJob(task, store_id(task.root), claims.HOST))
        except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
            claims.release_claim(task.claim, record)
            raise JobFailed(f"sbatch refused the {task.describe()} job ({_sbatch_message(exc)}): check the "
                            f"{task.job.kind} settings in {self.config.source} (partition, constraint, gpus, "
                            f"cpus, mem_gb, time_min)") from None
        except BaseException:
            claims.release_claim(task.claim, record)
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

