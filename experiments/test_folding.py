"""Experiment: exact budgeted folding vs FINN SetFolding, the study's greedy search and FINN's
published foldings, boards x bit widths x LUT ratios (reports/folding.md)."""

import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow import conv_swg_names_to_model, hw_model_artifact, load_hw_model
from pynqrepro.folding import baselines, outputs
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import SpaceOptions, build_space
from pynqrepro.references import STUDY_FOLDING_RUNS, finn_folding
from pynqrepro.training.recipes import trained_checkpoint

NOTES = [
    "FINN's analytical estimates (exp_cycles, res_estimation), fps at the board's default clock.",
    "exact: provably fastest folding under the budget (SIMD x W <= 36); exact+LUTRAM: MVAU weights may "
    "also go to distributed RAM; exact+all FINN options: also MVAU_hls multipliers in DSPs (resType) and "
    "sliding-window line buffers in BRAM (SWG ram_style), where FINN's build sets LUTs / LUTRAM; "
    "SetFolding: FINN's SetFolding at its fastest target that fits.",
    "study greedy: the study's search re-implemented (prio SIMD); it ignores BRAM, as the study did.",
    "FINN published: FINN's shipped CNV foldings (W1A1/W1A2/W2A2 only).",
]


@pytest.mark.parametrize("board_name", ["pynq-z1", "ultra96"])
@pytest.mark.parametrize("bits", [1, 2, 4, 8], ids=lambda b: f"{b}w{b}a")
@pytest.mark.parametrize("lut_ratio", [1.0, 0.85, 0.7])
def test_folding(scale, store, data_dir, results, board_name, bits, lut_ratio):
    board = get_board(board_name)
    model = load_hw_model(hw_model_artifact(store, trained_checkpoint(store, scale, bits, bits, data_dir), board))
    budget = board_budget(board, lut_ratio)
    table = results.table("folding", title="CNV folding under a LUT budget", notes=NOTES)
    base = {"board": board.name, "W/A": f"{bits}/{bits}", "LUT ratio": lut_ratio}
    config = {**base, "scale": scale.name}

    def add(method, folding=None, note=""):
        row = {**base, "method": method}
        if folding is not None:
            row.update({"est. fps": round(folding.fps(board.clock_ns), 1), "LUT": folding.total("LUT"),
                        "BRAM18": folding.total("BRAM_18K"), "DSP": folding.total("DSP"),
                        "bottleneck": folding.bottleneck, "fits": folding.fits(budget)})
        table.add({**row, "note": note, "source": f"pynqrepro ({scale.name})"}, config=config)

    found = {}
    for method, options in (("exact", SpaceOptions()), ("exact+LUTRAM", SpaceOptions(choose_ram_style=True)),
                            ("exact+all FINN options", SpaceOptions.all_finn_choices())):
        try:
            found[method] = optimise(build_space(model, board.part, options), budget)
            add(method, found[method])
        except UserError as exc:
            add(method, note=str(exc))
    uncapped = build_space(model, board.part, SpaceOptions(mvau_wwidth_max=10**6))
    try:
        floor = optimise(uncapped, budget).max_cycles
        setfolding = baselines.setfolding_at_budget(model, uncapped, budget, floor)
    except UserError:
        setfolding = None
    add("FINN SetFolding at budget", setfolding, "" if setfolding else "no SetFolding target fits")
    groups = build_space(model, board.part)
    add("study greedy (prio SIMD)", baselines.study_greedy(groups, budget))
    if bits <= 2:
        add("FINN published", baselines.from_config(uncapped, conv_swg_names_to_model(finn_folding(bits, bits), model),
                                                   "FINN published"))
    if "exact" in found and setfolding is not None:
        table.add({**base, "method": "exact / SetFolding fps",
                   "est. fps": round(setfolding.max_cycles / found["exact"].max_cycles, 3),
                   "source": f"pynqrepro ({scale.name})"}, config=config)
    if board.name == "pynq-z1":
        for run in STUDY_FOLDING_RUNS:
            if run.bits == bits and run.lut_ratio in (lut_ratio, None):
                table.add({**base, "method": run.method, "est. fps": run.est_fps, "LUT": run.est_lut,
                           "BRAM18": run.est_bram18, "source": f"reference: study {run.run}"})
    if "exact" in found:
        name = f"folding_{board.name}_{bits}w{bits}a_{int(lut_ratio * 100)}.png"
        outputs.plot_cycles_remainder(found["exact"], budget, results.figure_path(name))
        assert setfolding is None or found["exact"].max_cycles <= setfolding.max_cycles
    for method, folding in found.items():
        assert folding.fits(budget), method
        estimate = outputs.finn_reestimate(model, folding, board.part, board.clock_ns)
        assert outputs.disagreements(folding, estimate) == [], method
    if "exact+LUTRAM" in found:  # each space contains the one before it: never slower
        assert found["exact+all FINN options"].max_cycles <= found["exact+LUTRAM"].max_cycles
