"""FPGA boards pynqrepro targets: the single place their resources, defaults and platform shell
are defined, each with its public source.

A board's ``shell`` is what FINN's Zynq build (``ZynqBuild``, finn/transformation/fpgadataflow/
make_zynq_proj.py) puts around the accelerator: an input and an output IODMA (``InsertIODMA``), the
processing system, an AXI SmartConnect from the DMAs to the PS's HP port, an AXI interconnect for
the AXI-lite control ports and a reset block (templates.py, ``custom_zynq_shell_template``). FINN's
estimate counts none of it (IODMA_hls has no estimation methods; the block-design IP is outside
FINN's graph), so the figure is measured: the synthesis utilisation of each shell IP in a public FINN
ZynqBuild of the board's part. Where no public build of a part exists, a *proxy* stands in (never 0,
which would make every "fits" optimistic), labelled as such; a Vivado host replaces it.
"""

from dataclasses import dataclass, replace

from pynqrepro.core.errors import UserError


@dataclass(frozen=True)
class Shell:
    """Resources of the platform shell around the accelerator on one part. ``measured``: from a
    public build of this part; False: a proxy (``source`` says which), only a Vivado host knows."""

    LUT: int
    BRAM_18K: int
    URAM: int
    DSP: int
    source: str
    measured: bool = True

    def resource(self, name: str) -> int:
        return getattr(self, name)

    def describe(self) -> str:
        """One line for a report row: the figure and how far to trust it."""
        figure = f"shell {self.LUT:,} LUT, {self.BRAM_18K} BRAM18"
        if self.measured:
            return f"{figure}, measured: {self.source}"
        return f"{figure}, {self.source}; only a Vivado host knows this part's shell"


# FINN ZynqBuild for Pynq-Z2 (xc7z020clg400-1), Vivado 2022.1, out-of-context synthesis of each shell
# IP: bol-edu/2022-fall-ntu, Final/High_Accuracy_Image_Classifier_Inference_on_PYNQ-Z2/impl_result/
# resnet10_84.51%_vivado_zynq_proj/finn_zynq_link.runs/*/top_*_utilization_synth.rpt.
# Per IP (LUT, BRAM18): idma0 (1,084; one RAMB36 = 2), odma0 (1,397; 2), smartconnect_0 (5,556; 0),
# AXI-lite interconnect protocol converter auto_pc (421) and crossbar xbar (135), reset
# rst_zynq_ps_100M (19), processing_system7 zynq_ps (24); no DSP, no URAM on the part. That build
# predates finn-plus's clocking wizard (clk_wiz_0: an MMCM and a few LUTs), not counted.
ZYNQ7000_SHELL = Shell(LUT=1084 + 1397 + 5556 + 421 + 135 + 19 + 24, BRAM_18K=4, URAM=0, DSP=0,
                       source="public FINN ZynqBuild of the xc7z020, bol-edu/2022-fall-ntu, Pynq-Z2, Vivado 2022.1")
# Zynq UltraScale+ parts: no public FINN ZynqBuild utilisation found. The proxy is the same shell IPs
# as measured on the xc7z020: UltraScale+ CLBs have the 6-input LUTs of the 7 series, so the same IP
# maps to a similar count. FINN's ZynqMP shell has 128-bit AXI ports where the Zynq-7000's has 64
# (finn.util.basic.pynq_native_port_width), so its DMAs may be somewhat larger than the proxy.
ZYNQMP_SHELL_PROXY = replace(ZYNQ7000_SHELL, measured=False,
                             source="proxy: the Zynq-7000 shell IPs measured on the xc7z020 (same 6-input LUTs; "
                                    "this part's 128-bit AXI ports may cost more)")


@dataclass(frozen=True)
class Board:
    """An FPGA board as FINN's flow and the folding budget see it."""

    name: str  # pynqrepro's option value
    finn_board: str  # FINN's board name (a key of finn.util.basic.pynq_part_map)
    part: str
    luts: int
    ff: int
    bram18: int
    uram: int
    dsp: int
    clock_ns: float  # default target clock period
    shell: Shell  # FINN's Zynq shell around the accelerator on this part
    source: str  # where the part's resources and the board's part come from
    # the board files FINN's shell names (finn/transformation/fpgadataflow/templates.py): Vivado finds
    # them in <FINN_DEPS>/board_files/<board_files>/, which `finn deps update` downloads; None: they
    # ship with Vivado (Xilinx's own boards)
    board_files: str | None

    def limits(self) -> dict[str, int]:
        """The device's resources under FINN's ``res_estimation`` names."""
        return {"LUT": self.luts, "BRAM_18K": self.bram18, "URAM": self.uram, "DSP": self.dsp}

    def exceeded(self, totals) -> list[str]:
        """The resources a design's totals (keyed as ``limits``) use beyond this device, as
        ``"LUT 272958 > 53200"``."""
        return [f"{resource.replace('BRAM_18K', 'BRAM18')} {totals[resource]:.0f} > {limit}"
                for resource, limit in self.limits().items() if totals[resource] > limit]


