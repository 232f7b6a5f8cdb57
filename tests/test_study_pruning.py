"""The pruning report's Pareto plot draws ours and the study's points from table rows; the drop limits."""

import pytest

from pynqrepro.references import STUDY_PRUNING_SWEEP
from pynqrepro.study.pruning import FIGURE, pareto_plot


def test_pareto_plot_writes_a_png(tmp_path):
    rows = [{"bits": 4, "method": m, "sparsity %": s, "acc %": a, "est fps": f, "source": "pynqrepro (smoke)"}
            for m, s, a, f in [("dense", 0, 97.0, 500), ("simd_blocks", 15, 96.5, 560), ("channels", 15, 96.0, 620)]]
    rows += [{"bits": r.bits, "method": "simd_blocks", "sparsity %": 100 * r.conv_sparsity, "acc %": r.top1,
              "est fps": r.est_fps, "source": "reference: study"} for r in STUDY_PRUNING_SWEEP]
    rows.append({"bits": 4, "method": "dense", "sparsity %": 0, "acc %": 90.0, "est fps": "", "source": "x"})
    pareto_plot(rows, tmp_path)
    assert (tmp_path / FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_scale_limits_the_accuracy_drop_by_the_studys_published_sweep():
    """The paper scale's pruning check allows the drop the study published (its SIMD-block L1 sweep,
    fine-tuned; pynqrepro/references STUDY_PRUNING_SWEEP: 2-bit 88.62% dense, 88.02% at 15%, 83.35%
    at 30%, 69.20% at 45% sparsity) plus 2 points; a sweep losing more is reported."""
    from types import SimpleNamespace

    from pynqrepro.core.scale import AccuracyDropLimit, get_scale
    from pynqrepro.study.pruning import PruningSweeps, allowed_drop

    limits = get_scale("paper").pruning_drop_limits
    assert {(limit.bits, limit.sparsity) for limit in limits} == {(b, s) for b in (2, 4) for s in (0.15, 0.30, 0.45)}
    two_bit = {limit.sparsity: allowed_drop(limit) for limit in limits if limit.bits == 2}
    assert two_bit == pytest.approx({0.15: 88.62 - 88.02 + 2, 0.30: 88.62 - 83.35 + 2, 0.45: 88.62 - 69.20 + 2})
    assert allowed_drop(AccuracyDropLimit(4, 0.30, points=1.5)) == 1.5  # a scale's own figure stands

    def step(method, sparsity, acc):
        return SimpleNamespace(method=method, result=SimpleNamespace(sparsity=sparsity, test_acc=acc, step=1))

    sweeps = SimpleNamespace(case=SimpleNamespace(bits=2), dense_acc=88.0,
                             steps=[step("simd_blocks", 0.31, 81.0), step("channels", 0.29, 80.0)])
    broken = PruningSweeps.drops_beyond(sweeps, (AccuracyDropLimit(2, 0.30, above_published=2.0),))
    assert broken == ["channels step 1 (29.0% sparse) loses 8.00 points, more than 7.27"]
