"""The study's pruning sweep: prune, fine-tune with the pruning held, keep the best, repeat.

Step 1 prunes ``increment`` of the conv weights; each next step prunes the current global conv
sparsity + ``increment`` (the study's schedule) until the sparsity exceeds ``max_sparsity``.
Every step is one artifact (``prune`` stage) keyed by its settings and the previous step's
artifact, holding the fine-tuned checkpoints, the masks (SIMD-block method) and ``step.json``;
a killed sweep restarts at the first missing step. ``max_sparsity`` only decides where the sweep
stops, so sweeps with different limits share their steps.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.scale import Scale
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.data.splits import load_splits
from pynqrepro.pruning.channels import channel_granules, channel_sparsity, prune_channels
from pynqrepro.pruning.config import SweepConfig, study_preset
from pynqrepro.pruning.masks import (MASKS_FILE, MaskHold, apply_masks, conv_layers, conv_sparsity, load_masks,
                                     save_masks)
from pynqrepro.pruning.simd_blocks import check_simd_list, kept_columns, mvau_columns, simd_block_masks
from pynqrepro.training.checkpoint import BEST, find_checkpoint, last_checkpoint, load_model
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import RunOptions, evaluate, train

STEP_FILE = "step.json"


@dataclass(frozen=True)
class StepResult:
    """One sweep step as ``step.json`` records it."""

    step: int
    method: str
    amount: float  # what the step asked for (study: current sparsity + increment)
    sparsity: float  # global conv sparsity reached
    acc_pruned: float  # test accuracy straight after pruning, before fine-tuning
    test_acc: float  # test accuracy of the fine-tuned checkpoint kept (best on validation)
    best_epoch: int
    conv_channels: tuple[int, ...]
    kept_columns: tuple[int, ...]  # MW per conv MVAU after pruning (what the hardware sees)
    train_seconds: float
    checkpoint: str  # relative to the step artifact

    @classmethod
    def read(cls, artifact: Artifact) -> "StepResult":
        data = json.loads(artifact.file(STEP_FILE).read_text())
        data["conv_channels"] = tuple(data["conv_channels"])
        data["kept_columns"] = tuple(data["kept_columns"])
        return cls(**data)


def check_checkpoint(config: TrainConfig, model, sweep: SweepConfig, bit_width: int | None) -> None:
    """The checkpoint must be the bit width asked for and fit the SIMD list or channel steps."""
    if bit_width is not None and config.weight_bits != bit_width:
        raise UserError(f"the checkpoint is CNV {config.weight_bits}W{config.act_bits}A, not {bit_width}-bit: "
                        f"pass --bit-width {config.weight_bits} or a {bit_width}-bit checkpoint")
    if sweep.method == "simd_blocks":
        check_simd_list(model, sweep.simd)
    else:
        channel_granules(config.conv_channels, sweep.channel_steps)


def _masks_of(artifact: Artifact) -> dict | None:
    file = artifact.file(MASKS_FILE)
    return load_masks(file)[0] if file.is_file() else None


def build_step(out: Path, previous: Artifact, sweep: SweepConfig, step: int, amount: float,
               dense_channels: tuple[int, ...], run: RunOptions) -> None:
    """Prune the previous step's best checkpoint by ``amount``, fine-tune it, write the step."""
    model, config = load_model(find_checkpoint(previous.path))
    splits_opts = dict(dataset=config.dataset, data_dir=run.data_dir, val_fraction=config.val_fraction,
                       augment="none", seed=config.seed)
    masks = None
    if sweep.method == "simd_blocks":
        previous_masks = _masks_of(previous)
        if previous_masks is not None:
            apply_masks(model, previous_masks)
        masks = simd_block_masks(model, sweep.simd, amount, sweep.norm_order)
        apply_masks(model, masks)
        sparsity = conv_sparsity(model, masks)
        columns = tuple(kept_columns(masks).values())
    else:
        granules = channel_granules(dense_channels, sweep.channel_steps)
        model = prune_channels(model, dense_channels, granules, amount)
        sparsity = channel_sparsity(model.conv_channels, dense_channels)
        columns = tuple(mvau_columns(layer) for layer in conv_layers(model).values())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    device = torch.device(run.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    acc_pruned = evaluate(model.to(device), load_splits(**splits_opts).test, device)

    def init_model(net) -> None:
        net.load_state_dict(state)
        if masks is not None:
            MaskHold(net, masks)  # held for the model's lifetime: the trainer owns it

    tune = dataclasses.replace(config, epochs=sweep.epochs, lr=sweep.lr, pretrained=None,
                               conv_channels=model.conv_channels)
    result = train(tune, dataclasses.replace(run, experiments=out, run_dir=out, init_model=init_model,
                                             resume=last_checkpoint(out)))  # an interrupted step resumes
    if masks is not None:
        save_masks(out / MASKS_FILE, masks, {"method": sweep.method, "amount": amount, "simd": sweep.simd,
                                              "norm_order": sweep.norm_order, "step": step})
    record = StepResult(step=step, method=sweep.method, amount=amount, sparsity=sparsity,
                        acc_pruned=acc_pruned, test_acc=result.test_acc, best_epoch=result.best_epoch,
                        conv_channels=tuple(model.conv_channels), kept_columns=columns,
                        train_seconds=result.train_seconds, checkpoint=f"checkpoints/{BEST}")
    atomic_write_json(out / STEP_FILE, dataclasses.asdict(record))


def run_sweep(store: ArtifactStore, dense: Artifact, sweep: SweepConfig, run: RunOptions,
              bit_width: int | None = None) -> list[tuple[Artifact, StepResult]]:
    """All steps of the sweep from the ``dense`` checkpoint artifact, built or reused."""
    model, config = load_model(find_checkpoint(dense.path))
    check_checkpoint(config, model, sweep, bit_width)
    dense_channels = tuple(config.conv_channels)
    steps, previous, sparsity = [], dense, 0.0
    while True:
        step = len(steps) + 1
        amount = round(sweep.increment if step == 1 else sparsity + sweep.increment, 6)
        if amount >= 1.0:
            break
        key = {**sweep.step_key(), "step": step, "amount": amount, "dense_channels": dense_channels}
        artifact = store.get_or_build(
            "prune", key, lambda out, prev=previous, s=step, a=amount:
            build_step(out, prev, sweep, s, a, dense_channels, run),
            inputs={"checkpoint": previous}, job=JobSpec("train", gpu=config.wants_gpu, resumable=True))
        result = StepResult.read(artifact)
        steps.append((artifact, result))
        if result.sparsity <= sparsity or result.sparsity > sweep.max_sparsity:
            break  # done, or the rounding rule cannot prune further
        sparsity = result.sparsity
        previous = artifact
    return steps


def sweep_recipe(scale: Scale, bit_width: int, method: str = "simd_blocks") -> SweepConfig:
    """The sweep experiments run at ``scale`` (its fine-tuning epochs, increment and sparsity limit): the
    study's preset for ``bit_width`` (its SIMD list for ``simd_blocks``, its learning rate for both
    methods)."""
    preset = study_preset(bit_width)
    simd = preset.simd if method == "simd_blocks" else ()
    return SweepConfig(method=method, simd=simd, lr=preset.lr, epochs=scale.prune_epochs,
                       max_sparsity=scale.prune_max_sparsity, increment=scale.prune_increment)
