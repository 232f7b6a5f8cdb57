"""CIFAR-10 from the standard python archive, without torchvision.

The archive comes from ``data_dir`` (``cifar-10-python.tar.gz``), or is downloaded into it and
checked against the published MD5 when the machine is online.
"""

import hashlib
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from pynqrepro.core.atomic import atomic_write_bytes
from pynqrepro.core.errors import UserError

ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "cifar-10-batches-py/test_batch"


def download(data_dir: Path) -> Path:
    """Fetch the archive into ``data_dir`` and verify its MD5; offline -> UserError."""
    target = Path(data_dir) / ARCHIVE
    try:
        with urllib.request.urlopen(URL, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise UserError(f"CIFAR-10 archive not found and download failed ({exc}): "
                        f"put {ARCHIVE} from {URL} into {target.parent}") from None
    if hashlib.md5(data).hexdigest() != MD5:
        raise UserError(f"downloaded {URL} fails its MD5 check: download it by hand into {target}")
    atomic_write_bytes(target, data)
    return target


def _read_batch(tar: tarfile.TarFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    with tar.extractfile(member) as handle:
        entry = pickle.load(handle, encoding="bytes")
    images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(entry[b"labels"], dtype=np.int64)


def load_cifar10(data_dir: Path, allow_download: bool = True):
    """``(train_images, train_labels, test_images, test_labels)``; images uint8 (N, 3, 32, 32)."""
    archive = Path(data_dir) / ARCHIVE
    if not archive.is_file():
        if not allow_download:
            raise UserError(f"CIFAR-10 archive missing: put {ARCHIVE} ({URL}) into {archive.parent}")
        archive = download(data_dir)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            train = [_read_batch(tar, member) for member in TRAIN_BATCHES]
            test_images, test_labels = _read_batch(tar, TEST_BATCH)
    except (tarfile.TarError, KeyError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise UserError(f"{archive} is corrupt or not the CIFAR-10 python archive ({type(exc).__name__}): "
                        f"replace it with {ARCHIVE} from {URL}") from None
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels
