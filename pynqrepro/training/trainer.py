"""The study's QAT loop: Adam, cross-entropy, step lr, weight clipping, per-epoch checkpoints.

Stages: ``restore`` (model, data, optimiser, resumed state, DDP) -> per epoch ``run_epoch`` (one
pass and the lr step) -> ``select_and_save`` (evaluate, select by the selection score, log, save).
Everything random is derived from the config's seed and the epoch number (model init, sample
order, augmentation), so a run resumed from ``checkpoint.tar`` ends with the same weights as an
uninterrupted one. Under DDP ``batch_size`` is the global batch, split evenly
over the ranks; rank 0 evaluates and writes checkpoints.

Speed: the model and its input batches take the config's memory format (channels_last: the fast
convolution kernels on CPU and GPU), Adam runs fused and the CNV's quantizers take fewer passes
over each tensor (``models.cnv.IntQuant`` and ``Clamp``, bit-identical to Brevitas's). On CUDA the
data sets stay resident on the GPU and each batch is gathered and augmented there
(``ResidentBatches``: the same batches as the CPU path's DataLoader, from the same draws), cuDNN
autotunes its kernels, and ``RunOptions.compile`` adds torch.compile. A config's ``deterministic``
mode (``training.determinism``) trades the autotuned and fused kernels for resumes that end with
the uninterrupted run's weights on a GPU as well.
"""

import copy
import csv
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
from pynqrepro.core.logs import user_stream
from pynqrepro.data.splits import ImageSet, Splits, load_splits
from pynqrepro.training.checkpoint import BEST, LAST, load_pretrained, read_resumable, save_checkpoint
from pynqrepro.training.config import EARLIER_KERNELS, TrainConfig
from pynqrepro.training.determinism import adam_kernel, apply_kernel_settings

LOG = "log.csv"
PROGRESS_EVERY = 10  # steps between progress-bar updates of loss and accuracy
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "test_acc", "epoch_s", "images_per_s")


@dataclass
class RunOptions:
    """How to run (not what): does not change the result, so it is not part of the artifact key."""

    experiments: Path
    data_dir: Path | None = None
    workers: int = 0  # DataLoader processes (CPU path)
    resume: Path | None = None
    run_dir: Path | None = None  # default: <experiments>/<config.name>
    device: str | None = None  # default: this rank's GPU if CUDA is available, else CPU
    progress: bool = True
    rank: int = 0
    world_size: int = 1
    # Batches gathered and augmented on the training device from the data set held there, not by a
    # DataLoader (the same batches either way). None: on CUDA.
    resident_data: bool | None = None
    # torch.compile the model (forward and backward compiled before the first epoch; where that
    # fails, a warning and eager training). Like the device, it changes float rounding only, so it
    # is not part of the artifact key.
    compile: bool = False
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


class ResidentBatches:
    """The GPU path's loader: each batch gathered and augmented where the data set lives, in the
    order a DataLoader over the same sampler gives (its batches, without worker processes or host
    copies)."""

    def __init__(self, dataset: ImageSet, sampler: DistributedSampler, batch_size: int):
        self.dataset, self.batch_size = dataset, batch_size
        self.order = torch.tensor(list(sampler), device=dataset.images.device)

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __iter__(self):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.dataset.batch(self.order[start:start + self.batch_size])


def make_loader(dataset: ImageSet, batch_size: int, seed: int, epoch: int, rank: int = 0,
                world_size: int = 1, workers: int = 0, resident: bool = False) -> DataLoader | ResidentBatches:
    """This rank's shuffled batches for ``epoch``; the same batches for a given (seed, epoch),
    whether a DataLoader or (``resident``) the data set's own device builds them."""
    dataset.set_epoch(epoch)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    if resident:
        return ResidentBatches(dataset, sampler, batch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=torch.cuda.is_available())


def evaluate(model: nn.Module, dataset: ImageSet, device, batch_size: int = 500,
             memory_format: torch.memory_format = torch.contiguous_format) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            images = dataset.images[start:start + batch_size].to(device).float().div_(255.0)
            labels = dataset.labels[start:start + batch_size].to(device)
            correct += (model(images.contiguous(memory_format=memory_format)).argmax(1) == labels).sum().item()
    return 100.0 * correct / len(dataset)


def build_optimizer(cfg: TrainConfig, net: nn.Module) -> torch.optim.Adam:
    """The study's Adam, fused into one kernel where the config says so (not in deterministic mode)."""
    return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            **adam_kernel(cfg.fused_adam, cfg.deterministic))


def train_epoch(model, loader, optimizer, criterion, clip, device, bar=None,
                memory_format: torch.memory_format = torch.contiguous_format,
                max_batches: int | None = None) -> tuple[float, float, int]:
    """One pass over ``loader`` (its first ``max_batches`` batches, when given): (mean loss,
    accuracy %, images seen on this rank).

    Running sums stay on the device; the host reads them only for the progress bar every few steps.
    """
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for step, (images, labels) in enumerate(loader, 1):
        if max_batches is not None and step > max_batches:
            break
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        labels = labels.to(device, non_blocking=True)
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
    """A checkpoint continues ``cfg`` if only the epoch count differs (resuming may extend a run);
    a checkpoint from before the kernel fields was trained with the earlier kernels."""
    if saved is None:
        return False
    return {**EARLIER_KERNELS, **saved, "epochs": cfg.epochs} == cfg.to_dict()


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


