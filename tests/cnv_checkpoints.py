"""Untrained CNV checkpoints for unit tests of the stages after training."""

import torch

from pynqrepro.training.checkpoint import save_checkpoint
from pynqrepro.training.config import TrainConfig


def random_cnv_checkpoint(store, weight_bits: int, act_bits: int, seed: int = 0):
    """A checkpoint artifact of an untrained CNV whose BatchNorm statistics are not the identity."""

    def build(out_dir):
        config = TrainConfig(weight_bits, act_bits)
        torch.manual_seed(seed)
        model = config.build_model()
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.3, 0.3)
        save_checkpoint(out_dir / "checkpoint.tar", {"state_dict": model.state_dict(), "config": config.to_dict()})

    return store.get_or_build("test_random_cnv", {"w": weight_bits, "a": act_bits, "seed": seed}, build)
