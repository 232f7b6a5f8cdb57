"""Experiment: FINN's estimates of known foldings beside their published syntheses and board
measurements, and the safety margins derived from them (reports/calibration.md). The method is
``pynqrepro.study.calibration``; ``pynqrepro report calibration`` records the same rows."""

import pytest

from pynqrepro.folding.calibration import RESOURCES
from pynqrepro.references import STUDY_FOLDING_RUNS
from pynqrepro.study import calibration


@pytest.mark.study(calibration)
def test_calibration(setup, results, case):
    measured = calibration.measure(setup, case)
    calibration.tabulate(results, setup, measured)

    study_cycles = {f"study-foldings/{run.run}.json": run.max_cycles for run in STUDY_FOLDING_RUNS}
    for e in measured.estimates:  # the foldings are the published ones: the same bottleneck cycles
        if e.anchor.folding_file in study_cycles:
            assert e.folding.max_cycles == study_cycles[e.anchor.folding_file], e.anchor.design
        if e.measurement is not None:
            assert e.folding.max_cycles == e.measurement.max_cycles, e.anchor.design
            assert 0.95 < e.fps_ratio() <= 1.0, f"{e.anchor.design}: measured {e.measurement.measured_fps} fps"
    margins = measured.margins
    for resource in RESOURCES:
        margin = getattr(margins, resource)
        assert 0 < margin <= 1, resource
        for e in measured.estimates:  # every calibrating design fits the device the margin budgets
            if e.anchor.calibrates and e.whole(resource):
                assert e.published(resource) * margin <= e.whole(resource) + 1e-9, (resource, e.anchor.design)
