"""Reports that answer (issue 17, item 3): a table's first screen (summary) before its detail, one
detail table per group with short headers, the index's "Results at a glance", folding.md's
recommended foldings and fits verdicts, and the pruning figure's datasets kept apart."""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from pynqrepro.core.report_files import merge_reports
from pynqrepro.core.results import Recorder, SessionInfo
from pynqrepro.folding.optimise import board_budget
from pynqrepro.folding.outputs import BuildCheck
from pynqrepro.core.boards import get_board
from pynqrepro.study import calibration, folding, pruning

REPO = Path(__file__).resolve().parents[1]


def first_screen(rows):  # a summary function as a study module offers it
    return [f"**{len(rows)} rows; best acc {max(r['acc %'] for r in rows)}**"]


def flat(markdown: str) -> str:
    """Text with its line wrapping undone (as Markdown renders it); table rows stay on their lines."""
    return re.sub(r"\n  +", " ", markdown)


ENVIRONMENT = {"git": {"commit": "c", "dirty": False}, "packages": {}}


def record(reports, rows, scale="smoke", nodeid="exp.py::test[a]", **presentation):
    recorder = Recorder(reports, SessionInfo("s1", scale, "pynq-z1", ENVIRONMENT), nodeid)
    table = recorder.table("demo", title="Demo", notes=["the note, once"], **presentation)
    for row in rows:
        table.add(row)


ROWS = [{"board": "pynq-z1", "W/A": "2/2", "acc %": 90.5, "fits (whole design)": True},
        {"board": "ultra96", "W/A": "2/2", "acc %": 91.0, "fits (whole design)": False},
        {"board": "pynq-z1", "W/A": "4/4", "acc %": 92.0, "fits (whole design)": True}]


def test_summary_comes_first_then_notes_then_one_table_per_group_with_short_headers(tmp_path):
    record(tmp_path, ROWS, summary=f"{__name__}:first_screen", group_by="board",
           headers={"fits (whole design)": "fits"})
    merge_reports(tmp_path)
    md = (tmp_path / "demo.md").read_text()
    assert md.index("**3 rows; best acc 92.0**") < md.index("- the note, once") < md.index("## board: pynq-z1")
    assert md.index("## board: pynq-z1") < md.index("## board: ultra96")
    pynq = md[md.index("## board: pynq-z1"):md.index("## board: ultra96")]
    assert "| W/A   | acc %   | fits   |" in pynq  # the group's column left out, the long name shortened
    assert "pynq-z1 |" not in pynq and "90.50" in pynq and "92.00" in pynq and "91.00" not in pynq
    assert "| yes" in pynq and "| no " in md[md.index("## board: ultra96"):]
    assert md.count("the note, once") == 1
    # the machine-readable files keep every column under its full name
    assert (tmp_path / "demo.csv").read_text().splitlines()[0].startswith("board,W/A,acc %,fits (whole design)")
    stored = json.loads((tmp_path / "demo.json").read_text())
    assert stored["rows"][1]["values"]["fits (whole design)"] is False
    assert stored["group_by"] == "board"


def test_long_cells_become_numbered_notes_and_empty_columns_go(tmp_path):
    long = "reference: study estimate_set_folding_finn_no_pruning_targetfps_1800_2bit_nonpruned"
    record(tmp_path, [{"board": "a", "fps": 1.0, "note": "", "source": long},
                      {"board": "a", "fps": 2.0, "note": "", "source": long},
                      {"board": "b", "fps": 3.0, "note": "short", "source": "pynqrepro (smoke)"}], group_by="board")
    merge_reports(tmp_path)
    md = (tmp_path / "demo.md").read_text()
    a, b = md.split("## board: b")
    assert a.count("| [1]") == 2 and a.count(f"[1] {long}") == 1 and "| note" not in a
    assert "| note" in b and "short" in b
    assert max(len(line) for line in md.splitlines() if line.startswith("|")) < 40
    assert json.loads((tmp_path / "demo.json").read_text())["rows"][0]["values"]["source"] == long


