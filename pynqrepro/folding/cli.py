"""``pynqrepro fold``: the exact folding of a HW-layer model whose whole design fits a board's resource budget."""

from pathlib import Path

from pynqrepro.core.atomic import check_writable
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor_options import add_executor_options
from pynqrepro.core.options import (CALIBRATED, add_board_option, add_margin_option, add_store_option, parse_margin,
                                    clock_period, positive_int)
from pynqrepro.references import MVAU_WWIDTH_MAX, STUDY_LUT_RATIO


def parse_pruning(items: list[str]) -> tuple:
    """``NODE=FRACTION`` (the study's SIMD-block rule) or ``NODE=KEPT@SIMD`` (a masked MVAU keeping
    KEPT columns in blocks of SIMD) per MVAU node."""
    from pynqrepro.folding.space import MaskedBlocks

    out = []
    for item in items:
        name, _, value = item.partition("=")
        kept, at, simd = value.partition("@")
        try:
            out.append((name, MaskedBlocks(int(simd), int(kept)) if at else float(value)))
        except ValueError:
            raise UserError(f"--pruning {item!r} is not NODE=FRACTION or NODE=KEPT@SIMD: "
                            "use e.g. MVAU_hls_1=0.3 or MVAU_hls_1=448@8") from None
    return tuple(out)


def load_onnx(path: Path):
    """A HW-layer ONNX file as a ModelWrapper; a file that is not ONNX is a UserError naming it."""
    from qonnx.core.modelwrapper import ModelWrapper

    try:
        return ModelWrapper(str(path))
    except Exception as exc:  # protobuf's DecodeError, onnx's checks: not an ONNX model
        raise UserError(f"{path} is not an ONNX model ({type(exc).__name__}): pass a HW-layer ONNX "
                        f"or a training checkpoint") from None


def _hw_model(model: Path, board, store):
    """A HW-layer ONNX as given, or the cached HW model of a training checkpoint for ``board``."""
    if model.suffix == ".onnx":
        return load_onnx(model)
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.training.checkpoint import import_checkpoint

    return load_hw_model(hw_model_artifact(store, import_checkpoint(store, model), board))


RATIOS = {"lut_ratio": STUDY_LUT_RATIO, "bram_ratio": 1.0, "dsp_ratio": 1.0}  # --lut-ratio etc.: defaults


def _margin(args) -> str | float | None:
    """``--margin``'s value, checked before any work: by default ``calibrated`` (the decision model
    plus its stated upper bound); None where a ratio option asks for the ratios' budget."""
    given = [f"--{name.replace('_', '-')}" for name in RATIOS if getattr(args, name) is not None]
    if args.margin is None:
        return None if given or args.compute_only else CALIBRATED
    if given:
        raise UserError(f"--margin sets every resource's budget fraction: drop {', '.join(given)}")
    return parse_margin(args.margin)


def _budget(args, board, margin: str | float | None):
    """(budget, the margins it applies or None): ``--margin``'s, else the ratios'."""
    from pynqrepro.folding.budget_calibration import budget_margins
    from pynqrepro.folding.optimise import board_budget

    if margin is None:
        ratios = (RATIOS[name] if getattr(args, name) is None else getattr(args, name) for name in RATIOS)
        return board_budget(board, *ratios), None
    margins = budget_margins(margin, args.store_dir)
    return board_budget(board, margins.LUT, margins.BRAM_18K, margins.DSP), margins


