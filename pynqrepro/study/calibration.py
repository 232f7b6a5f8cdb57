"""FINN's estimates against real hardware (reports/calibration.md), the decision model chosen on
them, and the budget margins that follow.

Method: for every known folding of CNV with a published synthesis (BNN-PYNQ's W1A1/W1A2/W2A2
implemented on Pynq-Z1, FINN's cnv-w1a1 ZynqBuild before/after its PR #209, the study's four
out-of-context runs) or board measurement (BNN-PYNQ's fps), estimate that same folding on the
finn-plus HW model of CNV at its bit widths, compute-only and whole design (DWCs, FIFOs, and the
shell where the published figure includes it): FINN's raw estimate, the decision model (the per-node
fit on FINN's rows) and the analytic model, each with its error; the ratio published / estimate
per resource and measured / estimated fps. The spread of those errors and the decision model's
upper bound (largest under-estimate over the anchors that fitted their device), which sets the
default budget ``device / (1 + bound)``. Then the per-node fit on the public FINN builds and the
store's first-party builds (``pynqrepro calibrate``), each build held out in turn (foreign networks
and scopes included: real, FINN's raw estimate, the fit, errors).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynqrepro.core.results import Recorder
from pynqrepro.references import SYNTHESIS_ANCHORS, select

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report calibration --help` is quick
    from pynqrepro.folding.budget_calibration import AnchorEstimate, Margins
    from pynqrepro.pipeline import Setup

EXPERIMENT = "experiments/test_calibration.py::test_calibration"
TABLE = "calibration"
TITLE = "FINN's estimates against published syntheses and board measurements"
NOTES = [
    "Each published figure (reference row) is followed by our estimate of the same folding: finn-plus's "
    "HW model of CNV at the anchor's bit widths (untrained, seeded: weights change only bit-width "
    "minimisation), FINN's ApplyConfig of the folding, FINN's res_estimation (compute-only) plus the "
    "DWCs and FIFOs (minimal depths) FINN's build inserts, plus the Pynq-Z1 shell where the published "
    "figure includes it (whole design). BRAM18 counts 18 Kb blocks (a RAMB36 is 2).",
    "ratio = published / estimate (whole design; '(compute)': compute nodes only); fps ratio = measured / "
    "estimated at the measured clock (BNN-PYNQ, Ultra96 at 300 MHz; its folding's bottleneck is the same).",
    "ours = pynqrepro's estimate, the decision model: the per-node fit (node_model.json, fitted on the public "
    "builds' post-route rows against FINN's raw estimate rows) applied to FINN's rows of the anchor's folded "
    "nodes, plus each MVAU's threshold levels beyond the one the fit sees, at FINN's distributed-threshold terms; "
    "analytic = FINN's estimate with its blind spots priced (threshold logic, 'auto' DSPs, nodes FINN "
    "prices at 0), the model the fit was chosen over (pynqrepro.folding.budget_calibration); err = (estimate - real) "
    "/ real per anchor. No anchor is a training build of the fit: every error is held out.",
    "held out: each FINN build with real post-route resources (public ones: pynqrepro/references/data/"
    "public-builds/<id>/SOURCE.md; 'first-party': added by `pynqrepro calibrate`) predicted by the per-node "
    "model fitted on all others (real = a + b x estimate + c x memory bits per FINN op type, FINN's estimate "
    "rows as features; DWCs/FIFOs a mean cost per node; plus the board's shell in the shell); "
    "FINN = its raw estimate of the same nodes plus the shell; error = (estimate - real) / real. Scopes "
    "differ (post-route in the shell or out of context) and are named per row.",
    "A build whose real DSP count is 0 (resType lut, or OOC without DSPs) has no relative DSP error: its "
    "predicted DSPs (the fit's DSP per MVAU_hls, from builds with resType auto) show in 'DSP ours' only.",
    "bound: the largest under-estimate real / ours - 1 over the CNV anchors above that fitted their own device "
    "(the network this product folds; the study's 4-bit run, 464 BRAM18 on a 280-BRAM18 part, sets none), per "
    "resource ('no data' where none tells). The held-out foreign builds (other networks, OOC, simulated FIFO "
    "depths as in F) are shown with their errors but set no bound. A design fits when ours x (1 + bound) is "
    "within the device: "
    "the default budget of `pynqrepro fold`, the experiments and the reports (device / (1 + bound)); the "
    "study's fixed 0.85 LUT ratio stays in reports/folding.md as comparison rows.",
    "Sized FIFO depths and the post-route figures of the finn-plus design itself are unknown without a "
    "Vivado host: every anchor was built by another library (BNN-PYNQ 2018, FINN 2020, FINN v0.5b), named "
    "per row under 'differs'.",
]


@dataclass(frozen=True)
class Case:
    """The anchors published for one board's part (all of today's are Pynq-Z1)."""

    anchor_board: str

    # no trained CNV: the anchors' HW models are of untrained, seeded CNVs (no GPU at any scale)
    cnv_bits = None

    @property
    def id(self) -> str:
        return self.anchor_board


CASES = tuple(Case(board) for board in sorted({anchor.board for anchor in SYNTHESIS_ANCHORS}))


@dataclass(frozen=True)
class Calibration:
    case: Case
    estimates: list  # AnchorEstimate per CNV anchor
    held_out: list  # synthesis.calibrate.HeldOut per FINN build
    margins: Margins  # the default budget's fractions, from the model's bound


def measure(setup: Setup, case: Case) -> Calibration:
    import tempfile
    from pathlib import Path

    from pynqrepro.folding.budget_calibration import DECISION_ANCHORS, calibrated_margins, estimate_anchors
    from pynqrepro.synthesis.calibrate import calibrated_model

    estimates = estimate_anchors(setup.store, select(DECISION_ANCHORS, board=case.anchor_board))
    with tempfile.TemporaryDirectory() as tmp:
        _, held_out, _ = calibrated_model(setup.store.root, Path(tmp))
    return Calibration(case, estimates, held_out, calibrated_margins(setup.store.root))


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _estimate_row(e: AnchorEstimate) -> dict:
    return {
        "LUT": e.whole("LUT"), "LUT (compute)": e.compute("LUT"),
        "BRAM18": e.whole("BRAM_18K"), "BRAM18 (compute)": e.compute("BRAM_18K"), "DSP": e.whole("DSP"),
        "fps": _rounded(e.estimated_fps(), 1),
        "LUT ratio": _rounded(e.ratio("LUT")), "LUT ratio (compute)": _rounded(e.ratio("LUT", whole=False)),
        "BRAM18 ratio": _rounded(e.ratio("BRAM_18K")),
        "BRAM18 ratio (compute)": _rounded(e.ratio("BRAM_18K", whole=False)),
        "DSP ratio": _rounded(e.ratio("DSP")), "fps ratio": _rounded(e.fps_ratio()),
        "DWCs": e.folding.converters, "bottleneck": e.folding.bottleneck,
        **{f"{label} {which}": round(e.fitted[r] if which == "ours" else e.analytic[r])
           for r, label in LABELS.items() for which in ("ours", "analytic")},
        **{f"{label} {which} err": _percent(e.error(r, model), signed=True)
           for r, label in LABELS.items() for which, model in (("FINN", "finn"), ("ours", "fitted"),
                                                                 ("analytic", "analytic"))},
    }


def tabulate(results: Recorder, setup: Setup, calibration: Calibration) -> None:
    table = results.table(TABLE, title=TITLE, notes=NOTES, summary=f"{__name__}:first_screen")
    config = {"anchor_board": calibration.case.anchor_board}
    for e in calibration.estimates:
        anchor = e.anchor
        base = {"design": anchor.design, "W/A": f"{anchor.weight_bits}/{anchor.act_bits}",
                "shell": "included" if anchor.shell else "excluded"}
        measured = {"fps": e.measurement.measured_fps} if e.measurement else {}
        table.add_reference(anchor, {**base, "LUT": anchor.lut, "BRAM18": anchor.bram18, "DSP": anchor.dsp,
                                     **measured, "differs": f"{anchor.tool}; {anchor.differs}"},
                            config={**config, "folding": anchor.folding_file},
                            source=anchor.source + (f"; fps: {e.measurement.source}" if e.measurement else ""))
        table.add({**base, **_estimate_row(e), "source": "pynqrepro estimate (finn-plus, whole design)"},
                  config={**config, "folding": e.folding.config()})
    from pynqrepro.synthesis.calibrate import held_out_rows, summary

    for row in held_out_rows(calibration.held_out):  # real figures in the anchors' LUT/BRAM18/DSP columns
        row = {key.removesuffix(" real"): value for key, value in row.items()}
        table.add({"design": f"held out: {row.pop('build')}", **row,
                   "source": "pynqrepro per-node model fitted on the other builds"}, config=config)
    from pynqrepro.folding.budget_calibration import bound_exclusions

    margins = calibration.margins
    excluded = "; ".join(f"{d}: {why}" for d, why in bound_exclusions(calibration.estimates).items()) or "none"
    for resource, label in LABELS.items():
        spread = {which: _spread(calibration.estimates, resource, model)
                  for which, model in (("ours", "fitted"), ("FINN", "finn"), ("analytic", "analytic"))}
        fit = summary(calibration.held_out, resource)
        bound = margins.bound.get(resource)
        table.add({"design": f"spread and bound: {label}",
                   **{f"CNV anchors {which}: median / worst abs. error": value for which, value in spread.items()},
                   "foreign builds held out, fit: median abs. error": _percent(fit["median |error|"]),
                   "upper bound": "no data" if bound is None else f"+{100 * bound:.1f} %",
                   "budget fraction": "1 (no data)" if bound is None else round(getattr(margins, resource), 3),
                   "excluded from the bound": excluded,
                   "source": f"pynqrepro ({margins.source})"}, config=config)


LABELS = {"LUT": "LUT", "BRAM_18K": "BRAM18", "DSP": "DSP"}


def first_screen(rows: list[dict]) -> list[str]:
    """calibration.md's answer: how sure a "fits" is (the bound per resource, the budget it leaves and
    the errors it comes from), then each CNV anchor's real figure beside FINN's and our error."""
    from tabulate import tabulate as render

    from pynqrepro.core.results import is_reference_row

    bounds = [r for r in rows if str(r.get("design", "")).startswith("spread and bound: ")]
    if not bounds:
        return []
    ours = "CNV anchors ours: median / worst abs. error"
    body = [[r["design"].removeprefix("spread and bound: "), r.get("upper bound", ""), r.get("budget fraction", ""),
             r.get(ours, ""), r.get("CNV anchors FINN: median / worst abs. error", ""),
             r.get("foreign builds held out, fit: median abs. error", "")] for r in bounds]
    out = ["## How sure is a \"fits\"", "",
           "A design fits when pynqrepro's estimate x (1 + upper bound) is within the device: `fold`'s default "
           "budget is the device x the budget fraction. The bound is the largest under-estimate over the CNV "
           "anchors below that fitted their own device (real syntheses, none used to fit the model).", "",
           render(body, headers=["resource", "upper bound", "budget fraction", "CNV anchors, ours: median / worst "
                                 "|error|", "FINN's raw: median / worst", "foreign builds held out: median"],
                  tablefmt="github", disable_numparse=True)]
    anchors, real = [], {}
    for r in rows:
        if is_reference_row(r):
            real[r["design"]] = r
        elif r["design"] in real and r.get("LUT ours err") not in (None, ""):
            published = real[r["design"]]
            anchors.append([r["design"], r["W/A"], published.get("LUT", ""), r.get("LUT FINN err", ""),
                            r.get("LUT ours err", ""), published.get("BRAM18", ""), r.get("BRAM18 FINN err", ""),
                            r.get("BRAM18 ours err", "")])
    if anchors:
        out += ["", "### Each CNV anchor: real, and the error of each estimate", "",
                render(anchors, headers=["design", "W/A", "LUT real", "LUT FINN err", "LUT ours err", "BRAM18 real",
                                         "BRAM18 FINN err", "BRAM18 ours err"], tablefmt="github",
                       disable_numparse=True)]
    return out


def _percent(value: float | None, signed: bool = False) -> str:
    return "no data" if value is None else f"{100 * value:{'+' if signed else ''}.0f} %"


def _spread(estimates, resource: str, which: str) -> str:
    """Median and worst absolute error of one model over the CNV anchors."""
    errors = [abs(e) for est in estimates if (e := est.error(resource, which)) is not None]
    if not errors:
        return "no data"
    return f"{_percent(statistics.median(errors))} / {_percent(max(errors))}"