def test_notes_are_wrapped_into_readable_lines(tmp_path):
    recorder = Recorder(tmp_path, SessionInfo("s1", "smoke", "pynq-z1", ENVIRONMENT), "t")
    note = " ".join(f"word{i}" for i in range(100))  # 690 characters
    recorder.table("demo", title="Demo", notes=[note]).add({"a": 1})
    merge_reports(tmp_path)
    md = (tmp_path / "demo.md").read_text()
    assert max(len(line) for line in md.splitlines()) <= 110
    assert "- word0 word1" in md and " ".join(line.strip() for line in md.splitlines() if "word" in line) == f"- {note}"


def test_a_broken_summary_keeps_the_tables(tmp_path, capsys):
    record(tmp_path, ROWS, summary="no.such.module:nothing")
    merge_reports(tmp_path)
    assert "90.50" in (tmp_path / "demo.md").read_text()
    assert "summary no.such.module:nothing failed" in capsys.readouterr().err


def test_index_opens_with_results_at_a_glance(tmp_path):
    record(tmp_path, ROWS)
    merge_reports(tmp_path, skipped={"tests": {"experiments/test_synthesis.py::test_synthesis[2w2a-exact]":
                                               "vivado: needs Vivado/Vitis HLS: XILINX_VIVADO is unset",
                                               "experiments/test_board.py::test_board[2w2a-exact]":
                                               "board: needs a PYNQ board: pass --board-host HOST"},
                                     "ran": 3, "markexpr": "not slow"})
    index = (tmp_path / "index.md").read_text()
    glance = flat(index[index.index("## Results at a glance"):index.index("## Reports")])
    assert "Scale: smoke (digits)" in glance and "not CIFAR-10" in glance and "Ran: demo (3 rows)" in glance
    assert "- Skipped (1: test_synthesis): vivado: needs Vivado/Vitis HLS: XILINX_VIVADO is unset" in glance
    assert "- Skipped (1: test_board): board: needs a PYNQ board" in glance
    assert "- Last experiment session: 3 ran, 2 skipped." in glance
    assert '- Selected with -m "not slow": the stages it leaves out did not run.' in glance
    assert "No recommended design yet" in glance
    # a later index rewrite (pynqrepro report) keeps the last session's skips
    merge_reports(tmp_path, index=True)
    assert "XILINX_VIVADO is unset" in flat((tmp_path / "index.md").read_text())


def test_index_recommends_the_design_space_design_else_the_folding_report_s(tmp_path):
    recorder = Recorder(tmp_path, SessionInfo("s1", "smoke", "pynq-z1", ENVIRONMENT), "f::t[x]")
    recorder.table("folding", title="Folding").add(
        {"board": "pynq-z1", "W/A": "2/2", "method": "exact", "est. fps": 2500.0, "recommended": "yes",
         "folding JSON": "[pynq-z1-w2a2.json](foldings/pynq-z1-w2a2.json)"})
    merge_reports(tmp_path)
    glance = (tmp_path / "index.md").read_text().split("## Reports")[0]
    assert "| pynq-z1 | 2/2   | exact    | 2,500 | [pynq-z1-w2a2.json](foldings/pynq-z1-w2a2.json) |" in glance
    recorder = Recorder(tmp_path, SessionInfo("s2", "smoke", "pynq-z1", ENVIRONMENT), "d::t[x]")
    recorder.table("design_space", title="Design space").add(
        {"board": "pynq-z1", "recommended": "(b) fastest within 1 pp", "checkpoint key": "abc123",
         "folding JSON": "[f.json](foldings/f.json)"})
    merge_reports(tmp_path)
    glance = (tmp_path / "index.md").read_text().split("## Reports")[0]
    assert "(b) fastest within 1 pp" in glance and "abc123" in glance and "pynq-z1-w2a2.json" not in glance


