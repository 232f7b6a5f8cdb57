"""The search space: per *group* of HW nodes whose folding is tied, every legal candidate with
its FINN-estimated costs.

Groups are single nodes except a depthwise ConvolutionInputGenerator and the Pool/VVAU it feeds,
whose SIMD and PE FINN requires to be equal. Legality follows FINN: PE divides MH (channels),
SIMD divides MW (IFMChannels), an MVAU's weight bits per PE (SIMD x W) stay within
``mvau_wwidth_max`` as in SetFolding, and any other node's PE passes FINN's own folded-shape
assertions (a Reshape's PE divides the last axis of its input and of its output). Buildable by
construction: the space also holds only what FINN's code generation (step_hw_codegen, the last
pure-Python step before the first Xilinx tool) accepts, rules read from FINN's node classes:
MVAU_hls ``defines("ipgen")`` needs SIMD >= MW / 1024 and its weight stream (PE x SIMD x W) fits
an ap_uint of 8191 bits; ConvolutionInputGenerator_rtl ``generate_hdl`` needs SIMD = IFMChannels
in the parallel-window style and, in the default style, address increments within its buffer
(``prepare_codegen_default``). tests/test_folding_buildable.py sweeps foldings through FINN's
code generation. Nodes FINN's SetFolding does not fold keep their setting
(one candidate) but still count towards the totals.

Besides PE/SIMD, the FINN implementation choices its estimates model can be decisions too
(``SpaceOptions``; off by default, so a node keeps the setting of the HW model, as FINN's build
leaves it): MVAU weight memory in BRAM or LUTRAM (``ram_style``), MVAU_hls multipliers in LUTs or
DSPs (``resType``), MVAU_hls thresholds in LUTRAM or BRAM (``ram_style_thresholds``, priced by
pynqrepro's estimate only: FINN's counts thresholds for "distributed" alone), and sliding-window
line buffers in BRAM or LUTRAM (SWG ``ram_style``, also for a depthwise SWG tied to its Pool).
Every candidate is one point of the Cartesian product of a
group's axes.

Pruning-aware mode: a pruned MVAU is either sized by the study's rule at each candidate SIMD
(``StudyRule``, what the study's notebook does), or, for a trained and masked network, sized by
its masks (``MaskedBlocks``): at a folding SIMD dividing the masks' block width, block skipping
leaves MW = the columns the masks keep; at any other SIMD the layer runs dense.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.divisors import divisors
from pynqrepro.core.errors import UserError
from pynqrepro.core.options import shorten
from pynqrepro.folding import costmodel
from pynqrepro.folding import decision
from pynqrepro.pruning.rules import pruned_columns
from pynqrepro.references import MVAU_WWIDTH_MAX

DEPTHWISE_CONSUMERS = ("Pool_hls", "VVAU_hls", "VVAU_rtl")


@dataclass
class Group:
    """One decision of the optimiser: candidates are rows of ``params`` and ``costs``."""

    name: str
    nodes: list  # NodeSpec of every node the decision sets
    params: dict  # parameter -> per-candidate np.ndarray (PE, SIMD, ram_style/resType codes, MW)
    costs: costmodel.Costs  # pynqrepro's estimate (``folding.decision``): what the optimiser decides on
    node_attrs: dict = field(default_factory=dict)  # node name -> attributes it takes from params
    finn: costmodel.Costs | None = None  # FINN's own estimate of the candidates (None: same as ``costs``)

    @property
    def finn_costs(self) -> costmodel.Costs:
        """FINN's raw estimate of every candidate, beside ours."""
        return self.costs if self.finn is None else self.finn

    def __len__(self) -> int:
        return len(self.costs.cycles)

    def assignment(self, i: int) -> dict:
        """{node name: {attr: value}} of candidate ``i`` in FINN folding-config form."""
        out = {}
        for node, attrs in self.node_attrs.items():
            entry = {}
            for attr, param in attrs.items():
                entry[attr] = costmodel.decode(attr, self.params[param][i])
            out[node] = entry
        return out


