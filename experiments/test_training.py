"""Experiment: quantization-aware training of CNV at 1/2/4/8 bits (reports/training.md).

Smoke scale trains on sklearn digits (32x32) on CPU; paper scale on CIFAR-10 with the study's
recipe (GPU). The trained checkpoints stay in the artifact store for pruning and the FINN flow.
The method is ``pynqrepro.study.training``; ``pynqrepro report training`` records the same rows.
"""

import pytest

from pynqrepro.study import training


@pytest.mark.study(training)
def test_training(setup, results, case):
    run = training.measure(setup, case)
    training.tabulate(results, setup, run)

    floor = setup.scale.min_test_acc[(case.weight_bits, case.act_bits)]
    assert run.result.test_acc >= floor, (
        f"{run.config.name} reached {run.result.test_acc:.2f}% test accuracy on {run.config.dataset} "
        f"(the {setup.scale.name} scale asks for {floor}%)")
