"""The pytest plugin as users meet it: markers, options, skips and reports under xdist."""

import json

import pytest

EXPERIMENT = """
import pytest

@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_rows(results, scale, board, bits):
    results.table("demo", title="Demo table").add({"bits": bits, "scale": scale.name, "board": board.name})

@pytest.mark.vivado
def test_synthesis():
    raise AssertionError("must not run without Vivado")

@pytest.mark.gpu
def test_paper_training():
    raise AssertionError("must not run without a GPU")

@pytest.mark.board
def test_on_board():
    raise AssertionError("must not run without a board")
"""


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    monkeypatch.delenv("PYNQ_BOARD_HOST", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vivado on PATH
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.makepyfile(test_demo=EXPERIMENT)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")  # the plugin comes from its entry point
    return pytester


def test_vivado_selection_is_green_with_every_test_skipped(project):
    result = project.runpytest_subprocess("-m", "vivado", "-rs")
    result.assert_outcomes(skipped=1, deselected=6)
    result.stdout.fnmatch_lines(["*vivado: needs Vivado/Vitis HLS: XILINX_VIVADO is unset: source settings64.sh*"])


def test_missing_resources_skip_with_one_line_reasons(project):
    result = project.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=4, skipped=3)
    result.stdout.fnmatch_lines_random([
        "*gpu: needs a CUDA GPU*",
        "*board: needs a PYNQ board: pass --board-host HOST or set PYNQ_BOARD_HOST*",
    ])


def test_rows_merge_into_reports_under_xdist(project):
    project.makepyfile(test_threads="""
import os, torch
def test_each_worker_gets_its_share_of_the_cores():
    assert torch.get_num_threads() == max(1, os.cpu_count() // 2)
""")
    result = project.runpytest_subprocess("-n", "2", "--board", "ultra96", "-m", "not vivado")
    result.assert_outcomes(passed=5, skipped=2)
    reports = project.path / "reports"
    data = json.loads((reports / "demo.json").read_text())
    assert sorted(r["values"]["bits"] for r in data["rows"]) == [1, 2, 4, 8]
    assert {r["values"]["board"] for r in data["rows"]} == {"ultra96"}
    assert len(data["runs"]) == 1  # one session id shared by both workers
    assert "board ultra96" in (reports / "demo.md").read_text()
    assert "[Demo table](demo.md)" in (reports / "index.md").read_text()


def test_unknown_marker_is_an_error(project):
    project.makepyfile(test_typo="import pytest\n@pytest.mark.vivaldo\ndef test_x():\n    pass\n")
    result = project.runpytest_subprocess("test_typo.py")
    result.stdout.fnmatch_lines(["*'vivaldo' not found in `markers` configuration option*"])
    assert result.ret != 0


@pytest.mark.parametrize("option,value,message", [
    ("--scale", "huge", "*argument --scale: invalid choice: 'huge'*"),
    ("--board", "vck190", "*argument --board: invalid choice: 'vck190' (choose from 'aup-zu3', 'kv260', 'pynq-z1', "
                          "'pynq-z2', 'ultra96', 'zcu104')*"),
    ("--max-steps", "0", "*--max-steps must be a positive integer, got 0*"),
])
def test_bad_options_are_one_line_errors(project, option, value, message):
    result = project.runpytest_subprocess(option, value)
    result.stderr.fnmatch_lines([message])
    assert result.ret == 4


def test_directory_option_values_are_not_taken_for_test_paths(project, tmp_path_factory):
    """As ./run calls pytest: with the config file named, an existing directory as an option value."""
    reports = tmp_path_factory.mktemp("existing-reports")
    result = project.runpytest_subprocess("-c", "tox.ini", "--reports-dir", str(reports), "-m", "not vivado")
    result.assert_outcomes(passed=4, skipped=2)
    assert (reports / "demo.md").exists()


def test_unwritable_reports_dir_is_a_usage_error(project):
    (project.path / "blocker").write_text("")
    result = project.runpytest_subprocess("--reports-dir", str(project.path / "blocker" / "reports"))
    result.stderr.fnmatch_lines(["*--reports-dir */blocker/reports is not writable: */blocker is a file, not a directory: choose another path"])
    assert result.ret == 4


UNRELATED = """
import pytest

@pytest.mark.parametrize("x", [1, 2])
def test_something_else(x, tmp_path):
    assert x > 0
"""


def _files(root) -> set[str]:
    """Every file and directory under ``root`` but Python's caches and pytester's own (the
    subprocess's stdout/stderr files, its --basetemp runpytest-N)."""
    return {str(path.relative_to(root)) for path in root.rglob("*")
            if "__pycache__" not in path.parts and path.relative_to(root).parts[0] not in ("stdout", "stderr")
            and not path.relative_to(root).parts[0].startswith("runpytest-")}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_unrelated_session_is_left_alone(pytester, monkeypatch, xdist):
    """Installed as a pytest11 entry point, the plugin is in every pytest session of the environment:
    one that uses nothing of pynqrepro creates no file or directory, checks no login (a malformed
    board host would be a usage error) and merges nothing."""
    monkeypatch.setenv("PYNQ_BOARD_HOST", "not a host name")
    monkeypatch.delenv("PYNQREPRO_STORE", raising=False)
    pytester.makepyfile(test_unrelated=UNRELATED)
    before = _files(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=2)
    assert _files(pytester.path) == before
    # the same session passing a pynqrepro option is a pynqrepro one: the login is checked
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--scale", "smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any("board host and user must be plain names" in line for line in result.errlines)
