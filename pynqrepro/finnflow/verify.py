"""Bit-exact verification of the flow: the same test images through every stage.

Stages: the Brevitas model, the QONNX export (ONNX execution), FINN's tidied model (uint8 input
with /255 pre-processing and TopK), the streamlined model and the generic HW-layer graph before
specialisation (``_hls``/``_rtl`` nodes need cppsim/rtlsim, Vivado tools). FINN stages are compared
with the QONNX model: 1-bit nets can differ from Brevitas at exact sign boundaries, so Brevitas
agreement is reported separately. Logit differences exist only up to the tidied model: streamlining
absorbs the final scale and bias into TopK.
"""

from dataclasses import dataclass

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.errors import UserError
from pynqrepro.core.store import Artifact
from pynqrepro.finnflow.build import KEPT, QONNX_MODEL
from pynqrepro.finnflow.finn_setup import boot_finn

FINN_STAGES = {  # stage name -> file in the HW-model artifact
    "finn_tidy": KEPT["step_tidy_up"],
    "streamlined": KEPT["step_streamline"],
    "hw_generic": KEPT["step_minimize_bit_width_initial"],
}


@dataclass(frozen=True)
class StageResult:
    stage: str
    reference: str  # the stage it is compared with
    agree: int  # images with the same top-1 class as the reference
    total: int
    max_logit_diff: float | None  # largest |logit - reference logit|, where the stage has logits


@dataclass(frozen=True)
class Verification:
    stages: tuple[StageResult, ...]

    @property
    def first_divergence(self) -> str | None:
        """The first FINN stage whose top-1 differs from the QONNX model on some image."""
        return next((s.stage for s in self.stages if s.reference == "qonnx" and s.agree < s.total), None)

    def agreement(self) -> str:
        """Top-1 agreement per stage, e.g. "qonnx 20/20, finn_tidy 20/20, ..."."""
        return ", ".join(f"{s.stage} {s.agree}/{s.total}" for s in self.stages)


def _execute(model: ModelWrapper, image: np.ndarray) -> tuple[int, np.ndarray]:
    """(top-1 class, logits or None) of one graph execution. FINN graphs end in TopK(1) (or its
    HW layer LabelSelect) giving the class; TopK's input holds the logits (rescaled once
    streamlining has absorbed the final scale and bias)."""
    from finn.core.onnx_exec import execute_onnx

    context = execute_onnx(model, {model.graph.input[0].name: image}, return_full_exec_context=True)
    output = np.asarray(context[model.graph.output[0].name], dtype=np.float64).flatten()
    if output.size == 1:  # a class index
        topk = model.get_nodes_by_op_type("TopK")
        return int(output[0]), (np.asarray(context[topk[0].input[0]], dtype=np.float64).flatten()
                                if topk else None)
    return int(np.argmax(output)), output


def verify(model: torch.nn.Module, hw_artifact: Artifact, images: np.ndarray) -> Verification:
    """Agreement of every stage on ``images`` (uint8, N x 3 x 32 x 32, as the board receives them)."""
    boot_finn()
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise UserError(f"verification images must be uint8 N x 3 x 32 x 32, got {images.dtype} {images.shape}")
    floats = images.astype(np.float32) / 255.0
    with torch.no_grad():
        brevitas_logits = model.eval()(torch.from_numpy(floats)).double().numpy()
    qonnx = ModelWrapper(str(hw_artifact.file(QONNX_MODEL)))
    q_top, q_logits = zip(*(_execute(qonnx, floats[i:i + 1]) for i in range(len(images))))
    q_logits = np.stack(q_logits)
    results = [StageResult("qonnx", "brevitas", int(np.sum(np.argmax(brevitas_logits, 1) == q_top)),
                           len(images), float(np.abs(q_logits - brevitas_logits).max()))]
    for stage, filename in FINN_STAGES.items():
        finn_model = ModelWrapper(str(hw_artifact.file(filename)))
        tops, diffs = [], []
        for i in range(len(images)):
            top, logits = _execute(finn_model, images[i:i + 1].astype(np.float32))
            tops.append(top)
            if stage == "finn_tidy":
                diffs.append(np.abs(logits - q_logits[i]).max())
        results.append(StageResult(stage, "qonnx", int(np.sum(np.array(tops) == np.array(q_top))),
                                   len(images), float(max(diffs)) if diffs else None))
    return Verification(tuple(results))
