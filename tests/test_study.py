"""The study modules and ``pynqrepro report TABLE``: the rows a CLI user records are the rows the
experiments record, under the same test ids, merged the same way."""

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from pynqrepro.cli import main
from pynqrepro.core.scale import SCALES
from pynqrepro.study import TABLES, bit_widths

REPO = Path(__file__).resolve().parents[1]


def test_report_ids_are_the_experiments_node_ids(tmp_path):
    """``EXPERIMENT[case.id]`` of every case is a collected experiment, so either replaces the other's rows."""
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "pyproject.toml", "--collect-only", "-q", "-p", "no:cacheprovider",
         f"--reports-dir={tmp_path / 'reports'}", f"--store-dir={tmp_path / 'store'}", "experiments"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    nodes = {line for line in collected.splitlines() if "::" in line}
    expected = set()
    for module_name in TABLES.values():
        module = importlib.import_module(module_name)
        expected |= {f"{module.EXPERIMENT}[{case.id}]" for case in module.CASES}
    assert nodes == expected


def test_every_scale_sets_every_training_floor():
    from pynqrepro.study import training

    for scale in SCALES.values():
        assert {(c.weight_bits, c.act_bits) for c in training.CASES} <= set(scale.min_test_acc), scale.name


def demo_study() -> types.ModuleType:
    """A study module whose measurement is instant: the report command's plumbing, not FINN's."""
    module = types.ModuleType("pynqrepro_demo_study")
    module.EXPERIMENT = "experiments/test_demo.py::test_demo"
    module.TITLE = "Demo"
    module.CASES = bit_widths((1, 1), (1, 2), (2, 2), (4, 4))

    def measure(setup, case):
        return {"model": case.model, "scale": setup.scale.name, "target": setup.board.name}

    def tabulate(results, setup, measured):
        results.table("demo", title=module.TITLE).add(measured, config={"model": measured["model"]})

    module.measure, module.tabulate = measure, tabulate
    return module


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynqrepro_demo_study", demo_study())
    monkeypatch.setitem(TABLES, "demo", "pynqrepro_demo_study")


def test_report_table_records_the_selected_cases_under_the_experiment_ids(demo, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(["report", "demo", "--weight-bits", "1", "2", "--act-bits", "2", "--board", "ultra96",
                 "--store-dir", str(tmp_path / "store"), "--reports-dir", str(reports)]) == 0
    rows = json.loads((reports / "demo.json").read_text())["rows"]
    assert [(r["test"], r["scale"], r["board"]) for r in rows] == [
        ("experiments/test_demo.py::test_demo[1w2a]", "smoke", "ultra96"),
        ("experiments/test_demo.py::test_demo[2w2a]", "smoke", "ultra96")]
    assert rows[0]["values"] == {"model": "CNV W1A2", "scale": "smoke", "target": "ultra96"}
    assert "demo [2w2a]: recorded" in capsys.readouterr().out
    # a second run of one case replaces that case's rows only, as a rerun of its test would
    assert main(["report", "--reports-dir", str(reports), "demo", "--weight-bits", "2", "--act-bits", "2",
                 "--board", "ultra96", "--store-dir", str(tmp_path / "store")]) == 0
    assert len(json.loads((reports / "demo.json").read_text())["rows"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["report", "demo", "--weight-bits", "3"], "argument --weight-bits: invalid choice: 3 (choose from 1, 2, 4)"),
    (["report", "nosuch"], "argument table: invalid choice: 'nosuch'"),
    (["report", "demo", "--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
])
def test_report_table_bad_options_are_one_line(demo, argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pynqrepro: error: {message}") and err.count("\n") == 1


def test_report_table_help_lists_the_case_fields(demo, capsys):
    with pytest.raises(SystemExit) as done:
        main(["report", "demo", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--weight-bits WEIGHT_BITS [WEIGHT_BITS ...]" in out and "(default: all of 1, 2, 4)" in out
    assert "--act-bits" in out


def test_report_offers_more_boards_than_the_experiment_runs(tmp_path):
    """The folding experiment runs the study's boards (CI time); ``pynqrepro report folding`` also
    offers every board: no option selects exactly the experiment's cases."""
    from pynqrepro.core.boards import BOARDS
    from pynqrepro.study import folding
    from pynqrepro.study.cli import selected_cases, table_parser

    parser = table_parser("folding", folding, tmp_path)
    assert selected_cases(folding, parser.parse_args([])) == list(folding.CASES)
    chosen = selected_cases(folding, parser.parse_args(["--target-board", "zcu104", "--bits", "2"]))
    assert {(c.target_board, c.bits) for c in chosen} == {("zcu104", 2)} and len(chosen) == 3
    assert {c.target_board for c in folding.REPORT_CASES} == set(BOARDS)
    assert "also aup-zu3, kv260, pynq-z2, zcu104" in " ".join(parser.format_help().split())
