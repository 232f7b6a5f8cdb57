"""The study's QAT loop: Adam, cross-entropy, step lr, weight clipping, per-epoch checkpoints.

Stages: ``prepare`` (model, data, optimizer, resumed state) -> ``train_epoch`` -> ``evaluate`` ->
``save`` per epoch. Everything random is derived from the config's seed and the epoch number
(model init, sample order, augmentation), so a run resumed from ``checkpoint.tar`` ends with the
same weights as an uninterrupted one. Under DDP ``batch_size`` is the global batch, split evenly
over the ranks; rank 0 evaluates and writes checkpoints.
"""

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from pynqrepro.core.atomic import atomic_write_text
from pynqrepro.core.errors import UserError
from pynqrepro.data.splits import ImageSet, load_splits
from pynqrepro.training.checkpoint import BEST, LAST, load_pretrained, read_checkpoint, save_checkpoint
from pynqrepro.training.config import TrainConfig

LOG = "log.csv"
PROGRESS_EVERY = 10  # steps between progress-bar updates of loss and accuracy
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "test_acc", "epoch_s", "images_per_s")


@dataclass
class RunOptions:
    """How to run (not what): does not change the result, so it is not part of the artifact key."""

    experiments: Path
    data_dir: Path | None = None
    workers: int = 0
    resume: Path | None = None
    run_dir: Path | None = None  # default: <experiments>/<config.name>
    device: str | None = None  # default: this rank's GPU if CUDA is available, else CPU
    progress: bool = True
    rank: int = 0
    world_size: int = 1
    # Called on the freshly built model (after --pretrained, before a resume loads its state):
    # fine-tuning stages use it to load their starting weights and attach hooks (pruning masks) and
    # key their own artifacts on what it does.
    init_model: Callable[[nn.Module], None] | None = None


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    best_epoch: int  # selected on the validation split (on the test set when there is none)
    val_acc: float | None
    test_acc: float  # test accuracy of the selected epoch
    best_test_acc: float  # the study's selection: best test accuracy over all epochs
    train_seconds: float  # training passes only
    wall_seconds: float  # training and evaluation, all epochs
    images_per_s: float


def make_loader(dataset: ImageSet, batch_size: int, seed: int, epoch: int, rank: int = 0,
                world_size: int = 1, workers: int = 0) -> DataLoader:
    """This rank's shuffled batches for ``epoch``; the same order for a given (seed, epoch)."""
    dataset.set_epoch(epoch)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=torch.cuda.is_available())


def evaluate(model: nn.Module, dataset: ImageSet, device, batch_size: int = 500) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            images = dataset.images[start:start + batch_size].to(device).float().div_(255.0)
            labels = dataset.labels[start:start + batch_size].to(device)
            correct += (model(images).argmax(1) == labels).sum().item()
    return 100.0 * correct / len(dataset)


def train_epoch(model, loader, optimizer, criterion, clip, device, bar=None) -> tuple[float, float, int]:
    """One pass over ``loader``: (mean loss, accuracy %, images seen on this rank).

    Running sums stay on the device; the host reads them only for the progress bar every few steps.
    """
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for step, (images, labels) in enumerate(loader, 1):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clip(-1.0, 1.0)
        loss_sum += loss.detach() * len(labels)
        correct += (output.argmax(1) == labels).sum()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
            if step % PROGRESS_EVERY == 0 or step == len(loader):
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{100.0 * correct.item() / seen:.1f}")
    return loss_sum.item() / max(seen, 1), 100.0 * correct.item() / max(seen, 1), seen


def same_run(saved: dict | None, cfg: TrainConfig) -> bool:
    """A checkpoint continues ``cfg`` if only the epoch count differs (resuming may extend a run)."""
    if saved is None:
        return False
    return {**saved, "epochs": cfg.epochs} == cfg.to_dict()


def _device(opts: RunOptions) -> torch.device:
    if opts.device:
        return torch.device(opts.device)
    if torch.cuda.is_available():
        return torch.device("cuda", opts.rank % torch.cuda.device_count())
    return torch.device("cpu")


