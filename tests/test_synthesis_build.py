"""Vivado stage without Vivado: FINN builder config, where FINN writes its reports, parsing a
finished build's reports, folding validation, the whole-design fit check and the missing-Vivado
error before any build."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.store import ArtifactStore
from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
from pynqrepro.finnflow.foldconfig import folded_dimensions, folding_resolver
from pynqrepro.references import DATA, STUDY_FOLDING_RUNS, finn_folding
from pynqrepro.synthesis import vivado_build as synth
from pynqrepro.synthesis.vivado_reports import parse_timing_summary, read_post_synth_resources
from cnv_checkpoints import random_cnv_checkpoint

PYNQ_Z1 = get_board("pynq-z1")
TIMING = """\
------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)
    -------      -------  ---------------------  -------------------      -------      -------
      0.412        0.000                      0                48211        0.021        0.000


All user specified timing constraints are met.
"""
POST_SYNTH = {"(top)": {"LUT": 24108, "SRL": 1210, "FF": 31544, "BRAM_36K": 98, "BRAM_18K": 7, "DSP": 3},
              "MVAU_hls_0": {"LUT": 1500, "SRL": 0, "FF": 1800, "BRAM_36K": 2, "BRAM_18K": 0, "DSP": 0}}


@pytest.fixture(scope="module")
def w2a2_hw(store):
    return hw_model_artifact(store, random_cnv_checkpoint(store, 2, 2), PYNQ_Z1)


def test_config_is_finns_zynq_build(tmp_path):
    folding = tmp_path / "folding.json"
    folding.write_text("{}")
    cfg = synth.synthesis_config(get_board("ultra96"), tmp_path / "out", folding, clock_ns=5.0)
    from finn.builder.build_dataflow import resolve_build_steps  # after synthesis_config booted FINN
    from finn.builder.build_dataflow_config import DataflowOutputType, ShellFlowType

    assert (cfg.board, cfg.fpga_part, cfg.synth_clk_period_ns) == ("Ultra96", "xczu3eg-sbva484-1-e", 5.0)
    assert cfg.shell_flow_type == ShellFlowType.VIVADO_ZYNQ and cfg.folding_config_file == folding
    assert {DataflowOutputType.BITFILE, DataflowOutputType.OOC_SYNTH, DataflowOutputType.PYNQ_DRIVER,
            DataflowOutputType.DEPLOYMENT_PACKAGE, DataflowOutputType.STITCHED_IP} <= set(cfg.generate_outputs)
    assert [step.__name__ for step in resolve_build_steps(cfg)] == list(synth.SYNTH_STEPS)


def test_steps_continue_finns_bnn_pynq_flow_after_the_hw_model():
    import finn

    flow = yaml.safe_load((Path(finn.__file__).parent / "benchmarking/dut/bnn-pynq.yml").read_text())["steps"]
    assert tuple(flow[flow.index("step_specialize_layers") + 1:]) == synth.SYNTH_STEPS


def test_build_paths_are_where_finn_writes(tmp_path):
    folding = tmp_path / "folding.json"
    folding.write_text("{}")
    cfg = synth.synthesis_config(PYNQ_Z1, tmp_path / "out", folding)
    paths = synth.BuildPaths(tmp_path / "out")
    assert paths.ooc.parent == paths.post_synth_resources.parent == cfg.get_report_directory(create=False)
    assert paths.deploy == cfg.get_deploy_directory(create=False)


def _finished_build(root: Path) -> Path:
    report = root / "report"
    report.mkdir(parents=True)
    run = next(r for r in STUDY_FOLDING_RUNS if r.ooc_lut is not None)
    shutil.copy(DATA / "thesis-folding-results" / run.run / "ooc_synth_and_timing.json", report)
    (report / "post_synth_resources.json").write_text(json.dumps(POST_SYNTH))
    (report / "post_route_timing.rpt").write_text(TIMING)
    return root


def test_read_build_parses_finns_reports(tmp_path):
    run = next(r for r in STUDY_FOLDING_RUNS if r.ooc_lut is not None)
    result = synth.read_build(_finished_build(tmp_path / "build"), clock_ns=10.0)
    assert (result.ooc.lut, result.ooc.ff, result.ooc.bram36) == (run.ooc_lut, run.ooc_ff, run.ooc_bram36)
    assert (result.system.lut, result.system.ff, result.system.bram36, result.system.dsp) == (24108, 31544, 101.5, 3)
    assert result.system.wns_ns == 0.412
    assert result.system.fmax_mhz == pytest.approx(1000 / (10 - 0.412))
    assert result.deploy_dir == tmp_path / "build" / "deploy"


def test_unfinished_build_is_user_error(tmp_path):
    root = _finished_build(tmp_path / "build")
    (root / "report" / "post_route_timing.rpt").unlink()
    with pytest.raises(UserError, match="finished FINN bitfile build"):
        synth.read_build(root, 10.0)


def test_timing_and_resource_parsers_reject_other_files(tmp_path):
    with pytest.raises(UserError, match="report_timing_summary"):
        parse_timing_summary("Slice LUTs | 1 |")
    path = tmp_path / "post_synth_resources.json"
    path.write_text(json.dumps({"MVAU_hls_0": POST_SYNTH["MVAU_hls_0"]}))
    with pytest.raises(UserError, match="post_synth_resources.json"):
        read_post_synth_resources(path)


def test_illegal_folding_fails_before_vivado(w2a2_hw, tmp_path):
    with pytest.raises(UserError, match="legal"):
        synth.synthesis_artifact(ArtifactStore(tmp_path), w2a2_hw, PYNQ_Z1, {"MVAU_hls_0": {"PE": 7}})


def test_uncached_build_without_vivado_is_one_line_error(w2a2_hw, tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "missing_vivado", lambda board_files: "needs Vivado/Vitis HLS: set XILINX_VIVADO")
    with pytest.raises(UserError, match="not cached and needs Vivado") as info:
        synth.synthesis_artifact(ArtifactStore(tmp_path), w2a2_hw, PYNQ_Z1, None)
    assert "\n" not in str(info.value)
    # nothing built or half-built is left: only the released claim, whose number is never reused
    assert [p.name for p in (tmp_path / "finn_synthesis").iterdir() if ".claim-" not in p.name] == []


def _no_tools(monkeypatch) -> None:
    """Any call towards Vivado fails the test: a refusal must come before it."""
    def called(*args):
        raise AssertionError(f"a build tool was called with {args}")

    monkeypatch.setattr(synth, "missing_vivado", called)
    monkeypatch.setattr(synth, "run_finn_build", called)


def test_over_budget_whole_design_is_refused_before_vivado(w2a2_hw, tmp_path, monkeypatch):
    """The library path (pytest's ``pipeline.synthesis_build``, and the CLI through it) judges the
    whole design FINN's build makes before any tool runs or the store is touched."""
    widest = folded_dimensions(load_hw_model(w2a2_hw))  # every PE/SIMD at its dimension
    _no_tools(monkeypatch)
    with pytest.raises(UserError, match=r"does not fit pynq-z1 \(LUT .* whole design\): pass a folding from "
                                        r"pynqrepro fold") as info:
        synth.finished_build(ArtifactStore(tmp_path), w2a2_hw, PYNQ_Z1, widest)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "finn_synthesis").exists()


