"""Board stage: FINN's deployment package of each trained CNV (FINN's published folding) on the
PYNQ board: on-board top-1 over the test set, fps and latency (reports/board.md) beside FINN's
estimate and the top-1 of the same HW graph executed in Python, flagged beyond 0.1 points.

Marked ``vivado`` too: the package is the Vivado stage's (cached) build of the same key."""

import pytest

from pynqrepro.board.compare import ACCURACY_TOLERANCE, hw_graph_accuracy
from pynqrepro.board.deploy import run_on_board
from pynqrepro.board.remote import BoardLogin
from pynqrepro.board.report import NOTES, board_row
from pynqrepro.finnflow import apply_folding, conv_swg_names_to_model, estimate, hw_model_artifact, load_hw_model
from pynqrepro.references import ACCURACY, BOARD_MEASUREMENTS, finn_folding
from pynqrepro.synthesis.build import BUILD_DIR, BuildPaths, synthesis_artifact
from pynqrepro.training.recipes import trained_checkpoint

BITS = ((1, 1), (1, 2), (2, 2))


@pytest.mark.vivado  # checked second: without a board, the board's skip reason is shown
@pytest.mark.board
@pytest.mark.slow
@pytest.mark.parametrize("weight_bits,act_bits", BITS, ids=[f"{w}w{a}a" for w, a in BITS])
def test_board(request, scale, store, data_dir, board, board_host, results, tmp_path, weight_bits, act_bits):
    from pynqrepro.data.splits import uint8_test_set

    login = BoardLogin(board_host, request.config.getoption("board_user"), request.config.getoption("board_key"))
    hw_artifact = hw_model_artifact(store, trained_checkpoint(store, scale, weight_bits, act_bits, data_dir), board)
    hw_model = load_hw_model(hw_artifact)
    folding = conv_swg_names_to_model(finn_folding(weight_bits, act_bits), hw_model)
    build = synthesis_artifact(store, hw_artifact, board, folding)
    images, labels = uint8_test_set(scale.dataset, data_dir)

    on_board = run_on_board(login, BuildPaths(build.path / BUILD_DIR).deploy, images, labels, tmp_path)
    python_top1 = hw_graph_accuracy(store, hw_artifact, images, labels)
    est = estimate(apply_folding(hw_model, folding), board.part, board.clock_ns)
    model = f"CNV W{weight_bits}A{act_bits}"
    table = results.table("board", title="CNV on the PYNQ board", notes=NOTES)
    table.add(board_row(model, board.name, "FINN published", on_board, python_top1, est.est_fps,
                        est.latency_ns / 1e6, f"pynqrepro ({scale.name}, {board.clock_ns} ns)"),
              config={"hw_model": hw_artifact.key, "build": build.key, "folding": folding})
    for ref in BOARD_MEASUREMENTS:
        if ref.board == board.name and ref.network == model:
            table.add({"model": model, "board": ref.board, "folding": "FINN published",
                       "fps": ref.measured_fps, "est. fps": ref.estimated_fps, "fclk MHz": ref.clock_mhz,
                       "source": f"reference: {ref.source}"}, config={"reference": ref.network})
    for ref in ACCURACY:
        if "board" in ref.model and (ref.weight_bits, ref.act_bits) == (weight_bits, act_bits) \
                and scale.name == "paper" and board.name == "pynq-z1":
            table.add({"model": model, "board": "pynq-z1", "on-board top-1 %": ref.top1,
                       "source": f"reference: {ref.source}"}, config={"reference": ref.model})
    assert abs(on_board.top1 - python_top1) <= ACCURACY_TOLERANCE, \
        f"{model}: on-board top-1 {on_board.top1:.2f}% vs Python HW graph {python_top1:.2f}%"
