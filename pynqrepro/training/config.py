"""TrainConfig: everything that determines a training run's result (and so its artifact key)."""

from dataclasses import asdict, dataclass, fields

from pynqrepro.core.errors import UserError
from pynqrepro.core.logs import warn
from pynqrepro.core.scale import gpu_work
from pynqrepro.models.spec import (CONV_CHANNELS, FC_FEATURES, check_bits, check_widths, format_layer_bits,
                                   parse_layer_bits, uniform_layer_bits, widest_bits)

SEED_MAX = 2**32 - 1  # numpy's generators take seeds in [0, 2**32)
LR_SANE_MAX = 1.0  # Adam (and SGD) steps above this blow BatchNorm'd nets up: legal, never useful
LR_SANE_MIN = 1e-7  # Adam's steps are about lr: below it a whole run moves no weight visibly
DATASETS = ("cifar10", "digits")
AUGMENTATIONS = ("crop_flip", "crop", "none")
MEMORY_FORMATS = ("channels_last", "contiguous")  # torch.channels_last, torch.contiguous_format
# The kernels a config saved before these fields existed was trained with: from_dict fills them in,
# so such a checkpoint resumes with its own arithmetic and never shares a key with a newer run.
EARLIER_KERNELS = {"memory_format": "contiguous", "fused_adam": False}


@dataclass(frozen=True)
class TrainConfig:
    """The study's recipe by default: Adam, lr 0.02, batch 128, lr halved every 40 epochs."""

    weight_bits: int
    act_bits: int
    dataset: str = "cifar10"
    epochs: int = 500
    lr: float = 0.02
    batch_size: int = 128
    lr_step: int = 40  # epochs between lr halvings
    lr_gamma: float = 0.5
    weight_decay: float = 0.0
    augment: str = "crop_flip"  # random crop 32 pad 4 + horizontal flip
    val_fraction: float = 0.1  # held out of the training set for best-epoch selection
    seed: int = 123456
    in_bits: int = 8
    conv_channels: tuple = CONV_CHANNELS
    fc_features: tuple = FC_FEATURES
    pretrained: str | None = None  # "brevitas" (published weights) or a state_dict path
    max_steps: int | None = None  # a dry run: stop after this many optimizer steps in all
    # Faster kernels for the same maths, with other float rounding (NHWC convolutions sum in another
    # order, fused Adam rounds its update differently): part of the result, so part of the key.
    memory_format: str = "channels_last"  # of the model and its input batches
    fused_adam: bool = True  # one fused kernel for the whole Adam step
    # CUDA's deterministic mode (``training.determinism``): a run resumed from a checkpoint ends with
    # the uninterrupted run's weights on a GPU too, at the cost of the autotuned and fused kernels.
    deterministic: bool = False
    # Per-layer "W/A,...,W" (models.spec.parse_layer_bits; a preset name is expanded): weight_bits and
    # act_bits become its widest. None, or a uniform list, is the uniform network (keyed as before).
    layer_bits: str | None = None

    def __post_init__(self):
        if self.layer_bits is not None:
            layers = parse_layer_bits(self.layer_bits)
            weight_bits, act_bits = widest_bits(layers)
            object.__setattr__(self, "weight_bits", weight_bits)
            object.__setattr__(self, "act_bits", act_bits)
            uniform = layers == uniform_layer_bits(weight_bits, act_bits)
            object.__setattr__(self, "layer_bits", None if uniform else format_layer_bits(layers))
        check_bits("weight bit width", self.weight_bits)
        check_bits("activation bit width", self.act_bits)
        for name in ("epochs", "batch_size", "lr_step"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps <= 0):
            raise UserError(f"max steps must be a positive integer, got {self.max_steps!r}")
        if not self.lr > 0:
            raise UserError(f"learning rate must be positive, got {self.lr!r}")
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation {self.augment!r}: choose one of {', '.join(AUGMENTATIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            raise UserError(f"unknown memory format {self.memory_format!r}: choose one of {', '.join(MEMORY_FORMATS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise UserError(f"seed {self.seed!r} is outside 0 .. {SEED_MAX} (numpy's seeds): pass e.g. --seed 123456")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"validation fraction must be in [0, 1), got {self.val_fraction!r}")
        object.__setattr__(self, "conv_channels", check_widths("conv channels", self.conv_channels, len(CONV_CHANNELS)))
        object.__setattr__(self, "fc_features", check_widths("fc features", self.fc_features, len(FC_FEATURES)))

    @property
    def name(self) -> str:
        """Experiment directory name, as the study's trainer names it (CNV_2W2A; a mixed network
        names its layers, CNV_4W4A-2W2A-...-4W)."""
        if self.layer_bits is not None:
            return "CNV_" + "-".join(f"{w}W" if a is None else f"{w}W{a}A"
                                     for w, a in parse_layer_bits(self.layer_bits))
        return f"CNV_{self.weight_bits}W{self.act_bits}A"

    @property
    def wants_gpu(self) -> bool:
        """Hours of work: the dataset is a GPU one and no step cap makes it a dry run."""
        return gpu_work(self.dataset, self.max_steps)

    @property
    def torch_memory_format(self):
        """The torch.memory_format (imported here: the config itself needs no torch)."""
        import torch

        return {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}[self.memory_format]

    def to_dict(self) -> dict:
        """The config as plain data (the artifact key); without ``max_steps``, ``layer_bits`` and
        ``deterministic`` when unset, so runs keyed before those fields existed (every uniform
        network) keep their keys."""
        data = asdict(self)
        for name, unset in (("max_steps", None), ("layer_bits", None), ("deterministic", False)):
            if data[name] == unset:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{**EARLIER_KERNELS, **{k: v for k, v in data.items() if k in known}})

    def build_model(self):
        """The CNV of this configuration (imported here: the config itself needs no torch)."""
        from pynqrepro.models.cnv import CNV

        return CNV(self.weight_bits, self.act_bits, in_bits=self.in_bits,
                   conv_channels=self.conv_channels, fc_features=self.fc_features, layer_bits=self.layer_bits)


def warn_absurd_lr(lr: float, option: str) -> None:
    """A learning rate that is legal but will train to chance gets one warning line before the work."""
    if lr > LR_SANE_MAX:
        warn(f"{option} {lr:g} is above {LR_SANE_MAX:g}: Adam will diverge and the run stay at chance "
             f"accuracy; the study uses 1e-4..0.02")
    elif lr < LR_SANE_MIN:
        warn(f"{option} {lr:g} is below {LR_SANE_MIN:g}: Adam will barely move the weights and the run stay "
             f"where it started; the study uses 1e-4..0.02")
