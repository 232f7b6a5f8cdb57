"""What a folding search hands on: the FINN folding JSON, the study's ``get_res`` table (for the
whole design), its ``plot_cycles_remainder`` picture (with where FINN's DWCs/FIFOs go and what they
cost), and checks that FINN itself estimates the JSON as we do: on the folded HW model
(``finn_reestimate``), and on the design its build prepares (``finn_build_check``; as a report's
verdict, a rejection included: ``build_check``, ``finn_build_checks``)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.folding import decision
from pynqrepro.folding.optimise import Budget, Folding

LABELS = {"LUT": "LUT", "BRAM_18K": "BRAM18", "URAM": "URAM", "DSP": "DSP"}


def write_config(folding: Folding, path: Path) -> Path:
    atomic_write_json(Path(path), folding.config())
    return Path(path)


def _costs(costs: dict, budget: Budget) -> dict:
    """{label: value, "label % budget": share} of ``costs`` {resource: value} against ``budget``."""
    row = {}
    for res in ("LUT", "BRAM_18K", "DSP"):
        limit = getattr(budget, res)
        row[LABELS[res]] = costs[res]
        row[f"{LABELS[res]} % budget"] = round(100 * costs[res] / limit, 2) if limit else None
    return row


def get_res(folding: Folding, budget: Budget) -> list[dict]:
    """The study's get_res table, for the whole design FINN builds: one row per node of the folding
    JSON (PE, SIMD, the implementation choices searched over, cycles, resources and their share of
    the budget; nodes decided together, e.g. a max-pool's SWG and Pool, are costed on the first),
    then every DWC/FIFO FINN inserts and the shell (for a whole-design folding), then the totals:
    pynqrepro's estimate, and FINN's raw estimate of the same scope beside it."""
    rows = []
    for group, i in zip(folding.groups, folding.choice):
        for k, (node, attrs) in enumerate(group.assignment(i).items()):
            row = {"node": node, "PE": attrs.get("PE"), "SIMD": attrs.get("SIMD"),
                   **{attr: attrs[attr] for attr in ("ram_style", "resType", "ram_style_thresholds") if attr in attrs}}
            if k == 0:
                row["cycles"] = int(group.costs.cycles[i])
                row.update(_costs({r: int(group.costs.resource(r)[i]) for r in costmodel.RESOURCES}, budget))
            else:
                row["note"] = f"costed with {next(iter(group.node_attrs))}"
            rows.append(row)
    for node in folding.inserted():
        where = f"{node['producer'] or 'input'} -> {node['consumer'] or 'output'}"
        depth = f", depth {node['depth']}" if node["depth"] is not None else ""
        ours = decision.inserted(node["op_type"], {r: np.asarray([node[r]]) for r in costmodel.RESOURCES})
        rows.append({"node": f"{node['op_type']} ({node['role']})",
                     **_costs({r: int(v[0]) for r, v in ours.items()}, budget),
                     "note": f"{where}, {node['in_width']} -> {node['out_width']} bits{depth}"})
    if folding.whole_design:
        shell = folding.insertions.shell
        rows.append({"node": "shell (IODMAs, interconnect)", **_costs({r: shell.resource(r) for r in costmodel.RESOURCES},
                                                                      budget),
                     "note": "measured" if shell.measured else "proxy: a Vivado host knows this part's shell"})
    scope = "whole design" if folding.whole_design else "compute nodes"
    rows.append({"node": f"total ({scope})", "cycles": folding.max_cycles,
                 **_costs({r: folding.total(r) for r in costmodel.RESOURCES}, budget),
                 **{f"{LABELS[r]} (FINN)": folding.finn_total(r) for r in ("LUT", "BRAM_18K", "DSP")},
                 "note": "fits the budget" if folding.fits(budget) else "OVER BUDGET"})
    return rows


def inserted_per_group(folding: Folding) -> dict:
    """Per group index: LUT and BRAM18 of the DWCs/FIFOs FINN inserts on the streams into it (the
    graph's output FIFO counts for the last group), and how many DWCs and FIFOs that is."""
    where = {spec.name: g for g, group in enumerate(folding.groups) for spec in group.nodes}
    out = {g: {"LUT": 0, "BRAM_18K": 0, "DWCs": 0, "FIFOs": 0} for g in range(len(folding.groups))}
    for node in folding.inserted():
        group = out[where[node["consumer"] or node["producer"]]]
        group["LUT"] += node["LUT"]
        group["BRAM_18K"] += node["BRAM_18K"]
        group["DWCs" if node["role"] == "converter" else "FIFOs"] += 1
    return out


def plot_cycles_remainder(folding: Folding, budget: Budget, path: Path, title: str = "") -> Path:
    """Per-layer cycles with the bottleneck line; per-layer LUTs, the compute node's and those of
    the DWCs/FIFOs FINN inserts on its input stream (marked where a DWC goes); and the budget used
    by the compute nodes, the insertions and the shell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [g.name for g in folding.groups]
    x = np.arange(len(names))
    fig = plt.figure(figsize=(13, 7.5))
    grid = fig.add_gridspec(2, 2, width_ratios=[3, 1])
    ax, lx, bx = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])
    ax.bar(x, folding.cycles, color="tab:blue")
    ax.axhline(folding.max_cycles, color="tab:red", ls="--", label=f"bottleneck {folding.max_cycles:,} cycles")
    ax.set_xticks(x, [""] * len(names))
    ax.set_ylabel("cycles per frame")
    ax.set_yscale("log")
    ax.legend()
    compute = np.asarray([int(g.costs.LUT[i]) for g, i in zip(folding.groups, folding.choice)])
    inserted = inserted_per_group(folding)
    extra = np.asarray([inserted[g]["LUT"] for g in range(len(names))])
    lx.bar(x, compute, color="tab:blue", label="compute node LUT")
    lx.bar(x, extra, bottom=compute, color="tab:orange", label="DWC/FIFO LUT on its input stream")
    for g in range(len(names)):
        if inserted[g]["DWCs"]:
            lx.annotate("DWC", (g, compute[g] + extra[g]), ha="center", va="bottom", fontsize=7, color="tab:orange")
    lx.set_xticks(x, names, rotation=75, fontsize=7)
    lx.set_ylabel("LUT")
    lx.legend(fontsize=8)
    labels = ("LUT", "BRAM_18K", "DSP")
    limits = [max(getattr(budget, r), 1) for r in labels]
    parts = {"compute nodes": [folding.compute_total(r) for r in labels]}
    if folding.whole_design:
        shell = folding.insertions.shell
        parts["DWCs + FIFOs"] = [folding.dwc_fifo_total(r) for r in labels]
        parts["shell" + ("" if shell.measured else " (proxy)")] = [shell.resource(r) for r in labels]
    bottom = np.zeros(len(labels))
    for (label, values), color in zip(parts.items(), ("tab:blue", "tab:orange", "tab:gray")):
        share = 100 * np.asarray(values) / limits
        bx.bar([LABELS[r] for r in labels], share, bottom=bottom, color=color, label=label)
        bottom += share
    bx.axhline(100, color="black", lw=1)
    bx.set_ylabel("% of budget")
    bx.legend(fontsize=8)
    scope = "whole design" if folding.whole_design else "compute nodes only"
    fig.suptitle(title or f"{folding.method} ({scope}): {folding.max_cycles:,} cycles, budget {budget.describe()}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def finn_reestimate(model: ModelWrapper, folding: Folding, part: str, clock_ns: float):
    """FINN's own estimates of ``model`` with the folding's JSON applied (via pynqrepro.finnflow)."""
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding

    return estimate(apply_folding(model, folding.config()), part, clock_ns)


def _ours_per_layer(folding: Folding) -> dict:
    """{node: (cycles, LUT, BRAM18, URAM, DSP)} of the single-node groups (FINN reports per node),
    as our copy of FINN's estimate costs them (the raw figures, not pynqrepro's decision estimate)."""
    return {group.name: (int(group.finn_costs.cycles[i]),)
            + tuple(int(group.finn_costs.resource(r)[i]) for r in costmodel.RESOURCES)
            for group, i in zip(folding.groups, folding.choice) if len(group.nodes) == 1}


def _differences(folding: Folding, finn_figures: dict, compute: dict, max_cycles: int) -> list[str]:
    """Where FINN's per-layer figures ``finn_figures``, compute totals and bottleneck differ from ours."""
    ours = _ours_per_layer(folding)
    out = [f"{name}: ours {ours[name]} FINN {figures}" for name, figures in finn_figures.items()
           if name in ours and ours[name] != figures]
    out += [f"total {r}: ours {folding.finn_compute_total(r)} FINN {compute[r]}" for r in compute
            if folding.finn_compute_total(r) != compute[r]]
    if folding.max_cycles != max_cycles:
        out.append(f"max cycles: ours {folding.max_cycles} FINN {max_cycles}")
    return out


def disagreements(folding: Folding, finn_estimate) -> list[str]:
    """Compute layers where FINN's re-estimate of the folded HW model differs from our copy of its
    estimate (``Group.finn_costs``) in cycles,
    LUT, BRAM18, URAM or DSP, then the compute totals and the bottleneck."""
    finn_figures = {layer.name: (layer.cycles, int(layer.lut), int(layer.bram18), int(layer.uram), int(layer.dsp))
              for layer in finn_estimate.layers}
    totals = finn_estimate.totals
    compute = {res: int(totals[key]) for res, key in (("LUT", "lut"), ("BRAM_18K", "bram18"), ("DSP", "dsp"))}
    return _differences(folding, finn_figures, compute, finn_estimate.max_cycles)


def finn_build_check(model: ModelWrapper, folding: Folding, board: Board, prepared=None) -> list[str]:
    """The folding's JSON through FINN's build preparation (``prepare_build``: every builder
    transformation before the first Xilinx tool: ApplyConfig ... InsertDWC, InsertFIFO at the
    JSON's depths, InsertIODMA, dataflow partitioning); where FINN's own figures differ from ours:
    its estimate reports per compute layer, the bottleneck, the DWCs it inserted and, for a
    whole-design folding, its estimate of the prepared graph plus the board's shell. A folding
    FINN's build rejects raises its UserError. ``prepared``: FINN's build of a JSON making the same
    changes to ``model`` (``foldconfig.changes``), if already prepared."""
    from pynqrepro.finnflow.buildprep import prepare_build

    prepared = prepared or prepare_build(model, folding.config(), board)
    cycles = prepared.estimate_reports["estimate_layer_cycles.json"]
    resources = prepared.estimate_reports["estimate_layer_resources.json"]
    finn_figures = {name: (int(cycles[name]),) + tuple(int(resources[name].get(r, 0)) for r in costmodel.RESOURCES)
              for name in cycles if name in resources}
    compute = {r: int(resources["total"].get(r, 0)) for r in ("LUT", "BRAM_18K", "DSP")}
    out = _differences(folding, finn_figures, compute, prepared.max_cycles())
    if folding.whole_design:
        converters = sum(node.role == "converter" for node in prepared.inserted())
        if converters != folding.converters:
            out.append(f"DWCs: ours {folding.converters} FINN {converters}")
        finn = prepared.whole_design(board)
        out += [f"whole design {r}: ours {folding.finn_total(r)} FINN {finn[r]}" for r in costmodel.RESOURCES
                if folding.finn_total(r) != finn[r]]
    return out


@dataclass(frozen=True)
class BuildCheck:
    """A folding's JSON through FINN's build preparation (``finn_build_check``): whether FINN accepts
    it, up to and including its code generation (``step_hw_codegen``), and where FINN's figures of
    the prepared build differ from ours."""

    differences: tuple = ()  # finn_build_check's, where FINN accepts the JSON
    rejected: str = ""  # FINN's refusal (prepare_build's UserError); empty where FINN accepts the JSON

    @property
    def passes(self) -> bool:
        """FINN's build preparation, code generation included, accepts the JSON."""
        return not self.rejected

    @property
    def agrees(self) -> bool:
        """FINN accepts the JSON and its figures of the prepared build are ours."""
        return self.passes and not self.differences

    def cell(self) -> str:
        """The report's "FINN build prep" value: "equal", what differs, or "rejected: " FINN's reason."""
        if self.rejected:
            return f"rejected: {self.rejected}"
        return "; ".join(self.differences) or "equal"


def build_check(model: ModelWrapper, folding: Folding, board: Board, prepared=None) -> BuildCheck:
    """``finn_build_check`` as a verdict: a folding FINN's build preparation rejects is recorded,
    with FINN's reason, instead of raising."""
    try:
        return BuildCheck(tuple(finn_build_check(model, folding, board, prepared)))
    except UserError as exc:
        return BuildCheck(rejected=str(exc))


def finn_build_checks(model: ModelWrapper, foldings: dict, board: Board) -> dict:
    """``build_check`` of every folding of ``model`` ({name: Folding} -> {name: BuildCheck}), FINN's
    build prepared once per distinct change the JSONs make to the model (``foldconfig.changes``:
    e.g. the folding study's exact and exact+LUTRAM often choose the same)."""
    from pynqrepro.finnflow.buildprep import prepare_build
    from pynqrepro.finnflow.foldconfig import changes

    prepared: dict = {}  # changes -> PreparedBuild, or the BuildCheck of FINN's refusal
    out = {}
    for name, folding in foldings.items():
        key = json.dumps(changes(model, folding.config()), sort_keys=True)
        if key not in prepared:
            try:
                prepared[key] = prepare_build(model, folding.config(), board)
            except UserError as exc:
                prepared[key] = BuildCheck(rejected=str(exc))
        found = prepared[key]
        out[name] = found if isinstance(found, BuildCheck) else build_check(model, folding, board, found)
    return out
