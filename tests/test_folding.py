"""Folding search on untrained CNVs: the vectorised cost model equals FINN for every candidate, the
optimiser is exact (brute force on reduced networks, MILPs on the real CNV), FINN
re-estimates our JSON identically, also with FINN's implementation choices (MVAU weight RAM,
MVAU_hls resType, SWG line-buffer RAM) as decisions."""

import functools
import itertools
import json
import re

import numpy as np
import pytest
import torch

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.hw_build import build_hw_model
from pynqrepro.finnflow.export import export_qonnx
from pynqrepro.folding import baselines, costmodel, outputs
from pynqrepro.folding.optimise import Budget, Folding, board_budget, optimise, smallest_lut_budget
from pynqrepro.folding.cli import parse_pruning
from pynqrepro.folding.space import Group, MaskedBlocks, SpaceOptions, as_finn_estimates, build_space, combine
from pynqrepro.models.cnv import CNV

PYNQ_Z1 = get_board("pynq-z1")
ALL_CHOICES = SpaceOptions.all_finn_choices()
_MODELS = {}


def hw_model(bits: int):
    """Untrained CNV (seed 0) at ``bits``w``bits``a as a specialised HW model, built once per session."""
    if bits not in _MODELS:
        torch.manual_seed(0)
        _MODELS[bits] = build_hw_model(export_qonnx(CNV(bits, bits).eval()), PYNQ_Z1).hw_model
    return _MODELS[bits]


def raw_space(*args, **kwargs):
    """The search space costed by FINN's raw estimate (the figures of FINN-estimate targets)."""
    return as_finn_estimates(build_space(*args, **kwargs))


def check_against_finn(groups, per_group: int | None = None, seed: int = 0) -> int:
    """Compare ``per_group`` random candidates (None: all) of every group with FINN's node methods;
    a tied group (depthwise SWG + Pool) against both nodes' FINN costs combined."""
    rng = np.random.default_rng(seed)
    fields = ("cycles",) + costmodel.RESOURCES
    checked = 0
    for group in groups:
        picks = range(len(group))
        if per_group is not None:
            picks = rng.choice(len(group), min(len(group), per_group), replace=False)
        for i in picks:
            assignment = group.assignment(i)
            if "MW" in group.params:
                assignment[group.name]["MW"] = int(group.params["MW"][i])
            ref = functools.reduce(combine, (costmodel.finn_costs(spec, [assignment.get(spec.name, {})]) for spec in group.nodes))
            assert [int(group.finn_costs.resource(f)[i]) for f in fields] == [int(ref.resource(f)[0]) for f in fields], (group.name, assignment)
            checked += 1
    return checked


def test_cost_model_equals_finn_2w2a():
    groups = build_space(hw_model(2), PYNQ_Z1.part, ALL_CHOICES)
    assert check_against_finn(groups, per_group=12) > 100


@pytest.mark.slow
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_cost_model_equals_finn_other_widths(bits):
    groups = build_space(hw_model(bits), PYNQ_Z1.part, ALL_CHOICES)
    assert check_against_finn(groups, per_group=12, seed=bits) > 100


def test_implementation_choices_equal_finn_for_every_candidate():
    """Every candidate of every SWG (conv and depthwise tied to its Pool, block and distributed line
    buffers) and of an MVAU_hls (weights block/distributed x multipliers lut/dsp) equals FINN."""
    groups = build_space(hw_model(4), PYNQ_Z1.part, ALL_CHOICES)
    swgs = [g for g in groups if g.nodes[0].op_type.startswith("ConvolutionInputGenerator")]
    assert sum(len(g.nodes) == 2 for g in swgs) == 2 and len(swgs) == 8  # 6 conv SWGs, 2 pool SWGs
    mvau = next(g for g in groups if g.name == "MVAU_hls_2")
    assert set(mvau.params["resType"].tolist()) == {costmodel.encode("resType", "lut"), costmodel.encode("resType", "dsp")}
    assert check_against_finn(swgs + [mvau]) == sum(len(g) for g in swgs + [mvau])


