"""Bit-exact verification of the flow: the same test images through every stage.

Stages: the Brevitas model, the QONNX export (ONNX execution), FINN's tidied model (uint8 input
with /255 pre-processing and TopK), the streamlined model and the generic HW-layer graph before
specialisation (``_hls``/``_rtl`` nodes need cppsim/rtlsim, Vivado tools). Every FINN stage's
top-1 is compared with the QONNX model's (1-bit nets can differ from Brevitas at exact sign
boundaries, so Brevitas agreement is reported separately); logit differences exist only up to the
tidied model: streamlining absorbs the final scale and bias into TopK.

From the streamlined model on, FINN computes integers, so those stages are compared bit for bit:
the HW-layer graph's pre-TopK tensor (LabelSelect's input) must equal the streamlined model's
(TopK's input) exactly, image by image. Where an image differs, both graphs are executed with full
context and the first HW node (in graph order) whose output differs from the streamlined tensor of
the same name is named: FINN's conversion to HW layers keeps the names of the tensors it replaces
nodes between (thresholded activations, im2col windows, pooled maps, the last MatMul).

Execution is FINN's node execution, batched (``execute.BatchRunner``); ``stored_verification`` caches the
result in the store per (checkpoint, HW model, test images).
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.errors import UserError
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.finnflow.hw_build import KEPT, QONNX_MODEL
from pynqrepro.finnflow.execute import CHUNK, BatchRunner

FINN_STAGES = {  # stage name -> file in the HW-model artifact
    "finn_tidy": KEPT["step_tidy_up"],
    "streamlined": KEPT["step_streamline"],
    "hw_generic": KEPT["step_minimize_bit_width_initial"],
}
INTEGER_STAGES = ("streamlined", "hw_generic")  # each compared bit for bit with the one before
LOGIT_STAGES = ("finn_tidy",)  # FINN stages whose pre-TopK tensor still holds the logits
CLASS_OPS = ("TopK", "LabelSelect")  # the node that turns scores into the class
VERIFICATION_FORMAT = 2  # bump when what ``verify`` measures changes (cached results are keyed on it)


@dataclass(frozen=True)
class StageResult:
    stage: str
    reference: str  # the stage its top-1 is compared with
    agree: int  # images with the same top-1 class as the reference
    total: int
    max_logit_diff: float | None  # largest |logit - reference logit|, where the stage has logits
    exact: int | None = None  # images whose pre-TopK tensor equals exact_reference's bit for bit
    exact_reference: str | None = None
    first_difference: str | None = None  # where the first image that is not bit-exact first differs


@dataclass(frozen=True)
class Verification:
    stages: tuple[StageResult, ...]
    seconds: float  # wall time of the run that measured it (a cached result keeps its own)

    @property
    def first_divergence(self) -> str | None:
        """The first FINN stage whose top-1 differs from the QONNX model on some image."""
        return next((s.stage for s in self.stages if s.reference == "qonnx" and s.agree < s.total), None)

    @property
    def first_inexact(self) -> StageResult | None:
        """The first integer stage whose pre-TopK tensor differs from the stage before on some image."""
        return next((s for s in self.stages if s.exact is not None and s.exact < s.total), None)

    def agreement(self) -> str:
        """Top-1 agreement per stage, e.g. "qonnx 20/20, finn_tidy 20/20, ..."."""
        return ", ".join(f"{s.stage} {s.agree}/{s.total}" for s in self.stages)

    def exactness(self) -> str:
        """Bit-exact images per integer stage, e.g. "hw_generic 360/360 = streamlined", and where
        the first inexact image first differs."""
        parts = []
        for s in self.stages:
            if s.exact is not None:
                where = f" (first difference: {s.first_difference})" if s.first_difference else ""
                parts.append(f"{s.stage} {s.exact}/{s.total} = {s.exact_reference}{where}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Verification":
        return cls(tuple(StageResult(**s) for s in data["stages"]), data["seconds"])


def check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise UserError(f"verification images must be uint8 N x 3 x 32 x 32, got {images.dtype} {images.shape}")
    return images


class _Stage:
    """A FINN stage's graph with the tensors verification reads: the class and TopK's input."""

    def __init__(self, name: str, model: ModelWrapper):
        self.name = name
        self.model = model
        self.runner = BatchRunner(model)
        self.classes = model.graph.output[0].name
        deciders = [node for node in model.graph.node if node.op_type in CLASS_OPS]
        if not deciders:
            raise UserError(f"the {name} model has no TopK/LabelSelect node: rebuild the HW model artifact")
        self.scores = deciders[-1].input[0]


def _first_difference(stage: _Stage, context: dict, reference: dict, row: int) -> str:
    """The first node of ``stage`` (graph order) whose output differs on image ``row`` from the
    reference stage's tensor of the same name and shape."""
    for node in stage.model.graph.node:
        for name in node.output:
            ours, reference_value = context.get(name), reference.get(name)
            if (name in stage.runner.data and isinstance(reference_value, np.ndarray) and reference_value.shape == ours.shape
                    and not np.array_equal(ours[row], reference_value[row])):
                return f"{node.name} ({node.op_type}) output {name}"
    return f"only its pre-TopK tensor {stage.scores}"


