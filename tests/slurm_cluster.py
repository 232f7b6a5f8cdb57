"""A throwaway single-node SLURM cluster from Debian's ``slurm-wlm`` and ``munge``, for the tests
of ``--executor slurm`` (and for trying it by hand: ``python tests/slurm_cluster.py DIR``).

``SlurmCluster(directory).start()`` writes a ``slurm.conf`` naming this host (``hostname -s``,
``nproc`` CPUs) with two partitions, ``cpu`` (the default) and ``vivado``, and the node feature
``vivado``; it runs its own munged (own key and socket) and slurmctld/slurmd on free ports, so it
can run beside any other cluster on the host. Clients find it through ``SLURM_CONF``. Memory
limits are enforced by SLURM's accounting poll (``OverMemoryKill``), not cgroups, so it also runs
in containers. ``stop()`` cancels its jobs and ends its daemons. slurmd needs root.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
INSTALL = "apt-get install -y slurm-wlm munge"


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [name for name in DAEMONS + ("sbatch", "scontrol") if shutil.which(name) is None
              and not Path("/usr/sbin", name).exists()]
    if absent:
        return f"no {', '.join(absent)}: install Debian's SLURM ({INSTALL}, as root)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs: run the slurm tests as root"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _end(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``pid`` is still there after ``grace`` seconds."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return  # ended; a zombie until its parent (here often a container's init) reaps it
        except OSError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _daemon(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    def __init__(self, directory: Path):
        self.dir = Path(directory).absolute()
        self.conf = self.dir / "slurm.conf"
        self.munge_socket = self.dir / "munge" / "munge.sock"
        self.host = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        cpus = os.cpu_count() or 1
        probe = subprocess.run([_daemon("slurmd"), "-C"], capture_output=True, text=True).stdout
        memory = int(re.search(r"RealMemory=(\d+)", probe).group(1)) if "RealMemory=" in probe else 2048
        d = self.dir
        self.conf.write_text("\n".join([
            "ClusterName=pynqrepro-test",
            f"SlurmctldHost={self.host}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            # cred_expire is also how long SLURM holds a requeued job (a new launch credential must post-date
            # the old run's revocation, to the second): 30 s, not the default 2 minutes, still long enough
            # for a job step to launch under CI's load
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.munge_socket},cred_expire=30",
            "SlurmUser=root", "SlurmdUser=root",
            f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherFrequency=task=1",
            "JobAcctGatherParams=OverMemoryKill",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={memory // cpus}",
            "SchedulerType=sched/backfill", "MpiDefault=none", "ReturnToService=2",
            # submitit ignores SLURM's SIGTERM: a cancelled or requeued job runs on until the SIGKILL that
            # follows KillWait seconds later (or later still, as slurmd gets to it), so keep it short
            "MinJobAge=3600", "KillWait=1", "JobRequeue=1",
            f"NodeName={self.host} CPUs={cpus} RealMemory={memory} Features=vivado State=UNKNOWN",
            "PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "PartitionName=vivado Nodes=ALL MaxTime=INFINITE State=UP",
        ]) + "\n")

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        for sub in ("state", "spool", "log", "munge"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o700)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        m = self.dir / "munge"
        subprocess.run([_daemon("munged"), f"--socket={self.munge_socket}", f"--key-file={key}",
                        f"--log-file={m / 'munged.log'}", f"--pid-file={m / 'munged.pid'}",
                        f"--seed-file={m / 'munged.seed'}", "--force"], check=True, capture_output=True)
        self._write_conf()
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_daemon(daemon), "-f", str(self.conf)], check=True, env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.returncode == 0 and state.stdout.split() and set(state.stdout.split()) <= {"idle", "mix", "alloc"}:
                return self
            time.sleep(0.5)
        logs = "; ".join(p.read_text()[-300:] for p in sorted((self.dir / "log").glob("*.log")))
        self.stop()
        raise RuntimeError(f"the SLURM node did not come up within {timeout:.0f} s: {logs}")

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel the jobs and wait for them to end while the daemons can still record it (a job step
        whose controller is gone retries forever, and slurmd waits for it), then end the daemons."""
        subprocess.run(["scancel", "--full", f"--user={os.getuid()}"], env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=self.env)
            if queue.returncode != 0 or not queue.stdout.strip():
                break
            time.sleep(0.5)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            try:
                _end(int((self.dir / pid_file).read_text()))
            except (OSError, ValueError):
                pass

    def job_history(self, job: str) -> str:
        """The controller's and the node's log lines about ``job``, for a test's failure message."""
        pattern = re.compile(rf"(JobId={job}\b|job {job}\b|\[{job}\.|StepId={job}\.)")
        return "".join(line for name in ("slurmctld.log", "slurmd.log") if (self.dir / "log" / name).is_file()
                       for line in (self.dir / "log" / name).read_text().splitlines(keepends=True)
                       if pattern.search(line))

    def run(self, *command: str, check: bool = True) -> str:
        """A SLURM client command (scontrol, squeue, scancel) against this cluster."""
        return subprocess.run(command, capture_output=True, text=True, env=self.env, check=check).stdout


if __name__ == "__main__":
    cluster = SlurmCluster(Path(sys.argv[1] if len(sys.argv) > 1 else "slurm-test-cluster")).start()
    print(f"SLURM cluster up: export SLURM_CONF={cluster.conf}  (Ctrl-C or SIGTERM stops it)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        cluster.stop()
