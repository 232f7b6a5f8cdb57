"""``pynqrepro train``: the study's trainer options (``trainer.py``), plus bits/widths/dataset."""

import os
from dataclasses import fields
from pathlib import Path

from pynqrepro.core.atomic import check_writable
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor_options import add_executor_options, executor_from_args
from pynqrepro.core.logs import warn
from pynqrepro.core.options import (add_data_option, add_store_option, nonnegative_int, options_given, parse_int_list,
                                    positive_float, positive_int)
from pynqrepro.models.spec import (BIT_WIDTHS, LAYER_BIT_PRESETS, LAYER_BITS_EXAMPLE, check_bits, format_layer_bits,
                                   parse_layer_bits, uniform_layer_bits, widest_bits)
from pynqrepro.training.config import AUGMENTATIONS, DATASETS, TrainConfig, warn_absurd_lr

EXPERIMENTS = "experiments_out"
MAX_WORKERS = 4 * (os.cpu_count() or 1)  # beyond it --workers only forks processes that wait for a CPU
DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not f.default_factory}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="quantization-aware training of CNV (Brevitas)",
                              description="Train CNV as the study did; checkpoints go to "
                                          "<experiments>/<CNV_xWyA>/checkpoints/.")
    p.add_argument("--bit-width", type=int, help=f"weight and activation bits ({', '.join(map(str, BIT_WIDTHS))}) "
                                                 f"(default: none; required unless --resume)")
    p.add_argument("--weight-bits", type=int, help="weight bits (default: --bit-width)")
    p.add_argument("--act-bits", type=int, help="activation bits (default: --bit-width)")
    p.add_argument("--layer-bits", metavar="W/A,...,W|PRESET",
                   help=f"per-layer bits instead: W/A for each conv and hidden FC layer, W for the classifier, "
                        f"e.g. {LAYER_BITS_EXAMPLE}, or a preset ({', '.join(LAYER_BIT_PRESETS)}) "
                        f"(default: uniform --bit-width)")
    p.add_argument("--dataset", choices=DATASETS, help=f"training data (default {DEFAULTS['dataset']})")
    add_data_option(p.add_argument)
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate (default {DEFAULTS['lr']})")
    p.add_argument("-b", "--batch-size", type=positive_int, help=f"global batch, at most the training set (default {DEFAULTS['batch_size']})")
    p.add_argument("--epochs", type=positive_int, help=f"epochs to train (default {DEFAULTS['epochs']})")
    p.add_argument("--lr-step", type=positive_int, help=f"epochs between lr halvings (default {DEFAULTS['lr_step']})")
    p.add_argument("--augment", choices=AUGMENTATIONS, help=f"training-set augmentation (default {DEFAULTS['augment']})")
    p.add_argument("--val-fraction", type=float, help=f"validation split held out of train "
                                                      f"(default {DEFAULTS['val_fraction']})")
    p.add_argument("--seed", type=int, help=f"seed of weights, split and data order (default {DEFAULTS['seed']})")
    p.add_argument("--conv-channels", help=f"six comma-separated conv widths (default: "
                                           f"{','.join(map(str, DEFAULTS['conv_channels']))})")
    p.add_argument("--fc-features", help=f"two comma-separated FC widths (default: "
                                         f"{','.join(map(str, DEFAULTS['fc_features']))})")
    p.add_argument("--pretrained", help="'brevitas' (published 1w1a/1w2a/2w2a weights) or a state_dict file (default: none)")
    p.add_argument("-j", "--workers", type=int, default=0, help="data loader processes (default: %(default)s)")
    p.add_argument("--experiments", type=Path, default=None,
                   help=f"output root of the runs (default: ./{EXPERIMENTS}; with --resume: the run's own)")
    p.add_argument("--resume", type=Path, help="continue from this checkpoint.tar (its config is used) (default: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in <experiments>/<CNV_xWyA> with a new one; not with --resume, "
                        "which continues it (default: refuse, naming --resume)")
    p.add_argument("--evaluate", action="store_true",
                   help="only evaluate the --resume checkpoint on its own config's data, writing nothing; "
                        "takes no training option (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars (default: bars on)")
    p.add_argument("--deterministic", action="store_true",
                   help="CUDA's deterministic mode: a resumed run ends with the uninterrupted run's weights on a "
                        "GPU too (no cuDNN autotuning, deterministic kernels, unfused Adam: slower); the CPU is "
                        "deterministic without it (default: off; on for the store's GPU-scale trainings)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model: minutes to compile, then faster steps (a warning and eager "
                        "training where it fails) (default: off)")
    p.add_argument("--dist-url", default="env://", help="rendezvous of the processes (default: %(default)s)")
    p.add_argument("--dist-backend", choices=("nccl", "gloo"), help="torch.distributed backend (default: nccl with CUDA, else gloo)")
    p.add_argument("--multiprocessing-distributed", action="store_true",
                   help="spawn one process per GPU (or --nproc-per-node) on this node (default: off)")
    p.add_argument("--nproc-per-node", type=positive_int, help="processes to spawn (default: visible GPUs)")
    p.add_argument("--world-size", type=positive_int, default=1,
                   help="processes (nodes with --multiprocessing-distributed) (default: %(default)s)")
    p.add_argument("--rank", type=nonnegative_int, default=0, help="this process's (node's) rank (default: %(default)s)")
    add_executor_options(p.add_argument)
    add_store_option(p.add_argument)  # --executor slurm: the training lands there, built once, as a job
    p.set_defaults(func=run, parser=p)


