"""The exact folding as a qonnx Transformation and as a FINN builder step: FINN's builder, run
through its Python steps with ``step_set_folding_exact`` in place of step_target_fps_parallelization,
folds the model exactly as ``pynqrepro fold`` does."""

import json

import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.finn_setup import boot_finn
from pynqrepro.folding.finn_steps import SetFoldingExact, board_of, step_set_folding_exact

import hw_models
from hw_models import PYNQ_Z1


def _folding_of(model, names) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    return {n.name: {a: getCustomOp(n).get_nodeattr(a) for a in names[n.name]}
            for n in model.graph.node if n.name in names}


def test_finn_builder_step_folds_as_pynqrepro_fold(store, tmp_path, monkeypatch):
    from pynqrepro.cli import main

    model = hw_models.mlp(store, "tfc_2w2a")
    path = tmp_path / "hw_model.onnx"
    model.save(str(path))
    assert main(["fold", "--model", str(path), "--board", "pynq-z1", "--out", str(tmp_path / "fold.json")]) == 0
    folded_by_cli = {k: v for k, v in json.loads((tmp_path / "fold.json").read_text()).items() if k != "Defaults"}

    boot_finn()
    from finn.builder.build_dataflow import build_dataflow_cfg
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType
    from qonnx.core.modelwrapper import ModelWrapper

    cfg = DataflowBuildConfig(output_dir=str(tmp_path / "build"), synth_clk_period_ns=PYNQ_Z1.clock_ns,
                              board=PYNQ_Z1.finn_board, fpga_part=PYNQ_Z1.part,
                              steps=[step_set_folding_exact, "step_apply_folding_config", "step_minimize_bit_width",
                                     "step_generate_estimate_reports"],
                              generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS])
    # the steps are pure Python; only the builder's closing metadata names a Vivado version
    monkeypatch.setenv("XILINX_VIVADO", str(tmp_path / "Vivado" / "none"))
    assert build_dataflow_cfg(str(path), cfg) == 0
    built = ModelWrapper(str(tmp_path / "build" / "intermediate_models" / "step_generate_estimate_reports.onnx"))
    assert _folding_of(built, folded_by_cli) == folded_by_cli
    report = json.loads((tmp_path / "build" / "report" / "auto_folding_config.json").read_text())
    assert {k: v for k, v in report.items() if k != "Defaults"} == folded_by_cli


def test_transformation_applies_the_exact_folding(store):
    model = hw_models.mlp(store, "tfc_2w2a")
    transformation = SetFoldingExact("pynq-z1", lut_ratio=0.5)
    folded = model.transform(transformation)
    wanted = {k: v for k, v in transformation.folding.items() if k != "Defaults"}
    assert wanted and _folding_of(folded, wanted) == wanted
    assert any(attrs.get("PE", 1) > 1 or attrs.get("SIMD", 1) > 1 for attrs in wanted.values())


def test_unknown_builder_board_is_one_line():
    class Cfg:
        board = "NoSuchBoard"

    with pytest.raises(UserError, match="none of pynqrepro's boards"):
        board_of(Cfg())
