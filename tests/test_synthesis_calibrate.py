"""From a finished FINN build's output folder to calibration entries, the empirical per-node model
and its bound, on the real report files of public builds laid out as FINN writes them. Oracles: the
figures of the upstream files as public-builds/README.md states them, and FINN's estimate totals."""

import json
import shutil

import pytest

from pynqrepro.cli import main
from pynqrepro.core.errors import UserError
from pynqrepro.folding.budget_calibration import calibrated_margins
from pynqrepro.folding.decision import NODE_MODEL_FILE, load_node_model
from pynqrepro.references.public_builds import PUBLIC_BUILDS, PUBLIC_BUILDS_DIR, lay_out
from pynqrepro.synthesis import calibrate
from pynqrepro.synthesis.vivado_reports import read_finn_build

# public-builds/README.md, "Whole-design LUT / FF / BRAM / DSP (read from the files)": LUT, BRAM in
# 18 Kb blocks (RAMB36 x 2 + RAMB18; OOC tiles x 2), DSP; and FINN's estimate totals (LUT, BRAM18)
README = {
    "A1": ("in the shell", 19486, 96 * 2 + 7, 27, (12991, 137)),
    "B1": ("out of context", 7073, 18 * 2, 0, (11360, 36)),
    "B2": ("out of context", 8667, 22 * 2, 0, (10959, 45)),
    "D": ("in the shell", 36222, 100 * 2 + 24, 34, (10273, 178)),
    "E1": ("in the shell", 23776, 45 * 2 + 38, 86, (4513, 60)),
    "E2": ("in the shell", 33630, 177 * 2 + 61, 138, (60835, 118)),
    "F": ("out of context", 11016, 28 * 2, 0, (5067, 40)),
}
# NUMBERS.md, "Study: folding runs": OOC LUT, BRAM36 x 2, DSP; FINN v0.5b's estimate (LUT, BRAM18)
STUDY = {
    "study 1-bit FINN default": ("out of context", 20_212, 101 * 2, 0, (25_849, 146)),
    "study 1-bit search 100%": ("out of context", 29_167, 113 * 2, 0, (50_279, 195)),
    "study 2-bit search 85%": ("out of context", 42_237, 136 * 2, 0, (44_846, 273)),
    "study 4-bit search 85%": ("out of context", 46_008, 232 * 2, 0, (47_651, 382)),
}


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("finn-outputs")
    return {b.id: lay_out(b, root) for b in PUBLIC_BUILDS}


@pytest.mark.parametrize("build_id", sorted(README))
def test_reader_gives_the_upstream_figures(laid_out, build_id):
    scope, lut, bram18, dsp, (est_lut, est_bram18) = README[build_id]
    build = read_finn_build(laid_out[build_id])
    assert build.scope == f"post-route, {scope}"
    assert (build.totals["LUT"], build.totals["BRAM_18K"], build.totals["DSP"]) == (lut, bram18, dsp)
    assert (round(sum(r["LUT"] for r in build.estimate.values())),
            round(sum(r["BRAM_18K"] for r in build.estimate.values()))) == (est_lut, est_bram18)
    assert build.folding_file is not None and build.fifo_depths()
    if build.in_shell:  # per-node rows and the shell's IODMAs stay within the whole design
        per_node = sum(r["LUT"] for r in build.nodes.values()) + sum(r["LUT"] for r in build.shell_nodes.values())
        assert 0 < per_node < lut and any(n.startswith("MVAU") for n in build.nodes)
        assert list(build.shell_nodes) == ["IODMA_hls_0", "IODMA_hls_0"] or len(build.shell_nodes) == 1


def test_reader_fifo_depths_and_legacy_names(laid_out):
    a1 = read_finn_build(laid_out["A1"])
    hw_config = json.loads((PUBLIC_BUILDS_DIR / "A1" / "final_hw_config.json").read_text())
    assert a1.fifo_depths()["StreamingFIFO_rtl_0"] == hw_config["StreamingFIFO_rtl_0"]["depth"] == 3072
    assert a1.tool.startswith("Vivado")
    b1 = read_finn_build(laid_out["B1"])  # FINN v0.5b names: StreamingFCLayer_Batch = today's MVAU_hls
    assert {calibrate.op_type_of(n) for n in b1.estimate} == {"MVAU_hls"}
    assert b1.tool == "Vivado (version not in the files)" or b1.tool.startswith("Vivado 20")


