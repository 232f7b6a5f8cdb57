"""The ``pynqrepro`` command line. Each stage package contributes its sub-command through a
``register(subparsers)`` function in its ``cli`` module, listed in COMMANDS; ``report`` comes from
``pynqrepro.study``. A handler gets the parsed arguments and raises UserError for bad input,
printed as one line (exit 2), as are bad options."""

import importlib
import sys

from pynqrepro.core.errors import UserError
from pynqrepro.core.options import CommandParser

COMMANDS = (
    "pynqrepro.training.cli",
    "pynqrepro.pruning.cli",
    "pynqrepro.folding.cli",
    "pynqrepro.finnflow.cli",
    "pynqrepro.synthesis.cli",
    "pynqrepro.board.cli",
    "pynqrepro.study.cli",
)


def build_parser() -> CommandParser:
    parser = CommandParser(prog="pynqrepro", description=__doc__.split(".")[0] + ".")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
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
