"""The pruning report's Pareto plot draws ours and the study's points from table rows."""

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
