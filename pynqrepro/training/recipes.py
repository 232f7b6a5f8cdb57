"""Training recipe per scale, and trained CNV checkpoints through the artifact store.

Every stage that needs "the smoke-scale 2w2a CNV" calls ``trained_checkpoint`` with the same
arguments, gets the same config and therefore the same cached artifact.
"""

import json
from dataclasses import asdict
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.errors import UserError
from pynqrepro.core.scale import Scale, get_scale
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.trainer import RunOptions, TrainResult, train

RESULT = "result.json"

# smoke: digits on 1-2 CPU cores. Four epochs with the lr halved every two clear 90% (1w1a) and
# 95% (2w2a and wider) test accuracy; no augmentation (a flipped digit is another digit).
_SMOKE = dict(dataset="digits", epochs=4, lr=0.02, batch_size=64, lr_step=2, augment="none")
# paper: the study's recipe on CIFAR-10; epochs as Brevitas's published CNVs (1000 for 1w1a, 500 else).
_PAPER = dict(dataset="cifar10", lr=0.02, batch_size=128, lr_step=40, augment="crop_flip")


def recipe(scale: Scale | str, weight_bits: int, act_bits: int) -> TrainConfig:
    """The TrainConfig for CNV at these bit widths and this scale."""
    name = scale if isinstance(scale, str) else scale.name
    if name == "smoke":
        return TrainConfig(weight_bits, act_bits, **_SMOKE)
    if name == "paper":
        epochs = 1000 if (weight_bits, act_bits) == (1, 1) else 500
        return TrainConfig(weight_bits, act_bits, epochs=epochs, **_PAPER)
    get_scale(name)  # raises the UserError listing the scales
    raise UserError(f"no training recipe for scale {name!r}")


def trained_checkpoint(store: ArtifactStore, scale: Scale | str, weight_bits: int, act_bits: int,
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
