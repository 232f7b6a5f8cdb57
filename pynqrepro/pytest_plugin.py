"""pynqrepro's pytest plugin: stage markers, run options, fixtures and report merging.

Registered as a ``pytest11`` entry point of the installed package. Markers are registered here and
only here (with ``--strict-markers`` a typo is an error); a test whose resource is absent is skipped
with a one-line reason naming how to provide it, never failed and never faked.
"""

import os
import time
from pathlib import Path

import pytest

from pynqrepro.core import machine, options
from pynqrepro.core.atomic import ensure_writable_dir
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.provenance import environment
from pynqrepro.core.reports import merge_reports
from pynqrepro.core.results import Recorder, SessionInfo, new_session_id
from pynqrepro.core.scale import get_scale
from pynqrepro.core.store import ArtifactStore

MARKERS = {
    "gpu": ("needs a CUDA GPU (paper-scale training)", lambda config: machine.missing_gpu()),
    "vivado": ("needs Vivado/Vitis HLS: synthesis and bitfiles",
               lambda config: machine.missing_vivado()),
    "board": ("needs a PYNQ board reachable over SSH (--board-host)",
              lambda config: machine.missing_board(config.getoption("board_host"))),
    "slow": ("takes more than ~20 s on a laptop; deselect with -m 'not slow'", lambda config: None),
    "study": ("study(module, trains=False): the experiment of a pynqrepro.study module; its 'case' argument "
              "takes the module's CASES", lambda config: None),
}


def pytest_addoption(parser):
    group = parser.getgroup("pynqrepro")
    options.add_scale_option(group.addoption)
    options.add_board_option(group.addoption)
    # None: resolved against pytest's rootdir (the repository), not the working directory
    options.add_data_option(group.addoption, default=None)
    options.add_reports_option(group.addoption, default=None)
    options.add_store_option(group.addoption, default=None)
    group.addoption("--fresh", action="store_true", help="ignore cached artifacts made before this run")
    options.add_board_login_options(group.addoption)


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
    paths = _paths(config)
    try:
        ensure_writable_dir(paths["reports"], "--reports-dir")
        ensure_writable_dir(paths["store"], "--store-dir")
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # xdist worker: share the controller's session and the CPU cores
        info = SessionInfo(**worker["pynqrepro_session"])
        fresh_since = worker["pynqrepro_fresh_since"]
        _share_cores(int(worker.get("workercount", 1)))
    else:
        info = SessionInfo(new_session_id(), config.getoption("scale"), config.getoption("board"), environment())
        fresh_since = time.time() if config.getoption("fresh") else None
    config.pynqrepro = {"paths": paths, "session": info, "fresh_since": fresh_since}


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
    for marker in item.iter_markers():
        if marker.name in MARKERS:
            reason = MARKERS[marker.name][1](item.config)
            if reason:
                pytest.skip(f"{marker.name}: {reason}")


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workerinput") or not hasattr(config, "pynqrepro"):
        return
    reports = config.pynqrepro["paths"]["reports"]
    written = merge_reports(reports)
    if written:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"pynqrepro: wrote {', '.join(written)} and index.md in {reports}")


@pytest.fixture(scope="session")
def scale(request):
    return get_scale(request.config.getoption("scale"))


@pytest.fixture(scope="session")
def board(request):
    return get_board(request.config.getoption("board"))


@pytest.fixture(scope="session")
def board_host(request):
    return request.config.getoption("board_host")


@pytest.fixture(scope="session")
def data_dir(request):
    return request.config.pynqrepro["paths"]["data"]


@pytest.fixture(scope="session")
def store(request):
    state = request.config.pynqrepro
    return ArtifactStore(state["paths"]["store"], fresh_since=state["fresh_since"])


@pytest.fixture(scope="session")
def setup(scale, board, store, data_dir, board_host, request):
    """What every measurement of this session shares (``pynqrepro.pipeline.Setup``)."""
    from pynqrepro.board.remote import BoardLogin
    from pynqrepro.pipeline import Setup

    login = None
    if board_host:
        login = BoardLogin(board_host, request.config.getoption("board_user"), request.config.getoption("board_key"))
    return Setup(scale, board, store, data_dir, login)


def pytest_generate_tests(metafunc):
    """``@pytest.mark.study(module, trains=False)``: the test's ``case`` argument takes the study
    module's CASES, with the ids ``pynqrepro report`` records under. ``trains``: the cases train
    CNVs, so at a scale that needs a GPU they carry the gpu marker (decided at collection, before
    any work starts)."""
    marker = metafunc.definition.get_closest_marker("study")
    if marker is None:
        return
    module, trains = marker.args[0], marker.kwargs.get("trains", False)
    marks = [pytest.mark.gpu] if trains and get_scale(metafunc.config.getoption("scale")).needs_gpu else []
    metafunc.parametrize("case", [pytest.param(case, id=case.id, marks=marks) for case in module.CASES])


@pytest.fixture
def results(request):
    """Record rows of a report table: ``results.table(name, title=...).add(row, config=..., seed=...)``."""
    state = request.config.pynqrepro
    return Recorder(state["paths"]["reports"], state["session"], request.node.nodeid)
