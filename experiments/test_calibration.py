"""Experiment: FINN's estimates, the decision model and the analytic model of known CNV foldings
beside their published syntheses and board measurements, the upper bound the default budget takes
from the decision model's errors, and the per-node fit held out build by build
(reports/calibration.md). The method is ``pynqrepro.study.calibration``;
``pynqrepro report calibration`` records the same rows."""

import json

import pytest

from pynqrepro.references import STUDY_FOLDING_RUNS
from pynqrepro.references.public_builds import PUBLIC_BUILDS_DIR, STUDY_OOC_BUILDS, STUDY_RUNS_DIR
from pynqrepro.study import calibration


def _upstream_real(build_id: str) -> tuple[float, float]:
    """(LUT, BRAM18) of a public build or study run read straight from its copied upstream file."""
    study = {b.id: STUDY_RUNS_DIR / b.source.rpartition("/")[2] for b in STUDY_OOC_BUILDS}
    folder = study.get(build_id, PUBLIC_BUILDS_DIR / build_id)
    if (folder / "post_synth_resources.json").is_file():
        top = json.loads((folder / "post_synth_resources.json").read_text())["(top)"]
        return top["LUT"], 2 * top["BRAM_36K"] + top["BRAM_18K"]
    ooc = json.loads((folder / "ooc_synth_and_timing.json").read_text())
    return ooc["LUT"], 2 * ooc["BRAM"]


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
    public = [h for h in measured.held_out if not h.anchor.first_party]
    assert len(public) >= 11
    assert [h.anchor.id for h in public if not h.anchor.fits_device()] == ["study 4-bit search 85%"]
    margins = measured.margins
    for h in public:  # the held-out rows carry each build's real figures as its upstream file states them
        assert (h.real["LUT"], h.real["BRAM_18K"]) == _upstream_real(h.anchor.id), h.anchor.id
    study_real = {f"study-foldings/{b.source.rpartition('/')[2]}.json": _upstream_real(b.id) for b in STUDY_OOC_BUILDS}
    for e in measured.estimates:  # a budget of device / (1 + bound) on ours keeps each fitting anchor within it
        if e.anchor.folding_file in study_real:
            assert (e.published("LUT"), e.published("BRAM_18K")) == study_real[e.anchor.folding_file]
        for resource in ("LUT", "BRAM_18K"):
            if e.fits_device() and e.fitted[resource]:
                assert e.published(resource) <= e.fitted[resource] * (1 + margins.bound[resource]) + 1e-6, \
                    (e.anchor.design, resource)