def test_the_plugin_records_why_tests_were_skipped_for_the_index(tmp_path):
    subprocess.run([sys.executable, "-m", "pytest", "-c", "pyproject.toml", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "-q", "-m", "vivado", "-k", "2w2a", f"--reports-dir={tmp_path / 'r'}",
                    f"--store-dir={tmp_path / 's'}", "experiments"],
                   cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True)
    glance = flat((tmp_path / "r" / "index.md").read_text().split("## Reports")[0])
    assert "- Skipped (4: test_synthesis): vivado: needs Vivado/Vitis HLS: XILINX_VIVADO is unset" in glance
    assert "- Skipped (2: test_board): board: needs a PYNQ board" in glance
    assert '-m "vivado"' in glance and "0 ran, 6 skipped" in glance


def test_study_rows_get_a_fits_verdict_from_their_compute_figures():
    budget = board_budget(get_board("pynq-z1"), 0.7)  # 37,240 LUT, the example
    assert budget.LUT == 37_240
    assert folding.reference_fits(48_992, 100, budget) == "no"  # "FINN SetFolding, target 6800 fps"
    assert folding.reference_fits(30_000, 300, budget) == "no"  # 280 BRAM18 on a Pynq-Z1
    assert folding.reference_fits(30_000, 100, budget) == "compute only: yes"
    assert folding.reference_fits(None, None, budget) is None


def test_the_recommended_folding_is_the_default_budget_s_where_finn_s_build_agrees():
    """What folding.md recommends is the exact folding at `fold`'s default (calibrated) budget, not
    the fastest at the study's LUT ratio (which our bound may call over the device)."""
    def comparison(ratio, finn_build, calibrated=True):
        exact = {"exact": SimpleNamespace(max_cycles=900), "exact+all FINN options": SimpleNamespace(max_cycles=800)}
        if calibrated:
            exact[folding.CALIBRATED_ROW] = SimpleNamespace(max_cycles=1200)
        return folding.FoldingComparison(folding.Case(ratio, 2, "pynq-z1"), None, None, [], exact, None, None,
                                         finn_build), exact

    agreed, exact = comparison(0.85, {})
    assert agreed.recommended() is exact[folding.CALIBRATED_ROW]  # slower than the 0.85 rows, but certified
    assert comparison(0.85, {folding.CALIBRATED_ROW: BuildCheck(("LUT differs",))})[0].recommended() is None
    assert comparison(0.85, {folding.CALIBRATED_ROW: BuildCheck(rejected="SIMD >= MW / 1024")})[0].recommended() is None
    assert comparison(0.85, {folding.CALIBRATED_ROW: BuildCheck()})[0].recommended() is not None
    assert comparison(0.85, {}, calibrated=False)[0].recommended() is None  # nothing fits the default budget
    assert comparison(0.7, {})[0].recommended() is None  # given once per board and bit width


def test_folding_first_screen_gives_fps_and_device_shares_with_the_json():
    rows = [{"board": "pynq-z1", "W/A": "2/2", "LUT ratio": 0.85, "method": "exact+LUTRAM", "est. fps": 2441.4,
             "LUT (whole)": 39_900, "BRAM18 (whole)": 140, "DSP (whole)": 0, "recommended": "yes",
             "folding JSON": "[JSON](foldings/pynq-z1-w2a2.json)"},
            {"board": "pynq-z1", "W/A": "2/2", "LUT ratio": 0.85, "method": "exact / SetFolding fps", "est. fps": 1.6},
            {"board": "pynq-z1", "W/A": "2/2", "LUT ratio": 0.7, "method": "exact / SetFolding fps", "est. fps": 2.0}]
    screen = "\n".join(folding.recommended_summary(rows))
    # 39,900 / 53,200 LUT = 75%, 140 / 280 BRAM18 = 50%, 0 / 220 DSP
    assert "| pynq-z1 | 2/2   | 2,441 | 75%   | 50%      | 0%    | exact+LUTRAM |" in screen
    assert "(foldings/pynq-z1-w2a2.json)" in screen and "1.60x to 2.00x the fps (2 board" in screen


