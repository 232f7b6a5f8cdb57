"""QONNX -> HW-layer model for a board, by FINN's own builder steps for the estimate-only flow.

The step list is FINN's ``estimate_only_dataflow_steps`` as finn-plus's BNN-PYNQ flow
(``finn/benchmarking/dut/bnn-pynq.yml``) runs it: FINN's custom steps add the uint8 /255
pre-processing and TopK(1) post-processing, then qonnx->finn, tidy-up, streamline (conv lowering
included), convert to HW layers, initial bit-width minimisation, dataflow partition and
specialisation for the board's part. Folding and final bit-width minimisation follow per folding
(``pynqrepro.finnflow.foldconfig``), so the expensive part is built once per (checkpoint, board).
No step before specialisation reads the board or its part, so a checkpoint is exported and lowered
once (``dataflow_artifact``) and only specialised per board: a design-space search folding each
network on several boards pays FINN's flow once per network.
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
BOARD_STEPS = ("step_specialize_layers",)  # the only steps that read the board's part
DATAFLOW_MODEL = "dataflow.onnx"  # the dataflow partition before specialisation


def build_config(board: Board | None, output_dir: Path, clock_ns: float | None = None):
    """FINN's DataflowBuildConfig for an estimate-only build on ``board`` (None: for the steps that
    read no board, which then fail loudly if one ever does)."""
    builder_steps()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    return DataflowBuildConfig(
        output_dir=str(output_dir),
        synth_clk_period_ns=clock_ns or (board.clock_ns if board else 10.0),
        board=board.finn_board if board else None,
        fpga_part=board.part if board else None,
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


def build_hw_model(qonnx_model: ModelWrapper, board: Board | None, output_dir: Path | None = None,
                   steps: tuple = PREPROC_STEPS + HW_STEPS) -> HWBuild:
    """Run FINN's estimate-only ``steps`` (default: all, up to specialisation; with ``board`` None,
    those before it); ``output_dir`` gets FINN's build files."""
    with tempfile.TemporaryDirectory(prefix="pynqrepro-finn-") as tmp, progress_to_stderr():
        cfg = build_config(board, Path(output_dir or tmp))
        model = qonnx_model
        stages = {}
        for step in steps:
            model = _resolve(step)(model, cfg)
            if step in KEPT:
                stages[step] = ModelWrapper(model.model.SerializeToString())
        return HWBuild(model, stages)


GENERIC_STEPS = tuple(step for step in PREPROC_STEPS + HW_STEPS if step not in BOARD_STEPS)


def dataflow_artifact(store: ArtifactStore, checkpoint: Artifact) -> Artifact:
    """The cached QONNX export and FINN's board-independent steps of a checkpoint: the models
    verification executes and the dataflow partition every board's specialisation starts from."""
    from pynqrepro.finnflow.export import export_qonnx, load_cnv

    def build(out_dir: Path) -> None:
        qonnx_model = export_qonnx(load_cnv(checkpoint.path))
        qonnx_model.save(str(out_dir / QONNX_MODEL))
        result = build_hw_model(qonnx_model, None, steps=GENERIC_STEPS)
        for step, filename in KEPT.items():
            if step in result.stages:
                result.stages[step].save(str(out_dir / filename))
        result.hw_model.save(str(out_dir / DATAFLOW_MODEL))

    return store.get_or_build("finn_dataflow", {"steps": list(GENERIC_STEPS)}, build,
                              inputs={"checkpoint": checkpoint}, job=JobSpec("finn"))


def hw_model_artifact(store: ArtifactStore, checkpoint: Artifact, board: Board) -> Artifact:
    """The cached HW-layer model (plus QONNX and intermediate models) of a checkpoint for a board:
    the checkpoint's ``dataflow_artifact`` specialised for the board's part."""
    import shutil

    config = {"board": board.name, "part": board.part, "steps": list(PREPROC_STEPS + HW_STEPS)}
    inputs = {"checkpoint": checkpoint}
    built = store.find("finn_hw_model", config, inputs)
    if built is not None:  # not even the board-independent part is needed
        return built
    source = dataflow_artifact(store, checkpoint)

    def build(out_dir: Path) -> None:  # pickled into a SLURM job: it holds no store, only the artifact
        for filename in (QONNX_MODEL, *(f for step, f in KEPT.items() if step not in BOARD_STEPS)):
            shutil.copyfile(source.file(filename), out_dir / filename)
        model = ModelWrapper(str(source.file(DATAFLOW_MODEL)))
        with tempfile.TemporaryDirectory(prefix="pynqrepro-finn-") as tmp, progress_to_stderr():
            cfg = build_config(board, Path(tmp))
            for step in BOARD_STEPS:
                model = _resolve(step)(model, cfg)
        model.save(str(out_dir / HW_MODEL))

    return store.get_or_build("finn_hw_model", config, build, inputs=inputs, job=JobSpec("finn"))


def load_hw_model(artifact: Artifact, name: str = HW_MODEL) -> ModelWrapper:
    """A model file of a ``hw_model_artifact`` (default: the specialised HW-layer model)."""
    return ModelWrapper(str(artifact.file(name)))

