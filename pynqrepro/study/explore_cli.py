"""``pynqrepro explore``: the design-space search (``pynqrepro.study.design_space``) for chosen
boards, bit widths and pruning levels; prints each board's front and recommended designs and
records them in reports/design_space.md under the experiment's test ids."""

from pathlib import Path

from pynqrepro.core.errors import UserError
from pynqrepro.core.executor_options import add_executor_options
from pynqrepro.core.options import (add_data_option, add_reports_option, add_scale_option, add_store_option,
                                    positive_float, positive_int)
from pynqrepro.core.boards import BOARDS
from pynqrepro.models.spec import LAYER_BIT_PRESETS
from pynqrepro.study.design_space import BITS as DEFAULT_BITS
from pynqrepro.study.design_space import SPARSITIES as DEFAULT_SPARSITIES
from pynqrepro.study.design_space import STUDY_BOARDS as DEFAULT_BOARDS


def sparsity(text: str) -> float:
    """argparse type: a channel-pruning level in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise UserError(f"--sparsity {text!r} is not a fraction in [0, 1): use e.g. 0 0.3 0.5")
    return value


def _explore(args) -> None:
    from pynqrepro.core.atomic import ensure_writable_dir
    from pynqrepro.core.boards import get_board
    from pynqrepro.core.provenance import environment
    from pynqrepro.core.report_files import merge_reports
    from pynqrepro.core.results import Recorder, SessionInfo, new_session_id
    from pynqrepro.core.scale import get_scale
    from pynqrepro.core.store import store_from_args
    from pynqrepro.pipeline import Setup
    from pynqrepro.study import design_space

    candidates = design_space.space(args.layer_bits, args.sparsity)  # bad bits: one line, before any work
    scale = get_scale(args.scale, args.max_steps)
    ensure_writable_dir(args.reports_dir, "--reports-dir")
    store = store_from_args(args)
    twice = sorted({name for name in args.target_board if args.target_board.count(name) > 1})
    if twice:
        raise UserError(f"--target-board names {', '.join(twice)} more than once: give each board once")
    boards = [get_board(name) for name in args.target_board]
    setup = Setup(scale, boards[0], store, args.data_dir)
    session = SessionInfo(new_session_id(), scale.name, boards[0].name, environment())
    try:
        for board in boards:
            case = design_space.Case(board.name)
            measured = design_space.measure(setup, case, candidates, args.target_fps)
            results = Recorder(args.reports_dir, session, f"{design_space.EXPERIMENT}[{case.id}]")
            design_space.tabulate(results, setup, measured)
            print(design_space.summary(measured))
    finally:
        merge_reports(args.reports_dir)
    print(f"report at {args.reports_dir / (design_space.TABLE + '.md')}")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explore", help="design-space search: per-layer bits x channel pruning x exact folding, per board",
        description="Search per-layer bit widths x channel-pruning levels x the exact whole-design folding "
                    "(pynqrepro fold's default budget) on each board: hardware for every candidate, training "
                    "only for those that can reach the accuracy-vs-fps front (a short fine-tune from the "
                    "nearest trained parent, a full one for the better half). Prints the front and two "
                    "recommended designs per board; writes reports/design_space.md and reports/foldings/.")
    p.add_argument("--target-board", nargs="+", choices=sorted(BOARDS), default=list(DEFAULT_BOARDS),
                   help=f"boards to search for (default: {' '.join(DEFAULT_BOARDS)})")
    p.add_argument("--layer-bits", nargs="+", default=list(DEFAULT_BITS), metavar="BITS",
                   help="bit widths of the space: uniform W/A (e.g. 2/2), a per-layer list W/A,...,W or a preset "
                        f"({', '.join(LAYER_BIT_PRESETS)}) (default: {' '.join(DEFAULT_BITS)})")
    p.add_argument("--sparsity", nargs="+", type=sparsity, default=list(DEFAULT_SPARSITIES),
                   help="channel-pruning levels, fractions of conv weights removed "
                        f"(default: {' '.join(map(str, DEFAULT_SPARSITIES))})")
    p.add_argument("--target-fps", type=positive_float, default=None,
                   help="recommendation (a)'s fps floor (default: the study's best fps on each board)")
    add_scale_option(p.add_argument)
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="dry run: cut every training to N optimizer steps (default: none)")
    add_data_option(p.add_argument)
    add_store_option(p.add_argument)
    add_reports_option(p.add_argument)
    add_executor_options(p.add_argument)
    p.set_defaults(func=_explore)
