"""The one place pynqrepro boots FINN outside FINN's own CLI.

FINN's transformations need global settings and a build directory; FINN's builder module
(``finn.builder.build_dataflow_steps``) imports ``SimEngine`` from ``finn.xsi`` only as a type
annotation, yet that import demands an installed Vivado. Without Vivado we bind a placeholder to
that one name so the estimate-only steps (pure Python) import; with Vivado nothing is touched.
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from pynqrepro.core.machine import vivado_path

_booted = False


class _NoVivadoSimEngine:
    """Stands in for ``finn.xsi.SimEngine`` when Vivado is absent: RTL simulation cannot run."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("RTL simulation needs Vivado (XILINX_VIVADO); this machine has none")


def boot_finn() -> None:
    """Set FINN_BUILD_DIR (if unset), FINN's settings, and neutralise the xsi import without Vivado."""
    global _booted
    if _booted:
        return
    if not os.environ.get("FINN_BUILD_DIR"):
        build_dir = Path(tempfile.gettempdir()) / f"pynqrepro-finn-build-{os.getuid()}"
        build_dir.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    if vivado_path() is None:
        import finn.xsi

        if "SimEngine" not in vars(finn.xsi):
            finn.xsi.SimEngine = _NoVivadoSimEngine
    _booted = True


def builder_steps():
    """FINN's ``build_dataflow_steps`` module (its registered builder steps), importable without Vivado."""
    boot_finn()
    import finn.builder.build_dataflow_steps as steps

    return steps


def progress_to_stderr():
    """torch.onnx and FINN's transformations print progress to stdout; send it to stderr so that
    what the CLI prints (``--json``) stays machine-readable."""
    return contextlib.redirect_stdout(sys.stderr)
