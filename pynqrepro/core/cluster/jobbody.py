"""What runs inside a SLURM job: check that the node sees the submitter's store, build in the
key's work directory, publish the artifact and release the claim.

Faults: SLURM signals a job before its time limit and (``preempt_send_user_signal``) at preemption;
submitit then checkpoints the StoreJob and requeues it (up to ``max_requeues`` time limits), and a
resumable build continues from the last epoch checkpoint in its work directory, to the same
weights as an uninterrupted run. A job killed outright (scancel, node failure, requeue) keeps its
work directory too: the next run, requeued or asked for again, resumes from it.
"""

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import submitit

from pynqrepro.core import claims
from pynqrepro.core.errors import UserError
from pynqrepro.core.store_identity import STORE_ID

SHARE_WAIT_S = 15.0  # how long a job looks for the submitter's store before calling it unshared
PREPARE_WAIT_S = 1800.0  # how long the other ranks of a job wait for rank 0's prepare()


class StoreNotShared(UserError):
    """The job's node does not see the submitter's store."""


class StoreJob(submitit.helpers.Checkpointable):
    """What runs in the SLURM job: check the store is shared, build, publish, release the claim.

    Checkpointable: at a time limit or preemption submitit requeues this same callable; it then
    rebuilds from the work directory, which a resumable build continues from.
    """

    def __init__(self, task, store_id: str, submit_host: str):
        self.task, self.store_id, self.submit_host = task, store_id, submit_host
        self.token = task.record.token  # the claim this job builds under: its fencing token

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
                self._prepared(env).write_text(self._run_id(env))
            else:
                self._wait_for_prepare(env)
            task.build(task.work)
        except Exception as exc:
            if rank == 0:
                self._record_failure(env, exc)
            raise
        built_by = {"executor": "slurm", "job_id": env.job_id, "node": env.hostname, "nodes": env.hostnames,
                    "tasks": env.num_tasks, "log": str(env.paths.stderr),
                    "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0")), "submitted_from": self.submit_host}
        if rank == 0:
            published = task.publish(built_by)
            claims.release_claim(task.claim, task.record)
            self._prepared(env).unlink(missing_ok=True)
            if not published:
                return {"built": False, "reason": "its claim was taken over before it could publish"}
        return {"built": True, **built_by}

    def _prepared(self, env) -> Path:
        """The marker rank 0 writes when the work directory is ready (beside the claim)."""
        return self.task.claim.with_name(f"{self.task.claim.name}-{self.task.record.generation}.prepared")

    @staticmethod
    def _run_id(env) -> str:
        return f"{env.job_id}:{os.environ.get('SLURM_RESTART_COUNT', '0')}"

    def _wait_for_prepare(self, env) -> None:
        """The barrier of a multi-task job: the other ranks start building only once rank 0 has
        prepared this run's work directory (adopting a dead holder's may take a while)."""
        deadline = time.monotonic() + PREPARE_WAIT_S
        while True:
            try:
                if self._prepared(env).read_text() == self._run_id(env):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise UserError(f"rank {env.global_rank} of SLURM job {env.job_id} waited {PREPARE_WAIT_S:.0f} s for "
                                f"rank 0 to prepare {self.task.work}: see rank 0's log")
            time.sleep(0.5)

    def _check_store(self, env) -> None:
        """Fail before any work unless this node sees the very store the submitter wrote to."""
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
            record = claims.read_claim(self.task.claim_file)
            if record is None or record.token != self.token or not claims.holds(self.task.claim, record):
                return False
            if record.job_id == env.job_id or time.monotonic() > deadline:
                return True
            time.sleep(0.5)

    def _record_failure(self, env, exc: Exception) -> None:
        record = claims.read_claim(self.task.claim_file)
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

