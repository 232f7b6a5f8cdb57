"""FINN ApplyConfig folding (PE/SIMD) of a HW-layer model: validation, application and FINN's published configs.

A folding is FINN's ``ApplyConfig`` JSON as a dict: ``{"Defaults": {...}, "<node name>":
{"PE": .., "SIMD": .., "ram_style": ..}}``. Legal PE/SIMD values divide the dimension they unroll,
by the same rules as FINN's ``SetFolding``.
"""

import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.divisors import divisors
from pynqrepro.core.errors import UserError
from pynqrepro.core.options import ALL_ONES, shorten
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


def _positive_int(value) -> bool:
    """A legal PE/SIMD type and sign; bool is an int in Python, but True is not a PE of 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate_folding(model: ModelWrapper, folding: dict) -> None:
    """UserError for unknown node names, unknown attributes or PE/SIMD not dividing their dimension."""
    if not isinstance(folding, dict):
        raise UserError("a folding must be a JSON object {node name: {attribute: value}} (FINN ApplyConfig)")
    nodes = {node.name: node for node in model.graph.node}
    unknown = sorted(name for name in folding if name != "Defaults" and name not in nodes)
    if unknown:
        raise UserError(f"folding names unknown node(s) {shorten(unknown)}: "
                        f"this model's nodes are {shorten(nodes, shown=len(nodes) if len(nodes) <= 40 else 5)}")
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
                if dim is not None and (not _positive_int(value) or dim % value):
                    legal = ", ".join(map(str, divisors(dim)))
                    problems.append(f"{name} {attr}={value} (legal: {legal})")
    if problems:
        raise UserError("illegal folding: " + shorten(problems, sep="; "))


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


def model_folding(model: ModelWrapper, folding: dict) -> dict:
    """A published CNV folding as ``model`` names its nodes.

    Published CNV foldings (FINN's, BNN-PYNQ's, the study's) number only the conv layers' sliding-
    window generators (``ConvolutionInputGenerator_rtl_k`` feeds conv ``k``, as FINN's
    ``fold_cnv_*`` test helpers set them), while finn-plus lowers each max-pool to a depthwise SWG +
    Pool too, which shifts the numbering. The k-th published SWG entry goes to the k-th
    non-depthwise SWG; the pool SWGs and Pools keep the HW model's settings (fully parallel: SIMD =
    PE = channels), as FINN's ApplyConfig leaves unlisted nodes. Likewise the k-th published MVAU
    entry (all ``MVAU_hls_k`` there) goes to the k-th MVAU, which finn-plus may make an
    ``MVAU_rtl`` (e.g. CNV W4A4's last layer), with the attributes that node has.
    """
    def conv_swg(node) -> bool:
        return (base_op_type(node.op_type) == "ConvolutionInputGenerator"
                and not getCustomOp(node).get_nodeattr("depthwise"))

    def mvau(node) -> bool:
        return base_op_type(node.op_type) == "MVAU"

    renamed = dict(folding)
    for prefix, ours in (("ConvolutionInputGenerator", conv_swg), ("MVAU", mvau)):
        published = sorted((name for name in folding if name.startswith(prefix)),
                           key=lambda name: int(name.rsplit("_", 1)[1]))
        nodes = [node for node in model.graph.node if ours(node)]
        if len(published) != len(nodes):
            raise UserError(f"the folding sets {len(published)} {prefix} nodes but the model has {len(nodes)} "
                            f"({', '.join(n.name for n in nodes)}): pass a folding written for this model")
        for name in published:
            del renamed[name]
        for published_name, node in zip(published, nodes):
            known = getCustomOp(node).get_nodeattr_types()
            renamed[node.name] = {attr: value for attr, value in folding[published_name].items() if attr in known}
    return renamed


def published_folding(model: ModelWrapper, weight_bits: int, act_bits: int) -> dict:
    """FINN's published CNV folding for these bit widths, as this model names its nodes."""
    return model_folding(model, finn_folding(weight_bits, act_bits))


def changes(model: ModelWrapper, folding: dict) -> dict:
    """What ``folding`` changes in ``model``: its node attributes whose values differ from the
    model's own (setting an attribute to its current value is a no-op for ApplyConfig), so two
    foldings with the same changes make the same FINN build."""
    out = {}
    for name, attrs in folding.items():
        if name == "Defaults":
            continue
        op = getCustomOp(model.get_node_from_name(name))
        changed = {attr: value for attr, value in attrs.items() if op.get_nodeattr(attr) != value}
        if changed:
            out[name] = changed
    return out


def read_folding(path: Path) -> dict:
    """A folding JSON file: an object of node objects whose PE/SIMD are positive integers (which
    values the nodes allow is checked against the model, ``validate_folding``); else a UserError."""
    import json

    try:
        folding = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read folding {path} ({exc}): pass a FINN ApplyConfig JSON file") from None
    fix = f"fix {path} or write it with pynqrepro fold"
    shape = "a FINN ApplyConfig JSON object {node: {attribute: value}}"
    if not isinstance(folding, dict):
        raise UserError(f"folding {path} is not {shape} but a JSON {type(folding).__name__}: {fix}")
    for name, attrs in folding.items():
        if not isinstance(attrs, dict):
            raise UserError(f"folding {path} is not {shape}: its entry {name[:80]!r} is {json.dumps(attrs)[:40]}, "
                            f"not an object such as {{\"PE\": 2, \"SIMD\": 3}}: {fix}")
    bad = [f"{name} {attr}={value!r}" for name, attrs in folding.items() for attr, value in attrs.items()
           if attr in FOLDING_ATTRS and not _positive_int(value)]
    if bad:
        raise UserError(f"folding {path} sets {shorten(bad)}: PE and SIMD must be integers >= 1; {fix}")
    if not any(attrs for attrs in folding.values()):  # {} or {"Defaults": {}}: silently all-ones before
        raise UserError(f"folding {path} sets no node's attributes, so every PE and SIMD would stay 1: pass "
                        f"{ALL_ONES} for that, or a folding pynqrepro fold wrote")
    return folding


def _published_bits(spec: str) -> tuple[int, int]:
    try:
        weight_bits, act_bits = (int(x) for x in spec.removeprefix("finn:w").split("a"))
    except ValueError:
        raise UserError(f"bad folding {spec!r}: use {', '.join(f'finn:{name}' for name in FINN_FOLDINGS)}, "
                        f"{ALL_ONES} or a JSON file") from None
    return weight_bits, act_bits


def folding_resolver(spec: str) -> Callable[[ModelWrapper], dict | None]:
    """A folding named on the command line, checked (a JSON file read, once) before any model is
    built; the returned function gives it as the HW model names its nodes: 'all-ones' None,
    'finn:wXaY' FINN's published CNV folding mapped to the model, else the FINN ApplyConfig file's."""
    if spec == ALL_ONES:
        return lambda hw_model: None
    if spec.startswith("finn:"):
        published = finn_folding(*_published_bits(spec))
        return lambda hw_model: model_folding(hw_model, published)
    if not Path(spec).exists():
        import difflib

        builtins = [ALL_ONES, *(f"finn:{name}" for name in FINN_FOLDINGS)]
        near = difflib.get_close_matches(spec.replace("_", "-").lower(), builtins, n=1, cutoff=0.6)
        hint = f"; did you mean the built-in {near[0]}?" if near else ""
        raise UserError(f"cannot read folding {spec} (no such file{hint}): pass a FINN ApplyConfig JSON file or one "
                        f"of the built-ins {', '.join(builtins)}")
    folding = read_folding(Path(spec))
    return lambda hw_model: folding