@dataclass(frozen=True)
class StudyRule:
    """The study's SIMD-block rule at ``fraction``, applied at whatever SIMD the optimiser picks."""

    fraction: float

    def check(self, node: str, columns: int) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise UserError(f"pruning fraction {self.fraction} for {node} is outside [0, 1): use e.g. 0.3")

    def columns(self, columns: int, simd: np.ndarray) -> np.ndarray:
        return np.asarray([pruned_columns(columns, int(s), self.fraction) for s in simd], dtype=np.int64)


@dataclass(frozen=True)
class MaskedBlocks:
    """A masked MVAU: its masks zero blocks of ``mask_simd`` columns and keep ``kept_columns``.

    A block-skipping input generator skips whole mask blocks only if the folding SIMD divides
    ``mask_simd`` (a folding word must not straddle a kept and a pruned block); the MVAU then
    streams only the kept columns. At any other legal SIMD the layer runs as stock FINN does,
    over all its columns (pruned weights are zeros), so both are candidates.
    """

    mask_simd: int
    kept_columns: int

    def check(self, node: str, columns: int) -> None:
        if self.mask_simd <= 0 or columns % self.mask_simd:
            raise UserError(f"mask SIMD {self.mask_simd} for {node} does not divide its MW {columns}: "
                            "use the SIMD list the masks were cut with")
        if not 0 < self.kept_columns <= columns or self.kept_columns % self.mask_simd:
            raise UserError(f"kept columns {self.kept_columns} for {node} are not a positive multiple of "
                            f"{self.mask_simd} up to {columns}: use kept_columns() of the node's masks")

    def columns(self, columns: int, simd: np.ndarray) -> np.ndarray:
        skips = self.mask_simd % simd == 0
        return np.where(skips, self.kept_columns, columns).astype(np.int64)


@dataclass(frozen=True)
class SpaceOptions:
    mvau_wwidth_max: int = MVAU_WWIDTH_MAX
    choose_ram_style: bool = False  # MVAU weights in block or distributed RAM as a decision
    # ((MVAU node name, fraction | StudyRule | MaskedBlocks), ...); a bare fraction is a StudyRule
    pruning: tuple = ()
    choose_res_type: bool = False  # MVAU_hls multipliers in LUTs or DSPs as a decision
    choose_swg_ram_style: bool = False  # SWG line buffers in block or distributed RAM as a decision
    choose_threshold_ram_style: bool = False  # MVAU_hls thresholds in LUTs or BRAM as a decision

    @classmethod
    def all_finn_choices(cls, **kwargs) -> "SpaceOptions":
        """Every FINN implementation choice the estimates model as a decision."""
        return cls(choose_ram_style=True, choose_res_type=True, choose_swg_ram_style=True,
                   choose_threshold_ram_style=True, **kwargs)


_BLOCK_OR_LUTRAM = ("block", "distributed")
# FINN's estimates treat "auto" as: block RAM (MVAU weights, SWG line buffers), LUT multipliers
_ESTIMATED_AS = {"ram_style": {"auto": "block"}, "resType": {"auto": "lut"}}


def estimated_as(attr: str, value):
    """The setting FINN's estimates cost ``value`` of ``attr`` as ("auto" RAM is block RAM, ...)."""
    return _ESTIMATED_AS.get(attr, {}).get(value, value)


def hw_nodes(model: ModelWrapper) -> list:
    """The model's nodes, all FINN HW layers the cost model can cost (FINN's dataflow partition)."""
    nodes = [n for n in model.graph.node if costmodel.is_hw_node(n)]
    if not nodes:
        raise UserError("the model has no FINN HW layers: pass a training checkpoint or the specialised "
                        "HW-layer ONNX (hw_model.onnx) of the FINN flow")
    for node in model.graph.node:
        if not costmodel.is_hw_node(node):
            raise UserError(f"node {node.name} ({node.op_type}) is not a FINN HW layer: the cost model does not "
                            "know it, so this model's folding cannot be optimised; pass FINN's dataflow partition "
                            "(hw_model.onnx), whose nodes are all HW layers")
    return nodes


def _spec(node, fpgapart: str) -> costmodel.NodeSpec:
    """The node's facts, or a UserError if FINN has no HW custom op of that type to cost it with."""
    try:
        return costmodel.node_spec(node, fpgapart)
    except Exception:  # qonnx's registry raises a bare Exception for unknown op types
        raise UserError(f"node {node.name} ({node.op_type}) is a HW op type the cost model does not know, so this "
                        "model's folding cannot be optimised: specialise it to a FINN HW layer or remove it") from None


