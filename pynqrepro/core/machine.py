"""Which stage resources this machine has, and what to do when one is missing.

Each check returns None when the resource is present, else a one-line skip reason that names
what is missing and how to provide it.
"""

import os
import re
import shutil
from pathlib import Path

FINN_DEPS_COMMAND = "./run finn-deps"  # `finn deps update` in .venv/, with Vivado's settings sourced


def missing_gpu() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    return "needs a CUDA GPU: none is visible to torch (install a CUDA build of torch on a GPU machine)"


def vivado_path() -> str | None:
    if os.environ.get("XILINX_VIVADO"):
        return os.path.join(os.environ["XILINX_VIVADO"], "bin", "vivado")
    return shutil.which("vivado")


def vivado_version() -> tuple[int, int] | None:
    """(year, minor) as FINN reads it from XILINX_VIVADO (finn.util.basic.get_vivado_version)."""
    match = re.search(r"\b(20\d{2})\.(1|2)\b", os.environ.get("XILINX_VIVADO", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _executable(path: Path | str | None) -> bool:
    return path is not None and os.path.isfile(path) and os.access(path, os.X_OK)


def missing_vivado(board_files: str | None = None) -> str | None:
    """What FINN's full build lacks here, first missing piece first: Vivado, Vitis HLS, FINN's
    external dependencies (finn-hlslib, the XSI simulation bindings built for this Vivado) and,
    given ``board_files`` (``Board.board_files``), the board's files."""
    return _missing_xilinx_tools() or _missing_finn_deps(board_files)


def _missing_xilinx_tools() -> str | None:
    xilinx_vivado = os.environ.get("XILINX_VIVADO")
    if not xilinx_vivado:
        found = " (vivado is on PATH, but FINN reads XILINX_VIVADO)" if shutil.which("vivado") else ""
        return (f"needs Vivado/Vitis HLS: XILINX_VIVADO is unset{found}: source settings64.sh of the install, "
                f"e.g. /tools/Xilinx/Vivado/2024.1/settings64.sh")
    if not _executable(Path(xilinx_vivado) / "bin" / "vivado"):
        return f"needs Vivado: XILINX_VIVADO={xilinx_vivado} has no bin/vivado: source settings64.sh of a complete install"
    version = vivado_version()
    if version is None:
        return (f"needs Vivado: FINN reads the version from XILINX_VIVADO={xilinx_vivado} and finds none "
                f"(<year>.1 or <year>.2): source settings64.sh of a versioned install, e.g. .../Vivado/2024.1")
    release = f"{version[0]}.{version[1]}"
    tool = "vitis-run" if version > (2024, 2) else "vitis_hls"  # FINN's CallHLS picks the same
    override = os.environ.get("FINN_TOOL_DIR_OVERRIDE")
    if not (_executable(Path(override) / tool) if override else shutil.which(tool)):
        where = f"FINN_TOOL_DIR_OVERRIDE={override}" if override else "PATH"
        return (f"needs Vitis HLS {release}: {tool} is not on {where}: source settings64.sh of Vitis HLS "
                f"{release} (of Vitis from 2024.2)")
    if not os.environ.get("XILINX_HLS"):
        return f"needs Vitis HLS {release}: XILINX_HLS is unset: source settings64.sh of Vitis HLS {release}"
    return None


def finn_dependency_dirs() -> tuple[Path, Path]:
    """Where FINN keeps its external dependencies (FINN_DEPS: finn-hlslib, board files) and its XSI
    bindings (FINN_XSI: xsi.so), resolved as FINN resolves them (environment, then FINN's
    settings file, then its defaults inside the installed package)."""
    from finn.interface.settings import FINNSettings

    settings = FINNSettings.init(flow_config=Path("dummy.yaml"), auto_set_environment_vars=False)
    return Path(settings.finn_deps), Path(settings.finn_xsi)


def _missing_finn_deps(board_files: str | None) -> str | None:
    deps, xsi = finn_dependency_dirs()
    fix = f"run {FINN_DEPS_COMMAND} (finn deps update) with Vivado's settings sourced"
    if not (deps / "finn-hlslib" / "bnn-library.h").is_file():
        return f"needs FINN's finn-hlslib: {deps / 'finn-hlslib'} is missing: {fix}"
    year, minor = vivado_version()
    built_for = (xsi / "VERSION").read_text().strip() if (xsi / "VERSION").is_file() else None
    if not (xsi / "xsi.so").is_file() or built_for != f"Vivado {year}.{minor}":
        state = "not built" if not (xsi / "xsi.so").is_file() else f"built for {built_for or 'an unknown Vivado'}"
        return f"needs FINN's XSI bindings for Vivado {year}.{minor}: {xsi / 'xsi.so'} is {state}: {fix}"
    if board_files and not any((deps / "board_files" / board_files).rglob("board.xml")):
        return f"needs the board files of {board_files}: {deps / 'board_files' / board_files} has no board.xml: {fix}"
    return None


BOARD_HOST_ENV = "PYNQ_BOARD_HOST"


def missing_board(board_host: str | None) -> str | None:
    if board_host:
        return None
    return f"needs a PYNQ board: pass --board-host HOST or set {BOARD_HOST_ENV}"
