"""The Python part of FINN's build preparation, on a HW-layer model and an emitted folding JSON.

FINN's builder (finn/builder/build_dataflow_steps.py, default steps of build_dataflow_config.py)
runs, after the steps ``hw_build.py`` shares (up to ``step_specialize_layers``):

1. ``step_target_fps_parallelization``: nothing without ``target_fps`` (the folding JSON decides);
2. ``step_apply_folding_config`` (GiveUniqueNodeNamesRecursive + ApplyConfig of the JSON),
   ``step_minimize_bit_width``, ``step_transpose_decomposition``, ``step_generate_estimate_reports``,
   ``step_assign_ddr_weight_offsets``: FINN's own step functions, called here as they are;
3. ``step_generate_hardware``: GiveUniqueNodeNamesRecursive, then ``step_hw_codegen`` (PrepareIP:
   every node's ``code_generation_ipgen``, HLS sources and filled RTL templates, pure Python, run
   here with its assertions, e.g. MVAU_hls's "SIMD >= MW / 1024") and IP synthesis
   (``step_hw_ipgen``: the first Xilinx tool, skipped here), then ``step_set_fifo_depths``. Its branches without simulation are copied: with
   ``force_minimal_fifos`` (no FIFO config) or a ``fifo_config_file``, InsertDWC,
   InsertFIFO(create_shallow_fifos=True), SpecializeLayers, GiveUniqueNodeNamesRecursive,
   GiveReadableTensorNames (and ApplyFIFODepthsFromFile with a config), FINN's fifo_sizing.json
   report; then naming again and code generation of the new nodes (run; their IP generation skipped);
4. ``step_create_stitched_ip`` ... ``step_out_of_context_synthesis``: Vivado or RTL simulation only;
   ``step_prepare_synthesis`` does nothing for a Zynq board;
5. ``step_synthesize_bitfile``: ``ZynqBuild`` (make_zynq_proj.py) runs InferDataLayouts, then
   InsertIODMA (the board's AXI port width), InsertDWC, SpecializeLayers, Floorplan and
   CreateDataflowPartition, each followed by GiveUniqueNodeNames + GiveReadableTensorNames, before
   it builds the partitions with Vivado (skipped).

So a folding FINN's build would reject (a PE no node accepts, a stream FIFO/DWC cannot bridge)
fails here, on a laptop, with FINN's own message.
"""

import copy
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.estimate import RESOURCES
from pynqrepro.finnflow.finn_setup import builder_steps, progress_to_stderr
from pynqrepro.finnflow.foldconfig import validate_folding

CONVERTER = "StreamingDataWidthConverter"
FIFO = "StreamingFIFO"


@dataclass(frozen=True)
class InsertedNode:
    """A DWC or FIFO FINN inserted, located by the compute nodes around it."""

    name: str
    op_type: str
    producer: str | None  # nearest compute node upstream (None: the graph input)
    consumer: str | None  # nearest compute node downstream (None: the graph output)
    role: str  # "fifo", "fifo before converter", "converter", "fifo after converter", "input fifo", "output fifo"


def is_inserted(node) -> bool:
    return node.op_type.startswith((CONVERTER, FIFO))


def inserted_nodes(model: ModelWrapper) -> list[InsertedNode]:
    """Every DWC and FIFO of a graph after FINN's insertions, with where it sits."""

    def compute_neighbour(node, upstream: bool):
        while node is not None and is_inserted(node):
            node = model.find_producer(node.input[0]) if upstream else model.find_consumer(node.output[0])
        return node

    out = []
    for node in model.graph.node:
        if not is_inserted(node):
            continue
        producer = compute_neighbour(model.find_producer(node.input[0]), upstream=True)
        consumer = compute_neighbour(model.find_consumer(node.output[0]), upstream=False)
        if node.op_type.startswith(CONVERTER):
            role = "converter"
        elif producer is None:
            role = "input fifo"
        elif consumer is None:
            role = "output fifo"
        else:
            before = model.find_producer(node.input[0])
            after = model.find_consumer(node.output[0])
            role = ("fifo after converter" if before.op_type.startswith(CONVERTER) else
                    "fifo before converter" if after.op_type.startswith(CONVERTER) else "fifo")
        out.append(InsertedNode(node.name, node.op_type, producer and producer.name, consumer and consumer.name, role))
    return out


