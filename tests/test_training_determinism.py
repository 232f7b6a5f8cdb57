"""CUDA's deterministic mode (issue 18 item 6), as far as a machine without a GPU can see it: which
settings a training applies, which Adam it builds, which runs take the mode. That the resumed run's
weights then equal the uninterrupted run's on a GPU is benchmarks/gpu_check.sh's determinism step."""

import argparse
import os

import pytest
import torch

from pynqrepro.core.scale import get_scale
from pynqrepro.training.cli import config_from_args, register
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.determinism import CUBLAS_ENV, apply_kernel_settings
from pynqrepro.training.recipes import recipe
from pynqrepro.training.trainer import build_optimizer

SMALL = {"dataset": "digits", "conv_channels": (8,) * 6, "fc_features": (8, 8)}


@pytest.fixture
def global_kernel_state(monkeypatch):
    """The process-wide switches a training sets, put back afterwards."""
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def test_deterministic_mode_on_cuda_sets_every_switch(global_kernel_state):
    torch.backends.cudnn.benchmark = True
    apply_kernel_settings(True, torch.device("cuda", 0))  # setting the switches needs no GPU
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ[CUBLAS_ENV] == ":4096:8"


def test_a_valid_cublas_setting_is_kept_an_invalid_one_replaced(global_kernel_state, monkeypatch):
    monkeypatch.setenv(CUBLAS_ENV, ":16:8")
    apply_kernel_settings(True, torch.device("cuda"))
    assert os.environ[CUBLAS_ENV] == ":16:8"
    monkeypatch.setenv(CUBLAS_ENV, ":0:0")
    apply_kernel_settings(True, torch.device("cuda"))
    assert os.environ[CUBLAS_ENV] == ":4096:8"


def test_default_mode_autotunes_on_cuda_and_the_cpu_is_left_alone(global_kernel_state):
    torch.backends.cudnn.benchmark = False
    apply_kernel_settings(False, torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True and not torch.are_deterministic_algorithms_enabled()
    torch.backends.cudnn.benchmark = False
    assert apply_kernel_settings(True, torch.device("cpu")) == {}
    assert torch.backends.cudnn.benchmark is False and not torch.are_deterministic_algorithms_enabled()
    assert CUBLAS_ENV not in os.environ


def test_deterministic_mode_builds_the_single_tensor_adam():
    net = TrainConfig(2, 2, **SMALL).build_model()
    fast = build_optimizer(TrainConfig(2, 2, **SMALL), net).defaults
    exact = build_optimizer(TrainConfig(2, 2, deterministic=True, **SMALL), net).defaults
    assert fast["fused"] is True
    assert not exact["fused"] and exact["foreach"] is False


def test_gpu_scale_trainings_are_deterministic_and_smoke_keys_unchanged():
    """The store's resumable GPU-scale trainings take the mode; the CPU scale's configs (and so their
    artifact keys) are as before."""
    assert recipe(get_scale("paper"), 2, 2).deterministic is True
    smoke = recipe(get_scale("smoke"), 2, 2)
    assert smoke.deterministic is False and "deterministic" not in smoke.to_dict()
    assert recipe(get_scale("paper"), 2, 2).to_dict()["deterministic"] is True
    assert TrainConfig.from_dict(smoke.to_dict()) == smoke


def test_train_deterministic_option():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "--bit-width", "2", "--deterministic"])
    assert config_from_args(args).deterministic is True
    assert config_from_args(parser.parse_args(["train", "--bit-width", "2"])).deterministic is False