def verify(model: torch.nn.Module, hw_artifact: Artifact, images: np.ndarray, chunk: int = CHUNK) -> Verification:
    """Agreement of every stage on ``images`` (uint8, N x 3 x 32 x 32, as the board receives them)."""
    images = check_images(images)
    start = time.perf_counter()
    qonnx = BatchRunner(ModelWrapper(str(hw_artifact.file(QONNX_MODEL))))
    qonnx_out = qonnx.model.graph.output[0].name
    stages = [_Stage(name, ModelWrapper(str(hw_artifact.file(file)))) for name, file in FINN_STAGES.items()]
    model = model.eval()
    brevitas_top, qonnx_top, diffs = [], [], {"qonnx": 0.0, **{name: 0.0 for name in LOGIT_STAGES}}
    tops = {s.name: [] for s in stages}
    exact = {name: 0 for name in INTEGER_STAGES[1:]}
    first_difference = {}
    for begin in range(0, len(images), chunk):
        batch = images[begin:begin + chunk]
        floats = batch.astype(np.float32) / 255.0
        with torch.no_grad():
            brevitas_logits = model(torch.from_numpy(floats)).double().numpy()
        q_logits = np.asarray(qonnx.run(floats)[qonnx_out], dtype=np.float64).reshape(len(batch), -1)
        brevitas_top.append(np.argmax(brevitas_logits, 1))
        qonnx_top.append(np.argmax(q_logits, 1))
        diffs["qonnx"] = max(diffs["qonnx"], float(np.abs(q_logits - brevitas_logits).max()))
        contexts = {}
        for stage in stages:
            context = stage.runner.run(batch.astype(np.float32))
            tops[stage.name].append(np.asarray(context[stage.classes]).reshape(len(batch)).astype(np.int64))
            if stage.name in LOGIT_STAGES:
                scores = np.asarray(context[stage.scores], dtype=np.float64).reshape(len(batch), -1)
                diffs[stage.name] = max(diffs[stage.name], float(np.abs(scores - q_logits).max()))
            if stage.name in INTEGER_STAGES:
                contexts[stage.name] = (stage, context)
        for before, after in zip(INTEGER_STAGES, INTEGER_STAGES[1:]):
            (ref_stage, ref), (stage, context) = contexts[before], contexts[after]
            after_scores = np.asarray(context[stage.scores]).reshape(len(batch), -1)
            before_scores = np.asarray(ref[ref_stage.scores]).reshape(len(batch), -1)
            same = np.all(after_scores == before_scores, axis=1)
            exact[after] += int(same.sum())
            if after not in first_difference and not same.all():
                row = int(np.flatnonzero(~same)[0])
                first_difference[after] = f"image {begin + row}: {_first_difference(stage, context, ref, row)}"
    total = len(images)
    qonnx_top = np.concatenate(qonnx_top)
    results = [StageResult("qonnx", "brevitas", int(np.sum(np.concatenate(brevitas_top) == qonnx_top)), total,
                           diffs["qonnx"])]
    for stage in stages:
        agree = int(np.sum(np.concatenate(tops[stage.name]) == qonnx_top))
        position = INTEGER_STAGES.index(stage.name) if stage.name in INTEGER_STAGES else None
        bit_exact = {} if not position else dict(exact=exact[stage.name], exact_reference=INTEGER_STAGES[position - 1],
                                                  first_difference=first_difference.get(stage.name))
        results.append(StageResult(stage.name, "qonnx", agree, total, diffs.get(stage.name), **bit_exact))
    return Verification(tuple(results), round(time.perf_counter() - start, 2))


def stored_verification(store: ArtifactStore, checkpoint: Artifact, hw_artifact: Artifact, images: np.ndarray) -> Verification:
    """``verify`` of the checkpoint's CNV through its HW model artifact, cached in the store per
    (checkpoint, HW model, images): a rerun of an experiment or report reads it back."""
    from pynqrepro.finnflow.export import load_cnv

    images = np.ascontiguousarray(check_images(images))
    config = {"images_sha256": hashlib.sha256(images.tobytes()).hexdigest(), "images": len(images),
              "format": VERIFICATION_FORMAT}

    def build(out_dir) -> None:
        result = verify(load_cnv(checkpoint.path), hw_artifact, images)
        (out_dir / "verification.json").write_text(json.dumps(result.to_dict(), indent=2))

    artifact = store.get_or_build("verification", config, build, inputs={"checkpoint": checkpoint,
                                                                        "hw_model": hw_artifact})
    return Verification.from_dict(json.loads(artifact.file("verification.json").read_text()))
