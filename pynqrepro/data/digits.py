"""scikit-learn's digits as 32x32 RGB images: real, offline data for smoke-scale runs of CNV."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits, 8x8 levels 0..16 upsampled (nearest) to uint8 (N, 3, 32, 32)."""
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = images.repeat(4, axis=1).repeat(4, axis=2)
    return np.repeat(images[:, None], 3, axis=1), digits.target.astype(np.int64)


def load_digits32():
    """``(train_images, train_labels, test_images, test_labels)``: a fixed stratified 80/20 split."""
    images, labels = digits_images()
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    return train_x, train_y, test_x, test_y