def test_pruning_figure_keeps_datasets_apart_and_marks_designs_that_do_not_fit():
    rows = [{"bits": 2, "method": "channels", "sparsity %": 0.0, "est fps": 1000.0, "acc %": 97.0,
             pruning.FITS: True, "dataset": "digits", "source": "pynqrepro (smoke)"},
            {"bits": 8, "method": "channels", "sparsity %": 10.0, "est fps": 300.0, "acc %": 96.0,
             pruning.FITS: False, "source": "pynqrepro (smoke)"},  # recorded before the dataset column
            {"bits": 2, "method": "simd_blocks", "sparsity %": 15.0, "est fps": 2353.0, "acc %": 88.02,
             "dataset": "cifar10", "source": "reference: the study"}]
    panels = pruning.pareto_series(rows)
    assert sorted(panels) == ["ours: scikit-learn digits, smoke scale", "the study's: CIFAR-10"]
    ours = panels["ours: scikit-learn digits, smoke scale"]
    assert ours[("8-bit channels", True)] == [(10.0, 300.0, 96.0, False)]
    assert panels["the study's: CIFAR-10"] == {("2-bit simd_blocks", False): [(15.0, 2353.0, 88.02, True)]}


def test_pruning_first_screen_picks_the_fastest_step_within_one_point():
    def row(method, step, fps, drop, fits=True):
        return {"bits": 2, "board": "pynq-z1", "method": method, "step": step, "sparsity %": 10.0 * step,
                "acc %": 97.0 - drop, "drop vs dense": drop, "est fps": fps, "speedup vs dense": fps / 1000,
                pruning.FITS: fits, "source": "pynqrepro (smoke)"}

    rows = [row("dense", 0, 1000.0, 0.0), row("channels", 1, 1500.0, 0.5), row("channels", 2, 2500.0, 1.5),
            row("simd_blocks", 1, 1200.0, -0.2, fits=False),
            {"bits": 2, "board": "pynq-z1", "method": "simd_blocks", "est fps": 9999.0, "acc %": 88.0,
             "source": "reference: study"}]
    screen = "\n".join(pruning.first_screen(rows))
    assert "| pynq-z1 | 2/2   | channels    | 1,000       | 1,500 | 1.50x " in screen  # step 2 loses 1.5 points
    assert "| pynq-z1 | 2/2   | simd_blocks | 1,000       | 1,200 | 1.20x " in screen and "| no " in screen
    assert "9,999" not in screen


def test_calibration_first_screen_states_the_bound_and_each_anchors_errors():
    published = {"design": "CNV W2A2, BNN-PYNQ folding", "W/A": "2/2", "LUT": 37_302, "BRAM18": 280,
                 "source": "reference: BNN-PYNQ bnn/src/network/cnvW2A2/README.md"}
    ours = {"design": "CNV W2A2, BNN-PYNQ folding", "W/A": "2/2", "LUT": 26_816, "LUT FINN err": "-28 %",
            "LUT ours err": "-23 %", "BRAM18 FINN err": "-20 %", "BRAM18 ours err": "+10 %",
            "source": "pynqrepro estimate (finn-plus, whole design)"}
    bound = {"design": "spread and bound: LUT", "upper bound": "+33.1 %", "budget fraction": 0.751,
             "CNV anchors ours: median / worst abs. error": "9 % / 25 %",
             "CNV anchors FINN: median / worst abs. error": "28 % / 55 %",
             "foreign builds held out, fit: median abs. error": "24 %", "source": "pynqrepro (calibrated)"}
    screen = "\n".join(calibration.first_screen([published, ours, bound]))
    assert screen.index('How sure is a "fits"') < screen.index("Each CNV anchor")
    assert "| LUT        | +33.1 %       | 0.751             | 9 % / 25 %" in screen
    assert "| CNV W2A2, BNN-PYNQ folding | 2/2   | 37302      | -28 %          | -23 %          | 280" in screen
    assert calibration.first_screen([published, ours]) == []  # no bound recorded: no answer to give