def certified_fifo_settings(fifo_config_file: Path | None = None) -> dict:
    """The DataflowBuildConfig FIFO settings a folding is certified with (``fold``, build preparation)
    and built with (the synthesis stage): FIFOs at the depths the folding JSON's nodes carry
    (``inFIFODepths``/``outFIFODepths``: minimal unless ``fold --fifo-config`` set them), inserted
    by ``force_minimal_fifos`` without sizing, or at the depths of a fifo_sizing.json."""
    from finn.builder.build_dataflow_config import AutoFIFOSizingMethod

    return {"fifo_config_file": fifo_config_file, "auto_fifo_depths": fifo_config_file is None,
            "auto_fifo_strategy": AutoFIFOSizingMethod.FORCE_MINIMAL_FIFOS}


def build_config(board: Board, output_dir: Path, folding_file: Path | None = None,
                 fifo_config_file: Path | None = None):
    """FINN's DataflowBuildConfig of a build of ``board`` from a folding JSON: FIFOs at their
    certified depths (``certified_fifo_settings``)."""
    builder_steps()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    return DataflowBuildConfig(
        output_dir=str(output_dir), synth_clk_period_ns=board.clock_ns, board=board.finn_board,
        fpga_part=board.part, folding_config_file=folding_file, **certified_fifo_settings(fifo_config_file),
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS, DataflowOutputType.BITFILE])


def insert_dwcs_and_fifos(model: ModelWrapper, part: str, fifo_config_file: Path | None = None) -> ModelWrapper:
    """``step_set_fifo_depths`` without simulation: FINN's DWCs and FIFOs, specialised and named."""
    builder_steps()
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.set_fifo_depths import ApplyFIFODepthsFromFile
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.qonnx.give_unique_node_names_recursive import GiveUniqueNodeNamesRecursive
    from qonnx.transformation.general import GiveReadableTensorNames

    model = model.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(part))
    model = model.transform(GiveUniqueNodeNamesRecursive())
    model = model.transform(GiveReadableTensorNames())
    if fifo_config_file is not None:
        model = model.transform(ApplyFIFODepthsFromFile(Path(fifo_config_file)))
    return model


def generate_code(model: ModelWrapper, part: str, clock_ns: float, workdir: Path, only=None,
                  weight_files: bool = False) -> None:
    """``step_hw_codegen`` without its cache: FINN's ``code_generation_ipgen`` of every HW node (or
    of the ``only`` node names) of a copy of ``model``, into ``workdir``. Pure Python (HLS sources,
    filled RTL templates); FINN's assertions propagate. Without ``weight_files`` an MVAU's weights
    go through FINN's layout transform (``get_hw_compatible_weight_tensor``, whose assertions are
    the folding's) but are not hex-formatted into files: that takes ~100 s for a CNV and cannot
    reject a folding the transform accepts."""
    from finn.util.basic import getHWCustomOp
    from finn.util.fpgadataflow import is_hls_node, is_rtl_node

    model = ModelWrapper(copy.deepcopy(model.model))
    for node in model.graph.node:
        if not (is_hls_node(node) or is_rtl_node(node)) or (only is not None and node.name not in only):
            continue
        inst = getHWCustomOp(node)
        code_dir = Path(workdir) / node.name
        code_dir.mkdir(parents=True, exist_ok=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(code_dir))
        if not weight_files and hasattr(inst, "get_hw_compatible_weight_tensor"):
            inst.make_weight_file = lambda weights, mode, name, inst=inst: inst.get_hw_compatible_weight_tensor(weights)
        inst.code_generation_ipgen(model, part, clock_ns)