def build_space(model: ModelWrapper, fpgapart: str, options: SpaceOptions = SpaceOptions()) -> list[Group]:
    """Every group of ``model`` with its legal candidates and their costs, in graph order."""
    from pynqrepro.finnflow.finn_setup import boot_finn

    boot_finn()  # FINN's settings (rtllib templates) for the code-generation checks in _folds
    nodes = hw_nodes(model)
    pruning = _pruning_by_node(nodes, options.pruning)
    tied = {}  # depthwise SWG name -> its Pool/VVAU consumer
    for node in nodes:
        if node.op_type in DEPTHWISE_CONSUMERS:
            producer = model.find_producer(node.input[0])
            if producer is not None and producer.op_type.startswith("ConvolutionInputGenerator"):
                tied[producer.name] = node
    groups = []
    for node in nodes:
        if node.name in tied:
            continue
        spec = _spec(node, fpgapart)
        if node.op_type.startswith("MVAU"):
            groups.append(_mvau_group(spec, options, pruning.get(node.name)))
        elif node.op_type.startswith("ConvolutionInputGenerator") and not spec.attrs["depthwise"]:
            groups.append(_swg_group(spec, options))
        elif node.op_type in DEPTHWISE_CONSUMERS:
            producer = model.find_producer(node.input[0])
            swg = _spec(producer, fpgapart) if producer is not None and producer.name in tied else None
            groups.append(_pe_group(spec, spec.attrs["Channels"], swg, options))
        elif "PE" in spec.attrs:
            groups.append(_pe_group(spec, _pe_limit(node, spec), None, options))
        else:
            groups.append(_fixed_group(spec))
    return groups


def _pruning_by_node(nodes, pruning: tuple) -> dict:
    """{MVAU node name: StudyRule | MaskedBlocks}; a bare fraction means the study's rule."""
    mvaus = [n.name for n in nodes if n.op_type.startswith("MVAU")]
    unknown = {name for name, _ in pruning} - set(mvaus)
    if unknown:
        raise UserError(f"pruning names {shorten(sorted(unknown))}, which are not MVAU nodes of the model: use its "
                        f"MVAU node names ({shorten(mvaus)})")
    return {name: value if isinstance(value, (StudyRule, MaskedBlocks)) else StudyRule(float(value))
            for name, value in pruning}


def _pe_limit(node, spec) -> int:
    """The maximum PE SetFolding uses: NumChannels, Labels, or the output's channel count."""
    for key in ("NumChannels", "Labels", "Channels"):
        if key in spec.attrs:
            return int(spec.attrs[key])
    return int(costmodel.getHWCustomOp(node).get_normal_output_shape()[-1])


def _grid(**axes) -> dict:
    """Every combination of the axes' values, as equally long flat arrays (the candidates)."""
    mesh = np.meshgrid(*(np.asarray(v, dtype=np.int64) for v in axes.values()), indexing="ij")
    return {name: m.ravel() for name, m in zip(axes, mesh)}


def _styles(spec, attr: str, choose: bool, values: tuple) -> list[int]:
    """Codes of ``attr`` the candidates take: the node's own setting, and if chosen the ``values``
    FINN's estimates tell apart from it ("auto" estimates as block RAM / LUT multipliers), so a
    folding that keeps the model's setting is always a candidate."""
    current = spec.attrs[attr]
    same = estimated_as(attr, current)
    return [costmodel.encode(attr, v) for v in (current,) + (tuple(v for v in values if v != same) if choose else ())]


def hls_mvau_codegen_accepts(simd, mw) -> np.ndarray:
    """MVAU_hls.defines("ipgen") (step_hw_codegen) asserts "HLS synthesis of MatrixVectorActivation
    requires: SIMD >= MW / 1024", for the MW the node is built with: the HW model's, also for a
    SIMD-block pruned layer whose estimate streams only the kept columns (its folding JSON is
    applied to the masked network, which stock FINN builds at its full MW)."""
    return np.asarray(simd) >= np.asarray(mw) / 1024


