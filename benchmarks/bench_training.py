"""Training throughput: pynqrepro's trainer vs brevitas_examples.bnn_pynq's own Trainer.

Both train the CNV (same bits, initial weights, batch, images, augmentation draws and thread count)
for the same number of steps, in alternating runs (A B A B ...); prints each side's median
images/s, every run, the machine load, the ratio of the medians and the median of the ratios of
neighbouring runs (the steadier figure on a machine whose load changes while it runs).

- pynqrepro: the trainer's own pieces (``build_optimizer``, ``make_loader``, ``train_epoch``) on our
  CNV, whose quantizers take fewer passes over each tensor (training bit-identical to Brevitas's,
  see tests/test_models_cnv.py), with the config's kernels: channels_last model and batches, fused
  Adam; on CUDA the images resident on the GPU and each batch gathered and augmented there, cuDNN
  autotuning, and with ``--compile`` torch.compile (compiled once before the runs; its time is
  printed, not counted).
- brevitas: ``Trainer.train_model`` unchanged (its loop, meters and logging; evaluation replaced by a
  no-op) on brevitas_examples' own CNV class loaded with the same initial weights: contiguous
  model, plain Adam, a DataLoader over the same image set (crop and flip per item, as its
  torchvision transforms do), ``--workers`` processes (its default, 4, on CUDA, kept alive between
  runs so their start-up is not counted; 0 on CPU, as ours), cuDNN autotuning on CUDA as its
  ``__init__`` sets it.
Brevitas's trainer.py imports torchvision at module level for its datasets only; torchvision is not
a pynqrepro dependency, so where it is missing a placeholder module stands in (its datasets are
never built here).

    python benchmarks/bench_training.py --bits 2 --batch 64 --steps 4 --threads 2 --repeats 11
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from argparse import Namespace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pynqrepro.data.splits import ImageSet, load_splits
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import build_optimizer, compile_model, make_loader, train_epoch

BREVITAS_WORKERS = 4  # bnn_pynq_train.py's --num_workers default


def _import_brevitas_trainer():
    """brevitas_examples.bnn_pynq.trainer, with a placeholder torchvision where there is none
    (its datasets are unused here)."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, OSError, RuntimeError):  # absent, or built for another torch
        tv = types.ModuleType("torchvision")
        tv.__version__ = "0.0.0"
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.datasets = types.ModuleType("torchvision.datasets")
        tv.datasets.CIFAR10 = tv.datasets.MNIST = type("Unavailable", (), {})
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                            "torchvision.datasets": tv.datasets})
    from brevitas_examples.bnn_pynq.logger import Logger
    from brevitas_examples.bnn_pynq.trainer import Trainer

    return Trainer, Logger


def _timed(device: torch.device, work) -> float:
    """Seconds ``work()`` takes, GPU work included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


class Ours:
    """pynqrepro's training pass, as ``trainer.run_epoch`` runs it."""

    def __init__(self, cfg: TrainConfig, train_set: ImageSet, device: torch.device, compile_: bool):
        self.cfg, self.device = cfg, device
        self.resident = device.type == "cuda"  # the trainer's rule (RunOptions.resident_data None)
        self.train_set = train_set.to(device) if self.resident else train_set
        torch.manual_seed(cfg.seed)
        self.net = cfg.build_model().to(device, memory_format=cfg.torch_memory_format)
        self.initial = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.model, self.compile_seconds = self.net, None
        self.kernels = (f"{cfg.memory_format}, {'fused ' if cfg.fused_adam else ''}Adam, "
                        f"{'batches gathered and augmented on the GPU' if self.resident else 'DataLoader, 0 workers'}"
                        f"{', torch.compile' if compile_ else ''}")
        if compile_:
            shape = (cfg.batch_size, *train_set.images.shape[1:])
            self.compile_seconds = _timed(device, lambda: setattr(self, "model", compile_model(
                self.net, self.net, shape, device, cfg.torch_memory_format)))

    def run(self) -> float:
        self.net.load_state_dict(self.initial)
        optimizer = build_optimizer(self.cfg, self.net)
        loader = make_loader(self.train_set, self.cfg.batch_size, self.cfg.seed, 1, resident=self.resident)
        seen = []
        seconds = _timed(self.device, lambda: seen.append(train_epoch(
            self.model, loader, optimizer, nn.CrossEntropyLoss(), self.net.clip_weights, self.device,
            memory_format=self.cfg.torch_memory_format)[2]))
        return seen[0] / seconds


