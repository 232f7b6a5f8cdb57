"""Parsers for the reports a FINN build writes: out-of-context synthesis, post-synthesis utilisation
(JSON) and Vivado's post-route timing summary."""

import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.errors import UserError

@dataclass(frozen=True)
class SynthesisResult:
    lut: float
    ff: float
    bram36: float  # BRAM tiles (36 Kb) = 2 x BRAM18
    dsp: float
    uram: float = 0.0
    wns_ns: float | None = None
    fmax_mhz: float | None = None


def read_ooc_synth_and_timing(path: Path) -> SynthesisResult:
    """FINN's ``ooc_synth_and_timing.json`` (step_out_of_context_synthesis; "BRAM" counts 36 Kb tiles)."""
    try:
        data = json.loads(Path(path).read_text())
        return SynthesisResult(float(data["LUT"]), float(data["FF"]), float(data["BRAM"]), float(data["DSP"]),
                               float(data.get("URAM", 0.0)), float(data["WNS"]), float(data["fmax_mhz"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot read {path} as FINN's ooc_synth_and_timing.json ({exc!r}): "
                        f"pass the file from the build's report/ folder") from None


def estimate_ratios(est_lut: float, est_bram18: float, est_dsp: float, synth: SynthesisResult) -> dict:
    """FINN estimate / synthesis per resource (BRAM compared in 18 Kb units; None where synthesis is 0)."""
    def ratio(estimate, actual):
        return round(estimate / actual, 3) if actual else None

    return {"LUT est/synth": ratio(est_lut, synth.lut), "BRAM18 est/synth": ratio(est_bram18, 2 * synth.bram36),
            "DSP est/synth": ratio(est_dsp, synth.dsp)}


def read_post_synth_resources(path: Path) -> SynthesisResult:
    """The whole design's ("(top)", shell included) utilisation from FINN's ``post_synth_resources.json``
    (``step_synthesize_bitfile``, Zynq flow); BRAM as 36 Kb tiles = RAMB36 + RAMB18 / 2."""
    try:
        top = json.loads(Path(path).read_text())["(top)"]
        return SynthesisResult(float(top["LUT"]), float(top["FF"]),
                               float(top["BRAM_36K"]) + float(top["BRAM_18K"]) / 2, float(top["DSP"]),
                               float(top.get("URAM", 0.0)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {path} as FINN's post_synth_resources.json ({exc!r}): "
                        f"pass the file from the build's report/ folder") from None


def parse_timing_summary(text: str) -> float:
    """Worst negative slack (ns) from the "Design Timing Summary" of Vivado's ``report_timing_summary``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == ["WNS(ns)"]:
            values = [row.split() for row in lines[i + 1:] if row.strip() and not set(row.strip()) <= set("- ")]
            if values:
                try:
                    return float(values[0][0])
                except ValueError:
                    break
    raise UserError("not a Vivado timing summary (no WNS(ns) value under 'Design Timing Summary'): "
                    "pass the text of report_timing_summary, e.g. the build's report/post_route_timing.rpt")


def fmax_mhz(clock_ns: float, wns_ns: float) -> float:
    """Highest clock the design meets: 1000 / (target period - WNS), as FINN's SynthOutOfContext computes it."""
    return 1000.0 / (clock_ns - wns_ns)
