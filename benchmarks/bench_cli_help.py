"""Start-up time of ``pynqrepro --help``, of every ``pynqrepro <command> --help`` and of every
``pynqrepro report <table> --help`` (target: under 1 s), each the median of N fresh processes, wall
and CPU time; with ``--baseline REV`` the same commands run against the package as of git revision
REV (exported to a temporary directory and put first on PYTHONPATH, same interpreter and libraries)
and the ratio old/new is printed.

Usage: python benchmarks/bench_cli_help.py [--runs 5] [--baseline 335e425]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from pynqrepro.study import TABLES

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ("", "train", "prune", "fold", "estimate", "build", "calibrate", "deploy", "report", *(f"report {t}" for t in TABLES))
RUN_CLI = "import sys; from pynqrepro.cli import main; sys.argv[0] = 'pynqrepro'; sys.exit(main())"


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one process printing the help, run outside the repository
    (so that PYTHONPATH, not the working directory, decides which package it imports)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(pythonpath: Path | None, runs: int) -> dict[str, tuple[float, float]]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = {}
    for command in COMMANDS:
        argv = [sys.executable, "-c", RUN_CLI, *command.split(), "--help"]
        samples = [timed(argv, env) for _ in range(runs)]
        out[command or "(top)"] = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
    return out


def export(revision: str, target: Path) -> Path:
    """The package as of ``revision``, written under ``target`` (git archive, no checkout touched)."""
    archive = target / "src.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), revision, "pynqrepro"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command (default: %(default)s)")
    parser.add_argument("--baseline", help="git revision to compare with (default: none)")
    args = parser.parse_args()
    new = measure(None, args.runs)
    old = None
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
            old = measure(export(args.baseline, Path(tmp)), args.runs)
    print(f"pynqrepro <command> --help, median of {args.runs} processes (wall s / CPU s)"
          + (f"; baseline {args.baseline}" if old else ""))
    for command, (wall, cpu) in new.items():
        line = f"  {command:22s} now {wall:6.2f} / {cpu:6.2f}"
        if old:
            old_wall, old_cpu = old[command]
            line += f"   {args.baseline} {old_wall:6.2f} / {old_cpu:6.2f}   ratio {old_wall / wall:5.1f}x wall"
        print(line + ("" if wall < 1.0 else "   OVER 1 s"))


if __name__ == "__main__":
    main()
