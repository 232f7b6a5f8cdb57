"""FINN's estimates against real hardware (reports/calibration.md), and the budget margins that follow.

Method: for every known folding of CNV with a published synthesis (BNN-PYNQ's W1A1/W1A2/W2A2
implemented on Pynq-Z1, FINN's cnv-w1a1 ZynqBuild before/after its PR #209, the study's four
out-of-context runs) or board measurement (BNN-PYNQ's fps), estimate that same folding on the
finn-plus HW model of CNV at its bit widths, compute-only and whole design (DWCs, FIFOs, and the
shell where the published figure includes it); the ratio published / estimate per resource and
measured / estimated fps. Then the empirical per-node model (``synthesis.calibrate``) on the public
FINN builds and the store's first-party builds (``pynqrepro calibrate``), each build held out in turn:
real, FINN's raw estimate and ours per resource, the spread of the errors, and the upper bound the
default budget (``device / (1 + bound)``) takes from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynqrepro.core.results import Recorder
from pynqrepro.references import SYNTHESIS_ANCHORS, select

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report calibration --help` is quick
    from pynqrepro.folding.calibration import AnchorEstimate, Margins
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
    "held out: each FINN build with real post-route resources (public ones: pynqrepro/references/data/"
    "public-builds/<id>/SOURCE.md; 'first-party': added by `pynqrepro calibrate`) predicted by the per-node "
    "model fitted on all others (real = a + b x estimate + c x memory bits per FINN op type, FINN's estimate "
    "rows as the decision estimate; DWCs/FIFOs a mean cost per node; plus the board's shell in the shell); "
    "FINN = its raw estimate of the same nodes plus the shell; error = (estimate - real) / real. Scopes "
    "differ (post-route in the shell or out of context) and are named per row.",
    "A build whose real DSP count is 0 (resType lut, or OOC without DSPs) has no relative DSP error: its "
    "predicted DSPs (the fit's DSP per MVAU_hls, from builds with resType auto) show in 'DSP ours' only.",
    "bound: the largest held-out under-estimate real / ours - 1 over the builds that fitted their own device, "
    "per resource ('no data' where none tells). A design fits when ours x (1 + bound) is within the device: "
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

    from pynqrepro.folding.calibration import calibrated_margins, estimate_anchors
    from pynqrepro.synthesis.calibrate import calibrated_model

    estimates = estimate_anchors(setup.store, select(SYNTHESIS_ANCHORS, board=case.anchor_board))
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
    }


def tabulate(results: Recorder, setup: Setup, calibration: Calibration) -> None:
    table = results.table(TABLE, title=TITLE, notes=NOTES)
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
    margins = calibration.margins
    for resource, label in (("LUT", "LUT"), ("BRAM_18K", "BRAM18"), ("DSP", "DSP")):
        ours, finn = summary(calibration.held_out, resource), summary(calibration.held_out, resource, "finn")
        bound = margins.bound.get(resource)
        table.add({"design": f"spread and bound: {label}",
                   "median |error| ours": _percent(ours["median |error|"]),
                   "range ours": _range(ours["range"]),
                   "median |error| FINN": _percent(finn["median |error|"]), "range FINN": _range(finn["range"]),
                   "upper bound": "no data" if bound is None else f"+{100 * bound:.1f} %",
                   "budget fraction": "1 (no data)" if bound is None else round(getattr(margins, resource), 3),
                   "source": f"pynqrepro ({margins.source})"}, config=config)


def _percent(value: float | None) -> str:
    return "no data" if value is None else f"{100 * value:.0f} %"


def _range(span) -> str:
    return "no data" if span is None else f"{100 * span[0]:+.0f} % .. {100 * span[1]:+.0f} %"
