"""Calibration anchors say what their sources say; our estimates of their foldings and the ratios
are computed right; ``fold`` budgets with the calibrated bound by default, ``--margin`` as asked."""

import json
import statistics

import pytest

from pynqrepro.cli import main
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.options import CALIBRATED, parse_margin
from pynqrepro.finnflow.estimate import estimate
from pynqrepro.finnflow.foldconfig import apply_folding
from pynqrepro.finnflow.foldconfig import model_folding
from pynqrepro.folding import budget_calibration
from pynqrepro.references import BOARD_MEASUREMENTS, DATA, SYNTHESIS_ANCHORS, study_run_files

PYNQ_Z1 = get_board("pynq-z1")
# The anchors' designs, as named in pynqrepro/references/data/published-syntheses.md (the published
# figures, each row with its upstream file: BNN-PYNQ's network READMEs, FINN pull request #209)
PUBLISHED_ROWS = {
    "CNV W1A1, BNN-PYNQ folding": "CNV W1A1, BNN-PYNQ folding (= FINN shipped)",
    "CNV W1A2, BNN-PYNQ folding": "CNV W1A2, BNN-PYNQ folding",
    "CNV W2A2, BNN-PYNQ folding": "CNV W2A2, BNN-PYNQ folding (= FINN shipped)",
    "CNV W1A1, FINN end-to-end folding, before PR #209": "CNV W1A1, FINN end2end folding, ZynqBuild, before FINN PR #209",
    "CNV W1A1, FINN end-to-end folding, after PR #209 (decoupled weight memories)":
        "CNV W1A1, same, after PR #209 (decoupled weight memories)",
}


