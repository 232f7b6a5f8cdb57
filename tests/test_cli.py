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

    for command in ("train", "prune", "fold", "estimate", "build", "calibrate", "deploy", "report"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0, command
        assert capsys.readouterr().out.startswith(f"usage: pynqrepro {command}"), command


def test_help_imports_no_heavy_library():
    """--help is instant: registering every command imports no torch, Brevitas, qonnx or FINN."""
    import subprocess
    import sys

    code = ("import sys; from pynqrepro.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'brevitas', 'qonnx', 'finn', 'onnx', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_command_and_option_is_described_with_its_default():
    import argparse

    from pynqrepro.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in commands.items():
        assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert "default" in action.help or "required" in action.help, (name, action.dest)


def test_third_party_output_goes_to_the_store_log_unless_verbose(tmp_path, capsys):
    import sys

    from pynqrepro.core.logs import third_party_output, warn

    log = tmp_path / "logs" / "fold.log"
    with third_party_output(log, verbose=False):
        print("Converting quantized matmul layers...", file=sys.stderr)
        warn("this folding does not fit")
    assert capsys.readouterr().err == "pynqrepro: warning: this folding does not fit\n"
    assert log.read_text() == "Converting quantized matmul layers...\n"
    with third_party_output(None, verbose=True):
        print("FINN says", file=sys.stderr)
    assert capsys.readouterr().err == "FINN says\n"
    with third_party_output(tmp_path / "quiet.log", verbose=False):
        pass
    assert not (tmp_path / "quiet.log").exists()  # a log only where something was written


def test_verbose_is_accepted_before_and_after_the_command(tmp_path, capsys):
    for argv in (["-v", "report", "--reports-dir", str(tmp_path)], ["report", "-v", "--reports-dir", str(tmp_path)]):
        assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_a_stage_build_keeps_its_output_in_the_store(tmp_path, capsys):
    import sys

    from pynqrepro.core.store import ArtifactStore

    def build(out):
        print("Converting threshold layers...", file=sys.stderr)
        (out / "x").write_text("1")

    ArtifactStore(tmp_path).get_or_build("demo", {"a": 1}, build)
    assert capsys.readouterr().err == "Converting threshold layers...\n"  # still where it went
    [log] = (tmp_path / "logs").glob("demo-*.log")
    assert log.read_text() == "Converting threshold layers...\n"
    ArtifactStore(tmp_path).get_or_build("demo", {"a": 2}, lambda out: (out / "x").write_text("2"))
    assert len(list((tmp_path / "logs").glob("demo-*.log"))) == 1  # a silent build writes no log
