"""Experiment: the FINN flow on the trained CNVs (reports/finn_estimates.md): verification (top-1
through every stage, the integer stages bit for bit), then FINN's estimates on the board at
all-ones folding and at FINN's published CNV foldings, beside the study's FINN v0.5b estimate
runs. The method is ``pynqrepro.study.finn_flow``; ``pynqrepro report finn_estimates`` records the
same rows."""

import pytest

from pynqrepro.study import finn_flow


@pytest.mark.study(finn_flow)
def test_finn_flow(setup, results, case):
    flow = finn_flow.measure(setup, case)
    finn_flow.tabulate(results, setup, flow)

    check = flow.verification
    assert check.first_divergence is None, f"FINN flow diverges first at {check.first_divergence}: {check.agreement()}"
    assert check.first_inexact is None, f"FINN's integer stages are not bit-exact: {check.exactness()}"
    qonnx = check.stages[0]  # 1-bit nets may differ from Brevitas at exact sign boundaries
    assert qonnx.agree == qonnx.total or case.weight_bits == 1, \
        f"QONNX export disagrees with Brevitas: {check.agreement()}"
