"""Options every command and the pytest plugin share, defined once: where the datasets, the
artifact store and the reports live (the option, else the environment variable, else a default
under the working directory, or pytest's rootdir), the board and scale choices, the board login,
comma-separated integer lists, and an argument parser whose errors are one line like every other
bad input.

The ``add_*`` helpers take the ``add`` function of an ``argparse`` parser (``add_argument``) or of a
pytest option group (``addoption``); the two accept the same keywords.
"""

import argparse
import os
import re
from pathlib import Path

from pynqrepro.core.boards import BOARDS, DEFAULT_BOARD
from pynqrepro.core.errors import UserError
from pynqrepro.core.machine import BOARD_HOST_ENV
from pynqrepro.core.scale import DEFAULT_SCALE, SCALES

STORE_ENV = "PYNQREPRO_STORE"
DATA_ENV = "PYNQREPRO_DATA"
BOARD_USER_ENV = "PYNQ_BOARD_USER"
BOARD_KEY_ENV = "PYNQ_BOARD_KEY"
STORE_DIR = ".pynqrepro-store"
DATA_DIR = "data"
REPORTS_DIR = "reports"
ALL_ONES = "all-ones"  # the --folding spec of PE = SIMD = 1 everywhere


def store_dir(given: Path | None = None, root: Path = Path()) -> Path:
    """``given``, else ``$PYNQREPRO_STORE``, else ``root/.pynqrepro-store``."""
    return Path(given or os.environ.get(STORE_ENV) or Path(root) / STORE_DIR)


def data_dir(given: Path | None = None, root: Path = Path()) -> Path:
    """``given``, else ``$PYNQREPRO_DATA``, else ``root/data``."""
    return Path(given or os.environ.get(DATA_ENV) or Path(root) / DATA_DIR)


def reports_dir(given: Path | None = None, root: Path = Path()) -> Path:
    return Path(given or Path(root) / REPORTS_DIR)


def add_store_option(add, default: Path | None = None) -> None:
    add("--store-dir", type=Path, default=default if default is not None else store_dir(),
        help=f"artifact store: checkpoints, ONNX models, builds (default: ${STORE_ENV} or ./{STORE_DIR})")
    add("--verify", action="store_true",
        help="hash every store entry's files at its first lookup (default: only when its size, mtime or inode "
             "changed since its last hash)")


def add_data_option(add, default: Path | None = None) -> None:
    add("--data-dir", type=Path, default=default if default is not None else data_dir(),
        help=f"datasets: holds cifar-10-python.tar.gz (default: ${DATA_ENV} or ./{DATA_DIR})")


def add_reports_option(add, default: Path | None = None) -> None:
    add("--reports-dir", type=Path, default=default if default is not None else reports_dir(),
        help=f"where the report tables go (default: ./{REPORTS_DIR})")


def add_board_option(add) -> None:
    add("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD,
        help=f"target board (default: {DEFAULT_BOARD}; parts and budgets in pynqrepro/core/boards.py)")


def add_scale_option(add, help: str = "") -> None:
    described = "; ".join(f"{scale.name}: {scale.description}" for scale in SCALES.values())
    add("--scale", choices=sorted(SCALES), default=DEFAULT_SCALE,
        help=f"{help or described} (default: {DEFAULT_SCALE})")


def add_board_login_options(add) -> None:
    """The PYNQ board for the board stage: host, SSH user and key (defaults from the environment)."""
    add("--board-host", default=os.environ.get(BOARD_HOST_ENV),
        help=f"PYNQ board address for the board stage (default: ${BOARD_HOST_ENV})")
    add("--board-user", default=os.environ.get(BOARD_USER_ENV, "xilinx"),
        help=f"SSH user on the board (default: ${BOARD_USER_ENV} or xilinx)")
    add("--board-key", default=os.environ.get(BOARD_KEY_ENV),
        help=f"SSH private key for the board (default: ${BOARD_KEY_ENV})")


