"""pynqrepro's pytest plugin: stage markers, run options, fixtures and report merging.

Loaded by the repository's root ``conftest.py``. Markers are registered here and only here
(with ``--strict-markers`` a typo is an error); a test whose resource is absent is skipped with
a one-line reason naming how to provide it, never failed and never faked.
"""

import os
import time
from pathlib import Path

import pytest

from pynqrepro.core import machine
from pynqrepro.core.atomic import ensure_writable_dir
from pynqrepro.core.boards import BOARDS, get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.provenance import environment
from pynqrepro.core.reports import merge_reports
from pynqrepro.core.results import Recorder, SessionInfo, new_session_id
from pynqrepro.core.scale import SCALES, get_scale
from pynqrepro.core.store import ArtifactStore

STORE_ENV = "PYNQREPRO_STORE"
DATA_ENV = "PYNQREPRO_DATA"

MARKERS = {
    "gpu": ("needs a CUDA GPU (paper-scale training)", lambda config: machine.missing_gpu()),
    "vivado": ("needs Vivado/Vitis HLS: synthesis and bitfiles",
               lambda config: machine.missing_vivado()),
    "board": ("needs a PYNQ board reachable over SSH (--board-host)",
              lambda config: machine.missing_board(config.getoption("board_host"))),
    "slow": ("takes more than ~20 s on a laptop; deselect with -m 'not slow'", lambda config: None),
}


def pytest_addoption(parser):
    group = parser.getgroup("pynqrepro")
    group.addoption("--scale", choices=sorted(SCALES), default="smoke",
                    help="smoke: minutes on a laptop with offline data; paper: the study's settings on CIFAR-10")
    group.addoption("--board", choices=sorted(BOARDS), default="pynq-z1", help="target board")
    group.addoption("--data-dir", type=Path, default=None,
                    help=f"datasets (cifar-10-python.tar.gz); default ${DATA_ENV} or ./data")
    group.addoption("--reports-dir", type=Path, default=None, help="where tables go; default ./reports")
    group.addoption("--store-dir", type=Path, default=None,
                    help=f"artifact cache; default ${STORE_ENV} or ./.pynqrepro-store")
    group.addoption("--fresh", action="store_true", help="ignore cached artifacts made before this run")
    group.addoption("--board-host", default=os.environ.get(machine.BOARD_HOST_ENV),
                    help=f"PYNQ board for the board stage (or ${machine.BOARD_HOST_ENV})")
    group.addoption("--board-user", default=os.environ.get("PYNQ_BOARD_USER", "xilinx"), help="SSH user on the board")
    group.addoption("--board-key", default=os.environ.get("PYNQ_BOARD_KEY"), help="SSH private key for the board")


def _paths(config) -> dict[str, Path]:
    root = Path(config.rootpath)
    return {
        "reports": (config.getoption("reports_dir") or root / "reports").resolve(),
        "store": (config.getoption("store_dir") or Path(os.environ.get(STORE_ENV, root / ".pynqrepro-store"))).resolve(),
        "data": (config.getoption("data_dir") or Path(os.environ.get(DATA_ENV, root / "data"))).resolve(),
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


@pytest.fixture
def results(request):
    """Record rows of a report table: ``results.table(name, title=...).add(row, config=..., seed=...)``."""
    state = request.config.pynqrepro
    return Recorder(state["paths"]["reports"], state["session"], request.node.nodeid)
