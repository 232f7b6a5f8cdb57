"""Synthesis report parsers on the study's real OOC files."""

import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.references import DATA, STUDY_FOLDING_RUNS
from pynqrepro.synthesis.vivado_reports import SynthesisResult, estimate_ratios, read_ooc_synth_and_timing


@pytest.mark.parametrize("run", [r for r in STUDY_FOLDING_RUNS if r.ooc_lut is not None], ids=lambda r: r.run)
def test_study_ooc_files_match_published_figures(run):
    result = read_ooc_synth_and_timing(DATA / "thesis-folding-results" / run.run / "ooc_synth_and_timing.json")
    assert (result.lut, result.ff, result.bram36, result.dsp) == (run.ooc_lut, run.ooc_ff, run.ooc_bram36, run.ooc_dsp)
    assert result.fmax_mhz == pytest.approx(run.ooc_fmax_mhz, abs=0.05)


def test_ratios_compare_bram_in_18k_units():
    synth = SynthesisResult(lut=20212, ff=26157, bram36=101, dsp=0)
    assert estimate_ratios(25849, 146, 0, synth) == {"LUT est/synth": 1.279, "BRAM18 est/synth": 0.723,
                                                      "DSP est/synth": None}


def test_not_a_report_is_user_error(tmp_path):
    with pytest.raises(UserError, match="ooc_synth_and_timing.json"):
        read_ooc_synth_and_timing(tmp_path / "missing.json")
