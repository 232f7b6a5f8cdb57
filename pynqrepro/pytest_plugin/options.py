"""The plugin's options and markers, the session's state (made when the session uses pynqrepro:
``activate``), the skips of absent resources and the report merge at the end."""

import os
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from pynqrepro.board.remote import optional_login
from pynqrepro.core import machine, options
from pynqrepro.core.atomic import ensure_writable_dir
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor_options import add_executor_options, make_executor
from pynqrepro.core.progress import ProgressLine
from pynqrepro.core.provenance import environment
from pynqrepro.core.report_files import merge_reports
from pynqrepro.core.results import SessionInfo, new_session_id
from pynqrepro.core.scale import get_scale

MARKERS = {
    "gpu": ("needs a CUDA GPU (paper-scale training), here or from SLURM jobs (--executor slurm)",
            lambda config: None if _jobs_provide(config, "gpu") else machine.missing_gpu()),
    "vivado": ("needs Vivado, Vitis HLS and FINN's dependencies for the board (here, or on the SLURM nodes of "
               "--executor slurm): synthesis and bitfiles",
               lambda config: None if _jobs_provide(config, "vivado")
               else machine.missing_vivado(get_board(config.getoption("board")).board_files)),
    "board": ("needs a PYNQ board reachable over SSH (--board-host)",
              lambda config: machine.missing_board(config.getoption("board_host"))),
    "slow": ("takes more than ~20 s on a laptop; deselect with -m 'not slow'", lambda config: None),
    "study": ("study(module, trains=False): the experiment of a pynqrepro.study module; its 'case' argument "
              "takes the module's CASES; trains: it trains beyond the case's CNV checkpoint (fine-tuning)",
              lambda config: None),
    "slurm": ("needs a SLURM cluster; the tests bring up a single-node one from Debian's slurm-wlm and munge",
              lambda config: None),
}
INI_FLAG = "pynqrepro"  # ini option: this rootdir is a pynqrepro project
OPTION_FLAGS: set[str] = set()  # --scale, --store-dir, ...: any of them on the command line activates


def _jobs_provide(config, resource: str) -> bool:
    """With --executor slurm the builds that need a GPU or Vivado run as jobs on nodes that have them
    (a session that has not activated builds nothing, so it asks no cluster)."""
    state = getattr(config, "pynqrepro", None)
    return state is not None and state["executor"].provides(resource)


def pytest_addoption(parser):
    group = parser.getgroup("pynqrepro")
    options.add_scale_option(group.addoption)
    options.add_board_option(group.addoption)
    # None: resolved against pytest's rootdir (the repository), not the working directory
    options.add_data_option(group.addoption, default=None)
    options.add_reports_option(group.addoption, default=None)
    options.add_store_option(group.addoption, default=None)
    group.addoption("--fresh", action="store_true", help="ignore cached artifacts made before this run")
    group.addoption("--max-steps", type=int, default=None, metavar="N",
                    help="dry run of the --scale: every training and fine-tuning stops after N optimizer steps, "
                         "on the CPU, with no accuracy asserted (rows and checkpoints under '<scale>-dry')")
    options.add_board_login_options(group.addoption)
    add_executor_options(group.addoption)
    OPTION_FLAGS.update(name for option in group.options for name in option.names())
    parser.addini(INI_FLAG, type="bool", default=False,
                  help="a pynqrepro project: every session sets up the store and reports (default: only sessions "
                       "that pass pynqrepro options or use its fixtures or study marker)")


def _paths(config) -> dict[str, Path]:
    root = Path(config.rootpath)
    return {
        "reports": options.reports_dir(config.getoption("reports_dir"), root).resolve(),
        "store": options.store_dir(config.getoption("store_dir"), root).resolve(),
        "data": options.data_dir(config.getoption("data_dir"), root).resolve(),
    }


def _options_given(config) -> bool:
    return any(str(arg).split("=", 1)[0] in OPTION_FLAGS for arg in config.invocation_params.args)


def pytest_configure(config):
    for name, (description, _) in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    _EXPERIMENTS.clear()
    config.pynqrepro_session_id = getattr(config, "workerinput", {}).get("pynqrepro_session_id") or new_session_id()
    if _options_given(config) or config.getini(INI_FLAG):
        activate(config)