def node_resources(model: ModelWrapper, part: str) -> dict:
    """FINN's res_estimation of every node of ``model``: {node: {resource: estimate}}."""
    from functools import partial

    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    return model.analysis(partial(res_estimation, fpgapart=part))


def design_totals(stitched: ModelWrapper, board: Board) -> dict:
    """FINN's estimate of the whole design: ``res_estimation`` of every node of the stitched graph
    (compute nodes, DWCs, FIFOs) summed, plus the board's shell, which FINN does not estimate."""
    per_node = node_resources(stitched, board.part)
    return {r: sum(int(costs.get(r, 0)) for costs in per_node.values()) + board.shell.resource(r) for r in RESOURCES}


def whole_design_estimate(folded: ModelWrapper, board: Board, fifo_config_file: Path | None = None) -> tuple:
    """(totals, inserted nodes) of the design FINN's build makes from a folded HW model: its DWCs and
    FIFOs (minimal depths, or a fifo_sizing.json's) as ``step_set_fifo_depths`` inserts them, and
    the shell (``design_totals``)."""
    stitched = insert_dwcs_and_fifos(folded, board.part, fifo_config_file)
    return design_totals(stitched, board), inserted_nodes(stitched)


def _fifo_sizing_report(model: ModelWrapper) -> dict:
    """FINN's report/fifo_sizing.json of ``step_set_fifo_depths`` (same keys and figures)."""
    from finn.util.basic import getHWCustomOp

    info = {"fifo_depths": {}, "fifo_sizes": {}, "fifo_sizes_effective": {}, "impl_style": {}, "ram_style": {}}
    total = total_effective = 0
    for node in model.get_nodes_by_op_type("StreamingFIFO_rtl"):
        inst = getHWCustomOp(node)
        depth = inst.get_nodeattr("depth")
        size = inst.get_instream_width() * depth
        effective = inst.get_instream_width() * math.ceil(depth / 32) * 32
        info["fifo_depths"][node.name] = depth
        info["fifo_sizes"][node.name] = size
        info["fifo_sizes_effective"][node.name] = effective
        info["impl_style"][node.name] = inst.get_nodeattr("impl_style")
        info["ram_style"][node.name] = inst.get_nodeattr("ram_style")
        total += size
        total_effective += effective
    info["total_fifo_size_kiB"] = total / 8.0 / 1024.0
    info["total_fifo_size_effective_kiB"] = total_effective / 8.0 / 1024.0
    return info


def _zynq_preparation(model: ModelWrapper, board: Board, partition_dir: Path) -> ModelWrapper:
    """``ZynqBuild.apply`` up to building the partitions (no instrumentation)."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.floorplan import Floorplan
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.util.basic import pynq_native_port_width
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_data_layouts import InferDataLayouts

    model = model.transform(InferDataLayouts())
    for transformation in (InsertIODMA(pynq_native_port_width[board.finn_board]), InsertDWC(),
                           SpecializeLayers(board.part), Floorplan(),
                           CreateDataflowPartition(partition_model_dir=str(partition_dir))):
        model = model.transform(transformation)
        model = model.transform(GiveUniqueNodeNames())
        model = model.transform(GiveReadableTensorNames())
    return model


@dataclass(frozen=True)
class PreparedBuild:
    """FINN's models of a build, up to the first Xilinx tool."""

    folded: ModelWrapper  # after folding, bit-width minimisation and FINN's estimate reports
    stitched: ModelWrapper  # after step_set_fifo_depths' DWC/FIFO insertion: what CreateStitchedIP stitches
    zynq: ModelWrapper  # ZynqBuild's top model: one StreamingDataflowPartition per partition
    partitions: dict = field(repr=False)  # partition node name -> its model (IODMAs, the accelerator)
    estimate_reports: dict = field(repr=False)  # FINN's report/estimate_*.json of the folded model
    fifo_sizing: dict = field(repr=False)  # FINN's report/fifo_sizing.json

    def inserted(self) -> list[InsertedNode]:
        return inserted_nodes(self.stitched)

    def resources(self, part: str) -> dict:
        """FINN's res_estimation of every node of the stitched graph (DWCs and FIFOs included)."""
        return node_resources(self.stitched, part)

    def whole_design(self, board: Board) -> dict:
        """FINN's estimate of the stitched graph plus the board's shell (``design_totals``)."""
        return design_totals(self.stitched, board)

    def max_cycles(self) -> int:
        """The bottleneck FINN's estimate reports for the folded graph."""
        return int(self.estimate_reports["estimate_network_performance.json"]["max_cycles"])


