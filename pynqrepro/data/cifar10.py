"""CIFAR-10 from the standard python archive, without torchvision.

The archive comes from ``data_dir`` (``cifar-10-python.tar.gz``), or is downloaded into it and
checked against the published MD5 when the machine is online.
"""

import gzip
import hashlib
import pickle
import tarfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from pynqrepro.core.atomic import atomic_write_bytes
from pynqrepro.core.errors import UserError

ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "cifar-10-batches-py/test_batch"
BATCHES = TRAIN_BATCHES + (TEST_BATCH,)
# what reading a truncated, damaged or foreign archive raises
CORRUPT = (tarfile.TarError, KeyError, EOFError, OSError, pickle.UnpicklingError, ValueError, zlib.error)


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


def _archive(data_dir: Path, allow_download: bool) -> Path:
    if Path(data_dir).exists() and not Path(data_dir).is_dir():
        parent = Path(data_dir).parent
        raise UserError(f"--data-dir {data_dir} is a file, not a directory: pass the directory that holds "
                        f"{ARCHIVE}" + (f" (here: --data-dir {parent})" if Path(data_dir).name == ARCHIVE else ""))
    archive = Path(data_dir) / ARCHIVE
    if not archive.is_file():
        if not allow_download:
            raise UserError(f"CIFAR-10 archive missing: put {ARCHIVE} ({URL}) into {archive.parent}")
        archive = download(data_dir)
    return archive


def _corrupt(archive: Path, what: str) -> UserError:
    return UserError(f"{archive} is corrupt or not the CIFAR-10 python archive ({what}): "
                     f"replace it with {ARCHIVE} from {URL}")


def load_cifar10(data_dir: Path, allow_download: bool = True):
    """``(train_images, train_labels, test_images, test_labels)``; images uint8 (N, 3, 32, 32)."""
    archive = _archive(data_dir, allow_download)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            train = [_read_batch(tar, member) for member in TRAIN_BATCHES]
            test_images, test_labels = _read_batch(tar, TEST_BATCH)
    except CORRUPT as exc:
        raise _corrupt(archive, type(exc).__name__) from None
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels


def check_cifar10(data_dir: Path) -> None:
    """What ``load_cifar10`` would refuse, found without unpickling its 60000 images (each
    pytest-xdist worker asks before its first experiment): one pass through the gzip stream, whose
    CRC and length are checked at its end, finding every batch whole (a pickle ends with STOP)."""
    archive = _archive(data_dir, allow_download=True)
    found = set()
    try:
        with gzip.open(archive) as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
            for member in tar:  # in archive order: the gzip stream only ever seeks forward
                if member.name in BATCHES and member.isfile() and member.size:
                    with tar.extractfile(member) as handle:
                        handle.seek(member.size - 1)
                        if handle.read(1) == pickle.STOP:
                            found.add(member.name)
            while stream.read(1 << 20):  # on to the gzip trailer: a stream cut short fails here
                pass
    except CORRUPT as exc:
        raise _corrupt(archive, type(exc).__name__) from None
    for member in BATCHES:
        if member not in found:
            raise _corrupt(archive, f"no whole {member}")