@dataclass
class Progress:
    """Where a run stands after its last finished epoch; saved in every checkpoint, so a resumed run
    selects, logs and times exactly as an uninterrupted one."""

    epoch: int = 0
    # The score the best epoch is selected by: validation accuracy, or test accuracy when the
    # config holds out no validation split (the study's selection).
    best_score: float = -1.0
    best_epoch: int = 0
    test_acc_at_best: float = 0.0
    best_test_acc: float = 0.0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    train_images: int = 0
    steps: int = 0  # optimizer steps so far (a dry run stops at the config's max_steps)

    @classmethod
    def saved(cls, progress: dict) -> "Progress":
        """The progress a checkpoint holds (before this name, the score was saved as best_val_acc)."""
        progress = dict(progress)
        if "best_val_acc" in progress:
            progress["best_score"] = progress.pop("best_val_acc")
        return cls(**progress)


@dataclass
class Run:
    """One rank's training run: the model (DDP-wrapped when several processes train), the CNV
    inside it, optimiser, lr schedule, data, progress and (rank 0) the log's rows."""

    cfg: TrainConfig
    opts: RunOptions
    device: torch.device
    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: StepLR
    splits: Splits  # on the training device when resident
    resident: bool  # batches built by ResidentBatches (else a DataLoader)
    progress: Progress
    log_rows: list
    run_dir: Path

    @property
    def is_main(self) -> bool:
        return self.opts.rank == 0


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    lr: float
    loss: float
    acc: float
    images: int  # on this rank
    seconds: float  # the training pass
    started: float  # perf_counter() at its start


def compile_model(model: nn.Module, net: nn.Module, batch_shape: tuple, device, memory_format) -> nn.Module:
    """``torch.compile(model)`` with its forward and backward compiled now, on a batch of zeros (the
    state that touches is put back), or ``model`` itself with a warning where compiling fails."""
    state = copy.deepcopy(net.state_dict())
    compiled = torch.compile(model)
    try:
        model.train()
        compiled(torch.zeros(batch_shape, device=device).contiguous(memory_format=memory_format)).sum().backward()
    except Exception as error:  # dynamo and its backends raise many types; any means: train eagerly
        first_line = (str(error).strip().splitlines() or [""])[0]
        warnings.warn(f"torch.compile failed, training eagerly: {type(error).__name__}: {first_line}", stacklevel=2)
        compiled = model
    net.load_state_dict(state)
    net.zero_grad(set_to_none=True)
    return compiled


