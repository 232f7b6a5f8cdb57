"""pynqrepro's estimate: the per-node costs the optimiser decides on, FINN's estimate with its known
blind spots priced (issue 16), and an optional per-op-type affine correction fitted on real builds.

Three layers, per node and resource:

1. FINN's own estimate (``costmodel``; tested equal to FINN), kept beside ours as FINN's raw figure.
2. The analytic decision estimate: MVAU threshold logic and "auto" DSP multipliers and MVAU_rtl LUTs
   (``costmodel.mvau_costs(decision=True)``, with its evidence), and for the op types FINN estimates
   at zero although they cost LUTs/BRAM in every public build, the median of the post-route rows of
   those builds (``ZERO_ESTIMATED``, read from ``references/data/public-builds``).
3. ``node_model.json`` (``references/data``; fitted by ``pynqrepro calibrate``, absent: identity):
   per op type and resource, real ~ intercept + estimate x (layer 2) + memory_bits x (bits of weight
   and threshold memory of the node). Its "bound" (a budget margin) is not read here.

``node_decision_costs`` gives the features of every HW node of a folded model, for the optimiser's
tests and for the fit alike.
"""

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from pynqrepro.folding import costmodel as cm

PUBLIC_BUILDS = ("A1", "D", "E1", "E2")  # public builds with per-node post-route rows
# Op types FINN's estimate prices at 0 LUT and 0 BRAM, with real cost in every public build:
# A1 (CNV W1A1, PYNQ-Z2) StreamingMaxPool_hls_0 245 LUT + 2 RAMB36, _1 450 LUT + 4 RAMB36;
# D (LPYOLO) StreamingMaxPool_hls_0..4 300-892 LUT, FMPadding_rtl_0..8 45-326 LUT;
# E1 (RadioML W4A4) StreamingMaxPool_hls ~105 LUT each, FMPadding_rtl 40-273, LabelSelect_hls_0 75.
ZERO_ESTIMATED = ("StreamingMaxPool_hls", "FMPadding_rtl", "LabelSelect_hls")
NODE_MODEL = "node_model.json"
_CALIBRATED = ("LUT", "BRAM_18K", "DSP")  # resources node_model.json may correct


def _data() -> Path:
    return Path(str(resources.files("pynqrepro.references") / "data"))


def _op_type(instance: str) -> str:
    """FINN op type of a post_synth_resources.json row (``StreamingDataflowPartition_1_MVAU_hls_3``)."""
    return re.sub(r"_\d+$", "", re.sub(r"^StreamingDataflowPartition_\d+_", "", instance))


@lru_cache(maxsize=None)
def public_rows(op_type: str) -> tuple:
    """(build, node, LUT, BRAM18) of every post-route row of ``op_type`` in the public builds."""
    rows = []
    for build in PUBLIC_BUILDS:
        report = json.loads((_data() / "public-builds" / build / "post_synth_resources.json").read_text())
        for instance, res in report.items():
            if _op_type(instance) == op_type:
                bram18 = int(res.get("BRAM_18K", 0)) + 2 * int(res.get("BRAM_36K", 0))
                rows.append((build, instance, int(res["LUT"]), bram18))
    return tuple(rows)


@lru_cache(maxsize=None)
def zero_estimated_cost(op_type: str) -> dict:
    """Our figure for a node FINN estimates at zero: the median LUT and BRAM18 of its public rows."""
    rows = public_rows(op_type)
    return {"LUT": int(np.ceil(np.median([r[2] for r in rows]))),
            "BRAM_18K": int(np.ceil(np.median([r[3] for r in rows]))), "URAM": 0, "DSP": 0}


@dataclass(frozen=True)
class NodeModel:
    """Per op type and resource, (intercept, estimate, memory_bits) coefficients; identity elsewhere."""

    op_types: dict
    source: str = "identity (no node_model.json)"

    @classmethod
    def load(cls, path: Path | None = None) -> "NodeModel":
        path = path or _data() / NODE_MODEL
        if not path.exists():
            return cls({})
        data = json.loads(path.read_text())
        return cls(data.get("op_types", {}), data.get("source", str(path)))

    def apply(self, op_type: str, costs: cm.Costs, memory) -> cm.Costs:
        """``costs`` corrected where the model has coefficients (rounded up, never below 0)."""
        fitted = self.op_types.get(op_type)
        if not fitted:
            return costs
        out = {}
        for r in cm.RESOURCES:
            c = fitted.get(r) if r in _CALIBRATED else None
            value = costs.resource(r)
            if c is not None:
                value = c.get("intercept", 0.0) + c.get("estimate", 1.0) * value + c.get("memory_bits", 0.0) * memory
                value = np.maximum(np.ceil(np.asarray(value, dtype=np.float64) - 1e-9), 0)
            out[r] = np.broadcast_to(np.asarray(value), costs.cycles.shape).astype(np.int64)
        return cm.Costs(costs.cycles, **out)


