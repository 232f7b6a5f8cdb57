"""Synthesis report parsers on the study's real OOC files and a Vivado-format utilisation report."""

import pytest

from pynqrepro.core.errors import UserError
from pynqrepro.references import DATA, STUDY_FOLDING_RUNS
from pynqrepro.synthesis import estimate_ratios, parse_utilization_report, read_ooc_synth_and_timing

UTILIZATION = """\
Copyright 1986-2022 Xilinx, Inc. All Rights Reserved.
| Tool Version : Vivado v.2022.2 (lin64) Build 3671981 Fri Oct 14 04:59:54 MDT 2022
| Design       : finn_design_wrapper
| Device       : xc7z020clg400-1
| Design State : Synthesized

1. Slice Logic
--------------

+----------------------------+-------+-------+------------+-----------+-------+
|          Site Type         |  Used | Fixed | Prohibited | Available | Util% |
+----------------------------+-------+-------+------------+-----------+-------+
| Slice LUTs*                | 20212 |     0 |          0 |     53200 | 37.99 |
|   LUT as Logic             | 18004 |     0 |          0 |     53200 | 33.84 |
| Slice Registers            | 26157 |     0 |          0 |    106400 | 24.58 |
+----------------------------+-------+-------+------------+-----------+-------+

2. Memory
---------

+-------------------+------+-------+------------+-----------+-------+
|     Site Type     | Used | Fixed | Prohibited | Available | Util% |
+-------------------+------+-------+------------+-----------+-------+
| Block RAM Tile    |  101 |     0 |          0 |       140 | 72.14 |
|   RAMB36/FIFO*    |   95 |     0 |          0 |       140 | 67.86 |
+-------------------+------+-------+------------+-----------+-------+

3. DSP
------

+-----------+------+-------+------------+-----------+-------+
| Site Type | Used | Fixed | Prohibited | Available | Util% |
+-----------+------+-------+------------+-----------+-------+
| DSPs      |    0 |     0 |          0 |       220 |  0.00 |
+-----------+------+-------+------------+-----------+-------+
"""


def test_utilization_report_text(tmp_path):
    path = tmp_path / "post_synth_util.rpt"
    path.write_text(UTILIZATION)
    result = parse_utilization_report(path.read_text())
    assert (result.lut, result.ff, result.bram36, result.dsp) == (20212, 26157, 101, 0)


@pytest.mark.parametrize("run", [r for r in STUDY_FOLDING_RUNS if r.ooc_lut is not None], ids=lambda r: r.run)
def test_study_ooc_files_match_published_figures(run):
    result = read_ooc_synth_and_timing(DATA / "thesis-folding-results" / run.run / "ooc_synth_and_timing.json")
    assert (result.lut, result.ff, result.bram36, result.dsp) == (run.ooc_lut, run.ooc_ff, run.ooc_bram36, run.ooc_dsp)
    assert result.fmax_mhz == pytest.approx(run.ooc_fmax_mhz, abs=0.05)


def test_ratios_compare_bram_in_18k_units():
    synth = parse_utilization_report(UTILIZATION)
    assert estimate_ratios(25849, 146, 0, synth) == {"LUT est/synth": 1.279, "BRAM18 est/synth": 0.723,
                                                      "DSP est/synth": None}


def test_not_a_report_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not a Vivado utilization report"):
        parse_utilization_report("hello")
    with pytest.raises(UserError, match="ooc_synth_and_timing.json"):
        read_ooc_synth_and_timing(tmp_path / "missing.json")