def test_cost_model_equals_finn_pruning_aware():
    model = hw_model(2)
    pruning = (("MVAU_hls_1", 0.3), ("MVAU_hls_4", 0.5))
    groups = build_space(model, PYNQ_Z1.part, SpaceOptions(pruning=pruning))
    pruned = next(g for g in groups if g.name == "MVAU_hls_1")
    assert pruned.params["MW"].max() <= 576 and pruned.params["MW"].min() < 576  # the rule can keep all blocks
    assert check_against_finn(groups, per_group=8) > 50


def test_masked_mvau_skips_blocks_at_mask_simd_divisors_else_runs_dense():
    """MVAU_hls_1 (MW 576) masked in blocks of 8 keeping 448 columns, beside a study-rule node."""
    pruning = (("MVAU_hls_1", MaskedBlocks(mask_simd=8, kept_columns=448)), ("MVAU_hls_4", 0.5))
    groups = build_space(hw_model(2), PYNQ_Z1.part, SpaceOptions(choose_ram_style=True, pruning=pruning))
    masked = next(g for g in groups if g.name == "MVAU_hls_1")
    skipping = masked.params["SIMD"] <= 8
    assert sorted(set(masked.params["SIMD"][masked.params["MW"] == 448].tolist())) == [1, 2, 4, 8]
    assert (masked.params["MW"][~skipping] == 576).all()  # no block skipping: the dense layer
    assert set(masked.params["SIMD"].tolist()) > {1, 2, 4, 8}
    assert check_against_finn([masked], per_group=24, seed=1) == 24
    rule = next(g for g in groups if g.name == "MVAU_hls_4")
    assert len(set(rule.params["MW"].tolist())) > 1  # the study's rule still depends on the SIMD


def test_masked_mvau_admits_only_simds_finn_generates_at_its_full_mw():
    """MVAU_hls_3 (MW 1152) masked in blocks of 9 keeping 900 columns: at SIMD 1 the estimate would
    stream 900 < 1024 columns, but the JSON is applied to the masked network, whose MW 1152 FINN's
    HLS code generation checks (SIMD >= MW / 1024): SIMD 1 is no candidate, the skipping SIMD 3 is."""
    pruning = (("MVAU_hls_3", MaskedBlocks(mask_simd=9, kept_columns=900)),)
    masked = next(g for g in build_space(hw_model(2), PYNQ_Z1.part, SpaceOptions(pruning=pruning))
                  if g.name == "MVAU_hls_3")
    assert masked.nodes[0].attrs["MW"] == 1152
    assert 1 not in masked.params["SIMD"].tolist() and masked.params["SIMD"].min() == 2
    assert 3 in masked.params["SIMD"][masked.params["MW"] == 900].tolist()


def test_masked_mvau_keeping_every_column_folds_freely():
    """Nothing to skip: the candidates and costs are those of the dense node."""
    model = hw_model(2)
    dense = next(g for g in build_space(model, PYNQ_Z1.part) if g.name == "MVAU_hls_1")
    unpruned = SpaceOptions(pruning=(("MVAU_hls_1", MaskedBlocks(mask_simd=8, kept_columns=576)),))
    kept_all = next(g for g in build_space(model, PYNQ_Z1.part, unpruned) if g.name == "MVAU_hls_1")
    assert kept_all.params["SIMD"].tolist() == dense.params["SIMD"].tolist()
    assert (kept_all.costs.cycles == dense.costs.cycles).all()


@pytest.mark.parametrize("masked, match", [(MaskedBlocks(7, 448), "does not divide its MW 576"),
                                           (MaskedBlocks(8, 444), "not a positive multiple of 8"),
                                           (MaskedBlocks(8, 0), "not a positive multiple of 8")])
def test_bad_mask_facts_are_user_errors(masked, match):
    with pytest.raises(UserError, match=match):
        build_space(hw_model(2), PYNQ_Z1.part, SpaceOptions(pruning=(("MVAU_hls_1", masked),)))


