"""The training recipe of a scale as a TrainConfig, and trained CNV checkpoints through the artifact store.

Every stage that needs "the smoke-scale 2w2a CNV" calls ``trained_checkpoint`` with the same
arguments, gets the same config and therefore the same cached artifact.
"""

import json
from dataclasses import asdict
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.scale import Scale
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import RunOptions, TrainResult, train

RESULT = "result.json"


def recipe(scale: Scale, weight_bits: int, act_bits: int) -> TrainConfig:
    """The TrainConfig for CNV at these bit widths and this scale (its dataset and training recipe)."""
    return TrainConfig(weight_bits, act_bits, dataset=scale.dataset, **scale.training.settings(weight_bits, act_bits))


def trained_checkpoint(store: ArtifactStore, scale: Scale, weight_bits: int, act_bits: int,
                       data_dir: Path | None = None) -> Artifact:
    """The artifact holding ``checkpoints/model_best.pth.tar``, ``log.csv`` and ``result.json``.

    ``load_model(artifact.path)`` gives the trained model; ``training_result(artifact)`` the figures.
    """
    cfg = recipe(scale, weight_bits, act_bits)

    def build(out_dir: Path) -> None:
        result = train(cfg, RunOptions(experiments=out_dir, data_dir=data_dir, run_dir=out_dir, progress=False))
        atomic_write_json(out_dir / RESULT, {**asdict(result), "run_dir": None})

    return store.get_or_build(stage="train", config=cfg.to_dict(), build=build)


def training_result(artifact: Artifact) -> TrainResult:
    """Accuracies and speed recorded when the artifact was trained (no retraining)."""
    data = json.loads((artifact.path / RESULT).read_text())
    return TrainResult(**{**data, "run_dir": artifact.path})
