"""Training throughput: pynqrepro's trainer vs brevitas_examples.bnn_pynq's own Trainer.

Both train the same CNV (same bits, init, batch, thread count) on the same digits images for the
same number of steps, alternating runs; prints images/s and the ratio (target >= 1.0).
Brevitas's trainer.py imports torchvision at module level for its datasets only; torchvision is not
a pynqrepro dependency, so a placeholder module stands in (its datasets are never built here: the
Trainer gets our DataLoader) and its ``train_model`` loop runs unchanged.

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --bits 2 --batch 64 --steps 10 --threads 1
"""

import argparse
import logging
import sys
import tempfile
import time
import types
from argparse import Namespace

import torch
from torch import nn
from torch.utils.data import DataLoader

from pynqrepro.data.splits import ImageSet, load_splits
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import make_loader, train_epoch


def _import_brevitas_trainer():
    """brevitas_examples.bnn_pynq.trainer with a placeholder torchvision (datasets unused here)."""
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv.__version__ = "0.0.0"
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.datasets = types.ModuleType("torchvision.datasets")
        tv.datasets.CIFAR10 = tv.datasets.MNIST = type("Unavailable", (), {})
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                            "torchvision.datasets": tv.datasets})
    from brevitas_examples.bnn_pynq.trainer import Trainer

    return Trainer


def _fresh(cfg: TrainConfig):
    torch.manual_seed(cfg.seed)
    model = cfg.build_model()
    return model, torch.optim.Adam(model.parameters(), lr=cfg.lr)


def run_ours(cfg: TrainConfig, train_set: ImageSet) -> float:
    model, optimizer = _fresh(cfg)
    loader = make_loader(train_set, cfg.batch_size, cfg.seed, 1)
    start = time.perf_counter()
    _, _, seen = train_epoch(model, loader, optimizer, nn.CrossEntropyLoss(), model.clip_weights, "cpu")
    return seen / (time.perf_counter() - start)


def run_brevitas(cfg: TrainConfig, train_set: ImageSet, log_dir: str) -> float:
    Trainer = _import_brevitas_trainer()
    trainer = Trainer.__new__(Trainer)  # its __init__ builds torchvision datasets; set what train_model uses
    model, optimizer = _fresh(cfg)
    trainer.args = Namespace(detect_nan=False, epochs=1, log_freq=10, dry_run=True,
                             export_qonnx=False, export_qcdq_onnx=False)
    trainer.model, trainer.optimizer, trainer.scheduler = model, optimizer, None
    trainer.criterion, trainer.device, trainer.num_classes = nn.CrossEntropyLoss(), torch.device("cpu"), 10
    trainer.train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    trainer.eval_model = lambda epoch=None: 0.0  # evaluation is not part of training throughput
    trainer.starting_epoch, trainer.best_val_acc = 1, 0
    from brevitas_examples.bnn_pynq.logger import Logger

    trainer.logger = Logger(log_dir, dry_run=True)
    trainer.logger.log.setLevel(logging.WARNING)
    start = time.perf_counter()
    trainer.train_model()
    return len(trainer.train_loader) * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=2, help="weight and activation bits")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each; best kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(args.bits, args.bits, dataset="digits", batch_size=args.batch, augment="crop_flip")
    full = load_splits("digits", None, cfg.val_fraction, cfg.augment, cfg.seed).train
    n = args.steps * args.batch
    train_set = ImageSet(full.images[:n].numpy(), full.labels[:n].numpy(), cfg.augment, cfg.seed)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as log_dir:
        run_ours(cfg, train_set)  # warm-up (allocator, Brevitas injector caches)
        for _ in range(args.repeats):
            ours.append(run_ours(cfg, train_set))
            theirs.append(run_brevitas(cfg, train_set, log_dir))
    print(f"CNV {args.bits}w{args.bits}a, batch {args.batch}, {args.steps} steps, {args.threads} thread(s), "
          f"best of {args.repeats}")
    print(f"  pynqrepro trainer        {max(ours):8.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"  brevitas_examples Trainer {max(theirs):7.1f} images/s  (runs: {', '.join(f'{v:.1f}' for v in theirs)})")
    print(f"  ratio pynqrepro / brevitas: {max(ours) / max(theirs):.3f}")


if __name__ == "__main__":
    main()
