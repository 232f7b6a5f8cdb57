"""FINN ApplyConfig folding (PE/SIMD) of a HW-layer model: validation, application and FINN's published configs.

A folding is FINN's ``ApplyConfig`` JSON as a dict: ``{"Defaults": {...}, "<node name>":
{"PE": .., "SIMD": .., "ram_style": ..}}``. Legal PE/SIMD values divide the dimension they unroll,
by the same rules as FINN's ``SetFolding``.
"""

import math
import re
import tempfile
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.divisors import divisors
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.finn_setup import builder_steps
from pynqrepro.references import FINN_FOLDINGS, finn_folding

# base op type -> {folding attribute: node attribute (or callable) giving the dimension it divides}
_FOLDED_DIMENSIONS = {
    "MVAU": {"SIMD": "MW", "PE": "MH"},
    "VVAU": {"PE": "Channels", "SIMD": lambda op: int(np.prod(op.get_nodeattr("Kernel")))},
    "ConvolutionInputGenerator": {"SIMD": "IFMChannels"},
    "Thresholding": {"PE": "NumChannels"},
    "Pool": {"PE": "Channels"},
    "LabelSelect": {"PE": "Labels"},
    "FMPadding": {"SIMD": "NumChannels"},
    "FMPadding_Pixel": {"SIMD": "NumChannels"},
    # FINN's Reshape asserts its PE divides the last axis of both its input and its output
    "Reshape": {"PE": lambda op: math.gcd(op.get_nodeattr("inp_shape")[-1], op.get_nodeattr("out_shape")[-1])},
}
FOLDING_ATTRS = ("PE", "SIMD")
ALL_ONES = "all-ones"  # the folding spec of PE = SIMD = 1 everywhere


def base_op_type(op_type: str) -> str:
    """FINN's generic op type of a specialised node (``MVAU_hls`` -> ``MVAU``)."""
    return re.sub(r"_(hls|rtl)$", "", op_type)


def folded_dimensions(model: ModelWrapper) -> dict[str, dict[str, int]]:
    """Per HW node name: {"PE"/"SIMD": the dimension that value must divide}."""
    dims = {}
    for node in model.graph.node:
        rules = _FOLDED_DIMENSIONS.get(base_op_type(node.op_type))
        if rules is None:
            continue
        op = getCustomOp(node)
        dims[node.name] = {
            attr: int(source(op) if callable(source) else op.get_nodeattr(source))
            for attr, source in rules.items()
        }
    return dims


def all_ones_folding(model: ModelWrapper) -> dict:
    """PE = SIMD = 1 on every folded node: the slowest, smallest design."""
    return {"Defaults": {}, **{name: {attr: 1 for attr in attrs}
                               for name, attrs in folded_dimensions(model).items()}}


def validate_folding(model: ModelWrapper, folding: dict) -> None:
    """UserError for unknown node names, unknown attributes or PE/SIMD not dividing their dimension."""
    if not isinstance(folding, dict):
        raise UserError("a folding must be a JSON object {node name: {attribute: value}} (FINN ApplyConfig)")
    nodes = {node.name: node for node in model.graph.node}
    unknown = sorted(name for name in folding if name != "Defaults" and name not in nodes)
    if unknown:
        raise UserError(f"folding names unknown node(s) {', '.join(unknown)}: "
                        f"this model's nodes are {', '.join(nodes)}")
    dims = folded_dimensions(model)
    problems = []
    for name, attrs in folding.items():
        if name == "Defaults":
            continue
        known_attrs = getCustomOp(nodes[name]).get_nodeattr_types()
        for attr, value in attrs.items():
            if attr not in known_attrs:
                problems.append(f"{name} has no attribute {attr}")
            elif attr in FOLDING_ATTRS:
                dim = dims.get(name, {}).get(attr)
                if dim is not None and (not isinstance(value, int) or dim % value):
                    legal = ", ".join(map(str, divisors(dim)))
                    problems.append(f"{name} {attr}={value} (legal: {legal})")
    if problems:
        raise UserError("illegal folding: " + "; ".join(problems))