def published_figures() -> dict:
    """design -> (LUT, FF, BRAM18, DSP) read from the repository's copy of the published table."""
    import re

    rows = {}
    for line in (DATA / "published-syntheses.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0] not in ("design", "---"):
            lut, ff, dsp = (int(re.match(r"[\d,]+", cells[i]).group().replace(",", "")) for i in (2, 3, 5))
            ramb36, ramb18 = (int(n) for n in re.search(r"(\d+) (?:RAMB|BRAM)36 \+ (\d+) (?:RAMB|BRAM)18", cells[4]).groups())
            rows[cells[0]] = (lut, ff, 2 * ramb36 + ramb18, dsp)
    return {design: rows[row] for design, row in PUBLISHED_ROWS.items()}


PUBLISHED = published_figures()


def test_anchors_equal_their_sources():
    by_design = {a.design: a for a in SYNTHESIS_ANCHORS}
    for design, figures in PUBLISHED.items():
        anchor = by_design[design]
        assert (anchor.lut, anchor.ff, anchor.bram18, anchor.dsp) == figures, design
    study = [a for a in SYNTHESIS_ANCHORS if a.folding_file.startswith("study-foldings/")]
    assert len(study) == 4 and len(SYNTHESIS_ANCHORS) == len(PUBLISHED) + 4
    for anchor in study:  # the study's own synthesis report
        ooc = study_run_files(anchor.folding_file.split("/")[1].removesuffix(".json"))["ooc_synth_and_timing"]
        figures = (ooc["LUT"], ooc["FF"], 2 * ooc["BRAM"], ooc["DSP"])
        assert (anchor.lut, anchor.ff, anchor.bram18, anchor.dsp) == figures
        assert not anchor.shell
    source = (DATA / "SOURCE.md").read_text()
    for anchor in SYNTHESIS_ANCHORS:  # every folding file is there and names its source
        assert (DATA / anchor.folding_file).is_file() and anchor.folding_file.split("/")[0] + "/" in source


def test_board_measurements_estimate_clock_over_max_cycles():
    """NUMBERS.md (corrected): 32,768 cycles -> 9,155 fps, 115,200 -> 2,604 fps at 300 MHz."""
    figures = {(m.network, m.measured_fps, m.estimated_fps, m.max_cycles) for m in BOARD_MEASUREMENTS}
    assert figures == {("CNV W1A1", 9150, 9155, 32768), ("CNV W2A2", 2580, 2604, 115200)}
    for m in BOARD_MEASUREMENTS:
        assert m.estimated_fps == round(m.clock_mhz * 1e6 / m.max_cycles)
        assert (DATA / m.folding_file).is_file()


@pytest.fixture(scope="module")
def estimates(store):
    return budget_calibration.estimate_anchors(store)


def test_estimates_are_finns_and_ratios_published_over_estimate(estimates, store):
    for e in estimates:
        shell = e.folding.insertions.shell
        for resource in budget_calibration.RESOURCES:
            inserted = sum(node[resource] for node in e.folding.inserted())  # DWCs and FIFOs
            whole = e.compute(resource) + inserted + (shell.resource(resource) if e.anchor.shell else 0)
            assert e.whole(resource) == whole, (e.anchor.design, resource)
            published = getattr(e.anchor, budget_calibration.RESOURCES[resource])
            assert e.ratio(resource) == (published / whole if whole else None)
            compute = e.compute(resource)
            assert e.ratio(resource, whole=False) == (published / compute if compute else None)
        assert shell.LUT > 0 and e.whole("LUT") > e.compute("LUT")
    first = estimates[0]  # compute-only is FINN's own estimate of the folded model
    hw_model = budget_calibration.anchor_hw_model(store, first.anchor)
    finn = estimate(apply_folding(hw_model, model_folding(hw_model, first.anchor.folding())), PYNQ_Z1.part)
    assert (first.compute("LUT"), first.compute("BRAM_18K"), first.compute("DSP")) == \
        (round(finn.totals["lut"]), round(finn.totals["bram18"]), round(finn.totals["dsp"]))


def test_study_foldings_give_the_studys_cycles_per_layer(estimates):
    for e in estimates:
        if not e.anchor.folding_file.startswith("study-foldings/"):
            continue
        study_cycles = study_run_files(e.anchor.folding_file.split("/")[1].removesuffix(".json"))["estimate_layer_cycles"]
        mvaus = [int(g.costs.cycles[i]) for g, i in zip(e.folding.groups, e.folding.choice)
                 if g.nodes[0].name.startswith("MVAU")]
        assert mvaus == [study_cycles[f"StreamingFCLayer_Batch_{k}"] for k in range(len(mvaus))], e.anchor.design


def test_fps_of_measured_foldings(estimates):
    measured = [e for e in estimates if e.measurement is not None]
    assert {e.anchor.design for e in measured} == {"CNV W1A1, BNN-PYNQ folding", "CNV W2A2, BNN-PYNQ folding"}
    for e in measured:
        assert e.estimated_fps() == pytest.approx(e.measurement.estimated_fps, abs=0.5)
        assert e.fps_ratio() == e.measurement.measured_fps / e.estimated_fps()


def test_margin_values():
    assert parse_margin(CALIBRATED) == CALIBRATED and parse_margin("0.7") == 0.7 and parse_margin("1") == 1.0
    for bad in ("0", "1.5", "-0.2", "calib", "nan"):
        with pytest.raises(UserError, match="--margin") as error:
            parse_margin(bad)
        assert "\n" not in str(error.value)


def test_the_stated_bound_is_within_the_device_exactly_when_the_budget_admits_the_design():
    """The bound the reports print beside a design (folding.md, pruning.md, synthesis.md) agrees
    with the budget the optimiser held it to (``board_budget``: device x fraction, rounded down), for
    every integer total around each resource's budget edge."""
    margins = budget_calibration.calibrated_margins()
    budget = budget_calibration.calibrated_budget(PYNQ_Z1)
    for resource, device, edge in (("LUT", PYNQ_Z1.luts, budget.LUT), ("BRAM_18K", PYNQ_Z1.bram18, budget.BRAM_18K)):
        assert margins.bound[resource] is not None
        for total in range(edge - 50, edge + 50):
            bound = budget_calibration.bounded(total, resource, margins)
            assert bound >= total * (1 + margins.bound[resource]) - 1e-6
            assert (bound <= device) == (total <= edge), (resource, total, bound, edge)


def test_fold_budgets_the_whole_design_calibrated_by_default(store, tmp_path, capsys):
    """Without a budget option ``fold`` budgets with the model's stated bound (the store's refit once
    ``pynqrepro calibrate`` made one), as ``--margin calibrated`` does; ``--margin F`` shrinks every
    resource; the folding it writes stays within the budget it prints."""
    from hw_models import mlp

    from pynqrepro.folding.baselines import from_config
    from pynqrepro.folding.space import SpaceOptions
    from pynqrepro.folding.wholedesign import build_design

    hw_model = mlp(store, "tfc_2w2a")  # small enough for the calibrated budget (the 2-bit CNV's LUTs are not)
    model = tmp_path / "hw.onnx"
    hw_model.save(str(model))
    out = tmp_path / "folding.json"
    common = ["fold", "--model", str(model), "--store-dir", str(store.root), "--ram-style-choice", "--out", str(out)]
    design = build_design(hw_model, PYNQ_Z1, SpaceOptions(choose_ram_style=True))
    shipped = json.loads((DATA / "node_model.json").read_text())["bound"]  # the file, not the code's reading
    calibrated = budget_calibration.calibrated_margins(None)
    assert calibrated.LUT == pytest.approx(1 / (1 + shipped["LUT"])) and calibrated.bound == shipped
    for options, margins in (([], calibrated), (["--margin", CALIBRATED], calibrated),
                             (["--margin", "0.6"], budget_calibration.Margins(0.6, 0.6, 0.6, "--margin 0.6"))):
        assert main([*common, *options]) == 0
        assert f"budget margins: {margins.describe()}" in capsys.readouterr().out
        folding = from_config(design, json.loads(out.read_text()), str(options))
        for resource, device in (("LUT", PYNQ_Z1.luts), ("BRAM_18K", PYNQ_Z1.bram18), ("DSP", PYNQ_Z1.dsp)):
            assert folding.total(resource) <= int(device * getattr(margins, resource)), (options, resource)
    for bad, message in ((["--margin", "2"], "fraction in (0, 1]"),
                         (["--margin", "0.8", "--lut-ratio", "0.5"], "drop --lut-ratio")):
        assert main([*common, *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_the_optimisers_totals_are_the_fit_node_by_node(estimates):
    """The decision model as the optimiser totals it (vectorised per candidate, each node rounded up)
    equals the shipped fit applied node by node to FINN's own res_estimation rows of the built
    design (``fitted_design``), up to that rounding."""
    for e in estimates:
        nodes = sum(len(g.nodes) for g in e.folding.groups) + len(e.folding.inserted())
        for resource in budget_calibration.RESOURCES:
            assert e.fitted[resource] <= e.ours(resource) <= e.fitted[resource] + nodes, (e.anchor.design, resource)


def _real(anchor) -> dict:
    """The anchor's real figures from the test's own transcription of the sources (NUMBERS.md), or
    the study's OOC report file."""
    if anchor.design in PUBLISHED:
        lut, _, bram18, dsp = PUBLISHED[anchor.design]
        return {"LUT": lut, "BRAM_18K": bram18, "DSP": dsp}
    ooc = json.loads((DATA / "thesis-folding-results" / anchor.source.removeprefix("study, ")).read_text())
    return {"LUT": ooc["LUT"], "BRAM_18K": 2 * ooc["BRAM"], "DSP": ooc["DSP"]}


def test_bound_covers_each_cnv_anchor_that_fitted_its_device(estimates):
    """ours x (1 + bound) >= real for every CNV anchor whose design fitted its own device (real figures:
    the sources); the bound is the largest such under-estimate (one anchor sets it); the study's 4-bit
    run (464 BRAM18 on a 280-BRAM18 part) sets none."""
    bound = budget_calibration.current_node_model(None).bound
    tight = {r: 0.0 for r in budget_calibration.RESOURCES}
    for e in estimates:
        real = _real(e.anchor)
        fits = all(real[r] <= PYNQ_Z1.limits()[r] for r in budget_calibration.RESOURCES)
        assert e.fits_device() == fits == (e.anchor.weight_bits != 4), e.anchor.design
        for r in budget_calibration.RESOURCES:
            if fits and real[r] and e.fitted[r]:
                assert real[r] <= e.fitted[r] * (1 + bound[r]) + 1e-6, (e.anchor.design, r)
                tight[r] = max(tight[r], real[r] / e.fitted[r] - 1)
    assert all(tight[r] == pytest.approx(bound[r], abs=1e-4) for r in budget_calibration.RESOURCES)


def test_decision_luts_meet_issue_16s_goal_on_the_cnv_anchors(estimates):
    """Held out on every CNV anchor (none trains the fit; real figures: the sources), the decision
    model's whole-design LUT error is at most 30 % and its median at most 15 % (issue 16's goal; the fit
    without the threshold levels it cannot see missed it: -45 % on the study's W4A4, -37 % on its W2A2),
    where FINN's raw estimate is further off."""
    ours, finn = [], []
    for e in estimates:
        real = _real(e.anchor)["LUT"]
        ours.append(abs(e.fitted["LUT"] / real - 1))
        finn.append(abs(e.whole("LUT") / real - 1))
    assert len(ours) == 9
    assert max(ours) <= 0.30 and statistics.median(ours) <= 0.15, sorted(round(x, 2) for x in ours)
    assert max(ours) < max(finn) and statistics.median(ours) < statistics.median(finn)


def _bnn_pynq_w2a2(estimates):
    e = next(e for e in estimates if e.anchor.design == "CNV W2A2, BNN-PYNQ folding")
    real = _real(e.anchor)
    assert real == {"LUT": 37_302, "BRAM_18K": 280, "DSP": 32}  # fitted the Pynq-Z1 (BNN-PYNQ's README)
    return e, budget_calibration.calibrated_budget(PYNQ_Z1)


def test_calibrated_budget_admits_bnn_pynq_w2a2_luts_and_dsps(estimates):
    """BNN-PYNQ's real W2A2 CNV fitted the Pynq-Z1: its LUTs and DSPs are within the calibrated budget."""
    e, budget = _bnn_pynq_w2a2(estimates)
    assert e.folding.total("LUT") <= budget.LUT and e.folding.total("DSP") <= budget.DSP


@pytest.mark.xfail(strict=True, reason="the decision model and its honest bound declare BNN-PYNQ's W2A2 CNV infeasible "
                                       "on BRAM18: it used all 280 of the Pynq-Z1's, ours is 307 (+10 %: the fit's "
                                       "per-FIFO and per-pool BRAM means), and the bound (+20.3 %, FINN's cnv-w1a1 "
                                       "before PR #209) leaves 232")
def test_calibrated_budget_admits_bnn_pynq_w2a2_bram18(estimates):
    e, budget = _bnn_pynq_w2a2(estimates)
    assert e.folding.total("BRAM_18K") <= budget.BRAM_18K