# what --evaluate reads; every other option given with it would be ignored
EVALUATE_USES = {"evaluate", "resume", "data_dir", "store_dir", "verbose", "help"}
# options a SLURM training has no use for: its store entry, its job's tasks and requeues replace them
SLURM_IGNORES = {"resume", "experiments", "overwrite", "multiprocessing_distributed", "world_size", "rank",
                 "nproc_per_node", "dist_url", "dist_backend", "workers", "compile"}


def config_from_args(args) -> TrainConfig:
    """TrainConfig from the options given; with --resume, the checkpoint's config (--epochs may extend it)."""
    given = {name: getattr(args, name) for name in (
        "dataset", "lr", "batch_size", "epochs", "lr_step", "augment", "val_fraction", "seed",
        "pretrained") if getattr(args, name) is not None}
    if args.deterministic:
        given["deterministic"] = True
    for name, example in (("conv_channels", "64,64,128,128,256,256"), ("fc_features", "512,512")):
        if getattr(args, name) is not None:
            given[name] = parse_int_list(getattr(args, name), f"--{name.replace('_', '-')}", example)
    for name in ("weight_bits", "act_bits"):
        bits = getattr(args, name) if getattr(args, name) is not None else args.bit_width
        if bits is not None:
            given[name] = check_bits(name.replace("_bits", " bit width").replace("act ", "activation "), bits)
    if args.layer_bits is not None:
        if "weight_bits" in given or "act_bits" in given:
            raise UserError("--layer-bits sets every layer's widths: drop --bit-width/--weight-bits/--act-bits")
        layers = parse_layer_bits(args.layer_bits)  # its own one-line error before any work
        weight_bits, act_bits = widest_bits(layers)
        given.update(weight_bits=weight_bits, act_bits=act_bits,
                     **({} if layers == uniform_layer_bits(weight_bits, act_bits)
                        else {"layer_bits": format_layer_bits(layers)}))
    if args.resume:
        from pynqrepro.training.checkpoint import read_resumable

        saved = read_resumable(args.resume).get("config")
        if saved is None:
            raise UserError(f"{args.resume} has no training config: resume from a checkpoint written by pynqrepro train")
        clash = sorted(k for k, v in given.items() if k != "epochs" and saved.get(k) != v)
        if clash:
            raise UserError(f"--resume continues the checkpoint's run, but {', '.join(clash)} differ: "
                            f"drop those options or start a new run")
        return TrainConfig.from_dict({**saved, **given})
    missing = [f"--{name.replace('_', '-')}" for name in ("weight_bits", "act_bits") if name not in given]
    if len(missing) == 1:
        raise UserError(f"{missing[0]} is missing: pass it too, or --bit-width N for both")
    if missing:
        raise UserError("no bit widths given: pass --bit-width N or --weight-bits N --act-bits M")
    return TrainConfig(**given)


def _evaluate(args) -> None:
    from pynqrepro.data.splits import load_splits
    from pynqrepro.training.checkpoint import load_model
    from pynqrepro.training.trainer import evaluate

    if args.resume is None:
        raise UserError("--evaluate needs the checkpoint to evaluate: pass --resume PATH")
    ignored = options_given(args, args.parser, {action.dest for action in args.parser._actions} - EVALUATE_USES)
    if ignored:
        raise UserError(f"--evaluate only evaluates the --resume checkpoint with its own config and writes nothing, "
                        f"so {', '.join(ignored)} would be ignored: drop {'it' if len(ignored) == 1 else 'them'}, "
                        f"or drop --evaluate to train")
    model, cfg = load_model(args.resume)
    splits = load_splits(cfg.dataset, args.data_dir, cfg.val_fraction, "none", cfg.seed)
    val = f"{evaluate(model, splits.val, 'cpu'):.2f}%" if splits.val is not None else "-"
    print(f"{cfg.name} {args.resume}: val {val} test {evaluate(model, splits.test, 'cpu'):.2f}%")


def warn_of_unused_or_absurd(cfg: TrainConfig, args) -> None:
    """Warnings that do not stop a training, locally or as a job: an absurd ``--lr``, and a
    ``--data-dir`` that the digits dataset does not read."""
    warn_absurd_lr(cfg.lr, "--lr")
    if cfg.dataset == "digits" and options_given(args, args.parser, {"data_dir"}):
        warn(f"--data-dir {args.data_dir} is not used: the digits dataset ships with scikit-learn "
             f"(--data-dir holds CIFAR-10's archive)")


