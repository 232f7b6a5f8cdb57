"""Train / validation / test splits as an augmenting torch Dataset.

Augmentation draws (crop offset, flip) for every image once per epoch from ``(seed, epoch)``, so
an epoch's batches are the same whatever the worker count, and a resumed run replays them exactly.
The draws apply two ways with the same result: image by image (``ImageSet[i]``, for a DataLoader on
the CPU) or to a whole batch where the set lives (``ImageSet.batch``, the trainer's GPU path with the
set resident on the device: ``ImageSet.to``).
"""

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from pynqrepro.core.errors import UserError

PAD = 4
SPLIT_SEED = 0


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None) -> torch.Tensor:
    """uint8 (B, C, H, W) images cropped at ``offsets`` (B x (dy, dx)) out of their zero-padded
    copies and mirrored where ``flips``: the batch form of ``ImageSet[i]``'s crop, one gather on
    whatever device the images are."""
    n, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD)).view(n, channels, -1)
    rows = offsets[:, :1] + torch.arange(height, device=images.device)
    cols = offsets[:, 1:] + torch.arange(width, device=images.device)
    if flips is not None:
        cols = torch.where(flips[:, None], cols.flip(1), cols)
    index = (rows[:, :, None] * (width + 2 * PAD) + cols[:, None, :]).view(n, 1, -1)
    return padded.gather(2, index.expand(n, channels, height * width)).view(n, channels, height, width)


class ImageSet(Dataset):
    """uint8 (N, 3, 32, 32) images + labels; items are float images in [0, 1] as ToTensor gives."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: str = "none", seed: int = 0):
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.augment = augment
        self.seed = seed
        self.set_epoch(0)

    def to(self, device) -> "ImageSet":
        """The set resident on ``device`` (itself when it is there already), same draws."""
        if self.images.device == torch.device(device):
            return self
        moved = copy.copy(self)
        moved.images, moved.labels = self.images.to(device), self.labels.to(device)
        moved.set_epoch(self.epoch)
        return moved

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's random crop offsets and flips (study: crop 32 pad 4, h-flip)."""
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.labels)
        offsets = rng.integers(0, 2 * PAD + 1, size=(n, 2)) if self.augment != "none" else None
        flips = rng.random(n) < 0.5 if self.augment == "crop_flip" else None
        self.epoch = epoch
        self._offsets = None if offsets is None else torch.from_numpy(offsets).to(self.images.device)
        self._flips = None if flips is None else torch.from_numpy(flips).to(self.images.device)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self._offsets is not None:
            dy, dx = self._offsets[index].tolist()
            padded = torch.nn.functional.pad(image, (PAD, PAD, PAD, PAD))
            image = padded[:, dy:dy + 32, dx:dx + 32]
            if self._flips is not None and self._flips[index]:
                image = image.flip(-1)
        return image.float().div_(255.0), self.labels[index]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (augmented, float in [0, 1]) and labels at ``indices``, computed where the set
        lives: equal to stacking ``self[i]`` for each index."""
        images = self.images[indices]
        if self._offsets is not None:
            images = crop_flip(images, self._offsets[indices], None if self._flips is None else self._flips[indices])
        return images.float().div_(255.0), self.labels[indices]


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet | None
    test: ImageSet

    def to(self, device) -> "Splits":
        """All splits resident on ``device``."""
        return Splits(self.train.to(device), None if self.val is None else self.val.to(device), self.test.to(device))


def hold_out(images, labels, fraction: float):
    """Stratified validation split held out of the training set (fixed seed: same across runs)."""
    if fraction == 0:
        return images, labels, None, None
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=fraction, stratify=labels, random_state=SPLIT_SEED)
    return train_x, train_y, val_x, val_y


def load_splits(dataset: str, data_dir: Path | None, val_fraction: float, augment: str, seed: int) -> Splits:
    """The dataset's splits; ``data_dir`` holds the CIFAR-10 archive (unused for digits)."""
    if dataset == "digits":
        from pynqrepro.data.digits import load_digits32

        train_x, train_y, test_x, test_y = load_digits32()
    elif dataset == "cifar10":
        from pynqrepro.data.cifar10 import load_cifar10

        train_x, train_y, test_x, test_y = load_cifar10(_cifar_dir(data_dir))
    else:
        raise UserError(f"unknown dataset {dataset!r}: choose cifar10 or digits")
    train_x, train_y, val_x, val_y = hold_out(train_x, train_y, val_fraction)
    return Splits(
        train=ImageSet(train_x, train_y, augment=augment, seed=seed),
        val=None if val_x is None else ImageSet(val_x, val_y),
        test=ImageSet(test_x, test_y),
    )


def _cifar_dir(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise UserError("CIFAR-10 needs a data directory: pass --data-dir DIR holding cifar-10-python.tar.gz")
    return data_dir


def missing_dataset(dataset: str, data_dir: Path | None) -> str | None:
    """None when ``dataset`` loads (the CIFAR-10 archive downloaded first where absent and online),
    else the loader's one-line reason: what is missing or corrupt and where to put it. CIFAR-10 is
    checked without decoding it (``check_cifar10``); digits, bundled and small, is loaded."""
    try:
        if dataset == "cifar10":
            from pynqrepro.data.cifar10 import check_cifar10

            check_cifar10(_cifar_dir(data_dir))
        else:
            load_splits(dataset, data_dir, 0.0, "none", 0)
    except UserError as exc:
        return str(exc)
    return None


def uint8_test_set(dataset: str, data_dir: Path | None, count: int | None = None):
    """The first ``count`` test images (all when None) as the accelerator receives them (uint8
    N x 3 x 32 x 32) and their labels, as numpy arrays."""
    test = load_splits(dataset, data_dir, 0.0, "none", 0).test
    count = len(test.labels) if count is None else count
    return test.images[:count].numpy().astype("uint8"), test.labels[:count].numpy()
