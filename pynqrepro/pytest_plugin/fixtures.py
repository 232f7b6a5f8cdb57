"""The plugin's fixtures (``setup``, ``results`` and their pieces) and the ``study`` marker's
parametrization; using any of them makes the session a pynqrepro one (``options.activate``)."""

import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.core.results import Recorder
from pynqrepro.core.store import ArtifactStore
from pynqrepro.pytest_plugin.options import activate


@pytest.fixture(scope="session")
def scale(request):
    return activate(request.config)["scale"]


@pytest.fixture(scope="session")
def board(request):
    return get_board(request.config.getoption("board"))


@pytest.fixture(scope="session")
def board_host(request):
    return request.config.getoption("board_host")


@pytest.fixture(scope="session")
def data_dir(request):
    return activate(request.config)["paths"]["data"]


def _store(config) -> ArtifactStore:
    state = activate(config)
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

    state = activate(request.config)
    return Setup(scale, board, store, data_dir, state["login"], state["paths"]["reports"])


def pytest_generate_tests(metafunc):
    """``@pytest.mark.study(module, trains=False)``: the test's ``case`` argument takes the study
    module's CASES, with the ids ``pynqrepro report`` records under, each with the gpu marker
    where it needs training that is GPU work (``gpu_marks``): decided at collection, so
    ``-m "not gpu"`` deselects it and nothing starts on the wrong machine."""
    marker = metafunc.definition.get_closest_marker("study")
    if marker is None:
        return
    module, trains = marker.args[0], marker.kwargs.get("trains", False)
    metafunc.parametrize("case", [pytest.param(case, id=case.id, marks=gpu_marks(metafunc.config, case,
                                                                       trains or _trains(case)))
                                  for case in module.CASES])


def _trains(case) -> bool:
    """A case that fine-tunes though its experiment does not (``case.trains``, e.g. the pruned build)."""
    return getattr(case, "trains", False)


def gpu_marks(config, case, trains: bool) -> list:
    """At a scale whose training is GPU work: the gpu marker when the case fine-tunes (``trains``)
    or its trained CNV (``case.cnv_bits``; None: it measures none) is not in the store yet. A
    checkpoint already there (trained on a GPU host, copied into --store-dir) lets the case run on
    the CPU."""
    state = activate(config)
    scale = state["scale"]
    if not scale.needs_gpu or (case.cnv_bits is None and not trains):
        return []
    if trains:
        return [pytest.mark.gpu(why=f"fine-tunes CNVs at {scale.name} scale")]
    from pynqrepro.training.recipes import cached_checkpoint

    weight_bits, act_bits = case.cnv_bits
    cached = state.setdefault("cached_checkpoints", {})  # one look per CNV, not per case
    if case.cnv_bits not in cached:
        cached[case.cnv_bits] = cached_checkpoint(_store(config), scale, weight_bits, act_bits) is not None
    if cached[case.cnv_bits]:
        return []
    return [pytest.mark.gpu(why=f"the {scale.name}-scale CNV W{weight_bits}A{act_bits} is not in the store yet "
                                "(train it on a GPU host and copy its store, or use --executor slurm)")]


@pytest.fixture
def results(request):
    """Record rows of a report table: ``results.table(name, title=...).add(row, config=..., seed=...)``."""
    state = activate(request.config)
    return Recorder(state["paths"]["reports"], state["session"], request.node.nodeid)
