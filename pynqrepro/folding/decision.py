"""pynqrepro's estimate: the per-node costs the optimiser decides on, beside FINN's raw estimate
(issue 16), and the analytic model it was chosen over.

- FINN's own estimate (``costmodel``; tested equal to FINN), kept beside ours as FINN's raw figure.
- The decision model: the per-node fit ``NodeModel`` (``node_model.json``, fitted by
  ``pynqrepro.synthesis.calibrate`` on public builds' post-route rows) applied to the very quantity it
  was fitted on, FINN's raw estimate of each node and its memory bits (``finn_memory_bits``): per
  op type and resource, real ~ intercept + estimate x FINN's + memory_bits x M. DWCs and FIFOs get the
  fit's cost per node (FINN estimates before inserting them). Its ``bound`` is the budget margin.
  Why the fit and not the analytic model: ``pynqrepro.folding.budget_calibration`` (held-out CNV anchors).
- The analytic model (reported comparison, ``node_decision_costs(analytic=True)``): MVAU threshold
  logic, "auto" DSP multipliers and MVAU_rtl LUTs (``costmodel.mvau_costs(decision=True)``, with its
  evidence), and for the op types FINN estimates at zero although they cost LUTs/BRAM in every public
  build, the median of those builds' post-route rows (``ZERO_ESTIMATED``).

``node_decision_costs`` gives the features of every HW node of a folded model: FINN's raw rows, what
the fit is trained on and what the optimiser multiplies; or the analytic model's.
"""

import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.references import DATA

PUBLIC_BUILDS = ("A1", "D", "E1", "E2")  # public builds with per-node post-route rows
# Op types FINN's estimate prices at 0 LUT and 0 BRAM, with real cost in every public build:
# A1 (CNV W1A1, PYNQ-Z2) StreamingMaxPool_hls_0 245 LUT + 2 RAMB36, _1 450 LUT + 4 RAMB36;
# D (LPYOLO) StreamingMaxPool_hls_0..4 300-892 LUT, FMPadding_rtl_0..8 45-326 LUT;
# E1 (RadioML W4A4) StreamingMaxPool_hls ~105 LUT each, FMPadding_rtl 40-273, LabelSelect_hls_0 75.
ZERO_ESTIMATED = ("StreamingMaxPool_hls", "FMPadding_rtl", "LabelSelect_hls")
NODE_MODEL = "node_model.json"
_CALIBRATED = ("LUT", "BRAM_18K", "DSP")  # resources node_model.json fits


def _op_type(instance: str) -> str:
    """FINN op type of a post_synth_resources.json row (``StreamingDataflowPartition_1_MVAU_hls_3``)."""
    return re.sub(r"_\d+$", "", re.sub(r"^StreamingDataflowPartition_\d+_", "", instance))


@lru_cache(maxsize=None)
def public_rows(op_type: str) -> tuple:
    """(build, node, LUT, BRAM18) of every post-route row of ``op_type`` in the public builds."""
    rows = []
    for build in PUBLIC_BUILDS:
        report = json.loads((DATA / "public-builds" / build / "post_synth_resources.json").read_text())
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


NODE_MODEL_FILE = DATA / NODE_MODEL
CALIBRATION_DIR = "calibration"  # under a store's root: the builds ``pynqrepro calibrate`` added, and the refit
FITTED_RESOURCES = _CALIBRATED
BRAM18_BITS = 18 * 1024  # FINN's bram_efficiency_estimation: bits / (BRAM_18K x 36 x 512)
URAM_BITS = 72 * 4096  # FINN's uram_efficiency_estimation: bits / (URAM x 72 x 4096)
INSERTED_OP_TYPES = ("StreamingFIFO", "StreamingDataWidthConverter")  # what InsertFIFO / InsertDWC add
IDENTITY = {"intercept": 0.0, "estimate": 1.0, "memory_bits": 0.0}


