"""What the board stage adds to FINN's deployment package (``pynqrepro.synthesis.deployment``): our
test set in the accelerator's input layout and the runner script, so the board classifies exactly
the images the Python HW graph classified.
"""

import shutil
from pathlib import Path

import numpy as np

from pynqrepro.core.divisors import divisors
from pynqrepro.core.errors import UserError
from pynqrepro.synthesis.deployment import check_package

RUNNER = "on_board.py"
TESTSET = "testset.npz"
RUNNER_SOURCE = Path(__file__).with_name(RUNNER)


def to_accelerator_layout(images: np.ndarray, ishape_normal) -> np.ndarray:
    """uint8 N x 3 x 32 x 32 images (as the HW graph in Python takes them) in the accelerator's
    input layout: FINN's dataflow partition starts after the NCHW -> NHWC transpose."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise UserError(f"test images must be uint8 N x 3 x H x W, got {images.dtype} {images.shape}")
    sample = tuple(int(d) for d in ishape_normal[1:])
    if sample == images.shape[1:]:
        return images
    if sample == (images.shape[2], images.shape[3], images.shape[1]):
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    raise UserError(f"the accelerator takes {list(ishape_normal)} but the test images are {images.shape[1:]}: "
                    f"deploy a build of the model these images belong to")


def validation_batch(num_images: int, largest: int = 100) -> int:
    """Largest batch <= ``largest`` dividing the test set: FINN's validation loop counts images of
    a last, partial batch as wrong."""
    batches = divisors(num_images)
    return int(batches[batches <= largest].max())


def stage_package(deploy_dir: Path, images: np.ndarray, labels: np.ndarray, out_dir: Path) -> Path:
    """``out_dir`` = the deployment package + ``testset.npz`` + ``on_board.py``, ready to copy."""
    info = check_package(deploy_dir)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(images) or len(labels) == 0:
        raise UserError(f"{len(images)} test images but {len(labels)} labels: pass one label per image")
    out_dir = Path(out_dir)
    shutil.copytree(deploy_dir, out_dir, dirs_exist_ok=True)
    layout = to_accelerator_layout(images, info["io_shape_dict"]["ishape_normal"][0])
    np.savez(out_dir / TESTSET, images=layout, labels=labels)
    shutil.copyfile(RUNNER_SOURCE, out_dir / RUNNER)
    return out_dir