def parse_int_list(text: str, option: str, example: str) -> tuple[int, ...]:
    """``"9, 16, 16"`` -> (9, 16, 16); anything else is a UserError naming ``option``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"{option} {_clip(repr(text))} is not a comma-separated list of integers: write e.g. "
                        f"{example}") from None


CALIBRATED = "calibrated"


def parse_margin(text: str) -> str | float:
    """``calibrated`` or a budget fraction in (0, 1]; anything else is a UserError naming the fix."""
    if text == CALIBRATED:
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value <= 1.0:
        raise UserError(f"--margin {text!r} is neither {CALIBRATED} nor a fraction in (0, 1]: "
                        f"use --margin {CALIBRATED} (the bound from real FINN builds) or e.g. --margin 0.85")
    return value


def add_margin_option(add) -> None:
    add("--margin", default=None, metavar="calibrated|FRACTION",
        help=f"budget every resource (LUT, BRAM18, DSP) at a fraction of the device for the whole design FINN "
             f"builds: {CALIBRATED} = device / (1 + the stated upper bound of our estimate's error on real FINN "
             "builds, reports/calibration.md), or one fraction in (0, 1] for all; replaces "
             f"--lut-ratio/--bram-ratio/--dsp-ratio (default: {CALIBRATED}, unless a ratio option is given)")


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_clip(repr(text))} is not an integer: write a whole number >= {least}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: it must be "
                                         + (f"at least {least}" if least else "0 or more"))
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a width, a count, a batch)."""
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a rank)."""
    return _whole_number(text, 0)


CLOCK_NS_RANGE = (1.0, 1000.0)  # 1 GHz .. 1 MHz: beyond any FPGA fabric clock, and below it no FINN build


def clock_period(text: str) -> float:
    """argparse type: a fabric clock period in ns, within ``CLOCK_NS_RANGE`` (finite fps figures)."""
    value = positive_float(text)
    low, high = CLOCK_NS_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{_clip(text)} is not allowed: a fabric clock period is {low:g} .. {high:g} ns "
                                         f"(1 GHz .. 1 MHz), e.g. 10 for 100 MHz")
    return value


def shorten(items, shown: int = 5, sep: str = ", ") -> str:
    """``a, b, c, d, e … and 2,990 more``: a list echoed in an error line without flooding it."""
    items = [str(item) for item in items]
    head = sep.join(_clip(item) for item in items[:shown])
    return head if len(items) <= shown else f"{head} … and {len(items) - shown:,} more"


def clip_echoes(message: str) -> str:
    """``message`` with a huge input it quotes cut: a quoted value past 80 characters, any word
    (a path, a list) past 200; the fix the message ends with is kept."""
    message = re.sub(r"'([^']{80})[^']+'", r"'\1…'", message)
    return re.sub(r"(\S{200})\S+", r"\1…", message)


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else f"{text[:width]}… ({len(text):,} characters)"


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a clock period, a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_clip(repr(text))} is not a number: write e.g. 10 or 1e-3") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: it must be a finite number above 0")
    return value


def options_given(args, parser: argparse.ArgumentParser, dests) -> list[str]:
    """The options among ``dests`` that ``args`` sets to something other than ``parser``'s default,
    named as typed (``--batch-size``), in the parser's order: the ones a combination would ignore."""
    return [max(action.option_strings, key=len) for action in parser._actions
            if action.dest in dests and action.option_strings
            and getattr(args, action.dest, action.default) != action.default]


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors (unknown option, invalid choice, bad type) end like any other
    bad input: one line naming the fix, a UserError the command line prints (exit 2)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a value that starts like a negative number is a value (its own check names the fix), not an
        # unknown option: argparse's own pattern misses -1e3 and -9,16 ("expected one argument")
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d)[\d.,eE+-]*$")

    def _get_values(self, action, arg_strings):
        """An empty value typed for a path or a name ('' is the current directory to ``Path``, so
        ``--store-dir ''`` would use it) is refused; defaults, from the environment too, are not seen here."""
        typed = action.type in (None, str, Path) and action.nargs not in (argparse.PARSER, argparse.REMAINDER)
        if typed and any(isinstance(text, str) and not text.strip() for text in arg_strings):
            name = "/".join(action.option_strings) or action.metavar or action.dest
            here = " ('.' for the current directory)" if action.type is Path else ""
            self.error(f"argument {name}: the value is empty: pass a value{here}"
                       + (f", or drop {name} for its default" if action.option_strings else ""))
        return super()._get_values(action, arg_strings)

    def error(self, message: str):
        raise UserError(f"{clip_echoes(message)} (see {self.prog} --help)")
