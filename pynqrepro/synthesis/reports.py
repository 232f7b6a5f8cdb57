"""Parsers for Vivado's post-synthesis reports and FINN's out-of-context synthesis JSON."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.errors import UserError

# Row names of Vivado's report_utilization tables: 7-series first, UltraScale(+) second.
_ROWS = {
    "lut": ("Slice LUTs", "CLB LUTs"),
    "ff": ("Slice Registers", "CLB Registers"),
    "bram36": ("Block RAM Tile",),
    "uram": ("URAM",),
    "dsp": ("DSPs",),
}


@dataclass(frozen=True)
class SynthesisResult:
    lut: float
    ff: float
    bram36: float  # BRAM tiles (36 Kb) = 2 x BRAM18
    dsp: float
    uram: float = 0.0
    wns_ns: float | None = None
    fmax_mhz: float | None = None


def parse_utilization_report(text: str) -> SynthesisResult:
    """Used LUT/FF/BRAM/URAM/DSP from the text of Vivado's ``report_utilization``."""
    used = {}
    for line in text.splitlines():
        cells = [c.strip().rstrip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        for key, names in _ROWS.items():
            if key not in used and cells[0] in names:
                used[key] = float(re.sub(r"[^\d.]", "", cells[1]) or 0)
    missing = [key for key in ("lut", "ff", "bram36", "dsp") if key not in used]
    if missing:
        raise UserError(f"not a Vivado utilization report (no {', '.join(missing)} rows): "
                        f"pass the text of report_utilization")
    return SynthesisResult(used["lut"], used["ff"], used["bram36"], used["dsp"], used.get("uram", 0.0))


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
