"""QONNX -> HW-layer model for a board, by FINN's own builder steps for the estimate-only flow.

The step list is FINN's ``estimate_only_dataflow_steps`` as finn-plus's BNN-PYNQ flow
(``finn/benchmarking/dut/bnn-pynq.yml``) runs it: FINN's custom steps add the uint8 /255
pre-processing and TopK(1) post-processing, then qonnx->finn, tidy-up, streamline (conv lowering
included), convert to HW layers, initial bit-width minimisation, dataflow partition and
specialisation for the board's part. Folding and final bit-width minimisation follow per folding
(``pynqrepro.finnflow.foldconfig``), so the expensive part is built once per (checkpoint, board).
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import Board
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.finn_setup import builder_steps, progress_to_stderr

PREPROC_STEPS = (
    "finn.builder.custom_step_library.general.add_preproc_divide_by_255",
    "finn.builder.custom_step_library.general.add_postproc_top1",
)
HW_STEPS = (
    "step_qonnx_to_finn",
    "step_tidy_up",
    "step_streamline",
    "step_convert_to_hw",
    "step_minimize_bit_width_initial",
    "step_create_dataflow_partition",
    "step_specialize_layers",
)
# Models kept in the artifact: the verification stages and the final HW-layer model.
KEPT = {
    "step_tidy_up": "finn_tidy.onnx",
    "step_streamline": "streamlined.onnx",
    "step_minimize_bit_width_initial": "hw_generic.onnx",
    "step_specialize_layers": "hw_model.onnx",
}
HW_MODEL = "hw_model.onnx"
QONNX_MODEL = "qonnx.onnx"


def build_config(board: Board, output_dir: Path, clock_ns: float | None = None):
    """FINN's DataflowBuildConfig for an estimate-only build on ``board``."""
    builder_steps()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    return DataflowBuildConfig(
        output_dir=str(output_dir),
        synth_clk_period_ns=clock_ns or board.clock_ns,
        board=board.finn_board,
        fpga_part=board.part,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
    )


def _resolve(step: str):
    """A step function from FINN's registry or a dotted path (as the builder resolves them)."""
    steps = builder_steps()
    if step in steps.build_dataflow_step_lookup:
        return steps.build_dataflow_step_lookup[step]
    module, _, name = step.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class HWBuild:
    """The specialised HW-layer model plus the intermediate models verification executes."""

    hw_model: ModelWrapper
    stages: dict  # step name -> ModelWrapper, for the steps in KEPT


def build_hw_model(qonnx_model: ModelWrapper, board: Board, output_dir: Path | None = None) -> HWBuild:
    """Run FINN's estimate-only steps up to specialisation; ``output_dir`` gets FINN's build files."""
    with tempfile.TemporaryDirectory(prefix="pynqrepro-finn-") as tmp, progress_to_stderr():
        cfg = build_config(board, Path(output_dir or tmp))
        model = qonnx_model
        stages = {}
        for step in PREPROC_STEPS + HW_STEPS:
            model = _resolve(step)(model, cfg)
            if step in KEPT:
                stages[step] = ModelWrapper(model.model.SerializeToString())
        return HWBuild(model, stages)


def hw_model_artifact(store: ArtifactStore, checkpoint: Artifact, board: Board) -> Artifact:
    """The cached HW-layer model (plus QONNX and intermediate models) of a checkpoint for a board."""
    from pynqrepro.finnflow.export import export_qonnx, load_cnv

    def build(out_dir: Path) -> None:
        qonnx_model = export_qonnx(load_cnv(checkpoint.path))
        qonnx_model.save(str(out_dir / QONNX_MODEL))
        result = build_hw_model(qonnx_model, board)
        for step, filename in KEPT.items():
            result.stages[step].save(str(out_dir / filename))

    config = {"board": board.name, "part": board.part, "steps": list(PREPROC_STEPS + HW_STEPS)}
    return store.get_or_build("finn_hw_model", config, build, inputs={"checkpoint": checkpoint},
                              job=JobSpec("finn"))


def load_hw_model(artifact: Artifact, name: str = HW_MODEL) -> ModelWrapper:
    """A model file of a ``hw_model_artifact`` (default: the specialised HW-layer model)."""
    return ModelWrapper(str(artifact.file(name)))

