"""Vivado stage: FINN's full build as a store artifact, post-synthesis utilisation and timing as data.

``synthesis_artifact(store, hw_artifact, board, folding)`` runs FINN's builder from the cached HW
model (bitfile, driver settings, deployment package); ``read_build(build_dir, clock_ns)`` parses
what it wrote (build.py).
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