def run(args) -> None:
    from pynqrepro.training.distributed import launch, resolve
    from pynqrepro.training.trainer import RunOptions

    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    if args.workers > MAX_WORKERS:
        raise UserError(f"--workers {args.workers} would start {args.workers} data loader processes on a machine "
                        f"of {os.cpu_count()} CPUs: use at most {MAX_WORKERS} (0 loads in the training process)")
    if args.evaluate:
        _evaluate(args)
        return
    if args.overwrite and args.resume:
        raise UserError(f"--overwrite starts a new run over the earlier one, --resume continues it: drop --overwrite "
                        f"to continue from {args.resume}, or drop --resume to start over")
    if args.executor != "local":
        _train_as_job(args)
        return
    executor_from_args(args)  # --cluster-config read and checked, --slurm-* refused, as by every command
    if args.verify:
        raise UserError("--verify checks store entries, and a local training uses none: drop --verify, or train "
                        "into the store with --executor slurm")
    if args.nproc_per_node is not None and not args.multiprocessing_distributed:
        raise UserError(f"--nproc-per-node {args.nproc_per_node} sets the processes --multiprocessing-distributed "
                        f"spawns: add --multiprocessing-distributed, or drop --nproc-per-node")
    cfg = config_from_args(args)
    warn_of_unused_or_absurd(cfg, args)
    args.experiments = _experiments_root(args)
    check_writable(args.experiments, "--experiments", directory=True)
    spec = resolve(args.world_size, args.rank, args.dist_url, args.dist_backend,
                   args.multiprocessing_distributed, args.nproc_per_node)
    if not args.resume and args.rank == 0:  # the other nodes of a multi-node run share rank 0's folder
        claim_run_dir(args.experiments / cfg.name, args.overwrite)
    run_dir = args.resume.resolve().parent.parent if args.resume else None
    opts = RunOptions(experiments=args.experiments, data_dir=args.data_dir, workers=args.workers,
                      resume=args.resume, run_dir=run_dir, progress=not args.no_progress, compile=args.compile)
    result = launch(cfg, opts, spec)
    if result is not None:
        _print_result(cfg, result)


def _experiments_root(args) -> Path:
    """Where the run's checkpoints go: ``--experiments`` (default ./experiments_out), and with
    ``--resume`` the resumed run's own directory, which a different ``--experiments`` cannot move."""
    if not args.resume:
        return args.experiments or Path(EXPERIMENTS)
    run_dir = args.resume.resolve().parent.parent
    if args.experiments is not None and args.experiments.resolve() != run_dir.parent:
        raise UserError(f"--resume continues the run in {run_dir} and saves its checkpoints there, not under "
                        f"--experiments {args.experiments}: drop --experiments, or copy the run directory "
                        f"into {args.experiments} and resume from the copy")
    return run_dir.parent


def claim_run_dir(run_dir: Path, overwrite: bool) -> None:
    """A new run never silently replaces an earlier one's checkpoints: refuse, naming the ways on.
    With --overwrite the new run replaces them as it saves its first epoch (a run that fails before
    that leaves the earlier one intact)."""
    from pynqrepro.training.checkpoint import BEST, LAST

    earlier = [run_dir / "checkpoints" / name for name in (LAST, BEST) if (run_dir / "checkpoints" / name).is_file()]
    if earlier and not overwrite:
        raise UserError(f"{run_dir} already holds a run: continue it with --resume {earlier[0]}, replace it "
                        f"with --overwrite, or pass another --experiments directory")


def _print_result(cfg, result) -> None:
    val = "-" if result.val_acc is None else f"{result.val_acc:.2f}%"
    print(f"{cfg.name}: best epoch {result.best_epoch} val {val} test {result.test_acc:.2f}% "
          f"(best test {result.best_test_acc:.2f}%), {result.images_per_s:.0f} images/s; "
          f"checkpoints in {result.run_dir / 'checkpoints'}")


def _train_as_job(args) -> None:
    """Train through the store as a cluster job: built once, resumed after requeues, shared."""
    from pynqrepro.core.store import store_from_args
    from pynqrepro.training.recipes import train_artifact, training_result

    for flag in options_given(args, args.parser, SLURM_IGNORES):
        raise UserError(f"{flag} is for --executor local: a SLURM training lands in --store-dir, resumes by "
                        f"itself and takes its processes from the cluster config's [train] nodes/tasks_per_node")
    cfg = config_from_args(args)
    warn_of_unused_or_absurd(cfg, args)
    store = store_from_args(args)
    _print_result(cfg, training_result(train_artifact(store, cfg, args.data_dir.absolute())))
