"""Batched execution (pynqrepro.finnflow.execute) is FINN's execution: every tensor of the CNV's
QONNX, tidied, streamlined and HW-layer graphs equals FINN's ``execute_onnx`` of each image alone,
for 1-bit (XNOR-popcount) and 2-bit CNVs, with a batch that does not divide the image count."""

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import get_board
from pynqrepro.finnflow.hw_build import hw_model_artifact
from pynqrepro.finnflow.hw_build import QONNX_MODEL
from pynqrepro.finnflow.execute import BatchRunner, execute_batched
from pynqrepro.finnflow.finn_setup import boot_finn
from pynqrepro.finnflow.verify import FINN_STAGES

from cnv_checkpoints import random_cnv_checkpoint

IMAGES = 4  # batches of 3 and 1


@pytest.fixture(scope="module")
def images():
    from pynqrepro.data.digits import load_digits32

    return load_digits32()[2][:IMAGES]


@pytest.mark.parametrize("bits", [1, 2])
@pytest.mark.parametrize("graph", [QONNX_MODEL, *FINN_STAGES.values()])
def test_batched_context_equals_finn_per_image(store, images, bits, graph):
    boot_finn()
    from finn.core.onnx_exec import execute_onnx

    artifact = hw_model_artifact(store, random_cnv_checkpoint(store, bits, bits), get_board("pynq-z1"))
    model = ModelWrapper(str(artifact.file(graph)))
    inputs = images.astype(np.float32) / (255.0 if graph == QONNX_MODEL else 1.0)
    runner = BatchRunner(model)
    contexts = [runner.run(inputs[:3]), runner.run(inputs[3:])]
    compared = 0
    for i in range(IMAGES):
        batched = contexts[i // 3]
        alone = execute_onnx(model, {model.graph.input[0].name: inputs[i:i + 1]}, return_full_exec_context=True)
        for name in runner.data:
            assert np.array_equal(batched[name][i % 3:i % 3 + 1], alone[name]), (graph, name, i)
            compared += 1
    assert compared == IMAGES * len(runner.data) > IMAGES * 10  # every activation of the graph
    out = model.graph.output[0].name
    assert np.array_equal(execute_batched(model, inputs, [out], chunk=2)[out],
                          np.concatenate([contexts[0][out], contexts[1][out]]))