@lru_cache(maxsize=1)
def node_model() -> NodeModel:
    return NodeModel.load()


def node_memory_bits(spec: cm.NodeSpec, mw=None):
    """Bits of weight and threshold memory of a node (0 where it has none)."""
    if spec.op_type.startswith("MVAU"):
        return cm.memory_bits(spec, mw)
    a = spec.attrs
    if spec.op_type.startswith("Thresholding") and "NumChannels" in a and "numSteps" in a:
        from qonnx.core.datatype import DataType

        weight = DataType[a["weightDataType"]].bitwidth() if "weightDataType" in a else 0
        return int(a["NumChannels"]) * int(a["numSteps"]) * weight
    return 0


def mvau(spec: cm.NodeSpec, pe, simd, ram_style, mw=None, res_type=None) -> cm.Costs:
    """Our estimate of an MVAU at each candidate."""
    costs = cm.mvau_costs(spec, pe, simd, ram_style, mw, res_type, decision=True)
    return node_model().apply(spec.op_type, costs, cm.memory_bits(spec, mw))


def _analytic(spec: cm.NodeSpec, finn: cm.Costs, assignments: list[dict] | None) -> cm.Costs:
    """Layer 2 for a node FINN's own methods cost (``finn``: one row per assignment): the public
    builds' figure where FINN says 0, thresholds priced as Vivado builds "auto" ones."""
    if spec.op_type in ZERO_ESTIMATED:
        floor = zero_estimated_cost(spec.op_type)
        return cm.Costs(finn.cycles, *(np.maximum(finn.resource(r), floor[r]) for r in cm.RESOURCES))
    if spec.attrs.get("noActivation", 1) == 0 and spec.attrs.get("ram_style_thresholds") == "auto":
        return cm.finn_costs(spec, [{**a, "ram_style_thresholds": "distributed"} for a in assignments or [{}]])
    return finn


def other(spec: cm.NodeSpec, finn: cm.Costs, assignments: list[dict] | None = None) -> cm.Costs:
    """Our estimate of a non-MVAU node at each candidate (``finn``: FINN's, one row per assignment)."""
    return node_model().apply(spec.op_type, _analytic(spec, finn, assignments), node_memory_bits(spec))


def inserted(op_type: str, tables: dict) -> dict:
    """Our estimate of a DWC/FIFO cost table ({resource: array}): FINN's fifo.sv/DWC models, which
    track the public builds' rows (D StreamingFIFO_rtl_41, depth 2 x 312 bits: 321 LUT real, 320
    modelled), corrected by node_model.json where it has the op type."""
    if op_type not in node_model().op_types:
        return tables
    shape = next(iter(tables.values())).shape
    costs = cm.Costs(np.zeros(shape, dtype=np.int64), *(tables[r] for r in cm.RESOURCES))
    fixed = node_model().apply(op_type, costs, 0)
    return {r: fixed.resource(r) for r in cm.RESOURCES}


def node_decision_costs(model, part: str) -> dict:
    """{node name: {"op_type", "LUT", "BRAM_18K", "URAM", "DSP", "memory_bits"}} of every HW node of
    a folded ``model`` (DWCs and FIFOs included when present) at its own attributes: our analytic
    estimate (layers 1-2 above; node_model.json not applied, so a fit can use it as its feature)."""
    out = {}
    for node in model.graph.node:
        if not cm.is_hw_node(node):
            continue
        spec = cm.node_spec(node, part)
        a = spec.attrs
        if node.op_type.startswith("MVAU"):
            costs = cm.mvau_costs(spec, [a["PE"]], [a["SIMD"]], [cm.encode("ram_style", a["ram_style"])],
                                  decision=True)
        else:
            costs = _analytic(spec, cm.finn_costs(spec, [{}]), None)
        out[node.name] = {"op_type": node.op_type, **{r: int(costs.resource(r)[0]) for r in cm.RESOURCES},
                          "memory_bits": int(node_memory_bits(spec))}
    return out
