"""FINN flow stage: trained CNV -> QONNX -> HW-layer model for a board -> FINN's estimates.

Public API (everything runs without Xilinx tools):

- ``export_qonnx(model) -> ModelWrapper`` and ``load_cnv(checkpoint)``        (export.py)
- ``build_hw_model(qonnx_model, board) -> HWBuild`` (FINN's estimate-only builder steps up to
  layer specialisation) and ``hw_model_artifact(store, checkpoint_artifact, board)``, its cached
  form per (checkpoint, board); ``load_hw_model(artifact)``                  (hw_build.py)
- ``apply_folding(hw_model, folding) -> ModelWrapper`` (FINN ApplyConfig dict, None = all
  PE=SIMD=1, validated; then FINN's bit-width minimisation), ``validate_folding``,
  ``all_ones_folding``, ``published_folding(hw_model, w, a)`` (FINN's published CNV foldings as
  the model names its nodes), ``folding_resolver`` (a folding named on the command line)
                                                                             (foldconfig.py)
- ``estimate(model, part, clock_ns) -> NetworkEstimate`` and ``FoldingEvaluator`` (many foldings
  of one HW model, ~tens of ms each)                                         (estimate.py)
- ``verify(model, hw_artifact, uint8_images) -> Verification``: top-1 agreement and logit
  differences per stage, first diverging stage, bit-exact images of the integer stages and the
  first node that differs; ``stored_verification`` caches it in the store   (verify.py)
- ``BatchRunner`` / ``execute_batched``: FINN's Python execution of a graph over a batch of
  inputs at once                                                             (execute.py)

FINN is booted (settings, build dir, Vivado-less import of its builder) by ``finn_setup``.
"""
