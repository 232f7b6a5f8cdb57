"""SLURM's command-line tools, asked with a timeout so that a controller that never answers
cannot hang the caller."""

import shutil
import subprocess

TOOLS = ("sbatch", "srun", "scontrol", "sinfo")
TOOL_TIMEOUT_S = 60


def run_tool(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def missing_tools() -> list[str]:
    """The SLURM tools this host lacks on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]
