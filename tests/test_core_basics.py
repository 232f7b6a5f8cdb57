import os

import pytest

from pynqrepro.core.atomic import atomic_write_text, ensure_writable_dir
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.provenance import environment
from pynqrepro.core.scale import get_scale


def test_unknown_board_and_scale_name_the_choices():
    with pytest.raises(UserError, match="choose one of pynq-z1, pynq-z2, ultra96, zcu104, kv260, aup-zu3"):
        get_board("vck190")
    with pytest.raises(UserError, match="choose one of smoke, paper"):
        get_scale("huge")


def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    atomic_write_text(target, "old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_unwritable_dir_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"--reports-dir .*/a-file/reports is not writable: .*/a-file is a file, not a directory: "
                                        r"choose another path$") as err:
        ensure_writable_dir(blocker / "reports", "--reports-dir")
    assert "\n" not in str(err.value)


def test_provenance_names_versions_machine_and_commit():
    env = environment()
    assert env["packages"]["torch"].startswith("2.13")
    assert env["packages"]["brevitas"] == "0.13.4"
    assert env["packages"]["finn-plus"] == "1.6.1"
    assert env["python"].startswith("3.")
    assert env["cpu_count"] >= 1 and env["cpu"]
    assert set(env["git"]) == {"commit", "dirty"}


def test_study_figures_agree_with_the_copied_study_reports():
    """NUMBERS.md's folding figures (kept as data) and the study's own JSON reports say the same."""
    from pynqrepro.references import STUDY_FOLDING_RUNS, study_run_files

    for run in STUDY_FOLDING_RUNS:
        files = study_run_files(run.run)
        perf = files["estimate_network_performance"]
        assert perf["max_cycles"] == run.max_cycles, run.run
        assert round(perf["estimated_throughput_fps"], 1) == run.est_fps, run.run
        if run.ooc_lut is not None:
            ooc = files["ooc_synth_and_timing"]
            assert (ooc["LUT"], ooc["FF"], ooc["BRAM"], ooc["DSP"]) == (run.ooc_lut, run.ooc_ff, run.ooc_bram36, run.ooc_dsp)
            assert round(ooc["fmax_mhz"], 1) == run.ooc_fmax_mhz


def test_references_apply_to_their_board_or_to_any():
    from pynqrepro.references import ACCURACY, BOARD_MEASUREMENTS, STUDY_FOLDING_RUNS, Scope, select

    simulated = select(ACCURACY, board="ultra96", weight_bits=1, act_bits=1)
    assert [r.model for r in simulated] == ["CNV W1A1"]  # the on-board figure is Pynq-Z1's
    on_board = select(ACCURACY, board="pynq-z1", scope=Scope.ON_BOARD_ACCURACY, weight_bits=1, act_bits=1)
    assert [(r.model, r.board) for r in on_board] == [("CNV W1A1 on board (Pynq)", "pynq-z1")]
    assert select(BOARD_MEASUREMENTS, board="pynq-z1") == []
    assert {r.bits for r in select(STUDY_FOLDING_RUNS, board="pynq-z1", weight_bits=2, act_bits=2)} == {2}
    assert select(STUDY_FOLDING_RUNS, board="pynq-z1", weight_bits=1, act_bits=2) == []


def test_locations_follow_option_then_environment_then_root(monkeypatch, tmp_path):
    from pynqrepro.core.options import DATA_ENV, STORE_ENV, data_dir, store_dir

    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "datasets"))
    assert store_dir(None, tmp_path) == tmp_path / ".pynqrepro-store"
    assert data_dir(None, tmp_path) == tmp_path / "datasets"
    assert data_dir(tmp_path / "given", tmp_path) == tmp_path / "given"


def test_integer_lists_and_bad_options_are_one_line_user_errors():
    from pynqrepro.core.options import CommandParser, add_board_option, parse_int_list

    assert parse_int_list("9, 16,16", "--simd-list", "9,16") == (9, 16, 16)
    with pytest.raises(UserError, match=r"--simd-list '9;16' is not a comma-separated list of integers: write e.g. 9,16"):
        parse_int_list("9;16", "--simd-list", "9,16")
    parser = CommandParser(prog="demo")
    add_board_option(parser.add_argument)
    with pytest.raises(UserError, match=r"argument --board: invalid choice: 'vck190' .*\(see demo --help\)"):
        parser.parse_args(["--board", "vck190"])