def _write_json(path: Path, content) -> Path:
    path.write_text(json.dumps(content, indent=2))
    return path


def prepare_build(hw_model: ModelWrapper, folding: dict | Path, board: Board,
                  fifo_config: dict | Path | None = None) -> PreparedBuild:
    """Every transformation FINN's builder runs on ``hw_model`` with ``folding`` (an ApplyConfig
    JSON file or dict) before the first Xilinx tool; ``fifo_config`` (FINN's fifo_sizing.json form,
    file or dict) pins the FIFO depths as ``auto_fifo_depths=False`` does. FINN's assertion or
    user error becomes a UserError naming the folding."""
    steps = builder_steps()
    from finn.transformation.qonnx.give_unique_node_names_recursive import GiveUniqueNodeNamesRecursive
    from finn.util.exception import FINNError

    if not isinstance(folding, dict):
        from pynqrepro.finnflow.foldconfig import read_folding

        folding = read_folding(Path(folding))
    validate_folding(hw_model, folding)
    if hw_model.get_nodes_by_op_type("FINNLoop"):
        raise UserError("the model has FINNLoop nodes (multi-layer offload): their build preparation is not "
                        "covered; prepare the build with FINN's builder")
    with tempfile.TemporaryDirectory(prefix="pynqrepro-buildprep-") as tmp, progress_to_stderr():
        tmp = Path(tmp)
        fifo_file = None
        if fifo_config is not None:
            fifo_file = _write_json(tmp / "fifo.json", fifo_config) if isinstance(fifo_config, dict) else fifo_config
        cfg = build_config(board, tmp / "build", _write_json(tmp / "folding.json", {"Defaults": {}, **folding}),
                           fifo_file)
        try:
            model = hw_model
            for step in (steps.step_apply_folding_config, steps.step_minimize_bit_width,
                         steps.step_transpose_decomposition, steps.step_generate_estimate_reports,
                         steps.step_assign_ddr_weight_offsets):
                model = step(model, cfg)
            folded = model
            model = model.transform(GiveUniqueNodeNamesRecursive())
            generate_code(model, board.part, board.clock_ns, tmp / "codegen")
            stitched = insert_dwcs_and_fifos(model, board.part, fifo_file)
            generate_code(stitched, board.part, board.clock_ns, tmp / "codegen_inserted",
                          only={node.name for node in inserted_nodes(stitched)})
            zynq = _zynq_preparation(stitched, board, tmp / "partitions")
        except (AssertionError, FINNError) as exc:  # FINNUserError, or codegen's FINNInternalError
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"FINN's build preparation rejects this folding or FIFO config: {reason}; use a folding "
                            "from pynqrepro fold and the FIFO config of a build of the same folding") from None
        reports = {path.name: json.loads(path.read_text()) for path in cfg.get_report_directory().glob("*.json")}
        partitions = {node.name: ModelWrapper(getCustomOp(node).get_nodeattr("model"))
                      for node in zynq.get_nodes_by_op_type("StreamingDataflowPartition")}
        return PreparedBuild(folded, stitched, zynq, partitions, reports, _fifo_sizing_report(stitched))