def _read_log(path: Path, up_to_epoch: int) -> list[dict]:
    """Rows of an earlier run up to the resumed epoch (a killed run may have logged one more)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= up_to_epoch]


def _write_log(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def train(cfg: TrainConfig, opts: RunOptions) -> TrainResult:
    """Train (or continue, with ``opts.resume``) and return the run's accuracies and speed."""
    if cfg.batch_size % opts.world_size:
        raise UserError(f"batch size {cfg.batch_size} does not split over {opts.world_size} processes: "
                        f"use a multiple of the world size")
    device = _device(opts)
    is_main = opts.rank == 0
    run_dir = Path(opts.run_dir or Path(opts.experiments) / cfg.name)
    checkpoints = run_dir / "checkpoints"

    torch.manual_seed(cfg.seed)
    model = cfg.build_model()
    if cfg.pretrained:
        load_pretrained(model, cfg.pretrained)
    if opts.init_model is not None:
        opts.init_model(model)
    splits = load_splits(cfg.dataset, opts.data_dir, cfg.val_fraction, cfg.augment, cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    state = {"epoch": 0, "best_val_acc": -1.0, "best_epoch": 0, "test_acc_at_best": 0.0,
             "best_test_acc": 0.0, "train_seconds": 0.0, "wall_seconds": 0.0, "train_images": 0}
    if opts.resume:
        package = read_checkpoint(opts.resume)
        if not same_run(package.get("config"), cfg):
            raise UserError(f"{opts.resume} was trained with a different configuration: "
                            f"resume with the same options or start a new --experiments directory")
        model.load_state_dict(package["state_dict"])
        optimizer.load_state_dict(package["optim_dict"])
        scheduler.load_state_dict(package["scheduler"])
        state.update(package["progress"])
    model.to(device)
    clip = model.clip_weights
    if opts.world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    criterion = nn.CrossEntropyLoss()
    rows = _read_log(run_dir / LOG, state["epoch"]) if is_main else []
    per_rank_batch = cfg.batch_size // opts.world_size

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        loader = make_loader(splits.train, per_rank_batch, cfg.seed, epoch, opts.rank, opts.world_size,
                             opts.workers)
        lr = optimizer.param_groups[0]["lr"]
        with tqdm(total=len(loader), desc=f"{cfg.name} epoch {epoch}/{cfg.epochs}", leave=False,
                  disable=not (opts.progress and is_main)) as bar:
            start = time.perf_counter()
            loss, acc, seen = train_epoch(model, loader, optimizer, criterion, clip, device, bar)
            seconds = time.perf_counter() - start
        scheduler.step()
        state["epoch"] = epoch
        state["train_seconds"] += seconds
        state["train_images"] += seen * opts.world_size
        if not is_main:
            continue
        net = model.module if opts.world_size > 1 else model
        val_acc = evaluate(net, splits.val, device) if splits.val is not None else None
        test_acc = evaluate(net, splits.test, device)
        selected = val_acc if val_acc is not None else test_acc
        is_best = selected >= state["best_val_acc"]
        if is_best:
            state.update(best_val_acc=selected, best_epoch=epoch, test_acc_at_best=test_acc)
        state["best_test_acc"] = max(state["best_test_acc"], test_acc)
        state["wall_seconds"] += time.perf_counter() - start
        rows.append({"epoch": epoch, "lr": lr, "train_loss": round(loss, 5), "train_acc": round(acc, 3),
                     "val_acc": "" if val_acc is None else round(val_acc, 3), "test_acc": round(test_acc, 3),
                     "epoch_s": round(seconds, 3), "images_per_s": round(seen * opts.world_size / seconds, 1)})
        _write_log(run_dir / LOG, rows)
        package = {"state_dict": net.state_dict(), "optim_dict": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "epoch": epoch, "best_val_acc": state["best_val_acc"],
                   "progress": dict(state), "config": cfg.to_dict()}
        if is_best:
            save_checkpoint(checkpoints / BEST, package)
        save_checkpoint(checkpoints / LAST, package)
        tqdm.write(f"{cfg.name} epoch {epoch}: loss {loss:.3f} train {acc:.2f}% "
                   f"val {'-' if val_acc is None else f'{val_acc:.2f}%'} test {test_acc:.2f}%")

    if opts.world_size > 1:
        dist.barrier()
    return TrainResult(
        run_dir=run_dir, epochs=state["epoch"], best_epoch=state["best_epoch"],
        val_acc=state["best_val_acc"] if splits.val is not None else None,
        test_acc=state["test_acc_at_best"], best_test_acc=state["best_test_acc"],
        train_seconds=state["train_seconds"], wall_seconds=state["wall_seconds"],
        images_per_s=state["train_images"] / state["train_seconds"] if state["train_seconds"] else 0.0)
