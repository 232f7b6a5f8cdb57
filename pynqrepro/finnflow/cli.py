"""``pynqrepro estimate``: FINN's estimates of a checkpoint on a board at a folding."""

import json
from pathlib import Path

from pynqrepro.core.boards import BOARDS
from pynqrepro.core.executor_options import add_executor_options
from pynqrepro.core.logs import warn
from pynqrepro.core.options import ALL_ONES, add_board_option, add_store_option, clock_period
from pynqrepro.references import FINN_FOLDINGS


def checkpoint_hw_model(args):
    """The board, store, HW-model artifact and folding of a checkpoint command's arguments, every
    option and file checked before the HW model is built (or found in the store)."""
    from pynqrepro.core.boards import get_board
    from pynqrepro.core.store import store_from_args
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.finnflow.foldconfig import folding_resolver
    from pynqrepro.training.checkpoint import import_checkpoint

    board = get_board(args.board)
    folding_of = folding_resolver(args.folding)
    store = store_from_args(args)
    hw_artifact = hw_model_artifact(store, import_checkpoint(store, args.checkpoint), board)
    hw_model = load_hw_model(hw_artifact)
    return board, store, hw_artifact, hw_model, folding_of(hw_model)


def flag_over_budget(board, whole: dict) -> list[str]:
    """One warning line when the whole design (``whole_design_estimate``'s totals) does not fit the
    board; the resources it exceeds."""
    over = board.exceeded(whole)
    if over:
        warn(f"this folding does not fit {board.name} ({', '.join(over)}): pynqrepro fold finds the fastest "
             f"one that does")
    return over


def _estimate(args) -> None:
    from tabulate import tabulate

    from pynqrepro.finnflow.buildprep import whole_design_estimate
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding

    board, _, _, hw_model, folding = checkpoint_hw_model(args)
    folded = apply_folding(hw_model, folding)
    result = estimate(folded, board.part, args.clock_ns or board.clock_ns)
    whole, inserted = whole_design_estimate(folded, board)
    converters = sum(node.role == "converter" for node in inserted)
    design = {"totals": whole, "converters": converters, "fifos": len(inserted) - converters,
              "shell": board.shell.describe()}
    # what must fit is the design FINN builds, not its compute nodes alone
    over = flag_over_budget(board, whole)
    if args.json:
        print(json.dumps({**result.to_dict(), "whole_design": design, "over_budget": over}, indent=2))
        return
    rows = [(l.name, l.op_type, l.pe, l.simd, l.mw, l.mh, l.channels, l.cycles, l.lut, l.bram18, l.uram, l.dsp)
            for l in result.layers]
    print(tabulate(rows, headers=["layer", "op", "PE", "SIMD", "MW", "MH", "ch", "cycles", "LUT", "BRAM18", "URAM", "DSP"]))
    print(f"\n{board.name} ({board.part}) @ {result.clock_ns} ns: max cycles {result.max_cycles} "
          f"({result.bottleneck}), est. {result.est_fps:.1f} fps, latency {result.latency_ns / 1e6:.3f} ms\n")
    totals = result.totals
    compute = {"LUT": totals["lut"], "BRAM_18K": totals["bram18"], "URAM": totals["uram"], "DSP": totals["dsp"]}
    scopes = [("compute nodes (FINN's estimate above)", compute),
              (f"whole design: + {converters} DWCs, {len(inserted) - converters} FIFOs (minimal depths), shell", whole)]
    print(tabulate([(scope, *(f"{values[r]:,.0f}/{limit:,}" for r, limit in board.limits().items()),
                     not board.exceeded(values)) for scope, values in scopes],
                   headers=["", "LUT", "BRAM18", "URAM", "DSP", "fits device"]))
    print(f"{board.shell.describe()}; FIFO depths sized by simulation and post-route figures need a Vivado host"
          + (f"; OVER BUDGET: {', '.join(over)}" if over else ""))


def add_checkpoint_arguments(parser) -> None:
    """The options every command taking a checkpoint to a board at a folding shares."""
    parser.add_argument("checkpoint", type=Path, help="training checkpoint file or run directory (required)")
    add_board_option(parser.add_argument)
    parser.add_argument("--folding", default=ALL_ONES,
                        help=f"FINN ApplyConfig JSON file (e.g. from pynqrepro fold), '{ALL_ONES}' (PE=SIMD=1), or "
                             f"{' / '.join(f'finn:{name}' for name in FINN_FOLDINGS)} (FINN's published CNV "
                             f"foldings) (default: %(default)s)")
    parser.add_argument("--clock-ns", type=clock_period, default=None,
                        help="clock period in ns, 1 .. 1000 (default: the board's: "
                             + ", ".join(f"{b.name} {b.clock_ns:g} ns" for b in BOARDS.values()) + ")")
    add_store_option(parser.add_argument)
    parser.add_argument("--json", action="store_true", help="print the results as JSON (default: a table)")
    add_executor_options(parser.add_argument)


def register(subparsers) -> None:
    parser = subparsers.add_parser("estimate", help="FINN's cycle/resource estimates of a checkpoint on a board",
                                   description="FINN's estimates of a checkpoint's HW model (built once per checkpoint "
                                               "and board, then cached in the store) on a board at a folding: per "
                                               "compute node, and the whole design FINN's build makes (its DWCs and "
                                               "minimal FIFOs, estimated by FINN, plus the board's shell); a folding "
                                               "whose whole design does not fit the board is flagged.")
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=_estimate)
