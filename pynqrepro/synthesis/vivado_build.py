"""The Vivado stage: FINN's full build of a cached HW-layer model at a folding, as a store artifact.

The build continues FINN's BNN-PYNQ flow (``finn/benchmarking/dut/bnn-pynq.yml``) where the
estimate flow (``pynqrepro.finnflow.hw_build``) stopped, after layer specialisation: FINN's builder
(``build_dataflow_cfg``) applies the folding JSON, generates the hardware with exactly the FIFO
depths the folding was certified with (the JSON's node depths: minimal, or ``fold --fifo-config``'s;
FINN's FIFO sizing by simulation would deepen them past what ``fold`` budgeted), stitches the IP, runs out-of-context synthesis, synthesises the Zynq bitfile, writes the PYNQ
driver settings and the deployment package. Everything lands in the artifact's ``build/`` folder
in FINN's own layout; ``read_build`` parses the reports FINN wrote there.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.machine import missing_vivado
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.hw_build import HW_MODEL
from pynqrepro.finnflow.finn_setup import boot_finn
from pynqrepro.synthesis.deployment import check_package
from pynqrepro.synthesis.vivado_reports import (
    SynthesisResult,
    fmax_mhz,
    parse_timing_summary,
    read_ooc_synth_and_timing,
    read_post_synth_resources,
)

# bnn-pynq.yml after step_specialize_layers (the HW model artifact ends there).
SYNTH_STEPS = (
    "step_target_fps_parallelization",
    "step_apply_folding_config",
    "step_minimize_bit_width",
    "step_generate_estimate_reports",
    "step_generate_hardware",
    "step_create_stitched_ip",
    "step_measure_rtlsim_performance",
    "step_out_of_context_synthesis",
    "step_synthesize_bitfile",
    "step_make_driver",
    "step_deployment_package",
)
# FINN DataflowOutputType values: rtlsim performance is left out (FINN's estimate is reported instead).
SYNTH_OUTPUTS = ("stitched_ip", "estimate_reports", "out_of_context_synth", "bitfile", "pynq_driver",
                 "deployment_package")
BUILD_DIR = "build"  # FINN's output_dir inside the artifact
FOLDING_FILE = "folding.json"


@dataclass(frozen=True)
class BuildPaths:
    """Where FINN's builder writes what this stage reads (``output_dir`` = ``root``)."""

    root: Path

    @property
    def ooc(self) -> Path:  # step_out_of_context_synthesis
        return self.root / "report" / "ooc_synth_and_timing.json"

    @property
    def post_synth_resources(self) -> Path:  # step_synthesize_bitfile, whole Zynq design
        return self.root / "report" / "post_synth_resources.json"

    @property
    def post_route_timing(self) -> Path:  # step_synthesize_bitfile
        return self.root / "report" / "post_route_timing.rpt"

    @property
    def deploy(self) -> Path:  # step_deployment_package: bitfile/ + driver/
        return self.root / "deploy"

    @property
    def log(self) -> Path:
        return self.root / "build_dataflow.log"


@dataclass(frozen=True)
class SynthesisBuild:
    """What a finished build gives the reports and the board stage."""

    ooc: SynthesisResult  # accelerator alone, out of context (comparable with FINN's estimates)
    system: SynthesisResult  # whole Zynq design (shell included), WNS/fmax after routing
    build_dir: Path  # FINN's output folder
    key: str | None = None  # the store artifact's key (None: a folder read directly)
    fifo_depths: str | None = None  # which FIFO depths it was built with (``fifo_depths_source``)

    @property
    def deploy_dir(self) -> Path:
        """FINN's deployment package: bitfile and driver settings for the board."""
        return BuildPaths(self.build_dir).deploy


def fifo_depths_source(folding: dict) -> str:
    """Which FIFO depths a build of ``folding`` gets: those its JSON carries, else the minimal ones."""
    carried = any(isinstance(attrs, dict) and ({"inFIFODepths", "outFIFODepths"} & set(attrs))
                  for attrs in folding.values())
    return ("the folding JSON's FIFO depths (fold --fifo-config), unsized" if carried
            else "minimal FIFO depths (force_minimal_fifos), as certified")


def synthesis_config(board: Board, output_dir: Path, folding_file: Path, clock_ns: float | None = None):
    """FINN's DataflowBuildConfig for the full Zynq build of a specialised HW model at a folding,
    with the FIFO settings the folding was certified with (``certified_fifo_settings``)."""
    boot_finn()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType, ShellFlowType

    from pynqrepro.finnflow.buildprep import certified_fifo_settings

    return DataflowBuildConfig.construct_from(DataflowBuildConfig(
        output_dir=str(output_dir),
        synth_clk_period_ns=clock_ns or board.clock_ns,
        board=board.finn_board,
        fpga_part=board.part,
        shell_flow_type=ShellFlowType.VIVADO_ZYNQ,
        folding_config_file=Path(folding_file),
        generate_outputs=[DataflowOutputType(o) for o in SYNTH_OUTPUTS],
        steps=list(SYNTH_STEPS),
        **certified_fifo_settings(),
    ))


