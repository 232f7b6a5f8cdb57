"""Specialised HW-layer models of untrained networks for tests of the folding stages, built once per
store by the FINN flow (``build_hw_model``): CNVs at any bit width (and channel-pruned), and the
Brevitas ``bnn_pynq`` MLPs (TFC/SFC/LFC), which FINN's BNN-PYNQ flow builds like the CNV
(finn/benchmarking/dut/bnn-pynq.yml: the same steps for cnv and tfc)."""

import torch
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import get_board

PYNQ_Z1 = get_board("pynq-z1")
MLP_INPUT = (1, 1, 28, 28)  # MNIST, as the bnn_pynq FC models take it


def _built(store, stage: str, config: dict, network, board=PYNQ_Z1) -> ModelWrapper:
    from pynqrepro.finnflow.hw_build import build_hw_model
    from pynqrepro.finnflow.export import export_qonnx

    def build(out_dir):
        torch.manual_seed(0)
        model, shape = network()
        build_hw_model(export_qonnx(model.eval(), shape), board).hw_model.save(str(out_dir / "hw_model.onnx"))

    if board != PYNQ_Z1:  # the Pynq-Z1's keys stay as they were
        config = {**config, "part": board.part}
    return ModelWrapper(str(store.get_or_build(stage, config, build).file("hw_model.onnx")))


def cnv(store, bits: int, conv_channels: tuple | None = None) -> ModelWrapper:
    """The CNV at ``bits`` (weights and activations), optionally with pruned conv channels."""
    from pynqrepro.models.cnv import CNV
    from pynqrepro.models.spec import CONV_CHANNELS

    channels = tuple(conv_channels or CONV_CHANNELS)
    return _built(store, "test_hw_cnv", {"bits": bits, "conv_channels": channels, "seed": 0},
                  lambda: (CNV(bits, bits, conv_channels=channels), (1, 3, 32, 32)))


def mlp(store, name: str, board=PYNQ_Z1) -> ModelWrapper:
    """A Brevitas bnn_pynq MLP by its config name, e.g. ``tfc_2w2a``, ``sfc_1w1a``, ``lfc_1w2a``,
    specialised for ``board``'s part."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    return _built(store, "test_hw_mlp", {"name": name, "seed": 0},
                  lambda: (model_with_cfg(name, pretrained=False)[0], MLP_INPUT), board)
