"""The training recipe of a scale as a TrainConfig, and trained CNV checkpoints through the artifact store.

Every stage that needs "the smoke-scale 2w2a CNV" calls ``trained_checkpoint`` with the same
arguments, gets the same config and therefore the same cached artifact.
"""

import json
from dataclasses import asdict
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.scale import Scale
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.training.checkpoint import last_checkpoint
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.distributed import launch, resolve
from pynqrepro.training.trainer import RunOptions, TrainResult

RESULT = "result.json"


def recipe(scale: Scale, weight_bits: int, act_bits: int, layer_bits: str | None = None) -> TrainConfig:
    """The TrainConfig for CNV at these bit widths (``layer_bits``: per layer, the recipe of its
    widest) and this scale (its dataset, training recipe and step cap). A GPU scale's training is a
    resumable store build (a SLURM job requeued at its time limit resumes by itself), so it runs in
    CUDA's deterministic mode: the resumed run ends with the uninterrupted run's weights, which the
    store's key promises."""
    config = TrainConfig(weight_bits, act_bits, layer_bits=layer_bits)
    return TrainConfig(config.weight_bits, config.act_bits, dataset=scale.dataset, max_steps=scale.max_steps,
                       layer_bits=config.layer_bits, deterministic=scale.needs_gpu,
                       **scale.training.settings(config.weight_bits, config.act_bits))


def trained_checkpoint(store: ArtifactStore, scale: Scale, weight_bits: int, act_bits: int,
                       data_dir: Path | None = None, layer_bits: str | None = None) -> Artifact:
    """The artifact holding ``checkpoints/model_best.pth.tar``, ``log.csv`` and ``result.json``.

    ``load_model(artifact.path)`` gives the trained model; ``training_result(artifact)`` the figures.
    """
    return train_artifact(store, recipe(scale, weight_bits, act_bits, layer_bits), data_dir)


def cached_checkpoint(store: ArtifactStore, scale: Scale, weight_bits: int, act_bits: int) -> Artifact | None:
    """The trained checkpoint of ``trained_checkpoint`` if the store already holds it, else None
    (nothing is built)."""
    return store.find("train", recipe(scale, weight_bits, act_bits).to_dict())


def train_artifact(store: ArtifactStore, cfg: TrainConfig, data_dir: Path | None = None) -> Artifact:
    """The store artifact of training ``cfg``: built once, as a (GPU, multi-task) job under
    ``--executor slurm``; an interrupted build resumes from its last epoch checkpoint."""

    def build(out_dir: Path) -> None:
        opts = RunOptions(experiments=out_dir, data_dir=data_dir, run_dir=out_dir, progress=False,
                          resume=last_checkpoint(out_dir))
        result = launch(cfg, opts, resolve())  # DDP over a SLURM job's tasks (RANK/WORLD_SIZE), else one process
        if result is not None:
            atomic_write_json(out_dir / RESULT, {**asdict(result), "run_dir": None})

    job = JobSpec("train", gpu=cfg.wants_gpu, resumable=True, distributed=True)
    return store.get_or_build(stage="train", config=cfg.to_dict(), build=build, job=job)


def training_result(artifact: Artifact) -> TrainResult:
    """Accuracies and speed recorded when the artifact was trained (no retraining)."""
    data = json.loads((artifact.path / RESULT).read_text())
    return TrainResult(**{**data, "run_dir": artifact.path})


def untrained_checkpoint(store: ArtifactStore, weight_bits: int, act_bits: int, seed: int = 0) -> Artifact:
    """A CNV checkpoint at its seeded initialisation (no data, no training), for what depends only on
    the architecture and bit widths: FINN's estimates of a given folding (the weights change only
    FINN's weight bit-width minimisation), e.g. calibration against published syntheses."""
    import torch

    from pynqrepro.training.checkpoint import save_checkpoint

    config = TrainConfig(weight_bits, act_bits)

    def build(out_dir: Path) -> None:
        torch.manual_seed(seed)
        save_checkpoint(out_dir / "checkpoint.tar", {"state_dict": config.build_model().state_dict(),
                                                     "config": config.to_dict()})

    return store.get_or_build("untrained_checkpoint", {"weight_bits": weight_bits, "act_bits": act_bits,
                                                       "seed": seed}, build)
