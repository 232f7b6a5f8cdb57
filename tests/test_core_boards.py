"""The boards: FINN's names and parts, the resources their public sources give, the shell each is
budgeted with (measured, or a stated proxy, never 0), and URAM budgeted where the part has it."""

import pytest
from finn.util.basic import pynq_native_port_width, pynq_part_map

from pynqrepro.core.boards import BOARDS, ZYNQ7000_SHELL, get_board
from pynqrepro.folding.optimise import board_budget

ZYNQ7000 = ("pynq-z1", "pynq-z2")  # xc7z020: a public FINN ZynqBuild measured its shell
URAM_PARTS = {"zcu104": 96, "kv260": 64}  # ZU7EV, K26; the ZU3EG (Ultra96, AUP-ZU3) has no UltraRAM


@pytest.mark.parametrize("name", BOARDS)
def test_board_is_finns_part_with_its_sourced_resources(name):
    board = BOARDS[name]
    assert pynq_part_map[board.finn_board] == board.part  # FINN's builder accepts the name, for this part
    assert board.finn_board in pynq_native_port_width  # InsertIODMA's AXI width of the board
    # the figures match the datasheet numbers the source names (block RAM is counted in 36 Kb blocks there)
    for figure in (f"{board.luts:,} LUT", f"{board.ff:,} FF", f"{board.bram18 // 2} BRAM36", f"{board.dsp:,} DSP"):
        assert figure in board.source, figure
    assert (f"{board.uram} UltraRAM" in board.source) if board.uram else ("no UltraRAM" in board.source
                                                                          or "xc7z" in board.part)
    assert board.clock_ns == 10.0 and get_board(name.upper()) is board


@pytest.mark.parametrize("name", BOARDS)
def test_every_board_is_budgeted_with_a_shell(name):
    shell = BOARDS[name].shell
    assert shell.LUT > 8000 and shell.BRAM_18K == 4  # never 0: that would make every "fits" optimistic
    if name in ZYNQ7000:
        assert shell is ZYNQ7000_SHELL and shell.measured and "measured" in shell.describe()
    else:
        assert not shell.measured and (shell.LUT, shell.BRAM_18K) == (ZYNQ7000_SHELL.LUT, ZYNQ7000_SHELL.BRAM_18K)
        assert "proxy" in shell.describe() and "only a Vivado host knows" in shell.describe()


@pytest.mark.parametrize("name", BOARDS)
def test_uram_is_budgeted_where_the_part_has_it(name):
    assert board_budget(BOARDS[name]).URAM == URAM_PARTS.get(name, 0)


@pytest.mark.parametrize("name", BOARDS)
def test_board_files_are_those_finns_shell_names(name):
    """The board part FINN's Zynq shell sets for the board (its make_project template) lies in the
    board files the vivado stage checks for; None only for a Xilinx board whose files ship with
    Vivado (none of FINN's downloaded board-file repositories holds it)."""
    import re

    from finn.transformation.fpgadataflow.templates import custom_zynq_shell_template

    board = BOARDS[name]
    part = re.search(rf'\$BOARD == "{re.escape(board.finn_board)}"\}} \{{\n(?:.*\n)*?\s*set_property board_part '
                     r"(\S+) \[current_project\]", custom_zynq_shell_template).group(1)
    vendor, files, _, _ = part.split(":")
    if board.board_files is None:
        assert vendor == "xilinx.com"
    else:
        assert files == board.board_files


def test_exceeded_names_each_resource_over_the_device():
    board = get_board("pynq-z1")
    within = dict(board.limits())
    assert board.exceeded(within) == []
    assert board.exceeded({**within, "LUT": 53_201, "BRAM_18K": 281.4}) == ["LUT 53201 > 53200", "BRAM18 281 > 280"]