def share_cores(workers: int) -> None:
    """Give each xdist worker its share of the cores: torch's default of one thread per core in
    every worker oversubscribes the machine (it halved training speed on 2 cores with -n 2)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def activate(config) -> dict:
    """The session's pynqrepro state, made on first use: options checked (a bad one is a usage
    error), reports and store directories created, the board login checked."""
    state = getattr(config, "pynqrepro", None)
    if state is not None:
        return state
    paths = _paths(config)
    try:
        login = optional_login(config.getoption("board_host"), config.getoption("board_user"),
                               config.getoption("board_key"))
        ensure_writable_dir(paths["reports"], "--reports-dir")
        ensure_writable_dir(paths["store"], "--store-dir")
        scale = get_scale(config.getoption("scale"), config.getoption("max_steps"))
        executor = make_executor(config.getoption("executor"), config.getoption("cluster_config"),
                                 config.getoption("slurm_partition"), config.getoption("slurm_account"),
                                 progress=ProgressLine(_terminal_writer(config)))
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # an xdist worker: the controller's session and --fresh cut-off, its share of cores
        fresh_since = worker.get("pynqrepro_fresh_since")
        share_cores(int(worker.get("workercount", 1)))
        config.workeroutput["pynqrepro_active"] = True  # the controller merges the reports
    else:
        fresh_since = time.time() if config.getoption("fresh") else None
    info = SessionInfo(config.pynqrepro_session_id, scale.name, config.getoption("board"), environment())
    config.pynqrepro = {"paths": paths, "session": info, "fresh_since": fresh_since, "executor": executor,
                        "scale": scale, "login": login}
    return config.pynqrepro


def _terminal_writer(config):
    """Job progress goes to the terminal, past pytest's capture; an xdist worker has none (None: its
    controller prints the store's job summary instead, see xdist.pytest_sessionstart)."""
    if hasattr(config, "workerinput"):
        return None

    def write(line: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture else nullcontext():
            reporter.write_line(line)

    return write


def pytest_runtest_setup(item):
    """Skip, before any fixture or work, a test whose resource is absent: a marker's (with the
    ``why`` it was given at collection), then the dataset of an experiment's scale."""
    for marker in item.iter_markers():
        if marker.name in MARKERS:
            reason = MARKERS[marker.name][1](item.config)
            if reason:
                why = marker.kwargs.get("why")
                pytest.skip(f"{marker.name}: {why}; {reason}" if why else f"{marker.name}: {reason}")
    if item.get_closest_marker("study") is not None:
        reason = _missing_dataset(item.config)
        if reason:
            pytest.skip(f"data: {reason}")


def _missing_dataset(config) -> str | None:
    """Why the scale's dataset cannot be read (the CIFAR-10 archive absent or corrupt), or None;
    found out once per process."""
    state = activate(config)
    if "missing_dataset" not in state:
        from pynqrepro.data.splits import missing_dataset

        state["missing_dataset"] = missing_dataset(state["scale"].dataset, state["paths"]["data"])
    return state["missing_dataset"]


def pytest_runtest_logreport(report):
    """Remember each experiment's outcome and skip reason (xdist workers' reports reach the
    controller too) for the index's "at a glance"."""
    if "study" not in report.keywords or report.when not in ("setup", "call"):
        return
    reason = report.longrepr[2].removeprefix("Skipped: ") if report.skipped and isinstance(report.longrepr, tuple) else None
    _EXPERIMENTS[report.nodeid] = reason or _EXPERIMENTS.get(report.nodeid)


_EXPERIMENTS: dict = {}  # experiment nodeid -> its skip reason (None: it ran), this session


def _skipped(config) -> dict | None:
    """This session's skipped experiments for the index; None where no experiment ran (unit tests,
    --collect-only), so the index keeps the last experiment session's."""
    if not _EXPERIMENTS:
        return None
    return {"tests": {test: reason for test, reason in _EXPERIMENTS.items() if reason},
            "ran": sum(reason is None for reason in _EXPERIMENTS.values()), "markexpr": config.getoption("markexpr")}


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workerinput") or not hasattr(config, "pynqrepro"):
        return
    if "monitor" in config.pynqrepro:
        stop, thread = config.pynqrepro.pop("monitor")
        stop.set()
        thread.join()
    reports = config.pynqrepro["paths"]["reports"]
    written = merge_reports(reports, skipped=_skipped(config))
    if written:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"pynqrepro: wrote {', '.join(written)} and index.md in {reports}")