def test_cached_build_is_returned_without_the_fit_check(w2a2_hw, tmp_path, monkeypatch):
    """A folding over the board whose build is in the store (made when it fitted a larger budget:
    the budget is no part of the key) is returned as it is, without judging it again."""
    from pynqrepro.folding.optimise import board_budget, optimise
    from pynqrepro.folding.wholedesign import build_design

    roomy = dataclasses.replace(PYNQ_Z1, luts=10**9, bram18=10**6, uram=10**6, dsp=10**6)
    # the fastest folding FINN builds (the widest PE/SIMD are not: HLS streams over 8191 bits)
    fastest = optimise(build_design(load_hw_model(w2a2_hw), roomy), board_budget(roomy))
    widest = {k: v for k, v in fastest.config().items() if k != "Defaults"}
    assert not fastest.fits(board_budget(PYNQ_Z1))
    monkeypatch.setattr(synth, "missing_vivado", lambda board_files: None)
    monkeypatch.setattr(synth, "run_finn_build", lambda model_file, cfg: None)
    monkeypatch.setattr(synth, "check_package", lambda deploy_dir: None)
    store = ArtifactStore(tmp_path)
    built = synth.synthesis_artifact(store, w2a2_hw, roomy, widest)
    _no_tools(monkeypatch)
    assert synth.synthesis_artifact(store, w2a2_hw, PYNQ_Z1, widest).path == built.path


def test_folding_resolver(w2a2_hw, tmp_path):
    model = load_hw_model(w2a2_hw)
    assert folding_resolver("all-ones")(model) is None
    published = folding_resolver("finn:w2a2")(model)
    assert published["MVAU_hls_0"] == finn_folding(2, 2)["MVAU_hls_0"]
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"MVAU_hls_0": {"PE": 2}}))
    resolve = folding_resolver(str(path))
    path.unlink()  # the file was read once, when the spec was checked: the model needs no second read
    assert resolve(model) == {"MVAU_hls_0": {"PE": 2}}
    with pytest.raises(UserError, match="finn:w1a1"):
        folding_resolver("finn:2bit")


def test_cli_build_without_vivado(w2a2_hw, store, tmp_path, monkeypatch, capsys):
    from pynqrepro.cli import main

    monkeypatch.setattr(synth, "missing_vivado", lambda board_files: "needs Vivado/Vitis HLS: set XILINX_VIVADO")
    checkpoint = random_cnv_checkpoint(store, 2, 2).file("checkpoint.tar")
    assert main(["build", str(checkpoint), "--folding", "finn:w2a2", "--store-dir", str(tmp_path)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after FINN's progress on a cold store
    assert last.startswith("pynqrepro: error: the FINN build") and last.endswith("set XILINX_VIVADO")


def test_build_config_carries_the_certified_fifo_depths(tmp_path):
    """The synthesis build inserts FIFOs at the folding JSON's node depths without sizing them
    (force_minimal_fifos), exactly as ``fold`` and the build preparation certified; FINN's default
    would size them by simulation."""
    from finn.builder.build_dataflow_config import AutoFIFOSizingMethod, DataflowBuildConfig

    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps({"Defaults": {}, "Thresholding_rtl_0": {"inFIFODepths": [64]}}))
    cfg = synth.synthesis_config(PYNQ_Z1, tmp_path / "out", folding)
    assert DataflowBuildConfig(output_dir="x", synth_clk_period_ns=10.0).auto_fifo_strategy \
        == AutoFIFOSizingMethod.DISTRIBUTED_SIMULATION  # what FINN does unless told
    assert cfg.auto_fifo_depths and cfg.auto_fifo_strategy == AutoFIFOSizingMethod.FORCE_MINIMAL_FIFOS
    assert cfg.fifo_config_file is None
    assert "minimal" in synth.fifo_depths_source({"MVAU_hls_0": {"PE": 2}})
    assert "fold --fifo-config" in synth.fifo_depths_source(json.loads(folding.read_text()))
