"""FPGA boards the study targets: the single place their resources and defaults are defined."""

from dataclasses import dataclass

from pynqrepro.core.errors import UserError


@dataclass(frozen=True)
class Board:
    """An FPGA board as FINN's flow and the folding budget see it."""

    name: str  # pynqrepro's option value
    finn_board: str  # FINN's board name (finn.util.basic.pynq_part_map key)
    part: str
    luts: int
    ff: int
    bram18: int
    uram: int
    dsp: int
    clock_ns: float  # default target clock period


BOARDS = {
    "pynq-z1": Board("pynq-z1", "Pynq-Z1", "xc7z020clg400-1",
                     luts=53_200, ff=106_400, bram18=280, uram=0, dsp=220, clock_ns=10.0),
    "ultra96": Board("ultra96", "Ultra96", "xczu3eg-sbva484-1-e",
                     luts=70_560, ff=141_120, bram18=432, uram=0, dsp=360, clock_ns=10.0),
}
DEFAULT_BOARD = "pynq-z1"


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive), or a UserError listing the known ones."""
    board = BOARDS.get(name.lower())
    if board is None:
        raise UserError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)}")
    return board