def _mvau_group(spec, options: SpaceOptions, pruning: StudyRule | MaskedBlocks | None) -> Group:
    a = spec.attrs
    if pruning is not None:
        pruning.check(spec.name, a["MW"])
    simds = divisors(a["MW"])
    simds = simds[simds * a["W"] <= options.mvau_wwidth_max]
    if len(simds) == 0:
        simds = np.asarray([1])
    # MVAU_rtl is DSP-only. 1-bit weights are XNOR-popcount or sign flips in finn-hlslib, which the
    # DSP resource hint cannot map to DSPs, although FINN's estimate would count DSPs for them.
    choose_res_type = options.choose_res_type and spec.op_type == "MVAU_hls" and a["W"] > 1
    # thresholds of an HLS MVAU: "auto"/"distributed" (LUTRAM, what HLS builds for the fully
    # partitioned array) or "block" (a BRAM18 per partition); MVAU_rtl has no embedded thresholds
    choose_thresholds = options.choose_threshold_ram_style and spec.op_type == "MVAU_hls" \
        and costmodel.threshold_levels(spec) > 0 and a["ram_style_thresholds"] != "block"
    thresholds = [costmodel.encode("ram_style_thresholds", a["ram_style_thresholds"])]
    if choose_thresholds:
        thresholds.append(costmodel.encode("ram_style_thresholds", "block"))
    c = _grid(PE=divisors(a["MH"]), SIMD=simds,
              ram_style=_styles(spec, "ram_style", options.choose_ram_style, _BLOCK_OR_LUTRAM),
              resType=_styles(spec, "resType", choose_res_type, ("lut", "dsp")), ram_style_thresholds=thresholds)
    if spec.op_type == "MVAU_hls":  # HLS weight streams are ap_uint, at most 8191 bits wide
        keep = c["PE"] * c["SIMD"] * a["W"] <= 8191
        c = {k: v[keep] for k, v in c.items()}
    c["MW"] = pruning.columns(a["MW"], c["SIMD"]) if pruning is not None else np.full(len(c["PE"]), a["MW"])
    if spec.op_type == "MVAU_hls":  # FINN generates the node of the HW model: its MW, even where pruning skips
        keep = hls_mvau_codegen_accepts(c["SIMD"], a["MW"])  # blocks (stock FINN builds a masked layer dense)
        if not keep.any():
            raise UserError(f"{spec.name} (MW {a['MW']}): FINN's HLS code generation accepts no legal SIMD "
                            "(SIMD >= MW / 1024 and SIMD dividing MW): prune or pad the layer to a MW with a "
                            "divisor of at least MW / 1024")
        c = {k: v[keep] for k, v in c.items()}
    attrs = {"PE": "PE", "SIMD": "SIMD"}
    if options.choose_ram_style:
        attrs["ram_style"] = "ram_style"
    if choose_res_type:
        attrs["resType"] = "resType"
    if choose_thresholds:
        attrs["ram_style_thresholds"] = "ram_style_thresholds"
    args = (spec, c["PE"], c["SIMD"], c["ram_style"], c["MW"], c["resType"])
    thresholds = c["ram_style_thresholds"]
    return Group(spec.name, [spec], c, decision.mvau(*args, thresholds=thresholds), {spec.name: attrs},
                 costmodel.mvau_costs(*args, thresholds=thresholds))


def _swg_costs(spec, simd: np.ndarray, ram_style: np.ndarray) -> tuple[costmodel.Costs, costmodel.Costs]:
    """(ours, FINN's) costs of a sliding window at each candidate."""
    if costmodel.swg_vectorised(spec):
        finn = costmodel.swg_costs(spec, simd, ram_style)
    else:
        finn = costmodel.finn_costs(spec, [{"SIMD": int(s), "ram_style": costmodel.decode("ram_style", r)}
                                    for s, r in zip(simd, ram_style)])
    return decision.other(spec, finn), finn


