"""The ``pynqrepro`` command line. Each stage package contributes its sub-command through a
``register(subparsers)`` function in its ``cli`` module, listed in COMMANDS; ``report`` comes from
``pynqrepro.study``. A handler gets the parsed arguments and raises UserError for bad input,
printed as one line (exit 2), as are bad options. Registering imports no torch, FINN or Brevitas
(``--help`` is instant): handlers import what they use. Third-party output goes to the store's
``logs/`` unless ``-v`` (``pynqrepro.core.logs``)."""

import argparse
import errno
import importlib
import os
import sys

from pynqrepro.core.errors import UserError
from pynqrepro.core.logs import log_file, third_party_output
from pynqrepro.core.options import CommandParser, clip_echoes

COMMANDS = (
    "pynqrepro.training.cli",
    "pynqrepro.pruning.cli",
    "pynqrepro.folding.cli",
    "pynqrepro.finnflow.cli",
    "pynqrepro.synthesis.cli",
    "pynqrepro.board.cli",
    "pynqrepro.study.cli",
    "pynqrepro.study.explore_cli",
)


def build_parser() -> CommandParser:
    parser = CommandParser(prog="pynqrepro", description="Reproduce 'Optimizing Neural Networks for PYNQ': train, "
                                                         "prune, fold, estimate, build, deploy, report. "
                                                         "Bad input: one line naming the fix, exit 2.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show FINN's, torch's and Brevitas's own output (default: only in the store's "
                             "logs/ folder)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    for command in subparsers.choices.values():  # -v after the command too; SUPPRESS keeps one given before
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="also show third-party output (default: off)")
    return parser


def main(argv: list[str] | None = None) -> int:
    log = None
    try:
        args = build_parser().parse_args(argv)
        store_dir = getattr(args, "store_dir", None)
        log = log_file(store_dir, args.command) if store_dir is not None else None
        with third_party_output(log, args.verbose):
            args.func(args)
    except UserError as exc:  # one line, even where it quotes a tool's multi-line message
        print(f"pynqrepro: error: {clip_echoes('; '.join(filter(None, map(str.strip, str(exc).splitlines()))))}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pynqrepro: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # any path option: the first stat fails
            print(f"pynqrepro: error: {clip_echoes(str(exc.filename))} is too long a path: each name in it may have "
                  f"{os.pathconf('/', 'PC_NAME_MAX')} characters at most: shorten it", file=sys.stderr)
            return 2
        if log is not None and log.exists():
            print(f"pynqrepro: third-party output of this run: {log}", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
