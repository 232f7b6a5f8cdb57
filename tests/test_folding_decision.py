"""pynqrepro's decision estimate (the per-node fit on FINN's raw rows) beside FINN's raw one and
the analytic model it was chosen over: the analytic terms (MVAU threshold logic priced at "auto" as
FINN prices "distributed", oracle FINN's own lut_estimation with that setting and the study's
out-of-context syntheses; "auto" multipliers on DSPs where public builds use them; nodes FINN
estimates at zero at their public post-route cost), the fit applied by the optimiser equal to the
fit applied to FINN's own res_estimation rows, and the optimiser's exactness on it (an MILP)."""

import json

import numpy as np
import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel, decision
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import SpaceOptions, build_space
from pynqrepro.references import SYNTHESIS_ANCHORS

import hw_models
from hw_models import PYNQ_Z1

PUBLIC = decision.DATA / "public-builds"


def _post_route(build: str, node: str) -> dict:
    rows = json.loads((PUBLIC / build / "post_synth_resources.json").read_text())
    return next(v for k, v in rows.items() if k.endswith("_" + node))


@pytest.fixture(scope="module")
def cnv2(store):
    return hw_models.cnv(store, 2)


def test_threshold_logic_of_2bit_mvaus_is_priced_as_finn_prices_distributed(cnv2):
    """At ram_style_thresholds "auto" FINN counts no threshold LUTs; the analytic model equals FINN's
    own lut_estimation with "distributed" (what HLS builds for the fully partitioned array)."""
    groups = build_space(cnv2, PYNQ_Z1.part)
    mvaus = [g for g in groups if g.name.startswith("MVAU_hls") and not g.nodes[0].attrs["noActivation"]]
    assert len(mvaus) >= 8 and all(g.nodes[0].attrs["ram_style_thresholds"] == "auto" for g in mvaus)
    rng = np.random.default_rng(0)
    for group in mvaus:
        spec = group.nodes[0]
        dsp = spec.attrs["W"] + spec.attrs["A"] >= costmodel.DSP_PRODUCT_BITS and spec.attrs["resType"] == "auto"
        for i in rng.choice(len(group), min(len(group), 6), replace=False):
            setting = {**group.assignment(i)[group.name], "ram_style_thresholds": "distributed"}
            if dsp:
                setting["resType"] = "dsp"
            style = setting.get("ram_style", spec.attrs["ram_style"])
            args = ([setting["PE"]], [setting["SIMD"]], [costmodel.encode("ram_style", style)])
            analytic = costmodel.mvau_costs(spec, *args, decision=True)
            oracle = costmodel.finn_costs(spec, [setting])
            assert int(analytic.LUT[0]) == int(oracle.LUT[0]), (group.name, setting)
            assert int(analytic.LUT[0]) > int(group.finn_costs.LUT[i])  # FINN raw prices them at 0


def test_threshold_memory_is_a_decision(cnv2):
    """With the choice, every activation-bearing MVAU_hls offers thresholds in BRAM: fewer LUTs, more
    BRAM18 than the same PE/SIMD in LUTRAM; FINN's raw estimate tells them apart not at all."""
    plain = {g.name: g for g in build_space(cnv2, PYNQ_Z1.part)}
    chosen = build_space(cnv2, PYNQ_Z1.part, SpaceOptions(choose_threshold_ram_style=True))
    mvaus = [g for g in chosen if "ram_style_thresholds" in g.node_attrs.get(g.name, {})]
    assert len(mvaus) >= 8
    for g in mvaus:
        block = g.params["ram_style_thresholds"] == costmodel.encode("ram_style_thresholds", "block")
        assert block.any() and (~block).any() and len(g) == 2 * len(plain[g.name])
        assert (g.costs.LUT[block] < g.costs.LUT[~block]).all() and (g.costs.BRAM_18K[block] > g.costs.BRAM_18K[~block]).all()
        assert (g.finn_costs.LUT[block] == g.finn_costs.LUT[~block]).all()
        assert {g.assignment(i)[g.name]["ram_style_thresholds"] for i in range(len(g))} == {"auto", "block"}