def _space(args, model, board, pruning: tuple):
    """The space ``fold`` searches: the whole design FINN builds (default), or the compute nodes."""
    from pynqrepro.folding.space import SpaceOptions, build_space
    from pynqrepro.folding.fifoconfig import fifo_depths
    from pynqrepro.folding.wholedesign import build_design

    options = SpaceOptions(mvau_wwidth_max=args.mvau_wwidth_max, pruning=pruning,
                           choose_ram_style=args.ram_style_choice or args.all_finn_choices,
                           choose_res_type=args.res_type_choice or args.all_finn_choices,
                           choose_swg_ram_style=args.swg_ram_style_choice or args.all_finn_choices)
    if args.compute_only:
        return build_space(model, board.part, options)
    depths = None
    if args.fifo_config:
        reference = None
        if args.build_folding:
            from pynqrepro.finnflow.foldconfig import read_folding

            reference = read_folding(args.build_folding)
        depths = fifo_depths(model, args.fifo_config, board.part, reference)
    return build_design(model, board, options, depths, width_converters=not args.no_width_converters)


def _check_scope(args) -> None:
    """Options that contradict each other, before any model is built."""
    if args.compute_only and (args.no_width_converters or args.fifo_config):
        raise UserError("--compute-only searches the compute nodes alone: drop --no-width-converters and "
                        "--fifo-config, which shape the whole design")
    if args.compute_only and args.margin is not None:
        raise UserError("--margin's fractions are calibrated on whole designs: drop --compute-only")
    if args.build_folding and not args.fifo_config:
        raise UserError("--build-folding names the folding of the build that sized --fifo-config's FIFOs: "
                        "give --fifo-config too")


def _summary(folding, budget, clock_ns: float) -> str:
    """The result in one paragraph: speed, totals against the budget and what they include."""
    def totals(label: str, resource: str) -> str:
        return f"{folding.total(resource):,}/{getattr(budget, resource):,} {label}"

    head = (f"est. {folding.fps(clock_ns):,.1f} fps, bottleneck {folding.bottleneck}; "
            f"{totals('LUT', 'LUT')}, {totals('BRAM18', 'BRAM_18K')}, {totals('DSP', 'DSP')}")
    if not folding.whole_design:
        return (f"{head} (compute nodes only: FINN's build adds DWCs, FIFOs and the shell, not counted; "
                "drop --compute-only to budget them)")
    inserted = folding.inserted()
    fifos = sum(node["role"] != "converter" for node in inserted)
    shell = folding.insertions.shell
    return (f"{head} (whole design: compute nodes {folding.compute_total('LUT'):,} LUT + {folding.converters} DWCs "
            f"and {fifos} FIFOs {folding.dwc_fifo_total('LUT'):,} LUT, FIFO depths "
            f"{folding.insertions.depths.source} + {shell.describe()})")


def _fold(args) -> None:
    from pynqrepro.core.boards import get_board
    from pynqrepro.folding import outputs
    from pynqrepro.folding.optimise import optimise

    board = get_board(args.board)
    _check_scope(args)
    margin = _margin(args)
    pruning = parse_pruning(args.pruning)
    if args.fifo_config:
        from pynqrepro.folding.fifoconfig import read_fifo_config

        args.fifo_config = read_fifo_config(args.fifo_config)  # its shape checked before any model is built
    check_writable(args.out, "--out")
    if args.plot:
        check_writable(args.plot, "--plot")
    store = None  # built only when used: a checkpoint's HW model
    if args.model.suffix != ".onnx":
        from pynqrepro.core.store import store_from_args

        store = store_from_args(args)
    if not args.model.exists():
        raise UserError(f"model {args.model} does not exist: pass a training checkpoint or a HW-layer ONNX")
    budget, margins = _budget(args, board, margin)
    model = _hw_model(args.model, board, store)
    folding = optimise(_space(args, model, board, pruning), budget)
    if margins is not None:
        print(f"budget margins: {margins.describe()}")
    outputs.write_config(folding, args.out)
    from tabulate import tabulate

    print(tabulate(outputs.get_res(folding, budget), headers="keys"))
    print(f"{_summary(folding, budget, args.clock_ns or board.clock_ns)}; folding written to {args.out}")
    if args.plot:
        outputs.plot_cycles_remainder(folding, budget, args.plot)