def _files(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["no reports", "corrupt json", "foreign json", "no top row", "bad estimate"])
def test_malformed_build_is_one_line_and_leaves_the_set_unchanged(laid_out, tmp_path, capsys, damage):
    store = tmp_path / "store"
    assert main(["calibrate", str(laid_out["D"]), "--store-dir", str(store), "--board", "pynq-z2"]) == 0
    capsys.readouterr()
    before = _files(store / "calibration")
    bad = tmp_path / "bad"
    shutil.copytree(laid_out["A1"], bad)
    report = bad / "report" / "post_synth_resources.json"
    if damage == "no reports":
        shutil.rmtree(bad / "report")
    elif damage == "corrupt json":
        report.write_text(report.read_text()[:200])
    elif damage == "foreign json":
        report.write_text(json.dumps({"(top)": {"slices": 3}}))
    elif damage == "no top row":
        report.write_text(json.dumps({"MVAU_hls_0": {"LUT": 1}}))
    else:
        (bad / "report" / "estimate_layer_resources.json").write_text(json.dumps({"MVAU_hls_0": 12}))
    assert main(["calibrate", str(bad), "--store-dir", str(store), "--board", "pynq-z2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pynqrepro: error:" in err
    assert _files(store / "calibration") == before


def test_calibrate_adds_first_party_builds_and_refits(laid_out, tmp_path, capsys):
    """The intake (issue 20): each public build's folder becomes a calibration entry with its figures,
    and the held-out rows carry its real resources from the upstream files."""
    store = tmp_path / "store"
    dirs = [str(laid_out[i]) for i in ("A1", "E1")]
    assert main(["calibrate", *dirs, "--store-dir", str(store), "--board", "pynq-z2"]) == 0
    out = capsys.readouterr().out
    assert out.count("calibration entry") == 2 and "upper bound" in out
    anchors = calibrate.store_anchors(store)
    assert len(anchors) == 2 and all(a.first_party for a in anchors)
    assert {(a.build.totals["LUT"], a.build.totals["BRAM_18K"]) for a in anchors} == \
        {README[i][1:3] for i in ("A1", "E1")}
    assert main(["calibrate", dirs[0], "--store-dir", str(store), "--board", "pynq-z2"]) == 0  # once only
    assert len(calibrate.store_anchors(store)) == 2
    refit = load_node_model(calibrate.store_model_path(store))
    assert "first-party" in refit.source and set(refit.bound) == {"LUT", "BRAM_18K", "DSP"}
    # the refit states its own bound on the CNV anchors, and fold's calibrated budget follows it
    assert "CNV anchors" in refit.bound_source and calibrated_margins(store).bound == refit.bound
    with __import__("tempfile").TemporaryDirectory() as tmp:
        _, held_out, _ = calibrate.calibrated_model(store, __import__("pathlib").Path(tmp))
    rows = calibrate.held_out_rows(held_out)
    firsts = [r for r in rows if r["build"].endswith("(first-party)")]
    assert {(r["LUT real"], r["BRAM18 real"], r["DSP real"]) for r in firsts} == \
        {README[i][1:4] for i in ("A1", "E1")}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    return calibrate.leave_one_build_out(calibrate.public_anchors(tmp_path_factory.mktemp("lobo")))


def test_held_out_real_and_finn_figures_are_the_upstream_ones(held_out):
    assert {h.anchor.id for h in held_out} == set(README) | set(STUDY)
    for h in held_out:
        scope, lut, bram18, dsp, (est_lut, _) = {**README, **STUDY}[h.anchor.id]
        assert (h.real["LUT"], h.real["BRAM_18K"], h.real["DSP"]) == (lut, bram18, dsp)
        shell = h.anchor.shell["LUT"] if scope == "in the shell" else 0
        if h.anchor.id != "A1":  # A1's estimate-only build has two more nodes than the built one
            assert h.finn["LUT"] == pytest.approx(est_lut + shell)
        # an anchor whose design did not fit its own device sets no budget: the study's 4-bit run
        assert h.anchor.fits_device() == (h.anchor.id != "study 4-bit search 85%")


def test_ours_beats_finns_raw_lut_estimate_held_out(held_out):
    """The fitted model, each build held out, is closer to the real LUTs than FINN's raw estimate."""
    ours = calibrate.summary(held_out, "LUT")
    finn = calibrate.summary(held_out, "LUT", "finn")
    assert ours["median |error|"] < finn["median |error|"] and ours["worst |error|"] < finn["worst |error|"]


def test_shipped_node_model_is_the_regenerated_one(store, tmp_path):
    """node_model.json is what the library call writes (the fit, and its bound from the CNV anchors),
    never a hand edit; the optimiser reads this form."""
    regenerated, _, _ = calibrate.regenerate_shipped_model(store, tmp_path / "node_model.json")
    assert json.loads((tmp_path / "node_model.json").read_text()) == json.loads(NODE_MODEL_FILE.read_text())
    data = regenerated.to_json()
    assert set(data) == {"source", "op_types", "bound", "bound_source"}
    assert set(data["bound"]) == {"LUT", "BRAM_18K", "DSP"}
    for fits in data["op_types"].values():
        assert set(fits) == {"LUT", "BRAM_18K", "DSP"}
        assert all(set(c) == {"intercept", "estimate", "memory_bits"} for c in fits.values())


def test_vivado_stage_adds_each_build_to_the_calibration_set(laid_out, tmp_path, monkeypatch):
    """The vivado stage's build step (study.synthesis) feeds the calibration set with the build's
    folder, here a public build's as FINN writes it (no Vivado)."""
    from types import SimpleNamespace

    import pynqrepro.pipeline as pipeline
    from pynqrepro.core.boards import get_board
    from pynqrepro.study import synthesis as study
    from pynqrepro.synthesis.vivado_build import SynthesisBuild

    built = SynthesisBuild(ooc=None, system=None, build_dir=laid_out["D"])
    monkeypatch.setattr(pipeline, "synthesis_build", lambda setup, network, folding: built)
    setup = SimpleNamespace(store=SimpleNamespace(root=tmp_path / "store"), board=get_board("pynq-z2"))
    network = SimpleNamespace(board=setup.board, estimate=lambda folding: None)
    assert study._synthesise(setup, study.Candidate("exact", network, {})) is built
    anchors = calibrate.store_anchors(tmp_path / "store")
    assert [(a.build.totals["LUT"], a.build.totals["DSP"], a.first_party) for a in anchors] == [(36222, 34, True)]
    assert calibrate.store_model_path(tmp_path / "store").is_file()


def test_a_build_with_its_folded_model_gets_the_decision_features(store, tmp_path):
    """A build folder that keeps FINN's folded model (intermediate_models/) is featured by
    ``node_decision_costs`` of that model (FINN's own rows, as the public builds' files give them);
    memory bits are each BRAM-weight MVAU's MW x MH x weight bits, read from its weight tensor."""
    from hw_models import cnv
    from qonnx.custom_op.registry import getCustomOp

    from pynqrepro.core.boards import get_board
    from pynqrepro.finnflow.foldconfig import apply_folding, model_folding
    from pynqrepro.folding.decision import node_decision_costs
    from pynqrepro.references import reference_folding

    board = get_board("pynq-z1")
    hw_model = cnv(store, 2)
    folded = apply_folding(hw_model, model_folding(hw_model, reference_folding("finn-foldings/cnv-w2a2.json")))
    build_dir = tmp_path / "build"
    (build_dir / "intermediate_models").mkdir(parents=True)
    folded.save(str(build_dir / "intermediate_models" / "step_generate_estimate_reports.onnx"))
    (build_dir / "report").mkdir()
    shutil.copyfile(PUBLIC_BUILDS_DIR / "B1" / "ooc_synth_and_timing.json",
                    build_dir / "report" / "ooc_synth_and_timing.json")
    build = read_finn_build(build_dir)
    assert not build.estimate  # no estimate rows: the features can only come from the model
    features = calibrate.decision_costs(build, board.part)
    assert features == node_decision_costs(folded, board.part)
    mvaus = [n for n in folded.graph.node if n.op_type.startswith("MVAU")]
    assert mvaus and all(features[n.name]["op_type"] == n.op_type for n in mvaus)
    checked = 0
    for node in mvaus:
        op = getCustomOp(node)
        if features[node.name]["BRAM_18K"]:
            bits = op.get_nodeattr("MW") * op.get_nodeattr("MH") * op.get_input_datatype(1).bitwidth()
            assert features[node.name]["memory_bits"] == pytest.approx(bits), node.name
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("build_id", sorted(README))
def test_the_vivado_stages_parsers_read_the_public_builds(laid_out, build_id):
    """The parsers the vivado stage's rows use (whole design in the shell, OOC) on the real files."""
    from pynqrepro.synthesis.vivado_build import BuildPaths
    from pynqrepro.synthesis.vivado_reports import read_ooc_synth_and_timing, read_post_synth_resources

    scope, lut, bram18, dsp, _ = README[build_id]
    paths = BuildPaths(laid_out[build_id])
    if scope == "in the shell":
        result = read_post_synth_resources(paths.post_synth_resources)
    else:
        result = read_ooc_synth_and_timing(paths.ooc)
        assert result.fmax_mhz > 0 and result.wns_ns is not None
    assert (result.lut, 2 * result.bram36, result.dsp) == (lut, bram18, dsp)
