"""CIFAR-10 archive reader (on a tiny archive in the real format), digits, splits, augmentation."""

import io
import tarfile

import numpy as np
import pytest
import torch

from cifar_archive import write_tiny_cifar

from pynqrepro.core.errors import UserError
from pynqrepro.data.cifar10 import ARCHIVE, TEST_BATCH, load_cifar10
from pynqrepro.data.digits import digits_images, load_digits32
from pynqrepro.data.splits import ImageSet, hold_out, load_splits, missing_dataset


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


def test_dataset_check_passes_a_whole_archive_without_decoding_it(tmp_path, monkeypatch):
    write_tiny_cifar(tmp_path)

    def decode(*args):
        raise AssertionError("the check decoded a batch")

    monkeypatch.setattr("pynqrepro.data.cifar10._read_batch", decode)
    assert missing_dataset("cifar10", tmp_path) is None


def _rewrite_test_batch(path, content: bytes | None) -> None:
    """The archive with its test batch replaced by ``content`` (None: left out)."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(member, tar.extractfile(member).read()) for member in tar.getmembers()]
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            if member.name == TEST_BATCH:
                if content is None:
                    continue
                member.size, data = len(content), content
            tar.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("damage", ["truncated", "no gzip trailer", "bit flipped", "no test batch",
                                    "test batch not a pickle"])
def test_dataset_check_refuses_a_damaged_archive_in_one_line(tmp_path, damage):
    path = write_tiny_cifar(tmp_path, per_batch=64)
    data, middle = path.read_bytes(), path.stat().st_size // 2
    if damage == "truncated":
        path.write_bytes(data[:middle])
    elif damage == "no gzip trailer":  # every member whole: only the stream's end is missing
        path.write_bytes(data[:-8])
    elif damage == "bit flipped":
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    else:
        _rewrite_test_batch(path, None if damage == "no test batch" else b"not a pickle")
    reason = missing_dataset("cifar10", tmp_path)
    assert reason.startswith(f"{path} is corrupt or not the CIFAR-10 python archive (")
    assert reason.endswith(f"replace it with {ARCHIVE} from https://www.cs.toronto.edu/~kriz/{ARCHIVE}")
    assert "\n" not in reason


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


@pytest.mark.parametrize("augment", ["crop_flip", "crop", "none"])
def test_batch_augmentation_on_the_sets_device_equals_item_by_item(augment):
    """The GPU path's augmentation (``ImageSet.batch``, one gather where the set lives), run here on
    CPU tensors, gives the DataLoader path's images exactly, from the same per-(seed, epoch) draws."""
    images = np.random.default_rng(0).integers(0, 256, size=(200, 3, 32, 32), dtype=np.uint8)
    data = ImageSet(images, np.arange(200) % 10, augment=augment, seed=7)
    indices = torch.randperm(200, generator=torch.Generator().manual_seed(1))[:96]
    for epoch in (1, 2):
        data.set_epoch(epoch)
        batch, labels = data.batch(indices)
        items = [data[i] for i in indices.tolist()]
        assert torch.equal(batch, torch.stack([image for image, _ in items]))
        assert torch.equal(labels, torch.stack([label for _, label in items]))
    assert data.to("cpu") is data


def test_cifar10_without_data_dir_is_a_user_error():
    with pytest.raises(UserError, match="--data-dir"):
        load_splits("cifar10", None, 0.1, "none", 0)
