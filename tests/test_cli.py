from pynqrepro.cli import main
from pynqrepro.core.provenance import environment
from pynqrepro.core.results import Recorder, SessionInfo


def test_report_command_merges_staged_rows(tmp_path, capsys):
    recorder = Recorder(tmp_path, SessionInfo("s1", "smoke", "pynq-z1", environment()), "exp.py::test")
    recorder.table("demo", title="Demo").add({"x": 1})
    assert main(["report", "--reports-dir", str(tmp_path)]) == 0
    assert "merged demo" in capsys.readouterr().out
    assert (tmp_path / "demo.md").exists() and (tmp_path / "index.md").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", "--reports-dir", str(blocker / "reports")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pynqrepro: error: --reports-dir") and err.count("\n") == 1


def test_every_command_describes_itself(capsys):
    import pytest

    for command in ("train", "prune", "fold", "estimate", "build", "deploy", "report"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0, command
        assert capsys.readouterr().out.startswith(f"usage: pynqrepro {command}"), command