def test_cli_pruning_takes_fractions_and_mask_facts():
    assert parse_pruning(["MVAU_hls_1=448@8", "MVAU_hls_4=0.5"]) == (
        ("MVAU_hls_1", MaskedBlocks(8, 448)), ("MVAU_hls_4", 0.5))
    for bad in ("MVAU_hls_1", "MVAU_hls_1=448@x"):
        with pytest.raises(UserError, match="NODE=FRACTION or NODE=KEPT@SIMD"):
            parse_pruning([bad])


def test_default_space_keeps_finn_build_implementation():
    """Without the options a folding sets only PE/SIMD: nodes keep the build's ram_style/resType."""
    groups = build_space(hw_model(2), PYNQ_Z1.part)
    entries = baselines.all_ones(groups).config().values()
    assert all(set(attrs) <= {"PE", "SIMD"} for attrs in entries)
    chosen = baselines.all_ones(build_space(hw_model(2), PYNQ_Z1.part, ALL_CHOICES)).config()
    assert all("resType" in attrs and "ram_style" in attrs
               for name, attrs in chosen.items() if name.startswith("MVAU_hls"))
    assert all("ram_style" in attrs for name, attrs in chosen.items() if name.startswith("ConvolutionInputGenerator"))


def test_binary_weights_never_go_to_dsps():
    """FINN's estimate would count DSPs for XNOR/sign-flip MVAUs with resType "dsp", so it is no
    decision; at "auto" only the 8-bit input layer's sign flips infer DSPs (public build A1, CNV
    W1A1: MVAU_hls_0 at SIMD 27 used 27 DSP post-route), the XNOR layers none in the analytic model
    (the decision model, the per-node fit, charges every MVAU_hls its public builds' mean DSP count:
    FINN estimates 0 DSP for all of them, so the fit has only an intercept)."""
    groups = build_space(hw_model(1), PYNQ_Z1.part, ALL_CHOICES)
    binary = [g for g in groups if g.name.startswith("MVAU_hls") and g.nodes[0].attrs["W"] == 1]
    assert len(binary) >= 6 and all("resType" not in g.node_attrs[g.name] for g in binary)
    assert all((g.finn_costs.DSP == 0).all() for g in binary)
    for g in binary:
        if g.nodes[0].attrs["A"] == 1:
            spec, candidates = g.nodes[0], g.params
            analytic = costmodel.mvau_costs(spec, candidates["PE"], candidates["SIMD"], candidates["ram_style"],
                                     candidates["MW"], candidates["resType"], decision=True)
            assert (analytic.DSP == 0).all(), g.name


def test_candidates_are_legal():
    groups = build_space(hw_model(2), PYNQ_Z1.part)
    mvau = next(g for g in groups if g.name == "MVAU_hls_5")
    assert (2304 % mvau.params["SIMD"] == 0).all() and (256 % mvau.params["PE"] == 0).all()
    assert mvau.params["SIMD"].max() * 2 <= 36
    tied = next(g for g in groups if len(g.nodes) == 2)  # depthwise SWG + Pool share one value
    names = list(tied.node_attrs)
    assert tied.assignment(len(tied) - 1)[names[0]]["SIMD"] == tied.assignment(len(tied) - 1)[names[1]]["PE"]


def _reduced(groups, k: int, per_group: int) -> list[Group]:
    """The first ``k`` foldable groups, each cut to ``per_group`` candidates."""
    out = []
    for g in [g for g in groups if len(g) > 1][:k]:
        idx = np.linspace(0, len(g) - 1, min(per_group, len(g))).astype(int)
        out.append(Group(g.name, g.nodes, {p: v[idx] for p, v in g.params.items()}, g.costs.take(idx), g.node_attrs,
                         g.finn_costs.take(idx)))
    return out


