"""Small archives in the real CIFAR-10 format (cifar-10-python.tar.gz: the same members, the same
pickled dicts), for the reader's tests and the paper dry run."""

import io
import pickle
import tarfile

import numpy as np

from pynqrepro.data.cifar10 import ARCHIVE, TEST_BATCH, TRAIN_BATCHES


def _batch(n: int, offset: int) -> dict:
    rows = (np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) + offset) % 256
    return {b"batch_label": b"x", b"labels": [(i + offset) % 10 for i in range(n)],
            b"data": rows.astype(np.uint8), b"filenames": [b"f"] * n}


def write_tiny_cifar(directory, per_batch: int = 4, test_images: int | None = None):
    """``directory/cifar-10-python.tar.gz`` with ``per_batch`` images in each of the five training
    batches and ``test_images`` (default ``per_batch``) in the test batch."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ARCHIVE
    sizes = [per_batch] * len(TRAIN_BATCHES) + [per_batch if test_images is None else test_images]
    with tarfile.open(path, "w:gz") as tar:
        for i, (member, size) in enumerate(zip(TRAIN_BATCHES + (TEST_BATCH,), sizes)):
            data = pickle.dumps(_batch(size, i))
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