class Brevitas:
    """brevitas_examples' Trainer.train_model on the same model, data and device."""

    def __init__(self, cfg: TrainConfig, train_set: ImageSet, device: torch.device, workers: int, log_dir: str,
                 initial: dict):
        Trainer, Logger = _import_brevitas_trainer()
        from brevitas_examples.bnn_pynq.models.CNV import CNV as BrevitasCNV

        self.cfg, self.device = cfg, device
        trainer = Trainer.__new__(Trainer)  # its __init__ builds torchvision datasets; set what train_model uses
        trainer.args = Namespace(detect_nan=False, epochs=1, log_freq=10, dry_run=True,
                                 export_qonnx=False, export_qcdq_onnx=False)
        trainer.model = BrevitasCNV(num_classes=10, weight_bit_width=cfg.weight_bits, act_bit_width=cfg.act_bits,
                                    in_bit_width=cfg.in_bits, in_ch=3).to(device)
        self.initial = initial  # our CNV's, read only: its layout is Brevitas's, key for key
        self.kernels = f"contiguous, Adam, DataLoader, {workers} workers"
        trainer.scheduler = None
        trainer.criterion, trainer.device, trainer.num_classes = nn.CrossEntropyLoss(), device, 10
        trainer.train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                          num_workers=workers, persistent_workers=workers > 0)
        trainer.eval_model = lambda epoch=None: 0.0  # evaluation is not part of training throughput
        trainer.starting_epoch, trainer.best_val_acc = 1, 0
        trainer.logger = Logger(log_dir, dry_run=True)
        trainer.logger.log.setLevel(logging.WARNING)
        self.trainer = trainer

    def run(self) -> float:
        trainer = self.trainer
        trainer.model.load_state_dict(self.initial)
        trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=self.cfg.lr)
        seconds = _timed(self.device, trainer.train_model)
        return len(trainer.train_loader) * self.cfg.batch_size / seconds


def _images(steps: int, batch: int, cfg: TrainConfig) -> ImageSet:
    """steps x batch digits training images (repeated where the set is smaller), augmented as the study."""
    full = load_splits("digits", None, cfg.val_fraction, cfg.augment, cfg.seed).train
    n = steps * batch
    images, labels = full.images.numpy(), full.labels.numpy()
    repeat = np.arange(n) % len(labels)
    return ImageSet(images[repeat], labels[repeat], cfg.augment, cfg.seed)


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=2, help="weight and activation bits")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="training steps per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=11, help="alternating runs of each; medians compared")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, help=f"Brevitas's DataLoader processes (default: 0 on CPU, "
                                                    f"{BREVITAS_WORKERS} on CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("bench_training: --device cuda, but torch sees no CUDA GPU: run on a GPU host or pass --device cpu")
        torch.backends.cudnn.benchmark = True  # both sides: our trainer and Brevitas's __init__ set it
    workers = args.workers if args.workers is not None else (BREVITAS_WORKERS if device.type == "cuda" else 0)
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(args.bits, args.bits, dataset="digits", batch_size=args.batch, augment="crop_flip")
    train_set = _images(args.steps, args.batch, cfg)
    load_before = _load()
    with tempfile.TemporaryDirectory() as log_dir:
        ours_side = Ours(cfg, train_set, device, args.compile)
        sides = {"pynqrepro trainer": ours_side,
                 "brevitas_examples Trainer": Brevitas(cfg, train_set, device, workers, log_dir,
                                                       ours_side.initial)}
        runs = {name: [] for name in sides}
        for side in sides.values():
            side.run()  # warm-up: allocator, oneDNN / cuDNN kernel choice, Brevitas's injector caches
        for _ in range(args.repeats):
            for name, side in sides.items():
                runs[name].append(side.run())
    medians = {name: statistics.median(values) for name, values in runs.items()}
    ours, theirs = medians.values()
    pairwise = statistics.median(a / b for a, b in zip(*runs.values()))
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"CNV {args.bits}w{args.bits}a on {device.type}{gpu}, batch {args.batch}, {args.steps} steps, "
          f"{args.threads} thread(s), Brevitas workers {workers}, median of {args.repeats} alternating runs, "
          f"load {load_before} -> {_load()}")
    if args.compile:
        outcome = "eager: compiling failed (warning above)" if ours_side.model is ours_side.net else "compiled"
        print(f"  torch.compile: {ours_side.compile_seconds:.1f} s before the runs, {outcome}")
    for name, values in runs.items():
        print(f"  {name:26s} {medians[name]:9.1f} images/s  [{sides[name].kernels}]")
        print(f"  {'':26s} runs: {', '.join(f'{v:.1f}' for v in values)}")
    print(f"  ratio pynqrepro / brevitas: {ours / theirs:.3f} (medians), {pairwise:.3f} (median of neighbouring runs)")


if __name__ == "__main__":
    main()