@pytest.mark.parametrize("lut_fraction", [0.35, 0.5, 0.8])
def test_optimiser_matches_brute_force(lut_fraction):
    groups = _reduced(build_space(hw_model(2), PYNQ_Z1.part, ALL_CHOICES), 5, 7)
    assert any((g.costs.LUT != g.finn_costs.LUT).any() for g in groups)  # the decision terms are in play
    lut_all = sum(int(g.costs.LUT.max()) for g in groups)
    budget = Budget(int(lut_all * lut_fraction), 60, 0, 10)
    best = None
    for choice in itertools.product(*(range(len(g)) for g in groups)):
        f = Folding("brute", groups, list(choice))
        if f.fits(budget):
            key = (f.max_cycles, f.total("LUT"), f.total("BRAM_18K"))
            best = key if best is None or key < best else best
    assert best is not None
    exact = optimise(groups, budget)
    assert (exact.max_cycles, exact.total("LUT"), exact.total("BRAM_18K")) == best


@pytest.mark.slow
def test_exact_beats_setfolding_and_the_greedy_search_pynq_z1_full_lut():
    """Compute nodes at 100% LUT: the exact folding is the compute-only MILP's optimum and no slower
    than FINN's SetFolding (at its fastest fitting target) or the study's greedy search; with the
    weight-RAM choice never slower. (The whole design's optimum is checked against an independent
    MILP in tests/test_folding_milp_oracle.py.)"""
    budget = board_budget(PYNQ_Z1, 1.0)
    for bits in (1, 2):
        model = hw_model(bits)
        groups = raw_space(model, PYNQ_Z1.part)
        exact = optimise(groups, budget)
        assert exact.max_cycles == _minmax_milp(groups, budget)
        uncapped = raw_space(model, PYNQ_Z1.part, SpaceOptions(mvau_wwidth_max=10**6))
        sf = baselines.setfolding_at_budget(model, uncapped, budget, optimise(uncapped, budget).max_cycles)
        assert sf.fits(budget) and exact.max_cycles <= sf.max_cycles
        assert exact.max_cycles <= baselines.study_greedy(groups, budget).max_cycles
        ram = optimise(raw_space(model, PYNQ_Z1.part, SpaceOptions(choose_ram_style=True)), budget)
        assert ram.max_cycles <= exact.max_cycles


def _minmax_milp(groups, budget: Budget) -> int:
    """The smallest bottleneck over every candidate as one MILP (min T, T >= each group's cycles),
    independent of the optimiser's bisection, Pareto filter and shortcut bounds."""
    import mip

    model = mip.Model(sense=mip.MINIMIZE, solver_name=mip.CBC)
    model.verbose = 0
    model.max_mip_gap, model.max_mip_gap_abs = 0.0, 0.5
    bottleneck = model.add_var(lb=0)
    x = [[model.add_var(var_type=mip.BINARY) for _ in range(len(g))] for g in groups]
    for g, xs in zip(groups, x):
        model += mip.xsum(xs) == 1
        model += bottleneck >= mip.xsum(int(c) * v for c, v in zip(g.costs.cycles, xs))
    for r in costmodel.RESOURCES:
        model += mip.xsum(int(c) * v for g, xs in zip(groups, x) for c, v in zip(g.costs.resource(r), xs)) <= getattr(budget, r)
    model.objective = bottleneck
    assert model.optimize() == mip.OptimizationStatus.OPTIMAL
    return round(model.objective_value)


@pytest.mark.slow
def test_target_4w4a_lutram_pynq_z1_full_lut():
    """4w4a at 100% LUT: with MVAU weights in BRAM no folding fits (nor does any SetFolding result);
    letting the optimiser put weights in distributed RAM, its folding is the whole-network MILP's
    optimum and FINN re-estimates it identically."""
    model = hw_model(4)
    budget = board_budget(PYNQ_Z1, 1.0)
    for options in (SpaceOptions(), SpaceOptions(mvau_wwidth_max=10**6)):  # exact, and SetFolding's space
        with pytest.raises(UserError, match="needs .* BRAM18"):
            optimise(raw_space(model, PYNQ_Z1.part, options), budget)
    groups = raw_space(model, PYNQ_Z1.part, SpaceOptions(choose_ram_style=True))
    folding = optimise(groups, budget)
    assert folding.max_cycles == _minmax_milp(groups, budget)
    assert folding.fits(budget)
    estimate = outputs.finn_reestimate(model, folding, PYNQ_Z1.part, PYNQ_Z1.clock_ns)
    assert outputs.disagreements(folding, estimate) == []


