"""The ``pynqrepro`` command line. Each stage package contributes its sub-command through a
``register(subparsers)`` function in its ``cli`` module, listed in COMMANDS; a handler gets the
parsed arguments and raises UserError for bad input, printed as one line (exit 2)."""

import argparse
import importlib
import sys
from pathlib import Path

from pynqrepro.core.atomic import ensure_writable_dir
from pynqrepro.core.errors import UserError
from pynqrepro.core.reports import merge_reports, write_index

COMMANDS = (
    "pynqrepro.training.cli",
    "pynqrepro.pruning.cli",
    "pynqrepro.folding.cli",
    "pynqrepro.finnflow.cli",
    "pynqrepro.synthesis.cli",
    "pynqrepro.board.cli",
)


def _report(args) -> None:
    ensure_writable_dir(args.reports_dir, "--reports-dir")
    written = merge_reports(args.reports_dir)
    write_index(args.reports_dir)
    print(f"merged {', '.join(written) or 'no new rows'}; index at {args.reports_dir / 'index.md'}")


def _register_report(subparsers) -> None:
    parser = subparsers.add_parser("report", help="merge recorded rows into reports/ and rebuild the index")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.set_defaults(func=_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pynqrepro", description=__doc__.split(".")[0] + ".")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    _register_report(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UserError as exc:
        print(f"pynqrepro: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pynqrepro: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