def _swg_group(spec, options: SpaceOptions) -> Group:
    c = _grid(SIMD=_legal(spec, "SIMD", divisors(spec.attrs["IFMChannels"])),
              ram_style=_styles(spec, "ram_style", options.choose_swg_ram_style, _BLOCK_OR_LUTRAM))
    attrs = {"SIMD": "SIMD", "ram_style": "ram_style"} if options.choose_swg_ram_style else {"SIMD": "SIMD"}
    ours, finn = _swg_costs(spec, c["SIMD"], c["ram_style"])
    return Group(spec.name, [spec], c, ours, {spec.name: attrs}, finn)


def _folds(spec, attr: str, value: int) -> bool:
    """Whether FINN's own checks accept ``attr`` = ``value``: the folded-shape assertions (e.g.
    Reshape's PE dividing the last axis of its input and of its output) and, for an RTL sliding
    window, the ones its HDL generation (generate_hdl in step_hw_codegen) runs: the implementation
    style's (a parallel-window, non-depthwise window streams all channels at once) and the default
    style's buffer addressing (prepare_codegen_default: no address increment beyond the buffer)."""
    inst = costmodel.getHWCustomOp(spec.onnx_node)
    saved = inst.get_nodeattr(attr)
    inst.set_nodeattr(attr, int(value))
    try:
        inst.get_folded_input_shape(0)
        for i in range(len(spec.onnx_node.output)):
            inst.get_folded_output_shape(i)
        if hasattr(inst, "select_impl_style") and inst.select_impl_style() == "default" \
                and hasattr(inst, "prepare_codegen_default"):
            inst.prepare_codegen_default()
        return True
    except AssertionError:
        return False
    finally:
        inst.set_nodeattr(attr, saved)


def _legal(spec, attr: str, values) -> np.ndarray:
    """The ``values`` FINN accepts for ``attr``; a UserError if it accepts none."""
    legal = np.asarray([v for v in values if _folds(spec, attr, v)], dtype=np.int64)
    if len(legal) == 0:
        raise UserError(f"{spec.name} ({spec.op_type}): FINN accepts no {attr} for this node, so the model cannot "
                        "be folded: check the layer's shape attributes")
    return legal


def _pe_group(spec, limit: int, swg, options: SpaceOptions) -> Group:
    """A PE-folded node; with ``swg``, the depthwise SWG feeding it, whose SIMD equals the PE."""
    pes = _legal(spec, "PE", divisors(limit))
    assignments = [{"PE": int(p)} for p in pes]
    finn = costmodel.finn_costs(spec, assignments)
    ours = decision.other(spec, finn)
    if swg is None:
        return Group(spec.name, [spec], {"PE": pes}, ours, {spec.name: {"PE": "PE"}}, finn)
    legal = np.isin(pes, _legal(swg, "SIMD", pes))
    pes, ours, finn = pes[legal], ours.take(legal), finn.take(legal)
    c = _grid(PE=pes, ram_style=_styles(swg, "ram_style", options.choose_swg_ram_style, _BLOCK_OR_LUTRAM))
    at = np.searchsorted(pes, c["PE"])
    swg_ours, swg_finn = _swg_costs(swg, c["PE"], c["ram_style"])
    swg_attrs = {"SIMD": "PE", "ram_style": "ram_style"} if options.choose_swg_ram_style else {"SIMD": "PE"}
    return Group(spec.name, [swg, spec], c, combine(ours.take(at), swg_ours),
                 {swg.name: swg_attrs, spec.name: {"PE": "PE"}}, combine(finn.take(at), swg_finn))


def _fixed_group(spec) -> Group:
    finn = costmodel.finn_costs(spec, [{}])
    return Group(spec.name, [spec], {}, decision.other(spec, finn), {}, finn)


def as_finn_estimates(groups: list[Group]) -> list[Group]:
    """The same candidates costed by FINN's raw estimate instead of ours: what FINN's SetFolding and
    the study decide on, kept to compare with (and to reproduce FINN-estimate figures)."""
    return [dataclasses.replace(g, costs=g.finn_costs, finn=None) for g in groups]


def combine(a: costmodel.Costs, b: costmodel.Costs) -> costmodel.Costs:
    """Costs of two tied nodes: the slower one sets the cycles, resources add up."""
    return costmodel.Costs(np.maximum(a.cycles, b.cycles), *(a.resource(r) + b.resource(r) for r in costmodel.RESOURCES))