@pytest.mark.slow
def test_target_4w4a_all_finn_choices_pynq_z1_full_lut():
    """4w4a at 100% LUT with every FINN implementation choice: MVAU_hls multipliers in DSPs and SWG
    line buffers in BRAM free LUTs for folding, so it is no slower than the weight-RAM choice alone;
    a whole-network MILP confirms the optimum, FINN agrees."""
    model = hw_model(4)
    budget = board_budget(PYNQ_Z1, 1.0)
    groups = raw_space(model, PYNQ_Z1.part, ALL_CHOICES)
    folding = optimise(groups, budget)
    ram_only = optimise(raw_space(model, PYNQ_Z1.part, SpaceOptions(choose_ram_style=True)), budget)
    assert folding.max_cycles <= ram_only.max_cycles
    assert folding.max_cycles == _minmax_milp(groups, budget)
    assert folding.fits(budget)
    config = folding.config()
    assert any(attrs.get("resType") == "dsp" for attrs in config.values())
    assert any(attrs.get("ram_style") == "block" for name, attrs in config.items() if name.startswith("Convolution"))
    estimate = outputs.finn_reestimate(model, folding, PYNQ_Z1.part, PYNQ_Z1.clock_ns)
    assert outputs.disagreements(folding, estimate) == []


def test_finn_reestimates_forced_implementation_choices():
    """A folding with every MVAU_hls on DSPs and every SWG (depthwise too) on BRAM, through
    ApplyConfig + FINN's estimates: the same per-layer and total figures as ours."""
    model = hw_model(2)
    groups = build_space(model, PYNQ_Z1.part, ALL_CHOICES)
    wanted = {}
    for group in groups:
        for node, attrs in group.node_attrs.items():
            wanted[node] = {"PE": 2, "SIMD": int(group.params["SIMD"].min())} if node.startswith("MVAU") else {}
            if "resType" in attrs:
                wanted[node]["resType"] = "dsp"
            if node.startswith("ConvolutionInputGenerator"):
                wanted[node]["ram_style"] = "block"
    folding = baselines.from_config(groups, wanted, "forced")
    config = folding.config()
    assert sum(attrs.get("resType") == "dsp" for attrs in config.values()) == 9
    assert sum(attrs.get("ram_style") == "block" for name, attrs in config.items() if name.startswith("Conv")) == 8
    assert folding.total("DSP") > 0
    estimate = outputs.finn_reestimate(model, folding, PYNQ_Z1.part, PYNQ_Z1.clock_ns)
    assert outputs.disagreements(folding, estimate) == []


def test_fold_cli_all_finn_choices(tmp_path):
    from pynqrepro.cli import main

    model_path = tmp_path / "hw.onnx"
    hw_model(2).save(str(model_path))
    for flags, decided in (([], False), (["--all-finn-choices"], True)):
        out = tmp_path / f"folding{len(flags)}.json"
        assert main(["fold", "--model", str(model_path), "--lut-ratio", "0.85", "--out", str(out), *flags]) == 0
        config = json.loads(out.read_text())
        assert all(("resType" in attrs) == decided for name, attrs in config.items() if name.startswith("MVAU_hls"))
        assert all(("ram_style" in attrs) == decided for name, attrs in config.items() if name.startswith("Conv"))


