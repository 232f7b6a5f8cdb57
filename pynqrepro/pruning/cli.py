"""``pynqrepro prune``: the study's pruning scripts (``pruning_{2,4,8}bit.py``) as one command.

``--bit-width`` picks the study's preset (SIMD list, learning rate); every study option can
override it. ``--method channels`` runs the channel-pruning sweep instead (beyond the study).
"""

from dataclasses import fields
from pathlib import Path

from pynqrepro.core.executor_options import add_executor_options
from pynqrepro.core.errors import UserError
from pynqrepro.core.options import (add_data_option, add_store_option, options_given, parse_int_list, positive_float,
                                    positive_int)
from pynqrepro.pruning.config import METHODS, STUDY_PRESETS, SweepConfig, study_preset
from pynqrepro.training.config import warn_absurd_lr

DEFAULTS = {f.name: f.default for f in fields(SweepConfig)}


def register(subparsers) -> None:
    p = subparsers.add_parser("prune", help="SIMD-block pruning sweep with fine-tuning (the study), or channel pruning",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--model", type=Path, required=True, help="dense checkpoint (model_best.pth.tar or run directory) (required)")
    p.add_argument("--bit-width", type=int, required=True, choices=sorted(STUDY_PRESETS),
                   help="the checkpoint's weight bits: picks the study's preset (required)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0],
                   help="simd_blocks: the study's SIMD-block pruning; channels: whole conv channels (default: %(default)s)")
    p.add_argument("--simd-list", help="conv SIMDs, e.g. \"9, 16, 16, 12, 8, 6\" (default: the study's for --bit-width)")
    p.add_argument("--channel-steps", type=positive_int, default=DEFAULTS["channel_steps"],
                   help="--method channels keeps multiples of 1/N of each conv layer's channels (default: %(default)s)")
    p.add_argument("--max-sparsity", type=float, default=DEFAULTS["max_sparsity"],
                   help="stop once conv sparsity exceeds this (default: %(default)s)")
    p.add_argument("--increment", type=float, default=DEFAULTS["increment"],
                   help="sparsity added per step (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"],
                   help="fine-tuning epochs per step (default: %(default)s)")
    p.add_argument("--lr", type=positive_float, help="fine-tuning learning rate (default: the study's for --bit-width)")
    p.add_argument("--norm-order", type=positive_float, default=DEFAULTS["norm_order"],
                   help="p of the block score's Lp norm (default: %(default)s)")
    add_data_option(p.add_argument)
    add_store_option(p.add_argument)
    p.add_argument("--device", help="torch device (default: CUDA if available)")
    add_executor_options(p.add_argument)
    p.set_defaults(func=run, parser=p)


# the options only one method reads: given with the other, they would be ignored
METHOD_OPTIONS = {"simd_blocks": ("channel_steps",), "channels": ("simd_list", "norm_order")}


def check_device(text: str | None) -> None:
    """A --device torch knows and this machine has, before any work (torch's own error is a traceback)."""
    import torch

    if text is None:
        return
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {text[:80]!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f"--device {text} is not on this machine ({torch.cuda.device_count()} CUDA GPUs visible): "
                        f"use --device cpu, or a cuda:N below the count")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {text}: pruning runs on cpu or cuda only: use --device cpu or cuda")


def run(args) -> None:
    from tabulate import tabulate

    from pynqrepro.core.store import store_from_args
    from pynqrepro.pruning.sweep import run_sweep
    from pynqrepro.training.checkpoint import import_checkpoint
    from pynqrepro.training.trainer import RunOptions

    for ignored in options_given(args, args.parser, METHOD_OPTIONS[args.method]):
        other = next(method for method in METHOD_OPTIONS if method != args.method)
        raise UserError(f"{ignored} is for --method {other}, and --method {args.method} ignores it: drop {ignored}, "
                        f"or pass --method {other}")
    check_device(args.device)
    preset = study_preset(args.bit_width)
    simd = parse_int_list(args.simd_list, "--simd-list", '"9,16,16,12,8,6"') if args.simd_list else preset.simd
    sweep = SweepConfig(
        method=args.method, simd=simd if args.method == "simd_blocks" else (),
        channel_steps=args.channel_steps,
        max_sparsity=args.max_sparsity, increment=args.increment, epochs=args.epochs,
        lr=args.lr if args.lr is not None else preset.lr, norm_order=args.norm_order)
    warn_absurd_lr(sweep.lr, "--lr")
    store = store_from_args(args)
    dense = import_checkpoint(store, args.model)
    options = RunOptions(experiments=args.store_dir, data_dir=args.data_dir.absolute(), device=args.device)
    steps = run_sweep(store, dense, sweep, options, bit_width=args.bit_width)
    rows = [(r.step, f"{100 * r.amount:.1f}", f"{100 * r.sparsity:.2f}", f"{r.acc_pruned:.2f}", f"{r.test_acc:.2f}",
             ",".join(map(str, r.kept_columns)), a.path) for a, r in steps]
    print(tabulate(rows, headers=("step", "amount %", "conv sparsity %", "acc pruned %", "acc fine-tuned %",
                                  "MW per conv", "artifact")))
