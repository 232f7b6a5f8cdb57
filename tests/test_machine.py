"""The vivado stage's check of a synthesis host, on fake Xilinx installs laid out like real ones:
Vivado and Vitis HLS trees with their tools, FINN's dependency folder as `finn deps update` fills
it (finn-hlslib, board files) and the XSI bindings it builds. Each missing piece gives its own
one-line reason naming the command that fixes it."""

import os
import stat

import pytest

from pynqrepro.core import machine
from pynqrepro.core.boards import BOARDS


def _tool(path, name):
    path.mkdir(parents=True, exist_ok=True)
    script = path / name
    script.write_text(f"#!/bin/sh\necho {name} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A complete synthesis host: Vivado 2024.1 and Vitis HLS 2024.1 as settings64.sh leaves them in
    the environment, FINN's dependencies and XSI bindings built for that Vivado."""
    vivado = tmp_path / "Xilinx" / "Vivado" / "2024.1"
    hls = tmp_path / "Xilinx" / "Vitis_HLS" / "2024.1"
    _tool(vivado / "bin", "vivado")
    _tool(hls / "bin", "vitis_hls")
    deps, xsi = tmp_path / "finn_deps", tmp_path / "finn_xsi"
    (deps / "finn-hlslib").mkdir(parents=True)
    (deps / "finn-hlslib" / "bnn-library.h").write_text("// finn-hlslib\n")
    for board in (board for board in BOARDS.values() if board.board_files is not None):  # None: in Vivado
        revision = deps / "board_files" / board.board_files / "1.0"
        revision.mkdir(parents=True)
        (revision / "board.xml").write_text("<board/>\n")
    xsi.mkdir()
    (xsi / "xsi.so").write_bytes(b"\x7fELF")
    (xsi / "VERSION").write_text("Vivado 2024.1\n")
    env = {"XILINX_VIVADO": str(vivado), "XILINX_HLS": str(hls), "FINN_DEPS": str(deps), "FINN_XSI": str(xsi),
           "FINN_SETTINGS": str(tmp_path / "no-settings.yaml"),
           "PATH": os.pathsep.join([str(hls / "bin"), str(vivado / "bin"), "/usr/bin", "/bin"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FINN_TOOL_DIR_OVERRIDE", raising=False)
    return tmp_path


def test_a_complete_synthesis_host_has_everything(host):
    assert machine.finn_dependency_dirs() == (host / "finn_deps", host / "finn_xsi")
    for board in BOARDS.values():
        assert machine.missing_vivado(board.board_files) is None


def _unset(name):
    return lambda host, monkeypatch: monkeypatch.delenv(name)


def _remove(relative):
    return lambda host, monkeypatch: (host / relative).unlink()


def _rename_install(host, monkeypatch):
    (host / "Xilinx" / "Vivado" / "2024.1").rename(host / "Xilinx" / "Vivado" / "latest")
    monkeypatch.setenv("XILINX_VIVADO", str(host / "Xilinx" / "Vivado" / "latest"))


def _xsi_of_another_vivado(host, monkeypatch):
    (host / "finn_xsi" / "VERSION").write_text("Vivado 2023.2\n")


def _newer_vivado(host, monkeypatch):
    """From 2025.1 FINN runs HLS through vitis-run: a host with only vitis_hls lacks it."""
    newer = host / "Xilinx" / "Vivado" / "2025.1"
    (host / "Xilinx" / "Vivado" / "2024.1").rename(newer)
    monkeypatch.setenv("XILINX_VIVADO", str(newer))


def _no_settings(host, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")


MISSING = {
    "no Vivado settings": (_no_settings, "needs Vivado/Vitis HLS: XILINX_VIVADO is unset: source settings64.sh"),
    "vivado on PATH only": (_unset("XILINX_VIVADO"), "XILINX_VIVADO is unset (vivado is on PATH, but FINN reads "
                                                     "XILINX_VIVADO): source settings64.sh"),
    "Vivado without bin/vivado": (_remove("Xilinx/Vivado/2024.1/bin/vivado"), "has no bin/vivado: source settings64.sh"),
    "unversioned Vivado": (_rename_install, "finds none (<year>.1 or <year>.2)"),
    "no vitis_hls": (_remove("Xilinx/Vitis_HLS/2024.1/bin/vitis_hls"),
                     "needs Vitis HLS 2024.1: vitis_hls is not on PATH: source settings64.sh of Vitis HLS 2024.1"),
    "no XILINX_HLS": (_unset("XILINX_HLS"), "needs Vitis HLS 2024.1: XILINX_HLS is unset"),
    "2025.1 without vitis-run": (_newer_vivado, "needs Vitis HLS 2025.1: vitis-run is not on PATH"),
    "no finn-hlslib": (_remove("finn_deps/finn-hlslib/bnn-library.h"),
                       "needs FINN's finn-hlslib: {host}/finn_deps/finn-hlslib is missing: run ./run finn-deps "
                       "(finn deps update) with Vivado's settings sourced"),
    "no XSI bindings": (_remove("finn_xsi/xsi.so"),
                        "needs FINN's XSI bindings for Vivado 2024.1: {host}/finn_xsi/xsi.so is not built: "
                        "run ./run finn-deps"),
    "XSI of another Vivado": (_xsi_of_another_vivado, "xsi.so is built for Vivado 2023.2: run ./run finn-deps"),
    "no board files": (_remove("finn_deps/board_files/ultra96v1/1.0/board.xml"),
                       "needs the board files of ultra96v1: {host}/finn_deps/board_files/ultra96v1 has no board.xml: "
                       "run ./run finn-deps"),
}


@pytest.mark.parametrize("piece", MISSING)
def test_each_missing_piece_is_named_with_its_fix(host, monkeypatch, piece):
    remove, expected = MISSING[piece]
    remove(host, monkeypatch)
    reason = machine.missing_vivado("ultra96v1")
    assert reason is not None and expected.format(host=host) in reason
    assert "\n" not in reason


def test_the_vivado_stage_skips_with_the_missing_piece_and_runs_on_a_complete_host(host, pytester, monkeypatch):
    pytester.makepyfile(test_synth="""
import pytest

@pytest.mark.vivado
def test_synthesis():
    pass
""")
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    assert pytester.runpytest_subprocess("-m", "vivado").ret == 0
    pytester.runpytest_subprocess("-m", "vivado").assert_outcomes(passed=1)
    (host / "finn_xsi" / "xsi.so").unlink()
    result = pytester.runpytest_subprocess("-m", "vivado", "-rs", "--board", "ultra96")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*vivado: needs FINN's XSI bindings for Vivado 2024.1: *xsi.so is not built: "
                                 "run ./run finn-deps (finn deps update) with Vivado's settings sourced*"])
