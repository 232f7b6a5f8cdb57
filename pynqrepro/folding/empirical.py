"""The empirical per-node cost model: real post-route resources of a node from its decision
estimate, fitted per FINN op type on public and first-party FINN builds (``node_model.json``).

Per op type and resource, ``real = intercept + estimate * E + memory_bits * M``: E is the node's
decision estimate of that resource, M its weight + threshold memory in bits. The coefficients are
written by ``pynqrepro.synthesis.calibrate`` (leave-one-build-out validated there); this module only
reads them and predicts, so the folding stage needs neither the builds nor scikit-learn.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.references import DATA

NODE_MODEL_FILE = DATA / "node_model.json"
CALIBRATION_DIR = "calibration"  # under a store's root: the builds ``pynqrepro calibrate`` added, and the refit
FITTED_RESOURCES = ("LUT", "BRAM_18K", "DSP")
BRAM18_BITS = 18 * 1024  # FINN's bram_efficiency_estimation: bits / (BRAM_18K x 36 x 512)
URAM_BITS = 72 * 4096  # FINN's uram_efficiency_estimation: bits / (URAM x 72 x 4096)


def memory_bits(row: dict) -> float:
    """Weight + threshold memory of a node in bits, from FINN's estimate row: FINN states its BRAM
    and URAM estimates with the efficiency ``bits / capacity``, so ``blocks x efficiency x
    capacity`` is the bits it maps to them (0 for memory FINN puts in LUTs)."""
    return (float(row.get("BRAM_18K", 0)) * float(row.get("BRAM_efficiency", 0)) * BRAM18_BITS
            + float(row.get("URAM", 0)) * float(row.get("URAM_efficiency", 0)) * URAM_BITS)


def costs_from_estimate(op_type: str, row: dict) -> dict:
    """A node's features in ``node_decision_costs``' form from a FINN estimate row (a row of
    ``estimate_layer_resources.json`` or of ``res_estimation``)."""
    return {"op_type": op_type, **{r: float(row.get(r, 0)) for r in ("LUT", "BRAM_18K", "URAM", "DSP")},
            "memory_bits": memory_bits(row)}


def node_decision_costs(model, part: str) -> dict:
    """Per node of a folded HW model, its decision estimate and memory bits:
    ``{node: {"op_type", "LUT", "BRAM_18K", "URAM", "DSP", "memory_bits"}}``. Today FINN's raw
    ``res_estimation``; the decision cost model replaces it with the same signature."""
    from pynqrepro.finnflow.buildprep import node_resources

    op_types = {node.name: node.op_type for node in model.graph.node}
    return {name: costs_from_estimate(op_types[name], row) for name, row in node_resources(model, part).items()}


@dataclass(frozen=True)
class NodeModel:
    """Fitted coefficients per op type and resource, and the stated relative upper bound of a whole
    design's error per resource (None: no data)."""

    source: str
    op_types: dict  # {op_type: {resource: {"intercept", "estimate", "memory_bits"}}}
    bound: dict  # {resource: float | None}

    def coefficients(self, op_type: str, resource: str) -> dict:
        """The op type's fit, else its family's (``MVAU_hls`` for ``MVAU_rtl``), else FINN's estimate."""
        family = op_type.rpartition("_")[0] or op_type
        for key in (op_type, *(k for k in sorted(self.op_types) if k.rpartition("_")[0] == family)):
            if resource in self.op_types.get(key, {}):
                return self.op_types[key][resource]
        return {"intercept": 0.0, "estimate": 1.0, "memory_bits": 0.0}

    def predict(self, costs: dict, resource: str) -> float:
        """One node's real ``resource`` from its ``node_decision_costs`` entry (never below 0)."""
        c = self.coefficients(costs["op_type"], resource)
        value = c["intercept"] + c["estimate"] * costs.get(resource, 0.0) + c["memory_bits"] * costs["memory_bits"]
        return max(0.0, value)

    def to_json(self) -> dict:
        return {"source": self.source, "op_types": self.op_types, "bound": self.bound}

    @classmethod
    def from_json(cls, data: dict) -> "NodeModel":
        return cls(data["source"], data["op_types"], data["bound"])


def load_node_model(path: Path | None = None) -> NodeModel:
    """The fitted model at ``path``, else the one fitted on the public builds shipped with the package."""
    return NodeModel.from_json(json.loads(Path(path or NODE_MODEL_FILE).read_text()))


def store_model_path(store_root: Path) -> Path:
    """The refit ``pynqrepro calibrate`` writes into a store."""
    return Path(store_root) / CALIBRATION_DIR / "node_model.json"


def current_node_model(store_root: Path | None = None) -> NodeModel:
    """The model budgets use: the store's refit where ``pynqrepro calibrate`` made one, else the shipped one."""
    refit = store_model_path(store_root) if store_root is not None else None
    return load_node_model(refit if refit is not None and refit.is_file() else None)
