"""``pynqrepro estimate``: FINN's estimates of a checkpoint on a board at a folding."""

import json
from pathlib import Path

from pynqrepro.core.options import add_board_option, add_store_option
from pynqrepro.finnflow.foldconfig import ALL_ONES
from pynqrepro.references import FINN_FOLDINGS


def _estimate(args) -> None:
    from tabulate import tabulate

    from pynqrepro.core.boards import get_board
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding, resolve_folding
    from pynqrepro.training.checkpoint import import_checkpoint

    board = get_board(args.board)
    store = ArtifactStore(args.store_dir)
    hw_model = load_hw_model(hw_model_artifact(store, import_checkpoint(store, args.checkpoint), board))
    result = estimate(apply_folding(hw_model, resolve_folding(args.folding, hw_model)), board.part, args.clock_ns or board.clock_ns)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    rows = [(l.name, l.op_type, l.pe, l.simd, l.mw, l.mh, l.channels, l.cycles, l.lut, l.bram18, l.uram, l.dsp)
            for l in result.layers]
    print(tabulate(rows, headers=["layer", "op", "PE", "SIMD", "MW", "MH", "ch", "cycles", "LUT", "BRAM18", "URAM", "DSP"]))
    totals = result.totals
    print(f"\n{board.name} ({board.part}) @ {result.clock_ns} ns: max cycles {result.max_cycles} "
          f"({result.bottleneck}), est. {result.est_fps:.1f} fps, latency {result.latency_ns / 1e6:.3f} ms; "
          f"LUT {totals['lut']:.0f}/{board.luts}, BRAM18 {totals['bram18']:.0f}/{board.bram18}, "
          f"URAM {totals['uram']:.0f}, DSP {totals['dsp']:.0f}/{board.dsp}")


def add_checkpoint_arguments(parser) -> None:
    """The options every command taking a checkpoint to a board at a folding shares."""
    parser.add_argument("checkpoint", type=Path, help="training checkpoint file or run directory")
    add_board_option(parser.add_argument)
    parser.add_argument("--folding", default=ALL_ONES,
                        help=f"FINN ApplyConfig JSON file (e.g. from pynqrepro fold), '{ALL_ONES}' (PE=SIMD=1), or "
                             f"{' / '.join(f'finn:{name}' for name in FINN_FOLDINGS)} (FINN's published CNV "
                             f"foldings) (default: %(default)s)")
    parser.add_argument("--clock-ns", type=float, default=None, help="clock period (default: the board's)")
    add_store_option(parser.add_argument)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def register(subparsers) -> None:
    parser = subparsers.add_parser("estimate", help="FINN's cycle/resource estimates of a checkpoint on a board")
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=_estimate)
