"""Pruning masks that hold through fine-tuning, checkpoints, resume and export.

A mask is a bool tensor shaped like a conv layer's weight, keyed by the layer's module name
(``conv_features.1``). The model's state_dict keeps Brevitas's plain layout: masked weights are
stored as exact zeros and the masks travel beside the checkpoint in ``masks.pt``. Trainer, loader
and QONNX export therefore need no knowledge of pruning, and a zero weight quantizes to an exact
integer zero at every bit width >= 2.
"""

import io
from pathlib import Path

import torch
from brevitas.nn import QuantConv2d

from pynqrepro.core.atomic import atomic_write_bytes
from pynqrepro.core.errors import UserError

MASKS_FILE = "masks.pt"


def conv_layers(model) -> dict[str, QuantConv2d]:
    """The CNV's conv layers in network order, keyed by module name (the FC layers stay dense)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantConv2d)}


class MaskHold:
    """Keeps masked conv weights at exactly zero while attached.

    Three hooks per layer, each closing a gap the others leave: gradients of masked entries are
    zeroed (Adam's moments stay zero there, so the step leaves them at zero); weights are re-zeroed
    in place before every forward (covers optimiser state carried over from before pruning); and
    before every ``state_dict`` (a checkpoint taken right after an optimiser step is still exact).
    Use as a context manager around fine-tuning, or call ``remove()``.
    """

    def __init__(self, model, masks: dict[str, torch.Tensor]):
        layers = conv_layers(model)
        check_masks(layers, masks)
        self._handles = []
        for name, mask in masks.items():
            layer = layers[name]
            mask = mask.to(device=layer.weight.device, dtype=torch.bool)
            zero = _zeroer(mask)
            zero(layer)
            self._handles += [
                layer.weight.register_hook(lambda grad, mask=mask: grad * mask),
                layer.register_forward_pre_hook(lambda module, args, zero=zero: zero(module)),
                layer.register_state_dict_pre_hook(lambda module, prefix, keep_vars, zero=zero: zero(module)),
            ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _zeroer(mask: torch.Tensor):
    def zero(module) -> None:
        with torch.no_grad():
            module.weight.mul_(mask.to(module.weight.device))
    return zero


def check_masks(layers: dict, masks: dict[str, torch.Tensor]) -> None:
    """Masks must name conv layers of this model and match their weight shapes."""
    for name, mask in masks.items():
        if name not in layers:
            raise UserError(f"mask for {name!r} does not fit this model: its conv layers are {', '.join(layers)}")
        if tuple(mask.shape) != tuple(layers[name].weight.shape):
            raise UserError(f"mask for {name} has shape {tuple(mask.shape)}, the model's weight is "
                            f"{tuple(layers[name].weight.shape)}: use the masks saved with this checkpoint")


def apply_masks(model, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked weights once (no hooks left behind)."""
    MaskHold(model, masks).remove()


def conv_sparsity(model, masks: dict[str, torch.Tensor] | None = None) -> float:
    """Global fraction of pruned conv weights: masked entries if masks are given, else exact zeros
    (the study's count)."""
    layers = conv_layers(model)
    total = sum(layer.weight.numel() for layer in layers.values())
    if masks is not None:
        pruned = sum(int((~mask.bool()).sum()) for mask in masks.values())
    else:
        pruned = sum(int((layer.weight == 0).sum()) for layer in layers.values())
    return pruned / total


def save_masks(path: Path, masks: dict[str, torch.Tensor], meta: dict) -> None:
    """Masks (as bool tensors) plus how they were made (method, SIMD list, amount ...)."""
    buffer = io.BytesIO()
    torch.save({"masks": {k: v.bool().cpu() for k, v in masks.items()}, "meta": dict(meta)}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_masks(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no masks file at {path}: pass the {MASKS_FILE} stored with the pruned checkpoint")
    package = torch.load(path, map_location="cpu", weights_only=True)
    return package["masks"], package["meta"]