def check_depthwise_swg(model: ModelWrapper) -> None:
    """A depthwise SWG must stream exactly as many channels per cycle as its Pool/VVAU consumes."""
    problems = []
    for node in model.graph.node:
        if base_op_type(node.op_type) != "ConvolutionInputGenerator":
            continue
        swg = getCustomOp(node)
        consumer = model.find_consumer(node.output[0])
        if not swg.get_nodeattr("depthwise") or consumer is None:
            continue
        pe = getCustomOp(consumer).get_nodeattr("PE")
        if swg.get_nodeattr("SIMD") != pe:
            problems.append(f"{node.name} SIMD={swg.get_nodeattr('SIMD')} but {consumer.name} PE={pe}")
    if problems:
        raise UserError("depthwise SWG SIMD must equal its consumer's PE: " + "; ".join(problems))


def apply_folding(hw_model: ModelWrapper, folding: dict | None = None) -> ModelWrapper:
    """A copy of ``hw_model`` with ``folding`` applied (None: all PE=SIMD=1), then FINN's
    ``step_minimize_bit_width`` as the builder runs it after ``step_apply_folding_config``."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from finn.transformation.general import ApplyConfig

    steps = builder_steps()
    folding = all_ones_folding(hw_model) if folding is None else folding
    validate_folding(hw_model, folding)
    model = hw_model.transform(ApplyConfig({"Defaults": {}, **folding}))
    check_depthwise_swg(model)
    with tempfile.TemporaryDirectory(prefix="pynqrepro-fold-") as tmp:
        return steps.step_minimize_bit_width(model, DataflowBuildConfig(output_dir=tmp))


def published_folding(model: ModelWrapper, weight_bits: int, act_bits: int) -> dict:
    """FINN's published CNV folding for these bit widths, as this model names its nodes.

    The published foldings number only the conv layers' sliding-window generators
    (``ConvolutionInputGenerator_rtl_k`` feeds conv ``k``, as FINN's ``fold_cnv_*`` test helpers set
    them), while finn-plus lowers each max-pool to a depthwise SWG + Pool too, which shifts the
    numbering. The k-th published SWG entry goes to the k-th non-depthwise SWG; the pool SWGs and
    Pools keep the HW model's settings (fully parallel: SIMD = PE = channels), as FINN's ApplyConfig
    leaves unlisted nodes.
    """
    folding = finn_folding(weight_bits, act_bits)
    published = sorted((name for name in folding if name.startswith("ConvolutionInputGenerator")),
                       key=lambda name: int(name.rsplit("_", 1)[1]))
    conv_swgs = [node.name for node in model.graph.node
                 if base_op_type(node.op_type) == "ConvolutionInputGenerator"
                 and not getCustomOp(node).get_nodeattr("depthwise")]
    if len(published) != len(conv_swgs):
        raise UserError(f"FINN's CNV w{weight_bits}a{act_bits} folding sets {len(published)} conv SWGs but the "
                        f"model has {len(conv_swgs)} ({', '.join(conv_swgs)}): pass a folding written for this model")
    renamed = {name: attrs for name, attrs in folding.items() if name not in published}
    renamed.update({ours: folding[theirs] for theirs, ours in zip(published, conv_swgs)})
    return renamed


def read_folding(path: Path) -> dict:
    """A folding JSON file; unreadable or malformed is a UserError."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read folding {path} ({exc}): pass a FINN ApplyConfig JSON file") from None


def resolve_folding(spec: str, hw_model) -> dict | None:
    """A folding named on the command line: 'all-ones' (None), 'finn:wXaY' (FINN's published CNV
    folding mapped to this model) or a FINN ApplyConfig JSON file."""
    if spec == ALL_ONES:
        return None
    if spec.startswith("finn:"):
        try:
            weight_bits, act_bits = (int(x) for x in spec[len("finn:w"):].split("a"))
        except ValueError:
            raise UserError(f"bad folding {spec!r}: use {', '.join(f'finn:{name}' for name in FINN_FOLDINGS)}") from None
        return published_folding(hw_model, weight_bits, act_bits)
    return read_folding(Path(spec))
