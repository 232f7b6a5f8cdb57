"""The Vivado and board stages' cases and rows (issue 20): every bit width the harness trains gets
the exact, published, pruned and recommended designs; a design that is not built is a row with its
reason; rows put the build's figures beside FINN's raw estimate and ours with its bound."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from pynqrepro.core.boards import get_board
from pynqrepro.core.results import Recorder, SessionInfo
from pynqrepro.folding.budget_calibration import Margins
from pynqrepro.study import board as on_board
from pynqrepro.study import synthesis
from pynqrepro.synthesis.vivado_build import SynthesisBuild
from pynqrepro.synthesis.vivado_reports import SynthesisResult

REPO = Path(__file__).resolve().parents[1]
TRAINED = ("1w1a", "1w2a", "2w2a", "4w4a", "8w8a")  # pynqrepro.study.training.CASES


def collect(tmp_path, marker: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "pyproject.toml", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", "-m", marker, f"--reports-dir={tmp_path / 'r'}", f"--store-dir={tmp_path / 's'}",
         "experiments"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "::" in line and line.startswith(
        f"experiments/test_{'synthesis' if marker == 'vivado and not board' else 'board'}")}


def test_vivado_and_board_stages_collect_every_design_at_every_trained_bit_width(tmp_path):
    from pynqrepro.study import training

    assert {c.id for c in training.CASES} == set(TRAINED)
    assert collect(tmp_path, "vivado and not board") == {
        f"{bits}-{design}" for bits in TRAINED for design in ("exact", "published", "pruned", "recommended")}
    assert collect(tmp_path, "board") == {f"{bits}-{design}" for bits in TRAINED for design in ("exact", "published")}


def test_designs_without_a_folding_are_rows_with_their_reason_before_any_work():
    # setup None: neither asks for a network (no training, no FINN)
    published = synthesis.candidates(None, synthesis.Build(4, 4, "published"))
    assert published[0].folding is None and "FINN publishes no CNV W4A4 folding" in published[0].why_not
    pruned = synthesis.candidates(None, synthesis.Build(1, 2, "pruned"))
    assert pruned[0].folding is None and "prunes no CNV W1A2" in pruned[0].why_not


def test_recommended_designs_come_from_the_design_space_rows_of_the_board(tmp_path):
    rows, why = synthesis.recommended_rows(tmp_path, "pynq-z1")
    assert rows == [] and "no design-space report" in why and "test_design_space.py" in why
    report = {"title": "Design space", "runs": {}, "rows": [
        {"values": {"board": "pynq-z1", "recommended": "", "checkpoint key": "a"}},
        {"values": {"board": "ultra96", "recommended": "(a) best accuracy at 3000 fps", "checkpoint key": "b"}},
        {"values": {"board": "pynq-z1", "recommended": "(b) fastest within 1 pp", "checkpoint key": "c",
                    "folding JSON": "[pynq-z1-b.json](foldings/pynq-z1-b.json)"}}]}
    (tmp_path / "design_space.json").write_text(json.dumps(report))
    rows, why = synthesis.recommended_rows(tmp_path, "pynq-z1")
    assert [r["checkpoint key"] for r in rows] == ["c"] and why == ""
    assert synthesis._markdown_target(rows[0]["folding JSON"]) == "foldings/pynq-z1-b.json"
    rows, why = synthesis.recommended_rows(tmp_path, "zcu104")
    assert rows == [] and "recommends no design for zcu104" in why
    setup = SimpleNamespace(reports_dir=tmp_path, board=get_board("zcu104"))
    assert "recommends no design for zcu104" in synthesis.candidates(setup, synthesis.Build(2, 2, "recommended"))[0].why_not


class Ours:
    """A whole-design estimate with the given totals (what ``folding.optimise.Folding`` offers)."""

    def __init__(self, lut, bram18, dsp, fps):
        self.totals, self._fps = {"LUT": lut, "BRAM_18K": bram18, "DSP": dsp}, fps

    def total(self, resource):
        return self.totals[resource]

    def fps(self, clock_ns):
        return self._fps


def judged(lut, bram18=100, dsp=0):
    finn = SimpleNamespace(totals={"lut": 20_000.4, "bram18": 90, "dsp": 0})
    return synthesis.Judged(Ours(lut, bram18, dsp, 3051.78), Margins(0.8, 0.9, 1.0, "test"), finn)


def test_rows_put_the_build_beside_finns_estimate_and_ours_with_its_bound():
    board = get_board("pynq-z1")  # 53,200 LUT, 280 BRAM18, 220 DSP
    candidate = synthesis.Candidate("exact", folding={"x": {"PE": 1}})
    build = SynthesisBuild(SynthesisResult(25_000, 30_000, 40, 0, wns_ns=0.5, fmax_mhz=105.3),
                           SynthesisResult(32_000, 41_000, 50, 2, wns_ns=0.2, fmax_mhz=102.0), Path("b"))
    row = synthesis.synthesis_row("CNV W2A2", board, synthesis.Synthesis(candidate, judged(30_000), build))
    assert row["LUT bound"] == 37_500 and row["BRAM18 bound"] == 112 and row["fits (certified)"] == "yes"
    assert row["FINN LUT"] == 20_000 and row["OOC LUT"] == 25_000 and row["design LUT"] == 32_000
    assert row["FINN/OOC LUT"] == 0.8 and row["ours/design LUT"] == 0.938 and "note" not in row
    # 43,000 / 0.8 = 53,750 LUT > 53,200: built (the estimate fits) but not certified
    assert synthesis.synthesis_row("CNV W2A2", board, synthesis.Synthesis(candidate, judged(43_000), build)
                                   )["fits (certified)"] == "no"


def test_a_design_that_does_not_fit_is_a_row_with_its_reason(tmp_path, monkeypatch):
    board = get_board("pynq-z1")
    assert judged(60_000).over_device(board) == ["LUT 60,000 > 53,200"]
    assert judged(50_000).over_device(board) == []
    candidate = synthesis.Candidate("FINN published", folding={"x": {"PE": 1}})
    setup = SimpleNamespace(board=board, scale=SimpleNamespace(name="smoke"))
    monkeypatch.setattr(synthesis, "judge", lambda setup, candidate: judged(60_000))
    judged_, why = synthesis.buildable(setup, candidate)
    assert "does not fit pynq-z1 (whole-design estimate: LUT 60,000 > 53,200): not built" == why
    recorder = Recorder(tmp_path, SessionInfo("s", "smoke", "pynq-z1", {}), "t")
    syntheses = synthesis.Syntheses(synthesis.Build(2, 2, "published"), [synthesis.Synthesis(candidate, judged_, None, why)])
    synthesis.tabulate(recorder, setup, syntheses)
    (row,) = [r["values"] for r in recorder._rows]
    assert row["fits (certified)"] == "no" and row["note"] == why and "OOC LUT" not in row


def test_board_rows_flag_a_pipeline_running_below_095_of_its_estimate(tmp_path):
    result = SimpleNamespace(top1=84.2, num_samples=10_000, fps=2_850.0, latency_ms=0.4, fclk_mhz=100.0)
    row = on_board.board_row("CNV W1A1", "pynq-z1", "exact", result, 84.2, 3_051.8, 0.41, "pynqrepro (smoke)")
    assert row["fps/est."] == 0.934 and row["FIFO flag"] == "stalls"
    result.fps = 2_950.0
    assert on_board.board_row("CNV W1A1", "pynq-z1", "exact", result, 84.2, 3_051.8, 0.41, "x")["FIFO flag"] == ""
    recorder = Recorder(tmp_path, SessionInfo("s", "smoke", "pynq-z1", {}), "t")
    candidate = synthesis.Candidate("FINN published", why_not="FINN publishes no CNV W8A8 folding")
    setup = SimpleNamespace(board=get_board("pynq-z1"), scale=SimpleNamespace(name="smoke", dataset="digits"))
    on_board.tabulate(recorder, setup, on_board.OnBoard(synthesis.Build(8, 8, "published"), candidate,
                                                        why_not=candidate.why_not))
    assert recorder._rows[0]["values"]["note"] == "FINN publishes no CNV W8A8 folding"


def test_first_screens_answer_what_was_built_and_how_fast_it_ran():
    rows = [{"model": "CNV W2A2", "board": "pynq-z1", "design": "exact", "fits (certified)": "yes", "est. fps": 2712.7,
             "LUT bound": 53_000, "design LUT": 47_000, "design fmax MHz": 104.2},
            {"model": "CNV W4A4", "board": "pynq-z1", "design": "FINN published", "note": "FINN publishes no ..."},
            {"model": "CNV W2A2", "board": "pynq-z1", "design": "x", "OOC LUT": 1, "source": "reference: study"}]
    screen = "\n".join(synthesis.first_screen(rows))
    assert "1 of 2 designs built" in screen and "| CNV W2A2 | pynq-z1 | exact    | yes" in screen
    board_rows = [{"model": "CNV W2A2", "board": "pynq-z1", "folding": "exact", "fps": 2600.0, "fps/est.": 0.958,
                   "FIFO flag": "", "on-board top-1 %": 97.1},
                  {"model": "CNV W2A2", "board": "pynq-z1", "folding": "FINN published", "fps": 860.0}]
    screen = "\n".join(on_board.first_screen(board_rows))
    assert "| CNV W2A2 | pynq-z1 | 2600.0      | 0.958      |        | 97.1      | 860.0           | 3.02x " in screen


def test_every_recommended_design_is_built_under_exactly_one_case():
    assert [synthesis.case_bits(w, a) for w, a in synthesis.BUILT_BITS] == list(synthesis.BUILT_BITS)
    # mixed precision: the narrowest trained width covering its widest layer
    assert synthesis.case_bits(2, 1) == (2, 2) and synthesis.case_bits(4, 2) == (4, 4)
    assert synthesis.case_bits(8, 4) == (8, 8) and synthesis.case_bits(1, 2) == (1, 2)