# Default clock: 10 ns (100 MHz), PYNQ's default PL clock (fclk0) and the period finn-examples builds
# its BNN-PYNQ CNVs at on every Zynq board (build/bnn-pynq/build.py: synth_clk_period_ns=10.0 for
# Pynq-Z1, Ultra96, ZCU104). Part names are FINN's (pynq_part_map); tests/test_core_boards.py checks them.
ZYNQ7000_SOURCE = ("AMD DS190 Zynq-7000 SoC product selection guide (XC7Z020: 53,200 LUT, 106,400 FF, 140 BRAM36, "
                   "220 DSP)")
ZU3EG_SOURCE = ("AMD DS891 Zynq UltraScale+ MPSoC product selection guide (ZU3EG: 70,560 LUT, 141,120 FF, "
                "216 BRAM36, no UltraRAM, 360 DSP)")
BOARDS = {
    "pynq-z1": Board("pynq-z1", "Pynq-Z1", "xc7z020clg400-1", luts=53_200, ff=106_400, bram18=280, uram=0, dsp=220,
                     clock_ns=10.0, shell=ZYNQ7000_SHELL,
                     source=f"{ZYNQ7000_SOURCE}; Digilent PYNQ-Z1 reference manual (XC7Z020-1CLG400C)",
                     board_files="pynq-z1"),
    "pynq-z2": Board("pynq-z2", "Pynq-Z2", "xc7z020clg400-1", luts=53_200, ff=106_400, bram18=280, uram=0, dsp=220,
                     clock_ns=10.0, shell=ZYNQ7000_SHELL,
                     source=f"{ZYNQ7000_SOURCE}; TUL PYNQ-Z2 product page (XC7Z020-1CLG400C)",
                     board_files="pynq-z2"),
    "ultra96": Board("ultra96", "Ultra96", "xczu3eg-sbva484-1-e", luts=70_560, ff=141_120, bram18=432, uram=0, dsp=360,
                     clock_ns=10.0, shell=ZYNQMP_SHELL_PROXY,
                     source=f"{ZU3EG_SOURCE}; Avnet Ultra96 product brief (XCZU3EG-SBVA484-1-E)",
                     board_files="ultra96v1"),
    "zcu104": Board("zcu104", "ZCU104", "xczu7ev-ffvc1156-2-e", luts=230_400, ff=460_800, bram18=624, uram=96,
                    dsp=1_728, clock_ns=10.0, shell=ZYNQMP_SHELL_PROXY,
                    source="AMD DS891 Zynq UltraScale+ MPSoC product selection guide (ZU7EV: 230,400 LUT, 460,800 FF, "
                           "312 BRAM36, 96 UltraRAM, 1,728 DSP); AMD UG1267 ZCU104 board user guide "
                           "(XCZU7EV-2FFVC1156)",
                    board_files=None),
    "kv260": Board("kv260", "KV260_SOM", "xck26-sfvc784-2LV-c", luts=117_120, ff=234_240, bram18=288, uram=64,
                   dsp=1_248, clock_ns=10.0, shell=ZYNQMP_SHELL_PROXY,
                   source="AMD DS987 Kria K26 SOM data sheet (XCK26-SFVC784-2LV-C: 117,120 LUT, 234,240 FF, "
                          "144 BRAM36, 64 UltraRAM, 1,248 DSP); the KV260 starter kit carries the K26 SOM",
                   board_files="kv260_som"),
    "aup-zu3": Board("aup-zu3", "AUP-ZU3_8GB", "xczu3eg-sfvc784-2-e", luts=70_560, ff=141_120, bram18=432, uram=0,
                     dsp=360, clock_ns=10.0, shell=ZYNQMP_SHELL_PROXY,
                     source=f"{ZU3EG_SOURCE}; RealDigital AUP-ZU3 product page (XCZU3EG-2SFVC784E, 8 GB variant)",
                     board_files="aup-zu3-8gb"),
}
DEFAULT_BOARD = "pynq-z1"


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive), or a UserError listing the known ones."""
    board = BOARDS.get(name.lower())
    if board is None:
        raise UserError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)}")
    return board
