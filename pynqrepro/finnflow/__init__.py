"""FINN flow stage: trained CNV -> QONNX -> HW-layer model for a board -> FINN's estimates.

Public API (everything runs without Xilinx tools):

- ``export_qonnx(model) -> ModelWrapper`` and ``load_cnv(checkpoint)``        (export.py)
- ``build_hw_model(qonnx_model, board) -> HWBuild`` (FINN's estimate-only builder steps up to
  layer specialisation) and ``hw_model_artifact(store, checkpoint_artifact, board)``, its cached
  form per (checkpoint, board); ``load_hw_model(artifact)``                  (build.py)
- ``apply_folding(hw_model, folding) -> ModelWrapper`` (FINN ApplyConfig dict, None = all
  PE=SIMD=1, validated; then FINN's bit-width minimisation), ``validate_folding``,
  ``all_ones_folding``, ``published_folding(hw_model, w, a)`` (FINN's published CNV foldings as
  the model names its nodes), ``resolve_folding`` (a folding named on the command line)
                                                                             (foldconfig.py)
- ``estimate(model, part, clock_ns) -> NetworkEstimate`` and ``FoldingEvaluator`` (many foldings
  of one HW model, ~tens of ms each)                                         (estimate.py)
- ``verify(model, hw_artifact, uint8_images) -> Verification``: top-1 agreement and logit
  differences per stage, first diverging stage                               (verify.py)

FINN is booted (settings, build dir, Vivado-less import of its builder) by ``finn_setup``.
"""

from pynqrepro.finnflow.build import HWBuild, build_hw_model, hw_model_artifact, load_hw_model
from pynqrepro.finnflow.estimate import FoldingEvaluator, LayerEstimate, NetworkEstimate, estimate
from pynqrepro.finnflow.export import export_qonnx, load_cnv
from pynqrepro.finnflow.foldconfig import (
    all_ones_folding,
    apply_folding,
    published_folding,
    resolve_folding,
    validate_folding,
)
from pynqrepro.finnflow.verify import Verification, verify

__all__ = [
    "FoldingEvaluator", "HWBuild", "Verification", "LayerEstimate", "NetworkEstimate", "all_ones_folding", "apply_folding",
    "build_hw_model", "estimate", "export_qonnx", "hw_model_artifact", "load_cnv", "load_hw_model",
    "published_folding", "resolve_folding", "validate_folding", "verify",
]
