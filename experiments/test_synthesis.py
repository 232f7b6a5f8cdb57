"""Vivado stage: FINN's full build of the trained CNVs at FINN's published foldings and at the
exact folding optimiser's choice (85% LUT budget), post-synthesis utilisation and timing beside
FINN's estimates (reports/synthesis.md), with the study's out-of-context runs as reference rows."""

import pytest

from pynqrepro.synthesis.deployment import check_package
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow import apply_folding, conv_swg_names_to_model, estimate, hw_model_artifact, load_hw_model
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import build_space
from pynqrepro.references import STUDY_FOLDING_RUNS, STUDY_FOLDING_SOURCE, finn_folding
from pynqrepro.synthesis.build import BUILD_DIR, read_build, synthesis_artifact
from pynqrepro.synthesis.reports import estimate_ratios
from pynqrepro.training.recipes import trained_checkpoint

BITS = ((1, 1), (1, 2), (2, 2))  # FINN publishes CNV foldings for these
LUT_RATIO = 0.85  # the study's budget
NOTES = [
    "FINN (finn-plus) builder, BNN-PYNQ steps after layer specialisation: folding, hardware generation with "
    "FIFO sizing, stitched IP, out-of-context synthesis, Zynq bitfile, PYNQ driver, deployment package.",
    "OOC: the accelerator alone (FINN's ooc_synth_and_timing.json), the figures FINN's estimates model; "
    "est/synth ratios against OOC, BRAM in 18 Kb units. Whole design: post-synthesis utilisation of the "
    "Zynq design with shell (post_synth_resources.json), WNS/fmax after routing (post_route_timing.rpt).",
    f"exact: pynqrepro's folding optimiser at {LUT_RATIO:g} x the board's LUTs (FINN's cost model).",
    "Study rows: its OOC synthesis results (FINN v0.5b, Pynq-Z1, 10 ns) with its own estimates.",
]


def _foldings(hw_model, board, weight_bits, act_bits):
    """Folding name -> FINN ApplyConfig dict, or the UserError saying why the optimiser found none."""
    foldings = {"FINN published": conv_swg_names_to_model(finn_folding(weight_bits, act_bits), hw_model)}
    try:
        foldings[f"exact, {LUT_RATIO:g} LUT"] = optimise(build_space(hw_model, board.part),
                                                          board_budget(board, LUT_RATIO)).config()
    except UserError as exc:  # nothing fits the budget: recorded as a note row
        foldings[f"exact, {LUT_RATIO:g} LUT"] = exc
    return foldings


@pytest.mark.vivado
@pytest.mark.slow
@pytest.mark.parametrize("weight_bits,act_bits", BITS, ids=[f"{w}w{a}a" for w, a in BITS])
def test_synthesis(scale, store, data_dir, board, results, weight_bits, act_bits):
    hw_artifact = hw_model_artifact(store, trained_checkpoint(store, scale, weight_bits, act_bits, data_dir), board)
    hw_model = load_hw_model(hw_artifact)
    table = results.table("synthesis", title="Vivado synthesis beside FINN's estimates", notes=NOTES)
    model = f"CNV W{weight_bits}A{act_bits}"
    for name, folding in _foldings(hw_model, board, weight_bits, act_bits).items():
        if isinstance(folding, UserError):
            table.add({"model": model, "board": board.name, "folding": name, "note": str(folding),
                       "source": f"pynqrepro ({scale.name})"}, config={"hw_model": hw_artifact.key})
            continue
        artifact = synthesis_artifact(store, hw_artifact, board, folding)
        build = read_build(artifact.path / BUILD_DIR, board.clock_ns)
        check_package(build.deploy_dir)
        est = estimate(apply_folding(hw_model, folding), board.part, board.clock_ns)
        ooc, system = build.ooc, build.system
        table.add({
            "model": model, "board": board.name, "folding": name,
            "est. LUT": round(est.totals["lut"]), "OOC LUT": ooc.lut, "OOC FF": ooc.ff,
            "est. BRAM18": round(est.totals["bram18"]), "OOC BRAM36": ooc.bram36,
            "est. DSP": round(est.totals["dsp"]), "OOC DSP": ooc.dsp,
            **estimate_ratios(est.totals["lut"], est.totals["bram18"], est.totals["dsp"], ooc),
            "OOC WNS ns": ooc.wns_ns, "OOC fmax MHz": round(ooc.fmax_mhz, 1),
            "design LUT": system.lut, "design BRAM36": system.bram36, "design WNS ns": system.wns_ns,
            "design fmax MHz": round(system.fmax_mhz, 1), "est. fps": round(est.est_fps, 1),
            "source": f"pynqrepro ({scale.name}, {board.clock_ns} ns)",
        }, config={"hw_model": hw_artifact.key, "build": artifact.key, "folding": folding})
        assert system.lut <= board.luts and system.bram36 <= board.bram18 / 2, \
            f"{model} at {name} does not fit {board.name}: {system}"
    if weight_bits == act_bits and board.name == "pynq-z1":
        for run in STUDY_FOLDING_RUNS:
            if run.bits == weight_bits and run.ooc_lut is not None:
                table.add({
                    "model": model, "board": "pynq-z1", "folding": run.method,
                    "est. LUT": run.est_lut, "OOC LUT": run.ooc_lut, "OOC FF": run.ooc_ff,
                    "est. BRAM18": run.est_bram18, "OOC BRAM36": run.ooc_bram36, "OOC DSP": run.ooc_dsp,
                    "LUT est/synth": round(run.est_lut / run.ooc_lut, 3),
                    "BRAM18 est/synth": round(run.est_bram18 / (2 * run.ooc_bram36), 3),
                    "OOC fmax MHz": run.ooc_fmax_mhz, "est. fps": run.est_fps,
                    "source": f"reference: {STUDY_FOLDING_SOURCE}",
                }, config={"run": run.run})
