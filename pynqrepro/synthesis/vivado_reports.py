"""Parsers for the reports a FINN build writes: out-of-context synthesis, post-synthesis utilisation
(JSON) and Vivado's post-route timing summary."""

import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.errors import UserError

@dataclass(frozen=True)
class SynthesisResult:
    lut: float
    ff: float
    bram36: float  # BRAM tiles (36 Kb) = 2 x BRAM18
    dsp: float
    uram: float = 0.0
    wns_ns: float | None = None
    fmax_mhz: float | None = None


def read_ooc_synth_and_timing(path: Path) -> SynthesisResult:
    """FINN's ``ooc_synth_and_timing.json`` (step_out_of_context_synthesis; "BRAM" counts 36 Kb tiles)."""
    try:
        data = json.loads(Path(path).read_text())
        return SynthesisResult(float(data["LUT"]), float(data["FF"]), float(data["BRAM"]), float(data["DSP"]),
                               float(data.get("URAM", 0.0)), float(data["WNS"]), float(data["fmax_mhz"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot read {path} as FINN's ooc_synth_and_timing.json ({exc!r}): "
                        f"pass the file from the build's report/ folder") from None


def estimate_ratios(est_lut: float, est_bram18: float, est_dsp: float, synth: SynthesisResult) -> dict:
    """FINN estimate / synthesis per resource (BRAM compared in 18 Kb units; None where synthesis is 0)."""
    def ratio(estimate, actual):
        return round(estimate / actual, 3) if actual else None

    return {"LUT est/synth": ratio(est_lut, synth.lut), "BRAM18 est/synth": ratio(est_bram18, 2 * synth.bram36),
            "DSP est/synth": ratio(est_dsp, synth.dsp)}


def read_post_synth_resources(path: Path) -> SynthesisResult:
    """The whole design's ("(top)", shell included) utilisation from FINN's ``post_synth_resources.json``
    (``step_synthesize_bitfile``, Zynq flow); BRAM as 36 Kb tiles = RAMB36 + RAMB18 / 2."""
    try:
        top = json.loads(Path(path).read_text())["(top)"]
        return SynthesisResult(float(top["LUT"]), float(top["FF"]),
                               float(top["BRAM_36K"]) + float(top["BRAM_18K"]) / 2, float(top["DSP"]),
                               float(top.get("URAM", 0.0)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {path} as FINN's post_synth_resources.json ({exc!r}): "
                        f"pass the file from the build's report/ folder") from None


def parse_timing_summary(text: str) -> float:
    """Worst negative slack (ns) from the "Design Timing Summary" of Vivado's ``report_timing_summary``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == ["WNS(ns)"]:
            values = [row.split() for row in lines[i + 1:] if row.strip() and not set(row.strip()) <= set("- ")]
            if values:
                try:
                    return float(values[0][0])
                except ValueError:
                    break
    raise UserError("not a Vivado timing summary (no WNS(ns) value under 'Design Timing Summary'): "
                    "pass the text of report_timing_summary, e.g. the build's report/post_route_timing.rpt")


def fmax_mhz(clock_ns: float, wns_ns: float) -> float:
    """Highest clock the design meets: 1000 / (target period - WNS), as FINN's SynthOutOfContext computes it."""
    return 1000.0 / (clock_ns - wns_ns)


# --- a finished FINN build's output folder -------------------------------------------------------

RESOURCE_NAMES = ("LUT", "BRAM_18K", "URAM", "DSP")  # FINN's res_estimation names; BRAM in 18 Kb blocks
# FINN v0.5b-v0.7 node names -> the op types finn-plus names the same hardware (HLS then)
LEGACY_OP_TYPES = {"StreamingFCLayer_Batch": "MVAU_hls", "Thresholding_Batch": "Thresholding_hls",
                   "StreamingMaxPool_Batch": "StreamingMaxPool_hls", "LabelSelect_Batch": "LabelSelect_hls",
                   "FMPadding_Batch": "FMPadding_hls", "ConvolutionInputGenerator": "ConvolutionInputGenerator_hls",
                   "StreamingDataWidthConverter_Batch": "StreamingDataWidthConverter_hls",
                   "StreamingFIFO": "StreamingFIFO_rtl", "ChannelwiseOp_Batch": "ChannelwiseOp_hls",
                   "GlobalAccPool_Batch": "GlobalAccPool_hls", "AddStreams_Batch": "AddStreams_hls",
                   "DuplicateStreams_Batch": "DuplicateStreams_hls", "Vector_Vector_Activate_Batch": "VVAU_hls"}
SHELL_OP_TYPES = ("IODMA",)  # in post_synth_resources' per-node rows, part of the shell


def op_type_of(node_name: str) -> str:
    """FINN's op type from a node name as FINN's GiveUniqueNodeNames writes it (``MVAU_hls_3``,
    ``StreamingDataflowPartition_1_MVAU_hls_3``), legacy names mapped to finn-plus's."""
    name = node_name.split("_", 2)[2] if node_name.startswith("StreamingDataflowPartition_") else node_name
    base, _, index = name.rpartition("_")
    base = base if index.isdigit() else name
    return LEGACY_OP_TYPES.get(base, base)


def node_name_of(instance: str) -> str:
    """The graph node's name of a per-instance row of post_synth_resources (partition prefix dropped)."""
    return instance.split("_", 2)[2] if instance.startswith("StreamingDataflowPartition_") else instance


@dataclass(frozen=True)
class FinnBuild:
    """What a finished FINN build's output folder says: the real resources (whole design and, where
    FINN reports them, per node), in a named scope; FINN's own estimate per node; the folding and
    the FIFO depths it was built with. BRAM counts 18 Kb blocks (a RAMB36 is 2)."""

    path: Path
    scope: str  # "post-route, in the shell" (post_synth_resources) or "post-route, out of context" (OOC)
    tool: str  # Vivado version where the files say it, else "Vivado (version not in the files)"
    totals: dict  # real whole design in ``scope``: {resource: count}
    nodes: dict  # real per node, post-route in the shell: {node name: {resource: count}}; {} for OOC only
    shell_nodes: dict  # the shell's per-node rows (IODMAs) of post_synth_resources
    estimate: dict  # FINN's estimate_layer_resources rows per node (no "total"); {} if absent
    hw_config: dict  # final_hw_config.json (per-node attributes, FIFO depths); {} if absent
    folding_file: Path | None  # the folding in the folder (final_hw_config is one too), if any
    models: tuple  # intermediate ONNX models in the folder

    @property
    def in_shell(self) -> bool:
        return self.scope.endswith("in the shell")

    def fifo_depths(self) -> dict:
        """Depth of every StreamingFIFO the build made (from final_hw_config)."""
        return {name: int(attrs["depth"]) for name, attrs in self.hw_config.items()
                if op_type_of(name).startswith("StreamingFIFO") and "depth" in attrs}

    def built_nodes(self) -> list[str]:
        """The nodes of the built graph: final_hw_config's and the per-node report's (FINN may split
        FIFOs after writing the config), else the estimate's."""
        names = [n for n in self.hw_config if n != "Defaults"]
        names += [n for n in self.nodes if n not in self.hw_config]
        return names or list(self.estimate)


BUILD_FILES = {"post_synth": "report/post_synth_resources.json", "ooc": "report/ooc_synth_and_timing.json",
               "estimate": "report/estimate_layer_resources.json", "hw_config": "final_hw_config.json"}
FOLDING_FILES = ("auto_folding_config.json", "folding_config.json", "final_hw_config.json")  # first found


def _json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not FINN's {what} ({type(exc).__name__}): pass the output folder of a "
                        f"finished FINN build (report/ and final_hw_config.json as FINN writes them)") from None


def _resources(row, path: Path) -> dict:
    """One per-node or (top) row of post_synth_resources in 18 Kb BRAM units."""
    try:
        return {"LUT": float(row["LUT"]), "BRAM_18K": 2 * float(row["BRAM_36K"]) + float(row["BRAM_18K"]),
                "URAM": float(row.get("URAM", 0)), "DSP": float(row["DSP"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is not FINN's post_synth_resources.json (a row lacks {exc}): pass the file "
                        f"FINN's step_synthesize_bitfile writes to report/") from None


def _estimate_rows(data, path: Path) -> dict:
    if not isinstance(data, dict) or not all(isinstance(v, dict) and {"LUT", "BRAM_18K"} <= set(v)
                                             for v in data.values()):
        raise UserError(f"{path} is not FINN's estimate_layer_resources.json (rows of LUT/BRAM_18K per node): "
                        f"pass the file FINN's step_generate_estimate_reports writes to report/")
    return {name: {r: float(row.get(r, 0)) for r in (*RESOURCE_NAMES, "BRAM_efficiency", "URAM_efficiency")}
            for name, row in data.items() if name != "total"}


def read_finn_build(path: Path) -> FinnBuild:
    """A finished FINN build's output folder (``output_dir`` of ``build_dataflow``): the whole design
    post-route in the shell (``report/post_synth_resources.json``, step_synthesize_bitfile), else
    out of context (``report/ooc_synth_and_timing.json``); FINN's estimate, the final config and
    folding where present. Anything else, or a malformed file, is a one-line UserError."""
    path = Path(path)
    files = {key: path / rel for key, rel in BUILD_FILES.items() if (path / rel).is_file()}
    if not path.is_dir() or not ({"post_synth", "ooc"} & set(files)):
        raise UserError(f"{path} is not a finished FINN build's output folder (no report/post_synth_resources.json "
                        f"or report/ooc_synth_and_timing.json): pass the output_dir of a build that ran "
                        f"step_synthesize_bitfile or step_out_of_context_synthesis")
    nodes, shell_nodes, tool = {}, {}, "Vivado (version not in the files)"
    if "post_synth" in files:
        data = _json(files["post_synth"], "post_synth_resources.json")
        if not isinstance(data, dict) or "(top)" not in data:
            raise UserError(f"{files['post_synth']} is not FINN's post_synth_resources.json (no '(top)' row): "
                            f"pass the file FINN's step_synthesize_bitfile writes to report/")
        totals = _resources(data["(top)"], files["post_synth"])
        for instance, row in data.items():
            if instance == "(top)":
                continue
            target = shell_nodes if op_type_of(instance).startswith(SHELL_OP_TYPES) else nodes
            target[node_name_of(instance)] = _resources(row, files["post_synth"])
        scope = "post-route, in the shell"
    else:
        ooc = read_ooc_synth_and_timing(files["ooc"])
        totals = {"LUT": ooc.lut, "BRAM_18K": 2 * ooc.bram36, "URAM": ooc.uram, "DSP": ooc.dsp}
        version = _json(files["ooc"], "ooc_synth_and_timing.json").get("vivado_version")
        if version:
            tool = f"Vivado {version}"
        scope = "post-route, out of context"
    estimate = _estimate_rows(_json(files["estimate"], "estimate_layer_resources.json"), files["estimate"]) \
        if "estimate" in files else {}
    hw_config = _json(files["hw_config"], "final_hw_config.json") if "hw_config" in files else {}
    if not isinstance(hw_config, dict):
        raise UserError(f"{files['hw_config']} is not FINN's final_hw_config.json (a JSON object per node): "
                        f"pass the file FINN's build writes beside report/")
    folding = next((path / name for name in FOLDING_FILES if (path / name).is_file()), None)
    models = tuple(sorted((path / "intermediate_models").glob("*.onnx")))
    return FinnBuild(path, scope, tool, totals, nodes, shell_nodes, estimate, hw_config, folding, models)
