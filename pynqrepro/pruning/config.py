"""What a pruning sweep does (SweepConfig), the methods and the study's per-bit-width presets: plain
data, checked when made, and importable without torch (the command line shows these defaults)."""

import dataclasses
from dataclasses import dataclass

from pynqrepro.core.errors import UserError

METHODS = ("simd_blocks", "channels")
CHANNEL_STEPS = 16  # channel pruning keeps multiples of 1/16 of each conv layer's dense width


@dataclass(frozen=True)
class StudyPreset:
    """One of the study's pruning scripts: its SIMD list and fine-tuning learning rate."""

    script: str
    simd: tuple[int, ...]
    lr: float


STUDY_PRESETS = {
    2: StudyPreset("pruning_2bit.py", (9, 16, 16, 12, 8, 6), 1e-4),
    4: StudyPreset("pruning_4bit.py", (9, 8, 6, 9, 3, 4), 1e-3),
    8: StudyPreset("pruning_8bit.py", (3, 1, 1, 2, 2, 4), 1e-3),
}


def study_preset(bit_width: int) -> StudyPreset:
    preset = STUDY_PRESETS.get(bit_width)
    if preset is None:
        raise UserError(f"no study pruning preset for {bit_width}-bit: choose one of {sorted(STUDY_PRESETS)}")
    return preset


@dataclass(frozen=True)
class SweepConfig:
    """What a pruning sweep does (every field the method uses, but ``max_sparsity``, keys each
    step's artifact).

    ``simd`` is the conv layers' SIMD list, the block width of ``simd_blocks``; ``channel_steps``
    sets the granule of ``channels`` (kept counts are multiples of 1/channel_steps of each layer).
    """

    method: str
    simd: tuple[int, ...] = ()
    channel_steps: int = CHANNEL_STEPS
    max_sparsity: float = 0.9
    increment: float = 0.15
    epochs: int = 50
    lr: float = 1e-3
    norm_order: float = 1

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown pruning method {self.method!r}: choose one of {', '.join(METHODS)}")
        if not 0.0 <= self.max_sparsity < 1.0:
            raise UserError(f"--max-sparsity {self.max_sparsity} is outside [0, 1): use e.g. 0.9")
        if not 0.0 < self.increment < 1.0:
            raise UserError(f"--increment {self.increment} is outside (0, 1): use e.g. 0.15")
        if not isinstance(self.epochs, int) or self.epochs <= 0:
            raise UserError(f"--epochs must be a positive integer, got {self.epochs!r}")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr!r}")
        if not self.norm_order > 0:
            raise UserError(f"--norm-order must be positive (1 = L1, the study's), got {self.norm_order!r}")
        object.__setattr__(self, "simd", tuple(self.simd))
        if self.method == "simd_blocks" and not self.simd:
            raise UserError("SIMD-block pruning needs --simd-list, one SIMD per conv layer, e.g. \"9,16,16,12,8,6\"")

    def step_key(self) -> dict:
        unused = {"max_sparsity", "channel_steps" if self.method == "simd_blocks" else "simd"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in unused}