@pytest.mark.parametrize("bits", [2, 4])
def test_study_ooc_syntheses_within_10_percent_where_finn_raw_is_not(store, bits):
    """The study's out-of-context syntheses (Vivado, published LUTs): the analytic model lands within
    10 % of the real accelerator, at most half as far off as FINN's raw estimate."""
    from pynqrepro.folding.budget_calibration import estimate_anchor

    anchor = next(a for a in SYNTHESIS_ANCHORS if a.weight_bits == bits and "study" in a.design)
    estimate = estimate_anchor(store, anchor)
    ours, raw = estimate.analytic["LUT"], estimate.whole("LUT")
    assert abs(ours / anchor.lut - 1) < 0.10, (ours, anchor.lut)
    assert abs(ours - anchor.lut) <= abs(raw - anchor.lut) / 2, (ours, raw, anchor.lut)


def test_auto_multipliers_of_wide_products_use_dsps_as_public_build_a1(store):
    """CNV W1A1's input layer (1-bit weights x 8-bit pixels) at resType "auto" (A1's setting;
    finn-plus's MVAU_hls default is "lut", ap_resource_lut()), PE 1, SIMD 27: public build A1's
    post-route MVAU_hls_0 used 27 DSP; FINN estimates 0, and its multiplier LUTs vanish."""
    groups = build_space(hw_models.cnv(store, 1), PYNQ_Z1.part)
    spec = next(g for g in groups if g.name == "MVAU_hls_0").nodes[0]
    args = ([1], [27], [costmodel.encode("ram_style", "auto")], None, [costmodel.encode("resType", "auto")])
    ours, finn = costmodel.mvau_costs(spec, *args, decision=True), costmodel.mvau_costs(spec, *args)
    assert int(ours.DSP[0]) == int(_post_route("A1", "MVAU_hls_0")["DSP"]) == 27
    assert int(finn.DSP[0]) == 0 and ours.LUT[0] < finn.LUT[0]
    lut = [costmodel.encode("resType", "lut")]  # what our HW models carry: LUT multipliers, no DSP
    assert int(costmodel.mvau_costs(spec, *args[:4], lut, decision=True).DSP[0]) == 0


def test_nodes_finn_estimates_at_zero_cost_what_public_builds_show(cnv2):
    """CNV's LabelSelect: FINN 0 LUT; the analytic model's figure and the fit's (the decision model's
    group costs) within the public post-route rows of the op type (E1 LabelSelect_hls_0: 75 LUT);
    every such op type gets a positive cost."""
    labels = [g for g in build_space(cnv2, PYNQ_Z1.part) if g.name.startswith("LabelSelect_hls")]
    real = [_post_route(b, "LabelSelect_hls_0")["LUT"] for b in ("E1", "E2")]
    assert labels and 75 in real
    assert min(real) <= decision.zero_estimated_cost("LabelSelect_hls")["LUT"] <= max(real)
    for g in labels:
        assert (g.finn_costs.LUT == 0).all() and (min(real) <= g.costs.LUT).all() and (g.costs.LUT <= max(real)).all()
    a1 = [_post_route("A1", f"StreamingMaxPool_hls_{k}") for k in (0, 1)]  # CNV W1A1's own pools
    pool = decision.zero_estimated_cost("StreamingMaxPool_hls")
    assert min(r["LUT"] for r in a1) // 2 <= pool["LUT"] <= max(r["LUT"] for r in a1)
    assert all(decision.zero_estimated_cost(op)["LUT"] > 0 for op in decision.ZERO_ESTIMATED)


