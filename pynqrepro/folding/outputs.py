"""What a folding search hands on: the FINN folding JSON, the study's ``get_res`` table, its
``plot_cycles_remainder`` picture, and a check that FINN itself re-estimates the JSON as we do."""

from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.folding import costmodel as cm
from pynqrepro.folding.optimise import Budget, Folding


def write_config(folding: Folding, path: Path) -> Path:
    atomic_write_json(Path(path), folding.config())
    return Path(path)


def get_res(folding: Folding, budget: Budget) -> list[dict]:
    """Per group: PE, SIMD, the implementation choices searched over (ram_style, resType), cycles,
    resources and their share of the budget (the study's get_res)."""
    rows = []
    for group, i in zip(folding.groups, folding.choice):
        params = {k: int(v[i]) for k, v in group.params.items()}
        row = {"layer": group.name, "PE": params.get("PE"), "SIMD": params.get("SIMD"),
               "cycles": int(group.costs.cycles[i])}
        for attrs in group.assignment(i).values():  # the FINN implementation choices searched over
            row.update({attr: attrs[attr] for attr in ("ram_style", "resType") if attr in attrs})
        for res, label in (("LUT", "LUT"), ("BRAM_18K", "BRAM18"), ("DSP", "DSP")):
            value = int(group.costs.resource(res)[i])
            limit = getattr(budget, res)
            row[label] = value
            row[f"{label} % budget"] = round(100 * value / limit, 2) if limit else None
        rows.append(row)
    return rows


def plot_cycles_remainder(folding: Folding, budget: Budget, path: Path, title: str = "") -> Path:
    """Per-layer cycles with the bottleneck line, and resources used against the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [g.name for g in folding.groups]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    ax.bar(range(len(names)), folding.cycles, color="tab:blue")
    ax.axhline(folding.max_cycles, color="tab:red", ls="--", label=f"bottleneck {folding.max_cycles:,} cycles")
    ax.set_xticks(range(len(names)), names, rotation=75, fontsize=7)
    ax.set_ylabel("cycles per frame")
    ax.set_yscale("log")
    ax.legend()
    labels = ("LUT", "BRAM_18K", "DSP")
    used = [100 * folding.total(r) / max(getattr(budget, r), 1) for r in labels]
    bx.bar(labels, used, color=["tab:green" if u <= 100 else "tab:red" for u in used])
    bx.axhline(100, color="black", lw=1)
    bx.set_ylabel("% of budget")
    fig.suptitle(title or f"{folding.method}: {folding.max_cycles:,} cycles, budget {budget.describe()}")
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


def disagreements(folding: Folding, finn_estimate) -> list[str]:
    """Compute layers where FINN's re-estimate of the folded HW model differs from ours in cycles,
    LUT, BRAM18, URAM or DSP."""
    ours = {}
    for group, i in zip(folding.groups, folding.choice):
        if len(group.nodes) == 1:
            ours[group.name] = (int(group.costs.cycles[i]),) + tuple(int(group.costs.resource(r)[i]) for r in cm.RESOURCES)
    out = []
    for layer in finn_estimate.layers:
        theirs = (layer.cycles, int(layer.lut), int(layer.bram18), int(layer.uram), int(layer.dsp))
        if layer.name in ours and ours[layer.name] != theirs:
            out.append(f"{layer.name}: ours {ours[layer.name]} FINN {theirs}")
    totals = finn_estimate.totals
    for res, key in (("LUT", "lut"), ("BRAM_18K", "bram18"), ("DSP", "dsp")):
        if folding.compute_total(res) != int(totals[key]):
            out.append(f"total {res}: ours {folding.compute_total(res)} FINN {totals[key]}")
    if folding.max_cycles != finn_estimate.max_cycles:
        out.append(f"max cycles: ours {folding.max_cycles} FINN {finn_estimate.max_cycles}")
    return out