def restore(cfg: TrainConfig, opts: RunOptions) -> Run:
    """The run as it stands: a seeded model (pretrained weights and ``init_model`` applied), the
    data, Adam and the step lr schedule, then ``opts.resume``'s weights, optimiser state and
    progress; wrapped for DDP when several processes train."""
    if cfg.batch_size % opts.world_size:
        raise UserError(f"batch size {cfg.batch_size} does not split over {opts.world_size} processes: "
                        f"use a multiple of the world size")
    device = _device(opts)
    apply_kernel_settings(cfg.deterministic, device)
    run_dir = Path(opts.run_dir or Path(opts.experiments) / cfg.name)
    torch.manual_seed(cfg.seed)
    net = cfg.build_model()
    if cfg.pretrained:
        load_pretrained(net, cfg.pretrained)
    net.to(device, memory_format=cfg.torch_memory_format)  # before init_model: its hooks meet the weights there
    if opts.init_model is not None:
        opts.init_model(net)
    resident = device.type == "cuda" if opts.resident_data is None else opts.resident_data
    splits = load_splits(cfg.dataset, opts.data_dir, cfg.val_fraction, cfg.augment, cfg.seed)
    if cfg.batch_size > len(splits.train):  # drop_last: not one step would be taken
        raise UserError(f"batch size {cfg.batch_size} is larger than the {len(splits.train)} training images of "
                        f"{cfg.dataset}: use --batch-size {len(splits.train)} or less")
    if resident:
        splits = splits.to(device)
    optimizer = build_optimizer(cfg, net)
    scheduler = StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    progress = Progress()
    if opts.resume:
        package = read_resumable(opts.resume)
        if not same_run(package.get("config"), cfg):
            raise UserError(f"{opts.resume} was trained with a different configuration: "
                            f"resume with the same options or start a new --experiments directory")
        net.load_state_dict(package["state_dict"])
        optimizer.load_state_dict(package["optim_dict"])
        scheduler.load_state_dict(package["scheduler"])
        progress = Progress.saved(package["progress"])
    model = net
    if opts.world_size > 1:
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if opts.compile:
        batch_shape = (cfg.batch_size // opts.world_size, *splits.train.images.shape[1:])
        model = compile_model(model, net, batch_shape, device, cfg.torch_memory_format)
    log_rows = _read_log(run_dir / LOG, progress.epoch) if opts.rank == 0 else []
    return Run(cfg, opts, device, model, net, optimizer, scheduler, splits, resident, progress, log_rows, run_dir)


def run_epoch(run: Run, epoch: int) -> EpochStats:
    """One pass over this rank's share of the training set, then the lr schedule's step."""
    cfg, opts = run.cfg, run.opts
    loader = make_loader(run.splits.train, cfg.batch_size // opts.world_size, cfg.seed, epoch, opts.rank,
                         opts.world_size, opts.workers, run.resident)
    batches = len(loader) if cfg.max_steps is None else min(len(loader), cfg.max_steps - run.progress.steps)
    lr = run.optimizer.param_groups[0]["lr"]
    with tqdm(total=batches, desc=f"{cfg.name} epoch {epoch}/{cfg.epochs}", leave=False, file=user_stream(),
              disable=not (opts.progress and run.is_main)) as bar:
        started = time.perf_counter()
        loss, acc, seen = train_epoch(run.model, loader, run.optimizer, nn.CrossEntropyLoss(), run.net.clip_weights,
                                      run.device, bar, cfg.torch_memory_format, max_batches=batches)
        seconds = time.perf_counter() - started
    run.scheduler.step()
    run.progress.steps += batches
    run.progress.epoch = epoch
    run.progress.train_seconds += seconds
    run.progress.train_images += seen * opts.world_size
    return EpochStats(epoch, lr, loss, acc, seen, seconds, started)


def select_and_save(run: Run, stats: EpochStats) -> None:
    """Rank 0 after an epoch: evaluate, keep the epoch if its selection score is the best so far,
    append the log and write ``checkpoint.tar`` (and ``model_best.pth.tar`` for a best epoch)."""
    progress, epoch = run.progress, stats.epoch
    fmt = run.cfg.torch_memory_format
    val_acc = evaluate(run.net, run.splits.val, run.device, memory_format=fmt) if run.splits.val is not None else None
    test_acc = evaluate(run.net, run.splits.test, run.device, memory_format=fmt)
    score = val_acc if val_acc is not None else test_acc
    is_best = score >= progress.best_score
    if is_best:
        progress.best_score, progress.best_epoch, progress.test_acc_at_best = score, epoch, test_acc
    progress.best_test_acc = max(progress.best_test_acc, test_acc)
    progress.wall_seconds += time.perf_counter() - stats.started
    run.log_rows.append({
        "epoch": epoch, "lr": stats.lr, "train_loss": round(stats.loss, 5), "train_acc": round(stats.acc, 3),
        "val_acc": "" if val_acc is None else round(val_acc, 3), "test_acc": round(test_acc, 3),
        "epoch_s": round(stats.seconds, 3),
        "images_per_s": round(stats.images * run.opts.world_size / stats.seconds, 1)})
    _write_log(run.run_dir / LOG, run.log_rows)
    # "best_val_acc" is the study's (Brevitas trainer's) checkpoint key for the selection score.
    package = {"state_dict": run.net.state_dict(), "optim_dict": run.optimizer.state_dict(),
               "scheduler": run.scheduler.state_dict(), "epoch": epoch, "best_val_acc": progress.best_score,
               "progress": asdict(progress), "config": run.cfg.to_dict()}
    checkpoints = run.run_dir / "checkpoints"
    if is_best:
        save_checkpoint(checkpoints / BEST, package)
    save_checkpoint(checkpoints / LAST, package)
    tqdm.write(f"{run.cfg.name} epoch {epoch}: loss {stats.loss:.3f} train {stats.acc:.2f}% "
               f"val {'-' if val_acc is None else f'{val_acc:.2f}%'} test {test_acc:.2f}%")


def train(cfg: TrainConfig, opts: RunOptions) -> TrainResult:
    """Train (or continue, with ``opts.resume``) and return the run's accuracies and speed."""
    run = restore(cfg, opts)
    for epoch in range(run.progress.epoch + 1, cfg.epochs + 1):
        if cfg.max_steps is not None and run.progress.steps >= cfg.max_steps:
            break  # a dry run: the last epoch it ran is the run's last
        stats = run_epoch(run, epoch)
        if run.is_main:
            select_and_save(run, stats)
    if opts.world_size > 1:
        dist.barrier()
    progress = run.progress
    return TrainResult(
        run_dir=run.run_dir, epochs=progress.epoch, best_epoch=progress.best_epoch,
        val_acc=progress.best_score if run.splits.val is not None else None,
        test_acc=progress.test_acc_at_best, best_test_acc=progress.best_test_acc,
        train_seconds=progress.train_seconds, wall_seconds=progress.wall_seconds,
        images_per_s=progress.train_images / progress.train_seconds if progress.train_seconds else 0.0)