def test_mvau_rtl_luts_are_the_public_builds_fit():
    """Refit E1/E2's MVAU_rtl post-route rows (LUT against PE x SIMD): our constants are that line,
    and every row lies within 80 LUT or 30 % of it."""
    lanes, real = [], []
    for build in ("E1", "E2"):
        hw = json.loads((PUBLIC / build / "final_hw_config.json").read_text())
        for k in range(10):
            name = f"MVAU_rtl_{k}"
            lanes.append(hw[name]["PE"] * hw[name]["SIMD"])
            real.append(_post_route(build, name)["LUT"])
    slope, intercept = np.polyfit(lanes, real, 1)
    assert costmodel.MVAU_RTL_LUTS == pytest.approx((intercept, slope), abs=0.05)
    for n, r in zip(lanes, real):
        assert abs(int(costmodel.mvau_rtl_luts(1, n)) - r) <= max(80, 0.3 * r), (n, r)


def test_node_model_load_and_identity(tmp_path):
    """node_model.json read back as written; an op type it lacks keeps FINN's figure (identity)."""
    path = tmp_path / "node_model.json"
    path.write_text(json.dumps({"source": "test", "op_types": {"MVAU_hls": {"LUT": {
        "intercept": 100.0, "estimate": 0.5, "memory_bits": 0.001}}}, "bound": {"LUT": None}}))
    model = decision.NodeModel.load(path)
    row = {"op_type": "MVAU_hls", "LUT": 1000.0, "memory_bits": 2000.0}
    assert model.predict(row, "LUT") == pytest.approx(100 + 500 + 2)
    assert model.predict({**row, "op_type": "ChannelwiseOp_hls"}, "LUT") == 1000.0
    assert decision.NodeModel.load(tmp_path / "absent.json").op_types == {}


@pytest.mark.parametrize("bits", [1, 2])
def test_optimiser_costs_are_the_fit_on_finns_own_rows(store, bits):
    """What the optimiser decides on, node by node, equals the shipped fit applied to FINN's own
    res_estimation row of the folded node (its BRAM_efficiency giving the memory bits): the
    features the fit was trained on, at two foldings (all-1, and the optimiser's)."""
    from pynqrepro.finnflow.foldconfig import apply_folding
    from pynqrepro.folding import baselines

    model = decision.load_node_model()
    hw = hw_models.cnv(store, bits)
    groups = build_space(hw, PYNQ_Z1.part)
    checked = 0
    for folding in (baselines.all_ones(groups), optimise(groups, board_budget(PYNQ_Z1, 0.85))):
        rows = decision.node_decision_costs(apply_folding(hw, folding.config()), PYNQ_Z1.part)
        for group, i in zip(groups, folding.choice):
            if len(group.nodes) == 1:
                for r in decision.FITTED_RESOURCES:
                    oracle = max(0, int(np.ceil(model.predict(rows[group.name], r) - 1e-9)))
                    assert int(group.costs.resource(r)[i]) == oracle, (group.name, r)
                    checked += 1
    assert checked > 30


@pytest.mark.parametrize("bits", [1, 2])
def test_optimiser_equals_an_independent_milp_on_decision_costs(store, bits):
    """The fastest fitting bottleneck on pynqrepro's estimate (thresholds, pool and label-select
    floors in play) equals one whole-network min-max MILP (brute force on reduced spaces with the
    decision terms: tests/test_folding.py)."""
    from test_folding import _minmax_milp

    groups = build_space(hw_models.cnv(store, bits), PYNQ_Z1.part)
    budget = board_budget(PYNQ_Z1, 0.85)
    folding = optimise(groups, budget)
    assert folding.max_cycles == _minmax_milp(groups, budget) and folding.fits(budget)


def test_node_decision_costs_of_a_model_without_hw_layers_is_one_line():
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    empty = ModelWrapper(qonnx_make_model(helper.make_graph([], "g", [], [])))
    with pytest.raises(UserError, match="no FINN HW layers"):
        decision.node_decision_costs(empty, PYNQ_Z1.part)