def run_finn_build(model_file: Path, cfg) -> None:
    """FINN's builder on ``model_file``; a failed build raises with the tail of FINN's log."""
    boot_finn()
    from finn.builder.build_dataflow import build_dataflow_cfg

    if build_dataflow_cfg(str(model_file), cfg) != 0:
        log = BuildPaths(Path(cfg.output_dir)).log
        tail = "\n".join(log.read_text().splitlines()[-30:]) if log.is_file() else "(no build log)"
        raise RuntimeError(f"FINN's build failed (log {log}):\n{tail}")


def _check_buildable(hw_model, folding: dict, board: Board) -> None:
    """UserError when FINN's build would reject ``folding`` before its first Xilinx tool (its build
    preparation, code generation included), or when the whole design it makes (compute nodes, DWCs
    and FIFOs, the shell) exceeds ``board``: Vivado would work for hours and then fail."""
    from pynqrepro.finnflow.buildprep import prepare_build, whole_design_estimate
    from pynqrepro.finnflow.foldconfig import apply_folding

    whole, _ = whole_design_estimate(apply_folding(hw_model, folding), board)
    over = board.exceeded(whole)
    if over:
        raise UserError(f"this folding does not fit {board.name} ({', '.join(over)} by FINN's estimate of the "
                        f"whole design): pass a folding from pynqrepro fold, which fits the budget")
    prepare_build(hw_model, folding, board)  # FINN's own refusal (code generation included) as a UserError


def slowest_folding(hw_model, board: Board) -> dict:
    """The slowest folding FINN builds (``baselines.all_ones``: PE = SIMD = 1 where its code
    generation allows; an MVAU_hls with MW > 1024 needs SIMD >= MW / 1024)."""
    from pynqrepro.folding.baselines import all_ones
    from pynqrepro.folding.space import build_space

    return {k: v for k, v in all_ones(build_space(hw_model, board.part)).config().items() if k != "Defaults"}


def synthesis_artifact(store: ArtifactStore, hw_artifact: Artifact, board: Board, folding: dict | None,
                       clock_ns: float | None = None) -> Artifact:
    """The cached FINN build of ``hw_artifact`` at ``folding`` (None: ``slowest_folding``) for
    ``board``, keyed by all four and the clock.

    A build not in the store is checked first (seconds: FINN's build preparation up to the first
    Xilinx tool, code generation included, then its whole-design estimate), so a bad or over-budget folding is a one-line
    UserError rather than a failure an hour into Vivado; a cached build was checked when it was made.
    """
    from pynqrepro.finnflow.hw_build import load_hw_model

    clock_ns = clock_ns or board.clock_ns
    hw_model = load_hw_model(hw_artifact)
    folding = slowest_folding(hw_model, board) if folding is None else folding
    config = {"board": board.name, "part": board.part, "clock_ns": clock_ns, "folding": folding,
              "steps": list(SYNTH_STEPS), "outputs": list(SYNTH_OUTPUTS), "fifos": "certified"}
    inputs = {"hw_model": hw_artifact}
    cached = store.find("finn_synthesis", config, inputs)
    if cached is not None:
        return cached
    _check_buildable(hw_model, folding, board)

    def build(out_dir: Path) -> None:
        reason = missing_vivado(board.board_files)
        if reason:
            raise UserError(f"the FINN build {hw_artifact.key[:8]}/{board.name} is not cached and {reason}")
        folding_file = out_dir / FOLDING_FILE
        folding_file.write_text(json.dumps({"Defaults": {}, **folding}, indent=2))
        run_finn_build(hw_artifact.file(HW_MODEL), synthesis_config(board, out_dir / BUILD_DIR, folding_file, clock_ns))
        check_package(BuildPaths(out_dir / BUILD_DIR).deploy)

    return store.get_or_build("finn_synthesis", config, build, inputs=inputs, job=JobSpec("vivado"))


def read_build(build_dir: Path, clock_ns: float) -> SynthesisBuild:
    """Utilisation and timing of a finished FINN build folder (its ``output_dir``)."""
    paths = BuildPaths(Path(build_dir))
    system = read_post_synth_resources(paths.post_synth_resources)
    try:
        wns = parse_timing_summary(paths.post_route_timing.read_text())
    except OSError:
        raise UserError(f"no {paths.post_route_timing}: pass the output folder of a finished FINN bitfile build") from None
    system = SynthesisResult(system.lut, system.ff, system.bram36, system.dsp, system.uram, wns, fmax_mhz(clock_ns, wns))
    return SynthesisBuild(read_ooc_synth_and_timing(paths.ooc), system, paths.root)


def finished_build(store: ArtifactStore, hw_artifact: Artifact, board: Board, folding: dict | None,
                   clock_ns: float | None = None) -> SynthesisBuild:
    """``synthesis_artifact``'s build (made now unless cached), its reports read and its deployment
    package checked."""
    clock_ns = clock_ns or board.clock_ns
    artifact = synthesis_artifact(store, hw_artifact, board, folding, clock_ns)
    build = dataclasses.replace(read_build(artifact.path / BUILD_DIR, clock_ns), key=artifact.key,
                                fifo_depths=fifo_depths_source(artifact.config["folding"]))
    check_package(build.deploy_dir)
    return build