@dataclass(frozen=True)
class NodeModel:
    """The per-node fit of ``node_model.json``: per op type and resource, real ~ intercept +
    estimate x E + memory_bits x M (``pynqrepro.synthesis.calibrate`` fits it; identity where it has
    no op type), and ``bound``: the stated relative upper bound of the decision model's whole-design
    error per resource (None: no data), the margin of the calibrated budget."""

    op_types: dict
    source: str = "identity (no node_model.json)"
    bound: dict = field(default_factory=lambda: {r: None for r in _CALIBRATED})
    bound_source: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> "NodeModel":
        path = Path(path or NODE_MODEL_FILE)
        if not path.exists():
            return cls({})
        return cls.from_json(json.loads(path.read_text()), str(path))

    @classmethod
    def from_json(cls, data: dict, where: str = "") -> "NodeModel":
        return cls(data.get("op_types", {}), data.get("source", where),
                   data.get("bound", {r: None for r in _CALIBRATED}), data.get("bound_source", ""))

    def to_json(self) -> dict:
        return {"source": self.source, "bound": self.bound, "bound_source": self.bound_source,
                "op_types": self.op_types}

    def coefficients(self, op_type: str, resource: str) -> dict:
        """The op type's fit, else its family's (``MVAU_hls`` for ``MVAU_rtl``), else identity."""
        family = op_type.rpartition("_")[0] or op_type
        for key in (op_type, *(k for k in sorted(self.op_types) if k.rpartition("_")[0] == family)):
            if resource in self.op_types.get(key, {}):
                return self.op_types[key][resource]
        return IDENTITY

    def apply(self, op_type: str, finn: costmodel.Costs, memory, threshold_luts=0) -> costmodel.Costs:
        """Per candidate, the fit applied to FINN's raw costs ``finn`` and memory bits ``memory`` (the
        features it was fitted on), plus the threshold LUTs it leaves out (``unfitted_threshold_luts``),
        rounded up per node; URAM stays FINN's."""
        out = {}
        for r in costmodel.RESOURCES:
            value = finn.resource(r)
            if r in _CALIBRATED:
                c = self.coefficients(op_type, r)
                value = c["intercept"] + c["estimate"] * value + c["memory_bits"] * np.asarray(memory)
                if r == "LUT":
                    value = value + np.asarray(threshold_luts)
                value = np.maximum(np.ceil(np.asarray(value, dtype=np.float64) - 1e-9), 0)
            out[r] = np.broadcast_to(np.asarray(value), finn.cycles.shape).astype(np.int64)
        return costmodel.Costs(finn.cycles, **out)

    def predict(self, costs: dict, resource: str) -> int:
        """One node's real ``resource`` from its features (``node_decision_costs``' form), rounded up
        and never below 0, as ``apply`` gives the optimiser."""
        c = self.coefficients(costs["op_type"], resource)
        value = c["intercept"] + c["estimate"] * costs.get(resource, 0.0) + c["memory_bits"] * costs["memory_bits"]
        if resource == "LUT":
            value += costs.get("threshold_luts", 0.0)
        return max(0, math.ceil(value - 1e-9))


@lru_cache(maxsize=1)
def decision_model() -> NodeModel:
    """The fit the optimiser decides on: the shipped ``node_model.json``."""
    return load_node_model()


def load_node_model(path: Path | None = None) -> NodeModel:
    """The model at ``path``, else the one shipped with the package (fitted on the public builds)."""
    return NodeModel.load(path)


def store_model_path(store_root: Path) -> Path:
    """The refit ``pynqrepro calibrate`` writes into a store."""
    return Path(store_root) / CALIBRATION_DIR / NODE_MODEL


def current_node_model(store_root: Path | None = None) -> NodeModel:
    """The model budgets use: the store's refit where ``pynqrepro calibrate`` made one, else the shipped one."""
    refit = store_model_path(store_root) if store_root is not None else None
    return load_node_model(refit if refit is not None and refit.is_file() else None)


def estimate_memory_bits(row: dict) -> float:
    """Weight + threshold memory of a node in bits, from FINN's estimate row: FINN states its BRAM
    and URAM estimates with the efficiency ``bits / capacity``, so ``blocks x efficiency x
    capacity`` is the bits it maps to them (0 for memory FINN puts in LUTs)."""
    return (float(row.get("BRAM_18K", 0)) * float(row.get("BRAM_efficiency", 0)) * BRAM18_BITS
            + float(row.get("URAM", 0)) * float(row.get("URAM_efficiency", 0)) * URAM_BITS)


def costs_from_estimate(op_type: str, row: dict) -> dict:
    """A node's FINN-raw features in ``node_decision_costs``' form, from a FINN estimate row (a row
    of ``estimate_layer_resources.json`` or of ``res_estimation``; ``{}``: a node FINN inserts after
    estimating, a DWC or FIFO)."""
    return {"op_type": op_type, **{r: float(row.get(r, 0)) for r in costmodel.RESOURCES},
            "memory_bits": estimate_memory_bits(row)}


def node_memory_bits(spec: costmodel.NodeSpec, mw=None):
    """Bits of weight and threshold memory of a node (0 where it has none)."""
    if spec.op_type.startswith("MVAU"):
        return costmodel.memory_bits(spec, mw)
    a = spec.attrs
    if spec.op_type.startswith("Thresholding") and "NumChannels" in a and "numSteps" in a:
        from qonnx.core.datatype import DataType

        weight = DataType[a["weightDataType"]].bitwidth() if "weightDataType" in a else 0
        return int(a["NumChannels"]) * int(a["numSteps"]) * weight
    return 0


