"""CIFAR-10 archive reader (on a tiny archive in the real format), digits, splits, augmentation."""

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from pynqrepro.core.errors import UserError
from pynqrepro.data.cifar10 import ARCHIVE, TEST_BATCH, TRAIN_BATCHES, load_cifar10
from pynqrepro.data.digits import digits_images, load_digits32
from pynqrepro.data.splits import ImageSet, hold_out, load_splits


def _batch(n: int, offset: int) -> dict:
    rows = (np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) + offset) % 256
    return {b"batch_label": b"x", b"labels": [(i + offset) % 10 for i in range(n)],
            b"data": rows.astype(np.uint8), b"filenames": [b"f"] * n}


def write_tiny_cifar(directory, per_batch: int = 4):
    """An archive laid out like cifar-10-python.tar.gz (same members, same pickled dicts)."""
    path = directory / ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for i, member in enumerate(TRAIN_BATCHES + (TEST_BATCH,)):
            data = pickle.dumps(_batch(per_batch, i))
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cifar_reader_reads_the_python_archive(tmp_path):
    write_tiny_cifar(tmp_path)
    train_x, train_y, test_x, test_y = load_cifar10(tmp_path, allow_download=False)
    assert train_x.shape == (20, 3, 32, 32) and train_x.dtype == np.uint8
    assert test_x.shape == (4, 3, 32, 32)
    assert train_y.tolist()[:5] == [0, 1, 2, 3, 1]  # batch 1 labels, then batch 2's
    assert train_x[0, 0, 0, :3].tolist() == [0, 1, 2]  # rows are channel-major, as in CIFAR-10
    assert test_x[0, 1, 0, 0] == (1024 + 5) % 256


def test_missing_archive_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError, match=f"put {ARCHIVE} .* into {tmp_path}"):
        load_cifar10(tmp_path, allow_download=False)


def test_corrupt_archive_is_a_user_error(tmp_path):
    (tmp_path / ARCHIVE).write_bytes(b"not a tarball")
    with pytest.raises(UserError, match="corrupt .* replace it"):
        load_cifar10(tmp_path, allow_download=False)


def test_digits_are_32x32_rgb_with_a_fixed_split():
    images, labels = digits_images()
    assert images.shape == (1797, 3, 32, 32) and images.max() == 255
    assert np.array_equal(images[:, 0], images[:, 2])
    train_x, train_y, test_x, _ = load_digits32()
    assert len(train_x) + len(test_x) == 1797 and len(test_x) == 360
    assert np.array_equal(load_digits32()[0], train_x)


def test_validation_split_is_held_out_and_stratified():
    images, labels = digits_images()
    train_x, train_y, val_x, val_y = hold_out(images, labels, 0.1)
    assert len(val_y) == 180 and len(train_y) == 1617
    assert np.bincount(val_y).min() >= 17
    splits = load_splits("digits", None, 0.0, "none", 0)
    assert splits.val is None


def test_augmentation_crops_and_flips_deterministically_per_epoch():
    images = np.zeros((64, 3, 32, 32), np.uint8)
    images[:, :, :, :16] = 255  # left half white
    crop_only = ImageSet(images, np.zeros(64), augment="crop", seed=1)
    assert (crop_only[0][0][0, 16, :] <= 1).all() and crop_only[0][0][0, 16, 28] == 0  # never flipped
    data = ImageSet(images, np.zeros(64), augment="crop_flip", seed=1)
    data.set_epoch(3)
    first = torch.stack([data[i][0] for i in range(64)])
    data.set_epoch(4)
    data.set_epoch(3)
    assert torch.equal(first, torch.stack([data[i][0] for i in range(64)]))
    assert first.shape == (64, 3, 32, 32) and first.max() == 1.0
    flipped = first[:, 0, 16, 28] == 1.0  # white on the right: flipped
    assert 0 < flipped.sum() < 64
    assert (first[:, 0, 16, :].sum(1) < 16).any()  # cropped into the zero padding
    plain = ImageSet(images, np.zeros(64))
    assert torch.equal(plain[5][0], torch.from_numpy(images[5]).float() / 255)


def test_cifar10_without_data_dir_is_a_user_error():
    with pytest.raises(UserError, match="--data-dir"):
        load_splits("cifar10", None, 0.1, "none", 0)
