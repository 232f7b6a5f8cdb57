"""The options that choose and configure the executor (``--executor``, ``--cluster-config``, ...),
shared by the commands and pytest, and the executor they ask for. Light at import: SLURM's
executor (submitit) is imported only when asked for."""

import os
from pathlib import Path

from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import KINDS, LOCAL, Executor
from pynqrepro.core.logs import warn
from pynqrepro.core.progress import ProgressLine, write_to_user

EXECUTORS = ("local", "slurm")
EXECUTOR_ENV = "PYNQREPRO_EXECUTOR"
CLUSTER_CONFIG_ENV = "PYNQREPRO_CLUSTER_CONFIG"


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
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    from pynqrepro.core.cluster.config import ClusterConfig  # light: no submitit

    # read (and checked: a broken file is a one-line error) whichever executor runs, so a typo in a
    # file meant for the cluster is not silently ignored on a run that forgot --executor slurm
    config = ClusterConfig.load(Path(cluster_config) if cluster_config else None, partition, account)
    if name == "local":
        for option, value in (("--slurm-partition", partition), ("--slurm-account", account)):
            if value is not None:  # no environment default: the user typed it, for a run meant for the cluster
                raise UserError(f"{option} applies to SLURM jobs only: add --executor slurm, or drop "
                                f"{option}")
        if cluster_config is not None and str(cluster_config) != os.environ.get(CLUSTER_CONFIG_ENV):
            warn(f"--cluster-config {cluster_config} applies to SLURM jobs only: add --executor slurm to use it")
        return LOCAL
    from pynqrepro.core.cluster.submission import SlurmExecutor

    return SlurmExecutor(config, progress=progress or ProgressLine(write_to_user))


def executor_from_args(args) -> Executor:
    """The executor a CLI command's parsed ``add_executor_options`` ask for."""
    return make_executor(args.executor, args.cluster_config, args.slurm_partition, args.slurm_account)
