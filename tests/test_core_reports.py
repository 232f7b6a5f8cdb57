import json

import pytest

from pynqrepro.core.report_files import merge_reports
from pynqrepro.core.results import STAGING, Recorder, SessionInfo
from pynqrepro.core.provenance import environment


def session(name, scale="smoke"):
    return SessionInfo(name, scale, "pynq-z1", environment())


def record(reports, info, nodeid, rows, table="training"):
    recorder = Recorder(reports, info, nodeid)
    tab = recorder.table(table, title="CNV training", notes=["a note"])
    for row in rows:
        tab.add(row, config={"lr": 0.02}, seed=1)
    return recorder


def test_rows_persist_as_soon_as_recorded(tmp_path):
    record(tmp_path, session("s1"), "exp.py::test[1w1a]", [{"W/A": "1/1", "acc": 91.0}])
    staged = list((tmp_path / STAGING / "s1").glob("*.json"))
    assert len(staged) == 1
    assert json.loads(staged[0].read_text())["rows"][0]["values"] == {"W/A": "1/1", "acc": 91.0}


def test_merge_writes_markdown_csv_json_and_index(tmp_path):
    record(tmp_path, session("s1"), "exp.py::test[1w1a]", [{"W/A": "1/1", "acc": 91.234}])
    record(tmp_path, session("s1"), "exp.py::test[2w2a]", [{"W/A": "2/2", "acc": 96.0, "fps": 123456.0}])
    assert merge_reports(tmp_path) == ["training"]
    md = (tmp_path / "training.md").read_text()
    assert md.startswith("# CNV training")
    assert "scale smoke · board pynq-z1 · commit" in md and "brevitas 0.13.4" in md and "finn-plus 1.6.1" in md
    assert "| W/A   |" in md and "91.23" in md and "123456" in md and "- a note" in md
    csv_lines = (tmp_path / "training.csv").read_text().splitlines()
    assert csv_lines[0].startswith("W/A,acc,fps,test,scale,board,date,commit,seed,config")
    assert len(csv_lines) == 3
    data = json.loads((tmp_path / "training.json").read_text())
    run = data["runs"]["s1"]
    assert run["environment"]["packages"]["torch"].startswith("2.13")
    assert data["rows"][0]["config"] == {"lr": 0.02} and data["rows"][0]["seed"] == 1
    assert "[CNV training](training.md)" in (tmp_path / "index.md").read_text()
    assert not list((tmp_path / STAGING).iterdir())


def test_rerun_replaces_its_own_rows_and_keeps_the_others(tmp_path):
    record(tmp_path, session("s1"), "exp.py::test[1w1a]", [{"W/A": "1/1", "acc": 90.0}])
    record(tmp_path, session("s1"), "exp.py::test[2w2a]", [{"W/A": "2/2", "acc": 95.0}])
    merge_reports(tmp_path)
    record(tmp_path, session("s2"), "exp.py::test[1w1a]", [{"W/A": "1/1", "acc": 92.0}])
    record(tmp_path, session("s3", scale="paper"), "exp.py::test[1w1a]", [{"W/A": "1/1", "acc": 84.0}])
    merge_reports(tmp_path)
    rows = json.loads((tmp_path / "training.json").read_text())["rows"]
    assert [(r["values"]["acc"], r["scale"]) for r in rows] == [(84.0, "paper"), (92.0, "smoke"), (95.0, "smoke")]


@pytest.mark.parametrize("content", ["{truncated", "[]", '{"rows": 3}'])
def test_corrupt_report_is_kept_aside_not_lost(tmp_path, capsys, content):
    (tmp_path / "training.json").write_text(content)
    (tmp_path / "notes.json").write_text('{"mine": 1}')  # a foreign file in reports/
    record(tmp_path, session("s1"), "exp.py::test[1w1a]", [{"acc": 90.0}])
    merge_reports(tmp_path)
    kept = list(tmp_path.glob("training.json.not-a-report-*"))
    assert len(kept) == 1 and kept[0].read_text() == content
    assert [p.read_text() for p in tmp_path.glob("notes.json.not-a-report-*")] == ['{"mine": 1}']
    assert json.loads((tmp_path / "training.json").read_text())["rows"][0]["values"] == {"acc": 90.0}
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and "training.json" in warning[0] and "notes.json" in warning[0]


def broken_plot(rows, reports_dir):
    raise RuntimeError("no display")


def test_failing_plot_keeps_the_tables(tmp_path, capsys):
    recorder = Recorder(tmp_path, session("s1"), "exp.py::test")
    recorder.table("pruning", title="Pruning", plot=f"{__name__}:broken_plot").add({"acc": 1.0})
    merge_reports(tmp_path)
    assert (tmp_path / "pruning.md").exists()
    assert "plot" in capsys.readouterr().err


def test_reference_rows_name_their_source_and_are_told_apart(tmp_path):
    from pynqrepro.core.results import is_reference_row
    from pynqrepro.references import ACCURACY, STUDY_FOLDING_RUNS

    table = Recorder(tmp_path, session("s1"), "exp.py::test[1w1a]").table("training", title="CNV training")
    table.add({"W/A": "1/1", "acc": 95.0, "source": "pynqrepro (smoke)"})
    table.add_reference(ACCURACY[0], {"W/A": "1/1", "acc": ACCURACY[0].top1})
    table.add_reference(STUDY_FOLDING_RUNS[0], {"W/A": "1/1"}, config={"run": "x"}, source="study x")
    merge_reports(tmp_path)
    rows = json.loads((tmp_path / "training.json").read_text())["rows"]
    assert [r["values"]["source"] for r in rows] == [
        "pynqrepro (smoke)", f"reference: {ACCURACY[0].source}", "reference: study x"]
    assert [is_reference_row(r["values"]) for r in rows] == [False, True, True]
    assert rows[2]["config"] == {"run": "x"}


def test_csv_keeps_a_rows_own_board_beside_the_sessions(tmp_path):
    """A table whose rows name their target board (folding: every board from one session) keeps it:
    the session's board goes to ``run board`` rather than a second ``board`` column a CSV reader
    would let win."""
    import csv

    record(tmp_path, session("s1"), "exp.py::test[ultra96]", [{"board": "ultra96", "fps": 1.0}], table="folding")
    merge_reports(tmp_path)
    rows = list(csv.DictReader((tmp_path / "folding.csv").open()))
    assert rows[0]["board"] == "ultra96" and rows[0]["run board"] == "pynq-z1" and rows[0]["scale"] == "smoke"
