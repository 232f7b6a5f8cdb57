"""Wall and CPU time of the bit-exact verification of one CNV on the smoke test set (360 digits
images): per graph, FINN's ``execute_onnx`` image by image (the peer, on a few images) beside the
batched execution of ``pynqrepro.finnflow.execute`` (all images), and the whole ``verify``.

Usage: python benchmarks/bench_verify.py [--bits 2 2] [--peer-images 8]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import get_board
from pynqrepro.core.store import ArtifactStore
from pynqrepro.data.digits import load_digits32
from pynqrepro.finnflow.hw_build import QONNX_MODEL, hw_model_artifact
from pynqrepro.finnflow.execute import execute_batched
from pynqrepro.finnflow.export import load_cnv
from pynqrepro.finnflow.finn_setup import boot_finn
from pynqrepro.finnflow.verify import FINN_STAGES, verify
from pynqrepro.training.recipes import untrained_checkpoint


def _timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", nargs=2, type=int, default=(2, 2), metavar=("W", "A"))
    parser.add_argument("--peer-images", type=int, default=8, help="images FINN's per-image execution runs")
    args = parser.parse_args()
    boot_finn()
    from finn.core.onnx_exec import execute_onnx

    images = load_digits32()[2]
    with tempfile.TemporaryDirectory(prefix="pynqrepro-bench-verify-") as tmp:
        store = ArtifactStore(Path(tmp))
        checkpoint = untrained_checkpoint(store, *args.bits)
        artifact = hw_model_artifact(store, checkpoint, get_board("pynq-z1"))
        print(f"CNV W{args.bits[0]}A{args.bits[1]} (untrained), {len(images)} images")
        for graph in (QONNX_MODEL, *FINN_STAGES.values()):
            model = ModelWrapper(str(artifact.file(graph)))
            inputs = images.astype(np.float32) / (255.0 if graph == QONNX_MODEL else 1.0)
            name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
            peer_wall, peer_cpu = _timed(lambda: [execute_onnx(model, {name_in: inputs[i:i + 1]})
                                                  for i in range(args.peer_images)])
            ours_wall, ours_cpu = _timed(lambda: execute_batched(model, inputs, [name_out]))
            peer, ours = peer_wall / args.peer_images, ours_wall / len(images)
            print(f"  {graph:18s} FINN per image {peer * 1e3:7.1f} ms ({peer_cpu / args.peer_images * 1e3:7.1f} ms CPU)"
                  f" | batched {ours * 1e3:6.1f} ms ({ours_cpu / len(images) * 1e3:6.1f} ms CPU) per image"
                  f" | speed-up {peer / ours:5.1f}x")
        model = load_cnv(checkpoint.path)
        result = None

        def run() -> None:
            nonlocal result
            result = verify(model, artifact, images)

        wall, cpu = _timed(run)
        print(f"verify, all stages, {len(images)} images: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"({wall / len(images) * 1e3:.0f} ms per image); {result.exactness()}")


if __name__ == "__main__":
    main()
