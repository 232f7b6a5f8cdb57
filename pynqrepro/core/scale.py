"""Experiment scales: how big a reproduction run is."""

from dataclasses import dataclass

from pynqrepro.core.errors import UserError


@dataclass(frozen=True)
class Scale:
    """``smoke``: minutes on 2 CPU cores with offline data (sklearn digits).
    ``paper``: the study's settings on CIFAR-10 (needs the archive and, in practice, a GPU).

    Stage packages keep their per-scale settings (epochs, sweep steps) keyed by ``name``.
    """

    name: str
    dataset: str
    description: str


SCALES = {
    "smoke": Scale("smoke", "digits", "offline sklearn digits, CPU, minutes"),
    "paper": Scale("paper", "cifar10", "CIFAR-10 with the study's epochs"),
}


def get_scale(name: str) -> Scale:
    scale = SCALES.get(name)
    if scale is None:
        raise UserError(f"unknown scale {name!r}: choose one of {', '.join(SCALES)}")
    return scale
