"""The board beside Python: top-1 of the same HW graph executed by FINN in Python, and the flag.

The board runs the folded, specialised accelerator; folding and bit-width minimisation do not
change what it computes, so its classes must equal those of the generic HW-layer graph (the last
stage that executes in Python, ``hw_generic.onnx`` of the HW model artifact) on the same images.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.hw_build import KEPT
from pynqrepro.finnflow.execute import execute_batched

ACCURACY_TOLERANCE = 0.1  # percentage points of top-1 between board and Python
HW_GRAPH = KEPT["step_minimize_bit_width_initial"]


def accuracy_flag(board_top1: float, python_top1: float, tolerance: float = ACCURACY_TOLERANCE) -> str:
    """'' when board and Python agree within ``tolerance`` points, else the difference, flagged."""
    diff = board_top1 - python_top1
    return f"DIFFERS by {diff:+.2f} points (> {tolerance})" if abs(diff) > tolerance else ""


def hw_graph_classes(model_file: Path, images: np.ndarray) -> np.ndarray:
    """Top-1 class per uint8 N x 3 x 32 x 32 image from FINN's Python execution of the HW graph
    (batched over images, ``pynqrepro.finnflow.execute``)."""
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(model_file))
    name_out = model.graph.output[0].name
    classes = execute_batched(model, images.astype(np.float32), [name_out])[name_out]
    return classes.reshape(len(images)).astype(np.int64)


def hw_graph_accuracy(store: ArtifactStore, hw_artifact: Artifact, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 % of the HW graph on (images, labels), cached per (HW model, test set): 10,000 CIFAR
    images take a while in Python."""
    images, labels = np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()

    def build(out_dir: Path) -> None:
        classes = hw_graph_classes(hw_artifact.file(HW_GRAPH), images)
        np.save(out_dir / "classes.npy", classes)
        (out_dir / "accuracy.json").write_text(json.dumps({"top1": 100.0 * float(np.mean(classes == labels)),
                                                           "num_samples": len(labels)}))

    artifact = store.get_or_build("hw_graph_accuracy", {"test_set_sha256": digest}, build,
                                  inputs={"hw_model": hw_artifact})
    return json.loads(artifact.file("accuracy.json").read_text())["top1"]