def register(subparsers) -> None:
    parser = subparsers.add_parser("fold", help="exact PE/SIMD folding of a HW model under a resource budget",
                                   description="The provably fastest PE/SIMD folding of a training checkpoint or "
                                               "HW-layer ONNX whose whole design (the compute nodes, the DWCs and "
                                               "FIFOs FINN's build inserts, the board's shell) fits the board's "
                                               "resource budget, as FINN ApplyConfig JSON.")
    parser.add_argument("--model", type=Path, required=True,
                        help="training checkpoint (its HW model is built once and cached) or a HW-layer ONNX "
                             "(required)")
    add_store_option(parser.add_argument)
    add_board_option(parser.add_argument)
    parser.add_argument("--lut-ratio", type=float, default=None,
                        help=f"LUT budget as a fraction of the device, in (0, 1], instead of the calibrated budget "
                             f"(default: the calibrated budget; {STUDY_LUT_RATIO} for a ratio not given once "
                             "another ratio is, the study's)")
    parser.add_argument("--bram-ratio", type=float, default=None,
                        help="BRAM18 budget as a fraction of the device, in (0, 1] (default: 1.0)")
    parser.add_argument("--dsp-ratio", type=float, default=None,
                        help="DSP budget as a fraction of the device, in (0, 1] (default: 1.0)")
    add_margin_option(parser.add_argument)
    parser.add_argument("--clock-ns", type=clock_period, default=None,
                        help="clock for the fps figure, 1 .. 1000 ns (default: the board's)")
    parser.add_argument("--mvau-wwidth-max", type=positive_int, default=MVAU_WWIDTH_MAX,
                        help="max SIMD x weight bits per MVAU, >= 1 (default: %(default)s, as FINN's SetFolding)")
    parser.add_argument("--ram-style-choice", action="store_true",
                        help="let MVAU weights go to LUTRAM (default: off, FINN's auto = BRAM)")
    parser.add_argument("--res-type-choice", action="store_true",
                        help="let MVAU_hls multipliers go to DSPs (default: off, LUTs)")
    parser.add_argument("--swg-ram-style-choice", action="store_true",
                        help="let sliding-window line buffers go to BRAM (default: off, LUTRAM as FINN's build)")
    parser.add_argument("--all-finn-choices", action="store_true",
                        help="all three: every FINN implementation choice the estimates model is a decision "
                             "(default: off)")
    parser.add_argument("--pruning", nargs="*", default=[], metavar="NODE=FRACTION|NODE=KEPT@SIMD",
                        help="SIMD-block pruning per MVAU node: the study's rule at FRACTION, or a masked "
                             "layer keeping KEPT columns in blocks of SIMD (folding SIMD then divides SIMD) "
                             "(default: none, the dense model)")
    parser.add_argument("--no-width-converters", action="store_true",
                        help="forbid FINN's data-width converters: neighbouring stream widths must match "
                             "(costs fps where a DWC would have helped) (default: off, FINN inserts DWCs)")
    parser.add_argument("--fifo-config", type=Path, default=None, metavar="FILE",
                        help="budget FIFOs at the depths of an earlier FINN build on a Vivado host: its "
                             "final_hw_config.json (a folding JSON with FIFO depths) or report/fifo_sizing.json "
                             "(default: minimal depths, as FINN's force_minimal_fifos builds)")
    parser.add_argument("--build-folding", type=Path, default=None, metavar="FILE",
                        help="with a fifo_sizing.json: the folding JSON that build used (FINN names its FIFOs "
                             "after that folding's streams; default: the model's own folding)")
    parser.add_argument("--compute-only", action="store_true",
                        help="search the compute nodes alone, as before whole-design budgeting (for comparison: "
                             "its folding may not fit once FINN adds DWCs, FIFOs and the shell) (default: off)")
    parser.add_argument("--out", type=Path, default=Path("folding.json"),
                        help="where the FINN ApplyConfig JSON goes (default: %(default)s in the working directory)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="also write a PNG of per-layer cycles and budget use here (default: no plot)")
    add_executor_options(parser.add_argument)
    parser.set_defaults(func=_fold)
