"""``pynqrepro fold``: the exact folding of a HW-layer model under a board's resource budget."""

from pathlib import Path

from pynqrepro.core.errors import UserError
from pynqrepro.core.options import add_board_option, add_store_option
from pynqrepro.folding.space import MVAU_WWIDTH_MAX, MaskedBlocks
from pynqrepro.references import STUDY_LUT_RATIO


def parse_pruning(items: list[str]) -> tuple:
    """``NODE=FRACTION`` (the study's SIMD-block rule) or ``NODE=KEPT@SIMD`` (a masked MVAU keeping
    KEPT columns in blocks of SIMD) per MVAU node."""
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


def _hw_model(model: Path, board, store_dir: Path):
    """A HW-layer ONNX as given, or the cached HW model of a training checkpoint for ``board``."""
    from qonnx.core.modelwrapper import ModelWrapper

    if not model.exists():
        raise UserError(f"model {model} does not exist: pass a training checkpoint or a HW-layer ONNX")
    if model.suffix == ".onnx":
        return ModelWrapper(str(model))
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
    from pynqrepro.training.checkpoint import import_checkpoint

    store = ArtifactStore(store_dir)
    return load_hw_model(hw_model_artifact(store, import_checkpoint(store, model), board))


def _fold(args) -> None:
    from pynqrepro.core.boards import get_board
    from pynqrepro.folding import outputs
    from pynqrepro.folding.optimise import board_budget, optimise
    from pynqrepro.folding.space import SpaceOptions, build_space

    board = get_board(args.board)
    budget = board_budget(board, args.lut_ratio, args.bram_ratio, args.dsp_ratio)
    options = SpaceOptions(mvau_wwidth_max=args.mvau_wwidth_max, pruning=parse_pruning(args.pruning),
                           choose_ram_style=args.ram_style_choice or args.all_finn_choices,
                           choose_res_type=args.res_type_choice or args.all_finn_choices,
                           choose_swg_ram_style=args.swg_ram_style_choice or args.all_finn_choices)
    folding = optimise(build_space(_hw_model(args.model, board, args.store_dir), board.part, options), budget)
    outputs.write_config(folding, args.out)
    from tabulate import tabulate

    print(tabulate(outputs.get_res(folding, budget), headers="keys"))
    print(f"est. {folding.fps(args.clock_ns or board.clock_ns):,.1f} fps, bottleneck {folding.bottleneck}, "
          f"{folding.total('LUT'):,} LUT, {folding.total('BRAM_18K')} BRAM18, {folding.total('DSP')} DSP; "
          f"folding written to {args.out}")
    if args.plot:
        outputs.plot_cycles_remainder(folding, budget, args.plot)


def register(subparsers) -> None:
    parser = subparsers.add_parser("fold", help="exact PE/SIMD folding of a HW model under a resource budget",
                                   description="The provably fastest PE/SIMD folding of a training checkpoint or "
                                               "HW-layer ONNX within a board's resource budget, as FINN ApplyConfig JSON.")
    parser.add_argument("--model", type=Path, required=True,
                        help="training checkpoint (its HW model is built once and cached) or a HW-layer ONNX")
    add_store_option(parser.add_argument)
    add_board_option(parser.add_argument)
    parser.add_argument("--lut-ratio", type=float, default=STUDY_LUT_RATIO,
                        help="LUT budget as a fraction of the device (default: %(default)s, the study's)")
    parser.add_argument("--bram-ratio", type=float, default=1.0,
                        help="BRAM18 budget as a fraction of the device (default: %(default)s)")
    parser.add_argument("--dsp-ratio", type=float, default=1.0,
                        help="DSP budget as a fraction of the device (default: %(default)s)")
    parser.add_argument("--clock-ns", type=float, default=None, help="clock for the fps figure (default: the board's)")
    parser.add_argument("--mvau-wwidth-max", type=int, default=MVAU_WWIDTH_MAX,
                        help="max SIMD x weight bits per MVAU (default: %(default)s, as FINN's SetFolding)")
    parser.add_argument("--ram-style-choice", action="store_true", help="let MVAU weights go to LUTRAM")
    parser.add_argument("--res-type-choice", action="store_true", help="let MVAU_hls multipliers go to DSPs")
    parser.add_argument("--swg-ram-style-choice", action="store_true",
                        help="let sliding-window line buffers go to BRAM (FINN's build puts them in LUTRAM)")
    parser.add_argument("--all-finn-choices", action="store_true",
                        help="all three: every FINN implementation choice the estimates model is a decision")
    parser.add_argument("--pruning", nargs="*", default=[], metavar="NODE=FRACTION|NODE=KEPT@SIMD",
                        help="SIMD-block pruning per MVAU node: the study's rule at FRACTION, or a masked "
                             "layer keeping KEPT columns in blocks of SIMD (folding SIMD then divides SIMD)")
    parser.add_argument("--out", type=Path, default=Path("folding.json"),
                        help="where the FINN ApplyConfig JSON goes (default: %(default)s)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of per-layer cycles and budget use")
    parser.set_defaults(func=_fold)
