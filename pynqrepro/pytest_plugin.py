"""pynqrepro's pytest plugin: stage markers, run options, fixtures and report merging.

Registered as a ``pytest11`` entry point of the installed package. Markers are registered here and
only here (with ``--strict-markers`` a typo is an error); a test whose resource is absent is skipped
with a one-line reason naming how to provide it, never failed and never faked.
"""

import os
import threading
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
from pynqrepro.core.reports import merge_reports
from pynqrepro.core.results import Recorder, SessionInfo, new_session_id
from pynqrepro.core.scale import get_scale
from pynqrepro.core.store import ArtifactStore

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


def _jobs_provide(config, resource: str) -> bool:
    """With --executor slurm the builds that need a GPU or Vivado run as jobs on nodes that have them."""
    return config.pynqrepro["executor"].provides(resource)


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


def _paths(config) -> dict[str, Path]:
    root = Path(config.rootpath)
    return {
        "reports": options.reports_dir(config.getoption("reports_dir"), root).resolve(),
        "store": options.store_dir(config.getoption("store_dir"), root).resolve(),
        "data": options.data_dir(config.getoption("data_dir"), root).resolve(),
    }


def pytest_configure(config):
    for name, (description, _) in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    _EXPERIMENTS.clear()
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
    if worker is not None:  # xdist worker: share the controller's session and the CPU cores
        info = SessionInfo(**worker["pynqrepro_session"])
        fresh_since = worker["pynqrepro_fresh_since"]
        _share_cores(int(worker.get("workercount", 1)))
    else:
        info = SessionInfo(new_session_id(), scale.name, config.getoption("board"), environment())
        fresh_since = time.time() if config.getoption("fresh") else None
    config.pynqrepro = {"paths": paths, "session": info, "fresh_since": fresh_since, "executor": executor,
                        "scale": scale, "login": login}


def _terminal_writer(config):
    """Job progress goes to the terminal, past pytest's capture; an xdist worker has none (None: its
    controller prints the store's job summary instead, see pytest_sessionstart)."""
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


def pytest_sessionstart(session):
    """Under xdist with --executor slurm the controller, which waits for no job itself, prints one
    line whenever the store's queued/running/finished job counts change."""
    config = session.config
    executor = getattr(config, "pynqrepro", {}).get("executor")
    if getattr(executor, "name", "local") != "slurm" or hasattr(config, "workerinput"):
        return
    if not config.getoption("numprocesses", None):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stop, show = threading.Event(), ProgressLine(reporter.write_line)
    monitor = executor.monitor(config.pynqrepro["paths"]["store"])

    def watch() -> None:
        while True:
            final = stop.is_set()
            if final or show.due():  # SLURM is asked per job: only for a line shown
                line = monitor.line()
                if line:
                    show(line)
            if final:
                show.flush()  # the final counts
                return
            stop.wait(executor.config.poll_s)

    thread = threading.Thread(target=watch, daemon=True, name="pynqrepro-jobs")
    thread.start()
    config.pynqrepro["monitor"] = (stop, thread)


def _share_cores(workers: int) -> None:
    """Give each xdist worker its share of the cores: torch's default of one thread per core in
    every worker oversubscribes the machine (it halved training speed on 2 cores with -n 2)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller -> worker: one session id and --fresh cut-off for all workers."""
    state = node.config.pynqrepro
    node.workerinput["pynqrepro_session"] = vars(state["session"])
    node.workerinput["pynqrepro_fresh_since"] = state["fresh_since"]


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
    state = config.pynqrepro
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


@pytest.fixture(scope="session")
def scale(request):
    return request.config.pynqrepro["scale"]


@pytest.fixture(scope="session")
def board(request):
    return get_board(request.config.getoption("board"))


@pytest.fixture(scope="session")
def board_host(request):
    return request.config.getoption("board_host")


@pytest.fixture(scope="session")
def data_dir(request):
    return request.config.pynqrepro["paths"]["data"]


def _store(config) -> ArtifactStore:
    state = config.pynqrepro
    if "store" not in state:
        state["store"] = ArtifactStore(state["paths"]["store"], fresh_since=state["fresh_since"],
                                       executor=state["executor"], session=state["session"].session,
                                       verify=config.getoption("verify"))
    return state["store"]


@pytest.fixture(scope="session")
def store(request):
    return _store(request.config)


@pytest.fixture(scope="session")
def setup(scale, board, store, data_dir, request):
    """What every measurement of this session shares (``pynqrepro.pipeline.Setup``)."""
    from pynqrepro.pipeline import Setup

    state = request.config.pynqrepro
    return Setup(scale, board, store, data_dir, state["login"], state["paths"]["reports"])


def pytest_generate_tests(metafunc):
    """``@pytest.mark.study(module, trains=False)``: the test's ``case`` argument takes the study
    module's CASES, with the ids ``pynqrepro report`` records under, each with the gpu marker
    where it needs training that is GPU work (``_gpu_marks``): decided at collection, so
    ``-m "not gpu"`` deselects it and nothing starts on the wrong machine."""
    marker = metafunc.definition.get_closest_marker("study")
    if marker is None:
        return
    module, trains = marker.args[0], marker.kwargs.get("trains", False)
    metafunc.parametrize("case", [pytest.param(case, id=case.id,
                                               marks=_gpu_marks(metafunc.config, case, trains or _trains(case)))
                                  for case in module.CASES])


def _trains(case) -> bool:
    """A case that fine-tunes though its experiment does not (``case.trains``, e.g. the pruned build)."""
    return getattr(case, "trains", False)


def _gpu_marks(config, case, trains: bool) -> list:
    """At a scale whose training is GPU work: the gpu marker when the case fine-tunes (``trains``)
    or its trained CNV (``case.cnv_bits``; None: it measures none) is not in the store yet. A
    checkpoint already there (trained on a GPU host, copied into --store-dir) lets the case run on
    the CPU."""
    scale = config.pynqrepro["scale"]
    if not scale.needs_gpu or (case.cnv_bits is None and not trains):
        return []
    if trains:
        return [pytest.mark.gpu(why=f"fine-tunes CNVs at {scale.name} scale")]
    from pynqrepro.training.recipes import cached_checkpoint

    weight_bits, act_bits = case.cnv_bits
    cached = config.pynqrepro.setdefault("cached_checkpoints", {})  # one look per CNV, not per case
    if case.cnv_bits not in cached:
        cached[case.cnv_bits] = cached_checkpoint(_store(config), scale, weight_bits, act_bits) is not None
    if cached[case.cnv_bits]:
        return []
    return [pytest.mark.gpu(why=f"the {scale.name}-scale CNV W{weight_bits}A{act_bits} is not in the store yet "
                                "(train it on a GPU host and copy its store, or use --executor slurm)")]


@pytest.fixture
def results(request):
    """Record rows of a report table: ``results.table(name, title=...).add(row, config=..., seed=...)``."""
    state = request.config.pynqrepro
    return Recorder(state["paths"]["reports"], state["session"], request.node.nodeid)
