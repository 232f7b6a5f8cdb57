"""FINN's own cost estimates of a folded HW-layer model, as plain data.

Per layer: ``exp_cycles_per_layer`` and ``res_estimation`` (FINN's analytical LUT/BRAM/URAM/DSP
models for the board's part); network: ``AnnotateCycles`` + ``dataflow_performance``, with fps and
latency derived exactly as ``step_generate_estimate_reports`` derives them.
"""

from dataclasses import asdict, dataclass
from functools import partial

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.finnflow.finn_setup import boot_finn

DEFAULT_CLOCK_NS = 10.0
RESOURCES = ("LUT", "BRAM_18K", "URAM", "DSP")  # the keys of FINN's res_estimation


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    op_type: str
    pe: int | None
    simd: int | None
    mw: int | None  # MVAU/VVAU matrix width (input features per output)
    mh: int | None  # MVAU matrix height (output features)
    channels: int  # channels of the layer's input stream
    cycles: int
    lut: float
    bram18: float
    uram: float
    dsp: float


@dataclass(frozen=True)
class NetworkEstimate:
    part: str
    clock_ns: float
    layers: tuple[LayerEstimate, ...]
    max_cycles: int
    bottleneck: str
    critical_path_cycles: int
    est_fps: float
    latency_ns: float

    @property
    def totals(self) -> dict[str, float]:
        """LUT, BRAM18, URAM, DSP summed over layers (as FINN's ``aggregate_dict_keys``)."""
        return {key: sum(getattr(layer, key) for layer in self.layers)
                for key in ("lut", "bram18", "uram", "dsp")}

    def to_dict(self) -> dict:
        return {**asdict(self), "totals": self.totals}


def _attr(op, name: str):
    return op.get_nodeattr(name) if name in op.get_nodeattr_types() else None


def estimate(model: ModelWrapper, part: str, clock_ns: float = DEFAULT_CLOCK_NS,
             annotate_in_place: bool = False) -> NetworkEstimate:
    """FINN's cycle, resource and throughput estimates of a folded, specialised HW-layer model.

    ``annotate_in_place`` lets AnnotateCycles write its attribute into ``model`` instead of a
    copy (for callers that own the model and evaluate many foldings).
    """
    boot_finn()
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    cycles = model.analysis(exp_cycles_per_layer)
    resources = model.analysis(partial(res_estimation, fpgapart=part))
    annotated = model.transform(AnnotateCycles(), make_deepcopy=not annotate_in_place)
    performance = annotated.analysis(dataflow_performance)
    layers = []
    for node in model.graph.node:
        if node.name not in cycles:
            continue
        op = getCustomOp(node)
        res = resources[node.name]
        layers.append(LayerEstimate(
            name=node.name, op_type=node.op_type, pe=_attr(op, "PE"), simd=_attr(op, "SIMD"),
            mw=_attr(op, "MW"), mh=_attr(op, "MH"), channels=int(op.get_normal_input_shape()[-1]),
            cycles=int(cycles[node.name]), lut=float(res.get("LUT", 0)),
            bram18=float(res.get("BRAM_18K", 0)), uram=float(res.get("URAM", 0)),
            dsp=float(res.get("DSP", 0))))
    max_cycles = int(performance["max_cycles"])
    return NetworkEstimate(
        part=part, clock_ns=clock_ns, layers=tuple(layers), max_cycles=max_cycles,
        bottleneck=performance["max_cycles_node_name"],
        critical_path_cycles=int(performance["critical_path_cycles"]),
        est_fps=(10**9 / clock_ns) / max_cycles,
        latency_ns=int(performance["critical_path_cycles"]) * clock_ns)


class FoldingEvaluator:
    """Estimates many foldings of one HW-layer model quickly (design-space search).

    FINN's bit-width minimisation depends on weight, threshold and accumulator values, not on
    PE/SIMD, so it runs once here (FINN's ``apply_folding`` path with an empty folding); each
    evaluation then only sets attributes on a private copy and runs FINN's analyses. Attributes a
    folding leaves out keep the HW model's own values, as with ``apply_folding``.
    tests/test_finnflow.py checks both paths give the same estimates and datatypes.
    """

    def __init__(self, hw_model: ModelWrapper, part: str, clock_ns: float = DEFAULT_CLOCK_NS):
        from pynqrepro.finnflow.foldconfig import apply_folding

        self.model = apply_folding(hw_model, {})
        self.part = part
        self.clock_ns = clock_ns
        self._original: dict[str, dict] = {}  # node -> attribute -> value before any folding

    def evaluate(self, folding: dict) -> NetworkEstimate:
        """The estimate at ``folding``, validated as ``apply_folding`` validates it."""
        from finn.transformation.general import ApplyConfig

        from pynqrepro.finnflow.foldconfig import check_depthwise_swg, validate_folding

        validate_folding(self.model, folding)
        for name, attrs in folding.items():
            if name != "Defaults":
                op = getCustomOp(self.model.get_node_from_name(name))
                for attr in attrs:
                    self._original.setdefault(name, {}).setdefault(attr, op.get_nodeattr(attr))
        config = {name: {**original, **folding.get(name, {})} for name, original in self._original.items()}
        config["Defaults"] = folding.get("Defaults", {})
        self.model = self.model.transform(ApplyConfig(config), make_deepcopy=False)
        check_depthwise_swg(self.model)
        return estimate(self.model, self.part, self.clock_ns, annotate_in_place=True)
