"""TrainConfig: everything that determines a training run's result (and so its artifact key)."""

from dataclasses import asdict, dataclass, fields

from pynqrepro.core.errors import UserError
from pynqrepro.models.cnv import CONV_CHANNELS, CNV, FC_FEATURES, check_bits

DATASETS = ("cifar10", "digits")
AUGMENTATIONS = ("crop_flip", "crop", "none")


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

    def __post_init__(self):
        check_bits("weight bit width", self.weight_bits)
        check_bits("activation bit width", self.act_bits)
        for name in ("epochs", "batch_size", "lr_step"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise UserError(f"learning rate must be positive, got {self.lr!r}")
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation {self.augment!r}: choose one of {', '.join(AUGMENTATIONS)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"validation fraction must be in [0, 1), got {self.val_fraction!r}")
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        object.__setattr__(self, "fc_features", tuple(self.fc_features))

    @property
    def name(self) -> str:
        """Experiment directory name, as the study's trainer names it (CNV_2W2A)."""
        return f"CNV_{self.weight_bits}W{self.act_bits}A"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def build_model(self) -> CNV:
        return CNV(self.weight_bits, self.act_bits, in_bits=self.in_bits,
                   conv_channels=self.conv_channels, fc_features=self.fc_features)
