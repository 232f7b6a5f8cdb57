"""Pareto plot of the pruning report: accuracy against estimated throughput, ours and the study's."""

from pathlib import Path

FIGURE = "pruning_pareto.png"


def pareto_plot(rows: list[dict], reports_dir: Path) -> None:
    """One series per (source, bit width, method), points in sparsity order; log-scale fps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple, list] = {}
    for row in rows:
        if row.get("est fps") in (None, "") or row.get("acc %") in (None, ""):
            continue
        ours = not str(row.get("source", "")).startswith("reference")
        label = (f"{'ours' if ours else 'study'} {row['bits']}-bit {row['method']}", ours)
        series.setdefault(label, []).append((float(row["sparsity %"]), float(row["est fps"]), float(row["acc %"])))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, ours), points in sorted(series.items()):
        points.sort()
        ax.plot([p[1] for p in points], [p[2] for p in points], "o-" if ours else "s--", label=label,
                alpha=1.0 if ours else 0.6)
    ax.set_xscale("log")
    ax.set_xlabel("estimated throughput (fps, FINN cost model)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Pruning: accuracy vs estimated throughput (sparsity grows along each line)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(reports_dir) / FIGURE, dpi=120)
    plt.close(fig)
