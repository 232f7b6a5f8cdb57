"""The platform shell FINN's Zynq build puts around the accelerator, as a per-board resource figure.

``ZynqBuild`` (finn/transformation/fpgadataflow/make_zynq_proj.py) adds an input and an output
IODMA (``InsertIODMA``) and ``MakeZYNQProject`` the processing system, an AXI SmartConnect from the
DMAs to the PS's HP port, an AXI interconnect for the AXI-lite control ports and a reset block
(templates.py, ``custom_zynq_shell_template``). FINN's own estimate counts none of it (IODMA_hls has
no estimation methods, the block-design IP is outside FINN's graph), so the figure is measured: the
synthesis utilisation of each shell IP in a public FINN ZynqBuild, per FPGA part. Where no public
build of the part exists, the shell is unknown: only a Vivado host can tell, and every whole-design
total says so.
"""

from dataclasses import dataclass

from pynqrepro.core.boards import Board

PYNQ_Z2_FINN_BUILD = ("bol-edu/2022-fall-ntu, Final/High_Accuracy_Image_Classifier_Inference_on_PYNQ-Z2/"
                      "impl_result/resnet10_84.51%_vivado_zynq_proj/finn_zynq_link.runs/*/"
                      "top_*_utilization_synth.rpt (FINN ZynqBuild for Pynq-Z2, xc7z020clg400-1, "
                      "Vivado 2022.1, out-of-context synthesis of each shell IP)")


@dataclass(frozen=True)
class Shell:
    """Resources of the shell around the accelerator; ``known`` False: no public figure for the part."""

    LUT: int
    BRAM_18K: int
    URAM: int
    DSP: int
    source: str
    known: bool = True

    def resource(self, name: str) -> int:
        return getattr(self, name)


# Per shell IP of the Pynq-Z2 build (LUT, BRAM18): idma0 (1,084; one RAMB36 = 2), odma0 (1,397; 2),
# smartconnect_0 (5,556; 0), AXI-lite interconnect protocol converter auto_pc (421) and crossbar xbar
# (135), reset rst_zynq_ps_100M (19), processing_system7 zynq_ps (24); no DSP, no URAM on the part.
# That build predates finn-plus's clocking wizard (clk_wiz_0: an MMCM and a few LUTs), not counted.
_SHELLS = {
    "xc7z020clg400-1": Shell(LUT=1084 + 1397 + 5556 + 421 + 135 + 19 + 24, BRAM_18K=4, URAM=0, DSP=0,
                             source=PYNQ_Z2_FINN_BUILD),
}


def no_shell(reason: str) -> Shell:
    """A shell counted as zero, with the reason (compute-only studies, or an unknown part)."""
    return Shell(0, 0, 0, 0, reason, known=False)


def zynq_shell(board: Board) -> Shell:
    """The shell of FINN's Zynq build on ``board``'s part: measured where a public build exists."""
    shell = _SHELLS.get(board.part)
    if shell is not None:
        return shell
    return no_shell(f"shell of {board.name} ({board.part}) not counted: no public FINN ZynqBuild utilisation "
                    "for this part, only a Vivado host knows it")
