"""Quantization-aware training of CNV at 1/2/4/8 bits (reports/training.md).

Method: train CNV with the scale's recipe (smoke: sklearn digits on CPU; paper: the study's recipe
on CIFAR-10); select the best epoch on a validation split held out of the training set and report
its test accuracy, beside the study's selection (best test accuracy over all epochs) and the
published CIFAR-10 accuracies. The checkpoints stay in the store for pruning and the FINN flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynqrepro.core.results import Recorder
from pynqrepro.references import ACCURACY, Scope, select
from pynqrepro.study import Bits, bit_widths

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report training --help` is quick
    from pynqrepro.pipeline import Setup
    from pynqrepro.training.config import TrainConfig
    from pynqrepro.training.trainer import TrainResult

EXPERIMENT = "experiments/test_training.py::test_training"
TABLE = "training"
TITLE = "CNV quantization-aware training"
NOTES = [
    "val acc: best epoch selected on a validation split held out of the training set; test acc is "
    "that epoch's test accuracy. best test acc: the study's selection (best epoch on the test set).",
    "Reference rows are CIFAR-10 figures; smoke-scale rows are sklearn digits and not comparable.",
    "wall s: training and evaluation of all epochs when the checkpoint was built (cached afterwards).",
]
CASES = bit_widths((1, 1), (1, 2), (2, 2), (4, 4), (8, 8))


@dataclass(frozen=True)
class Training:
    case: Bits
    config: TrainConfig
    result: TrainResult


def measure(setup: Setup, case: Bits) -> Training:
    """Train (or find in the store) CNV at the case's bit widths with the scale's recipe."""
    from pynqrepro.training.recipes import recipe, trained_checkpoint, training_result

    artifact = trained_checkpoint(setup.store, setup.scale, case.weight_bits, case.act_bits, setup.data_dir)
    return Training(case, recipe(setup.scale, case.weight_bits, case.act_bits), training_result(artifact))


def tabulate(results: Recorder, setup: Setup, training: Training) -> None:
    case, cfg, result = training.case, training.config, training.result
    bits = f"{case.weight_bits}/{case.act_bits}"
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    table.add({
        "model": "CNV", "W/A": bits, "dataset": cfg.dataset, "epochs": result.epochs,
        "best epoch": result.best_epoch,
        "val acc %": None if result.val_acc is None else round(result.val_acc, 2),
        "test acc %": round(result.test_acc, 2), "best test acc %": round(result.best_test_acc, 2),
        "wall s": round(result.wall_seconds, 1), "images/s": round(result.images_per_s, 1),
        "source": f"pynqrepro ({setup.scale.name})",
    }, config=cfg.to_dict(), seed=cfg.seed)
    for ref in select(ACCURACY, scope=Scope.SIMULATED_ACCURACY, weight_bits=case.weight_bits, act_bits=case.act_bits):
        table.add_reference(ref, {"model": ref.model, "W/A": bits, "dataset": ref.dataset, "test acc %": ref.top1})