def test_fold_cli_budgets_the_whole_design(tmp_path, capsys):
    """``fold`` searches the whole design by default and lists every node of its JSON, FINN's
    DWCs/FIFOs and the shell; --compute-only, --no-width-converters and --fifo-config change what
    it budgets; contradictory options are one line."""
    from pynqrepro.cli import main

    model_path = tmp_path / "hw.onnx"
    hw_model(2).save(str(model_path))

    def fold(*flags) -> tuple[dict, str]:  # the study's ratio: the CNV's BRAM weights exceed the calibrated budget
        out = tmp_path / "folding.json"
        assert main(["fold", "--model", str(model_path), "--lut-ratio", "0.85", "--out", str(out), *flags]) == 0
        return json.loads(out.read_text()), capsys.readouterr().out

    config, table = fold()
    assert all(name in table for name in config if name != "Defaults")
    assert "StreamingFIFO_rtl (input fifo)" in table and "StreamingDataWidthConverter_rtl" in table
    assert "shell (IODMAs, interconnect)" in table and "total (whole design)" in table and "fits the budget" in table
    fps = float(table.split("est. ")[1].split(" fps")[0].replace(",", ""))
    _, table = fold("--compute-only")
    assert "compute nodes only" in table and float(table.split("est. ")[1].split(" fps")[0].replace(",", "")) >= fps
    _, table = fold("--no-width-converters")
    assert "StreamingDataWidthConverter" not in table and "+ 0 DWCs" in table
    depths = tmp_path / "final_hw_config.json"
    depths.write_text(json.dumps({"Thresholding_rtl_0": {"inFIFODepths": [64]}}))
    config, table = fold("--fifo-config", str(depths))
    assert config["Thresholding_rtl_0"]["inFIFODepths"] == [64] and "FIFO depths user FIFO config" in table
    assert re.search(r"input -> Thresholding_rtl_0, (\d+) -> \1 bits, depth 64", table)  # width: the folding's
    assert main(["fold", "--model", str(model_path), "--compute-only", "--no-width-converters"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_finn_reestimates_our_json(tmp_path):
    model = hw_model(2)
    budget = board_budget(PYNQ_Z1, 0.85)
    folding = optimise(build_space(model, PYNQ_Z1.part, ALL_CHOICES), budget)
    path = outputs.write_config(folding, tmp_path / "folding.json")
    assert path.exists()
    estimate = outputs.finn_reestimate(model, folding, PYNQ_Z1.part, 10.0)
    assert outputs.disagreements(folding, estimate) == []
    rows = outputs.get_res(folding, budget)
    *nodes, total = rows
    assert sum(r.get("LUT", 0) for r in nodes) == total["LUT"] == folding.total("LUT") <= budget.LUT
    assert [r["node"] for r in nodes] == [name for name in folding.config() if name != "Defaults"]
    png = outputs.plot_cycles_remainder(folding, budget, tmp_path / "plot.png")
    assert png.stat().st_size > 1000


def test_infeasible_budget_names_smallest_fit():
    groups = build_space(hw_model(2), PYNQ_Z1.part)
    with pytest.raises(UserError, match=r"smallest fitting budget is [\d,]+ LUT \(ratio"):
        optimise(groups, Budget(5000, 280, 0, 220, 5000 / PYNQ_Z1.luts))


@pytest.mark.parametrize("ratio", [0.0, 1.2, -0.5])
def test_bad_ratio_is_user_error(ratio):
    with pytest.raises(UserError, match="outside"):
        board_budget(PYNQ_Z1, ratio)


def test_pruning_on_unknown_node_is_user_error():
    with pytest.raises(UserError, match="not MVAU nodes"):
        build_space(hw_model(2), PYNQ_Z1.part, SpaceOptions(pruning=(("Pool_hls_0", 0.3),)))


def test_smallest_lut_budget_is_the_fit_threshold():
    groups = build_space(hw_model(2), PYNQ_Z1.part)
    luts = smallest_lut_budget(groups, board_budget(PYNQ_Z1))
    assert optimise(groups, Budget(luts, PYNQ_Z1.bram18, 0, PYNQ_Z1.dsp)).total("LUT") <= luts
    with pytest.raises(UserError, match=f"smallest fitting budget is {luts:,} LUT"):
        optimise(groups, Budget(luts - 1, PYNQ_Z1.bram18, 0, PYNQ_Z1.dsp))
