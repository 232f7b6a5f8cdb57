"""``pynqrepro prune``: the study's pruning scripts (``pruning_{2,4,8}bit.py``) as one command.

``--bit-width`` picks the study's preset (SIMD list, learning rate); every study option can
override it. ``--method channels`` runs the channel-pruning sweep instead (beyond the study).
"""

import os
from pathlib import Path

from tabulate import tabulate

from pynqrepro.core.store import ArtifactStore
from pynqrepro.pruning.channels import CHANNEL_STEPS
from pynqrepro.pruning.simd_blocks import parse_simd_list, study_preset
from pynqrepro.pruning.sweep import METHODS, SweepConfig, import_checkpoint, run_sweep
from pynqrepro.training.trainer import RunOptions


def register(subparsers) -> None:
    p = subparsers.add_parser("prune", help="SIMD-block pruning sweep with fine-tuning (the study), or channel pruning",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--model", type=Path, required=True, help="dense checkpoint (model_best.pth.tar or run directory)")
    p.add_argument("--bit-width", type=int, required=True, choices=(2, 4, 8), help="the checkpoint's weight bits")
    p.add_argument("--method", choices=METHODS, default="simd_blocks")
    p.add_argument("--simd-list", help="conv SIMDs, e.g. \"9, 16, 16, 12, 8, 6\" (default: the study's for --bit-width)")
    p.add_argument("--channel-steps", type=int, default=CHANNEL_STEPS,
                   help="--method channels keeps multiples of 1/N of each conv layer's channels")
    p.add_argument("--max-sparsity", type=float, default=0.9, help="stop once conv sparsity exceeds this")
    p.add_argument("--increment", type=float, default=0.15, help="sparsity added per step")
    p.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs per step")
    p.add_argument("--lr", type=float, help="fine-tuning learning rate (default: the study's for --bit-width)")
    p.add_argument("--norm-order", type=float, default=1, help="p of the block score's Lp norm")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="holds cifar-10-python.tar.gz")
    p.add_argument("--store-dir", type=Path, default=Path(os.environ.get("PYNQREPRO_STORE", ".pynqrepro-store")),
                   help="artifact store: each step's checkpoint and masks")
    p.add_argument("--device", help="torch device (default: CUDA if available)")
    p.set_defaults(func=run)


def run(args) -> None:
    preset = study_preset(args.bit_width)
    sweep = SweepConfig(
        method=args.method,
        simd=(parse_simd_list(args.simd_list) if args.simd_list else preset.simd) if args.method == "simd_blocks" else (),
        channel_steps=args.channel_steps,
        max_sparsity=args.max_sparsity, increment=args.increment, epochs=args.epochs,
        lr=args.lr if args.lr is not None else preset.lr, norm_order=args.norm_order)
    store = ArtifactStore(args.store_dir)
    dense = import_checkpoint(store, args.model)
    options = RunOptions(experiments=args.store_dir, data_dir=args.data_dir, device=args.device)
    steps = run_sweep(store, dense, sweep, options, bit_width=args.bit_width)
    rows = [(r.step, f"{100 * r.amount:.1f}", f"{100 * r.sparsity:.2f}", f"{r.acc_pruned:.2f}", f"{r.test_acc:.2f}",
             ",".join(map(str, r.kept_columns)), a.path) for a, r in steps]
    print(tabulate(rows, headers=("step", "amount %", "conv sparsity %", "acc pruned %", "acc fine-tuned %",
                                  "MW per conv", "artifact")))
