"""Vivado stage: post-synthesis utilisation and timing as data, beside FINN's estimates.

``parse_utilization_report(text)`` (Vivado ``report_utilization`` text), ``read_ooc_synth_and_timing(path)``
(FINN's ``ooc_synth_and_timing.json``) and ``estimate_ratios(estimate, synthesis)``.
"""

from pynqrepro.synthesis.reports import (
    SynthesisResult,
    estimate_ratios,
    parse_utilization_report,
    read_ooc_synth_and_timing,
)

__all__ = ["SynthesisResult", "estimate_ratios", "parse_utilization_report", "read_ooc_synth_and_timing"]