def finn_memory_bits(spec: costmodel.NodeSpec, finn: costmodel.Costs, mw=None):
    """Per candidate, the memory-bits feature FINN's estimate row gives (``estimate_memory_bits``:
    blocks x efficiency x capacity): an MVAU's weight bits W x MW x MH where FINN puts them in BRAM
    or URAM (its bram/uram_efficiency_estimation), 0 in LUTs; another node's blocks x capacity
    (FINN's default efficiency 1)."""
    if spec.op_type.startswith("MVAU"):
        a = spec.attrs
        weights = (a["MW"] if mw is None else np.asarray(mw, dtype=np.int64)) * a["MH"] * a["W"]
        return weights * ((finn.BRAM_18K > 0).astype(np.int64) + (finn.URAM > 0))
    return finn.BRAM_18K * BRAM18_BITS + finn.URAM * URAM_BITS


@dataclass(frozen=True)
class ThresholdTerms:
    """An MVAU's costs per candidate at FINN's distributed-threshold terms (``costmodel.mvau_costs``
    with ``decision=True``): at the node's own threshold style, at the candidate's (``here`` where no
    candidate moves them), and the LUTs of the same MVAU without activation."""

    here: costmodel.Costs
    there: costmodel.Costs
    bare_luts: np.ndarray
    moved: np.ndarray  # per candidate: its ram_style_thresholds differs from the node's own

    @classmethod
    def of(cls, spec: costmodel.NodeSpec, pe, simd, ram_style, mw=None, res_type=None, thresholds=None):
        """``thresholds``: the candidates' ram_style_thresholds codes (None: the node's own)."""
        own = costmodel.encode("ram_style_thresholds", spec.attrs["ram_style_thresholds"])
        moved = np.zeros(1, dtype=bool) if thresholds is None else np.asarray(thresholds) != own
        here = costmodel.mvau_costs(spec, pe, simd, ram_style, mw, res_type, decision=True)
        there = costmodel.mvau_costs(spec, pe, simd, ram_style, mw, res_type, decision=True,
                                     thresholds=thresholds) if moved.any() else here
        bare = replace(spec, attrs={**spec.attrs, "noActivation": 1})
        bare_luts = costmodel.mvau_costs(bare, pe, simd, ram_style, mw, res_type, decision=True).LUT
        return cls(here, there, bare_luts, moved)

    def unfitted_luts(self, levels: int):
        """The threshold LUTs the fit leaves out (``unfitted_threshold_luts``): the threshold logic
        (the MVAU's LUTs less the bare MVAU's) at the candidate's style, less one of ``levels`` at the
        node's own style."""
        return (self.there.LUT - self.bare_luts) - (self.here.LUT - self.bare_luts) / levels


def unfitted_threshold_luts(spec: costmodel.NodeSpec, pe, simd, ram_style, mw=None, res_type=None, thresholds=None):
    """Per candidate, the threshold LUTs the fit leaves out. FINN's raw estimate, the fit's only MVAU
    feature, prices no threshold at ram_style_thresholds "auto"; the fit's MVAU_hls rows (A1: CNV W1A1,
    one level; D: W8A3 with DSP multipliers that FINN prices in LUTs) cannot separate threshold levels
    from multipliers, so the fit holds about one level of the node's own style. The other levels, and a
    candidate's other style (``thresholds``, the optimiser's choice), come at FINN's terms:
    T(candidate's style) - T(own style) / levels. Held out on the 9 CNV anchors (reports/calibration.md)
    this takes the worst LUT error from -45 % (study W4A4) and -37 % (study W2A2) to within 25 %."""
    levels = costmodel.threshold_levels(spec)
    if levels == 0:
        return np.zeros(np.shape(pe), dtype=np.float64)
    return ThresholdTerms.of(spec, pe, simd, ram_style, mw, res_type, thresholds).unfitted_luts(levels)


def mvau(spec: costmodel.NodeSpec, pe, simd, ram_style, mw=None, res_type=None, thresholds=None) -> costmodel.Costs:
    """Our estimate of an MVAU at each candidate: the fit on FINN's raw estimate of it plus the
    threshold LUTs it leaves out (``unfitted_threshold_luts``). A candidate that moves the thresholds
    elsewhere (``thresholds``: ram_style_thresholds codes, the optimiser's choice) adds the analytic
    model's BRAM18 per partition of that style."""
    finn = costmodel.mvau_costs(spec, pe, simd, ram_style, mw, res_type)
    levels = costmodel.threshold_levels(spec)
    if levels == 0:  # no activation: no thresholds to price or move
        return decision_model().apply(spec.op_type, finn, finn_memory_bits(spec, finn, mw))
    terms = ThresholdTerms.of(spec, pe, simd, ram_style, mw, res_type, thresholds)
    ours = decision_model().apply(spec.op_type, finn, finn_memory_bits(spec, finn, mw), terms.unfitted_luts(levels))
    if not terms.moved.any():
        return ours
    bram = np.where(terms.moved, np.maximum(0, ours.BRAM_18K + terms.there.BRAM_18K - terms.here.BRAM_18K),
                    ours.BRAM_18K)
    return costmodel.Costs(ours.cycles, ours.LUT, bram, ours.URAM, ours.DSP)


