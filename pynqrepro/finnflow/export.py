"""Brevitas -> QONNX export of a (trained) CNV."""

import tempfile
from pathlib import Path

import torch
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.finnflow.finn_setup import progress_to_stderr
from pynqrepro.models.spec import IN_CHANNELS, INPUT_SIZE

INPUT_SHAPE = (1, IN_CHANNELS, INPUT_SIZE, INPUT_SIZE)  # CNV takes CIFAR-sized RGB images in [0, 1]


def load_cnv(checkpoint: Path):
    """The CNV of a training checkpoint (file or run/artifact directory), in eval mode; another
    architecture's checkpoint is a UserError from ``load_model``."""
    from pynqrepro.training.checkpoint import load_model

    model, _ = load_model(Path(checkpoint))
    return model


def export_qonnx(model: torch.nn.Module, input_shape=INPUT_SHAPE) -> ModelWrapper:
    """The QONNX graph of a Brevitas model, exported in eval mode (BatchNorm folded as running stats)."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx

    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="pynqrepro-export-") as tmp:
            path = Path(tmp) / "model.onnx"
            with torch.no_grad(), progress_to_stderr():
                brevitas_export_qonnx(model, input_t=torch.zeros(input_shape), export_path=str(path))
            return ModelWrapper(str(path))
    finally:
        model.train(was_training)
