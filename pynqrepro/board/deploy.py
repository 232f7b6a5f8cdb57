"""One board run: stage the package, copy it over, run FINN's driver there, fetch its reports."""

import hashlib
import subprocess
from pathlib import Path

import numpy as np

from pynqrepro.board.package import stage_package, validation_batch
from pynqrepro.board.remote import (
    BoardLogin,
    copy_to_board_argv,
    fetch_reports_argv,
    prepare_command,
    run_command,
    ssh_argv,
)
from pynqrepro.board.measurements import REPEATS, THROUGHPUT_BATCH, BoardResult, read_board_reports
from pynqrepro.core.errors import UserError
from pynqrepro.synthesis.deployment import BITFILE, check_package



def package_name(deploy_dir: Path) -> str:
    """Remote folder name: the bitfile's hash, so two builds never share a folder on the board."""
    return "cnv-" + hashlib.sha256((Path(deploy_dir) / BITFILE).read_bytes()).hexdigest()[:16]


def _run(what: str, argv: list[str], run) -> None:
    result = run(argv, capture_output=True, text=True)
    if result.stdout:
        print(result.stdout, end="")
    if result.returncode != 0:
        last = (result.stderr or result.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{what} failed on the board (exit {result.returncode}): {last[0]} "
                        f"(check --board-host/--board-user/--board-key, passwordless sudo and "
                        f"finn-plus-driver on the board)")


def run_on_board(login: BoardLogin, deploy_dir: Path, images: np.ndarray, labels: np.ndarray, work_dir: Path,
                 throughput_batch: int = THROUGHPUT_BATCH, repeats: int = REPEATS, run=subprocess.run) -> BoardResult:
    """FINN's driver on the board: validation over (images, labels), throughput at batch 1 and
    ``throughput_batch``. ``run`` executes one argv (subprocess.run; tests pass a fake)."""
    if throughput_batch < 1 or repeats < 1:
        raise UserError("--throughput-batch and --repeats must be at least 1")
    check_package(deploy_dir)
    name = package_name(deploy_dir)
    staged = stage_package(deploy_dir, images, labels, Path(work_dir) / name)
    fetched = Path(work_dir) / "fetched"
    fetched.mkdir(parents=True, exist_ok=True)
    _run("preparing the remote folder", ssh_argv(login, prepare_command(name)), run)
    _run("copying the package", copy_to_board_argv(login, staged), run)
    _run("FINN's driver", ssh_argv(login, run_command(name, validation_batch(len(labels)), throughput_batch,
                                                      repeats)), run)
    _run("fetching the reports", fetch_reports_argv(login, name, fetched), run)
    return read_board_reports(fetched / "report")