def _analytic(spec: costmodel.NodeSpec, finn: costmodel.Costs) -> costmodel.Costs:
    """The analytic model of a node FINN's own methods cost at its attributes (``finn``: one row):
    the public builds' figure where FINN says 0, thresholds priced as Vivado builds "auto" ones."""
    if spec.op_type in ZERO_ESTIMATED:
        floor = zero_estimated_cost(spec.op_type)
        return costmodel.Costs(finn.cycles, *(np.maximum(finn.resource(r), floor[r]) for r in costmodel.RESOURCES))
    if spec.attrs.get("noActivation", 1) == 0 and spec.attrs.get("ram_style_thresholds") == "auto":
        return costmodel.finn_costs(spec, [{"ram_style_thresholds": "distributed"}])
    return finn


def other(spec: costmodel.NodeSpec, finn: costmodel.Costs) -> costmodel.Costs:
    """Our estimate of a non-MVAU node at each candidate (``finn``: FINN's, one row per assignment):
    the fit on FINN's raw estimate."""
    return decision_model().apply(spec.op_type, finn, finn_memory_bits(spec, finn))


def inserted(op_type: str, tables: dict) -> dict:
    """Our estimate of a DWC/FIFO cost table ({resource: array} of FINN's fifo.sv/DWC models): the
    fit's cost per inserted node, fitted on zero features (FINN's build estimates before inserting
    them, so the public builds' rows carry no estimate of them)."""
    shape = next(iter(tables.values())).shape
    zero = np.zeros(shape, dtype=np.int64)
    fixed = decision_model().apply(op_type, costmodel.Costs(zero, *(zero for _ in costmodel.RESOURCES)), 0)
    return {r: fixed.resource(r) if r in _CALIBRATED else tables[r] for r in costmodel.RESOURCES}


NO_HW_LAYERS = ("the model has no FINN HW layers: pass a folded, specialised HW-layer model (FINN's "
                "step_generate_estimate_reports output or later), not the network's QONNX export")


def node_decision_costs(model, part: str, analytic: bool = False) -> dict:
    """{node name: {"op_type", "LUT", "BRAM_18K", "URAM", "DSP", "memory_bits"}} of every HW node of
    a folded ``model`` at its own attributes: FINN's own ``res_estimation`` rows in the form the fit
    reads (``costs_from_estimate``: the features it is trained on and the optimiser multiplies, the
    only ones the public builds' report files carry), and an MVAU's ``threshold_luts``
    (``unfitted_threshold_luts``, added unfitted); ``analytic``: the analytic model's costs."""
    if not analytic:
        from pynqrepro.finnflow.buildprep import node_resources

        nodes = {node.name: node for node in model.graph.node}
        out = {name: costs_from_estimate(nodes[name].op_type, row) for name, row in node_resources(model, part).items()}
        if not out:
            raise UserError(NO_HW_LAYERS)
        for name, costs in out.items():
            if costs["op_type"].startswith("MVAU"):
                spec = costmodel.node_spec(nodes[name], part)
                a = spec.attrs
                costs["threshold_luts"] = float(unfitted_threshold_luts(
                    spec, [a["PE"]], [a["SIMD"]], [costmodel.encode("ram_style", a["ram_style"])])[0])
        return out
    out = {}
    for node in model.graph.node:
        if not costmodel.is_hw_node(node):
            continue
        spec = costmodel.node_spec(node, part)
        a = spec.attrs
        if node.op_type.startswith("MVAU"):
            costs = costmodel.mvau_costs(spec, [a["PE"]], [a["SIMD"]], [costmodel.encode("ram_style", a["ram_style"])],
                                  decision=True)
        else:
            costs = _analytic(spec, costmodel.finn_costs(spec, [{}]))
        out[node.name] = {"op_type": node.op_type, **{r: int(costs.resource(r)[0]) for r in costmodel.RESOURCES},
                          "memory_bits": int(node_memory_bits(spec))}
    if not out:
        raise UserError(NO_HW_LAYERS)
    return out
