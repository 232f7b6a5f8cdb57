"""FINN's per-node cycle and resource estimates, vectorised over candidate foldings.

A *kernel* maps arrays of folding and implementation attributes (PE, SIMD, ram_style, resType) of
one node to arrays of
cycles, LUT, BRAM18, URAM and DSP. MVAU_hls / MVAU_rtl and ConvolutionInputGenerator_rtl (the
nodes with hundreds of candidates) have numpy copies of FINN's formulas, tested equal to FINN's
``get_exp_cycles`` / ``node_res_estimation`` for every candidate. Every other HW node (Pool,
Thresholding, LabelSelect, elementwise ops, ...) has a handful of candidates; those are evaluated
once each by FINN's own node methods and then looked up, so they are exact by construction.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from finn.util.basic import get_dsp_block, getHWCustomOp
from finn.util.fpgadataflow import is_hls_node, is_rtl_node
from qonnx.core.datatype import DataType

from pynqrepro.finnflow.estimate import RESOURCES

RAM_STYLES = ("auto", "block", "distributed", "ultra")  # index = code in the ram_style array
RES_TYPES = ("auto", "lut", "dsp")  # index = code in the resType array (MVAU multipliers)
_CODED = {"ram_style": RAM_STYLES, "resType": RES_TYPES}  # string attributes carried as int codes


def encode(attr: str, value) -> int:
    """The int code a candidate array holds for a node attribute value (PE/SIMD are themselves)."""
    return _CODED[attr].index(value) if attr in _CODED else int(value)


def decode(attr: str, code: int):
    """The node attribute value of an int code (inverse of ``encode``)."""
    return _CODED[attr][int(code)] if attr in _CODED else int(code)


@dataclass
class Costs:
    """Per-candidate estimates, one array entry per candidate."""

    cycles: np.ndarray
    LUT: np.ndarray
    BRAM_18K: np.ndarray
    URAM: np.ndarray
    DSP: np.ndarray

    def resource(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def take(self, index) -> "Costs":
        """The costs of the candidates at ``index`` (an index array or boolean mask)."""
        return Costs(*(self.resource(f)[index] for f in ("cycles",) + RESOURCES))


@dataclass
class NodeSpec:
    """The folding-independent facts about one HW node that its costs depend on."""

    name: str
    op_type: str
    attrs: dict  # shape attributes (MW, MH, IFMChannels, ...) and datatype bit widths
    fpgapart: str
    onnx_node: object = field(repr=False, default=None)


def node_spec(node, fpgapart: str) -> NodeSpec:
    """Read the attributes a kernel needs from an ONNX HW node."""
    inst = getHWCustomOp(node)
    types = inst.get_nodeattr_types()
    attrs = {k: inst.get_nodeattr(k) for k in types if k not in ("code_gen_dir_ipgen", "code_gen_dir_cppsim")}
    if node.op_type.startswith("MVAU"):
        attrs["W"] = inst.get_input_datatype(1).bitwidth()
        attrs["A"] = inst.get_input_datatype(0).bitwidth()
        attrs["A_signed"] = int(inst.get_input_datatype(0).signed())
        attrs["acc_bits"] = DataType[attrs["accDataType"]].bitwidth()
        attrs["out_bits"] = inst.get_output_datatype().bitwidth()
    elif node.op_type.startswith("ConvolutionInputGenerator"):
        attrs["in_bits"] = inst.get_input_datatype().bitwidth()
    return NodeSpec(node.name, node.op_type, attrs, fpgapart, node)


def is_hw_node(node) -> bool:
    return is_hls_node(node) or is_rtl_node(node)


# ----------------------------------------------------------------------------------------------
# MVAU (finn.custom_op.fpgadataflow.matrixvectoractivation + hls/rtl backends)


def _mvau_acc_bits(a: dict) -> float:
    """Accumulator width FINN's HLS LUT model uses: the annotated accumulator type, capped by the
    data-type bound of arXiv:2301.13376 (same expression as MVAU_hls.lut_estimation)."""
    alpha = math.log(a["MW"], 2) + a["W"] + a["A"] - 1 - a["A_signed"]
    return min(a["acc_bits"], np.ceil(alpha + math.log(1 + pow(2, -alpha), 2) + 1))


def _mvau_bram(omega, mem_width):
    """FINN-R BRAM18 model of MatrixVectorActivation.bram_estimation, elementwise."""
    c = np.ceil
    return np.select(
        [mem_width == 1, mem_width == 2, mem_width <= 4, mem_width <= 9, (mem_width <= 18) | (omega > 512)],
        [
            c(omega / 16384),
            c(omega / 8192),
            c(omega / 4096) * c(mem_width / 4),
            c(omega / 2048) * c(mem_width / 9),
            c(omega / 1024) * c(mem_width / 18),
        ],
        c(omega / 512) * c(mem_width / 36),
    )


# Where FINN's MVAU estimate and the hardware Vivado builds part (``decision=True`` of mvau_costs):
# - Thresholds. MVAU_hls.lut_estimation counts threshold storage and comparators only for
#   ram_style_thresholds "distributed"; at "auto" (FINN's default, what our HW models carry) it
#   counts none. But MVAU_hls.pragmas partition the threshold array completely over PE and over the
#   threshold levels (ARRAY_PARTITION dims 1 and 3), leaving per (PE, level) a TMEM = MH/PE deep
#   array that HLS maps to LUTRAM or registers, plus a comparator each: what the "distributed" terms
#   price. With them, finn-plus lands within 0.7-2.3 % of FINN v0.5b's estimates of the study's four
#   OOC runs, and within 6 % of the real 2- and 4-bit syntheses (issue 16). "block" (ROM_2P_BRAM)
#   keeps the comparators and puts every partition in its own BRAM18 (PE x levels x acc/36 wide).
# - Multipliers. At resType "auto" HLS maps a multiplication to a DSP slice once the product is wide
#   enough: public build D (LPYOLO W8A3, post-route) uses PE x SIMD DSPs in every MVAU_hls (e.g.
#   MVAU_hls_1, SIMD 4: 4 DSP; MVAU_hls_6, SIMD 6: 6 DSP) where FINN estimates 0; A1 (CNV, W1 x 8-bit
#   input layer) 27 DSP in MVAU_hls_0 at SIMD 27; the study's W2A2 and W4A4 OOC runs use 0 DSP. So
#   products of at least DSP_PRODUCT_BITS bits go to DSPs (and their LUT multipliers vanish).
# - MVAU_rtl: FINN prices 0 LUT; its control, adder and output logic cost LUTs (mvau_rtl_luts).
DSP_PRODUCT_BITS = 9  # W + A at which "auto" multipliers become DSPs (D: 8+3, A1: 1+8 yes; 4+4 no)


MVAU_RTL_LUTS = (50.9, 17.64)  # LUT = a + b x PE x SIMD, see mvau_rtl_luts


def mvau_rtl_luts(pe, simd) -> np.ndarray:
    """LUTs of an MVAU_rtl, which FINN estimates at 0: 50.9 + 17.64 per PE x SIMD lane, the
    least-squares line through the 20 post-route MVAU_rtl rows of public builds E1/E2 (RadioML,
    ZCU104), e.g. E1 MVAU_rtl_1 PE 16 SIMD 8: 2,072 LUT, E2 MVAU_rtl_1 PE 32 SIMD 4: 2,585,
    E1 MVAU_rtl_8 PE 1 SIMD 1: 80 (tests/test_folding_decision.py refits it)."""
    a, b = MVAU_RTL_LUTS
    lanes = np.asarray(pe, dtype=np.int64) * np.asarray(simd, dtype=np.int64)
    return np.ceil(a + b * lanes).astype(np.int64)


def threshold_levels(spec: NodeSpec) -> int:
    """Thresholds per channel of an activation-bearing MVAU (0 without activation)."""
    return 0 if spec.attrs["noActivation"] else 2 ** spec.attrs["out_bits"] - 1


def memory_bits(spec: NodeSpec, mw=None) -> np.ndarray | int:
    """Bits of weight and threshold memory of an MVAU (``mw`` per candidate overrides MW)."""
    a = spec.attrs
    mw = a["MW"] if mw is None else np.asarray(mw, dtype=np.int64)
    return mw * a["MH"] * a["W"] + a["MH"] * threshold_levels(spec) * a["acc_bits"]


def mvau_costs(spec: NodeSpec, pe, simd, ram_style, mw=None, res_type=None, decision: bool = False) -> Costs:
    """``mw`` (per candidate) overrides the node's MW: the pruning-aware mode, where the study's
    SIMD-block pruning leaves a MW that depends on the SIMD chosen. ``res_type`` (per candidate,
    ``RES_TYPES`` codes; default the node's own) is MVAU_hls's multiplier style: "dsp" moves the
    multipliers' LUTs to DSP slices (MVAU_rtl always uses DSPs). ``decision``: pynqrepro's estimate
    (FINN's blind spots priced, see above) instead of FINN's own."""
    a = spec.attrs
    pe, simd, ram_style = (np.asarray(x, dtype=np.int64) for x in (pe, simd, ram_style))
    res_type = np.broadcast_to(np.asarray(encode("resType", a["resType"]) if res_type is None else res_type,
                                          dtype=np.int64), pe.shape)
    mw = np.broadcast_to(np.asarray(a["MW"] if mw is None else mw, dtype=np.int64), pe.shape)
    mh, w, act = a["MH"], a["W"], a["A"]
    nvec = int(np.prod(a["numInputVectors"]))
    cycles = (mh * mw * nvec * a["TH"]) // (pe * simd)
    wmem = (mw * mh) // (pe * simd)
    omega = wmem.astype(np.float64)
    mem_width = simd * w * pe
    mode = a["mem_mode"]
    distributed = ram_style == RAM_STYLES.index("distributed")
    ultra = ram_style == RAM_STYLES.index("ultra")
    if mode == "internal_decoupled":
        no_bram = distributed | ultra
    elif mode == "internal_embedded":
        no_bram = wmem <= 128
    else:
        no_bram = np.full(pe.shape, mode in ("external", "external_mem"))
    bram = np.where(no_bram, 0, _mvau_bram(omega, mem_width)).astype(np.int64)
    uram = np.zeros_like(pe)
    if mode == "internal_decoupled":
        uram = np.where(ultra, np.ceil(mem_width / 72) * np.ceil(omega / 4096), 0).astype(np.int64)
    if spec.op_type == "MVAU_rtl":
        if get_dsp_block(spec.fpgapart) == "DSP58":
            dsp = pe * np.ceil(simd / 3)
        else:
            dsp = np.ceil(pe / 4) * simd
        lut = mvau_rtl_luts(pe, simd) if decision else np.zeros_like(pe)
        return Costs(cycles, lut, bram, uram, dsp.astype(np.int64))
    # MVAU_hls.lut_estimation / dsp_estimation
    if mode == "internal_decoupled":
        c2 = np.where(distributed, (pe * simd * w) * np.ceil(wmem / 64), 0)
    elif mode == "internal_embedded":
        c2 = np.where(wmem <= 128, (pe * simd * w) * np.ceil(wmem / 64), 0)
    else:
        c2 = np.zeros_like(pe)
    use_dsp = res_type == RES_TYPES.index("dsp")
    if decision and a["W"] + act >= DSP_PRODUCT_BITS:
        use_dsp = use_dsp | (res_type == RES_TYPES.index("auto"))
    mult = np.where(use_dsp, 0, simd * (2 * math.ceil((w + act) / 6) - 1) * (w + act))
    adder = (w + act) * (2 * simd - 1)
    widths = np.unique(mw)
    acc = np.asarray([_mvau_acc_bits({**a, "MW": int(x)}) for x in widths], dtype=np.float64)
    acc = acc[np.searchsorted(widths, mw)]
    thr = comp = 0
    levels = threshold_levels(spec)
    style = a["ram_style_thresholds"]
    if levels and (style == "distributed" or (decision and style == "auto")):
        thr = levels * acc * np.ceil((mh // pe) / 64)
        comp = levels * acc
    elif levels and decision and style == "block":
        comp = levels * acc
        bram = bram + (pe * levels * np.ceil(acc / 36)).astype(np.int64)
    lut = (300 + 1.1 * (pe * (mult + adder + acc + thr + comp)) + c2).astype(np.int64)
    dsp = np.where(use_dsp, pe * simd * math.ceil((w + act) / 48), 0)
    return Costs(cycles, lut, bram, uram, dsp.astype(np.int64))


# ----------------------------------------------------------------------------------------------
# ConvolutionInputGenerator_rtl, "default" implementation style (no parallel window, 2D)


def swg_vectorised(spec: NodeSpec) -> bool:
    """The vectorised SWG model covers the default (non-parallel-window) 2D style; a node set to
    URAM line buffers goes to FINN's own methods."""
    a = spec.attrs
    k_h, k_w = a["ConvKernelDim"]
    h, w = a["IFMDim"]
    return (
        spec.op_type == "ConvolutionInputGenerator_rtl"
        and not a["parallel_window"]
        and (k_h, k_w) != (1, 1)
        and h != 1
        and w != 1
        and a["ram_style"] != "ultra"
    )


def _swg_ram_width(depth):
    return np.select([depth <= 512, depth <= 1024, depth <= 2048, depth <= 4096, depth <= 8192],
                     [36, 18, 9, 4, 2], 1)


def swg_costs(spec: NodeSpec, simd, ram_style=None) -> Costs:
    """``ram_style`` (per candidate, block/auto or distributed ``RAM_STYLES`` codes; default the
    node's own) is where the line buffer lives: BRAM18, or LUTRAM at one LUT per 38 entries x bit."""
    a = spec.attrs
    simd = np.asarray(simd, dtype=np.int64)
    ram_style = np.broadcast_to(np.asarray(encode("ram_style", a["ram_style"]) if ram_style is None else ram_style,
                                           dtype=np.int64), simd.shape)
    k_h, k_w = a["ConvKernelDim"]
    _, ifm_w = a["IFMDim"]
    ofm_h, ofm_w = a["OFMDim"]
    s_h, s_w = a["Stride"]
    d_h, d_w = a["Dilation"]
    cf = a["IFMChannels"] // simd
    buffer_min = ((k_h - 1) * d_h * ifm_w + (k_w - 1) * d_w + 1) * cf
    # get_exp_cycles, 2D default style
    max_cycles = np.maximum(ofm_w * k_w * k_h * cf, s_w * ifm_w * cf)
    if a["depthwise"]:
        max_cycles = max_cycles + ofm_w * (s_w - 1) * (cf - 1)
    cycles = buffer_min + ofm_h * max_cycles
    if a["depthwise"]:
        cycles = cycles + (s_h - 1) * ifm_w * cf
    # get_buffer_depth, default style
    depth = (buffer_min + np.maximum(0, ((s_w - 1) - k_h * k_w) * cf)
             + np.maximum(0, ((s_h - 1) * ifm_w - k_h * k_w) * cf))
    width = simd * a["in_bits"]
    distributed = ram_style == RAM_STYLES.index("distributed")
    lut = 300 + np.where(distributed, width * np.ceil(depth / 38), 0).astype(np.int64)
    cascade_width = np.ceil(width / _swg_ram_width(depth))
    remainder_width = np.ceil(width / _swg_ram_width(depth % 16384))
    savings = np.where(depth > 16384, cascade_width - remainder_width, 0)
    bram = np.where(distributed, 0, np.ceil(depth / 16384) * cascade_width - savings).astype(np.int64)
    zeros = np.zeros_like(simd)
    return Costs(cycles, lut, bram, zeros, zeros)


# ----------------------------------------------------------------------------------------------
# Everything else: FINN's own node methods, once per candidate


def finn_costs(spec: NodeSpec, assignments: list[dict]) -> Costs:
    """Costs of ``spec`` under each attribute assignment, from FINN's node methods.

    Used for nodes without a vectorised kernel (few candidates each) and as the reference the
    vectorised kernels are tested against.
    """
    inst = getHWCustomOp(spec.onnx_node)
    saved = {k: inst.get_nodeattr(k) for k in assignments[0]} if assignments else {}
    rows = []
    try:
        for assignment in assignments:
            for k, v in assignment.items():
                inst.set_nodeattr(k, v)
            res = inst.node_res_estimation(spec.fpgapart)
            rows.append([int(inst.get_exp_cycles())] + [int(res[r]) for r in RESOURCES])
    finally:
        for k, v in saved.items():
            inst.set_nodeattr(k, v)
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 1 + len(RESOURCES))
    return Costs(*(arr[:, i] for i in range(arr.shape[1])))
