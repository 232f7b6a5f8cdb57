"""Wall time of the FINN estimate flow for one CNV (targets: export + estimate <= 30 s, cached
re-estimate with a new folding <= 50 ms). Run: python benchmarks/bench_finn_flow.py [--bits 2 2]"""

import argparse
import statistics
import time

import torch

from pynqrepro.core.boards import get_board
from pynqrepro.core.options import add_board_option
from pynqrepro.finnflow.hw_build import build_hw_model
from pynqrepro.finnflow.estimate import FoldingEvaluator, estimate
from pynqrepro.finnflow.export import export_qonnx
from pynqrepro.finnflow.foldconfig import all_ones_folding, apply_folding, published_folding
from pynqrepro.models.cnv import CNV

FLOW_TARGET_S = 30.0
REESTIMATE_TARGET_S = 0.050


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", nargs=2, type=int, default=(2, 2), metavar=("W", "A"))
    add_board_option(parser.add_argument)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    board = get_board(args.board)
    torch.manual_seed(0)
    model = CNV(*args.bits).eval()

    start = time.perf_counter()
    qonnx_model = export_qonnx(model)
    exported = time.perf_counter()
    hw_model = build_hw_model(qonnx_model, board).hw_model
    built = time.perf_counter()
    first = estimate(apply_folding(hw_model, None), board.part)
    done = time.perf_counter()
    flow = done - start
    print(f"export {exported - start:.2f} s, FINN steps {built - exported:.2f} s, "
          f"fold+estimate {done - built:.2f} s: flow {flow:.2f} s "
          f"(target {FLOW_TARGET_S:.0f} s, ratio {flow / FLOW_TARGET_S:.2f}); all-ones max cycles {first.max_cycles}")

    published = published_folding(hw_model, *args.bits)
    start = time.perf_counter()
    full = estimate(apply_folding(hw_model, published), board.part)
    full_s = time.perf_counter() - start
    evaluator = FoldingEvaluator(hw_model, board.part)
    foldings = [published, all_ones_folding(hw_model)]
    times = []
    for i in range(args.repeats):
        start = time.perf_counter()
        evaluator.evaluate(foldings[i % 2])
        times.append(time.perf_counter() - start)
    assert evaluator.evaluate(published) == full
    median = statistics.median(times)
    print(f"re-estimate, FINN path (apply_folding + bit-width minimisation + estimate): {full_s * 1e3:.0f} ms")
    print(f"re-estimate, FoldingEvaluator (median of {args.repeats}): {median * 1e3:.1f} ms "
          f"(target {REESTIMATE_TARGET_S * 1e3:.0f} ms, ratio {median / REESTIMATE_TARGET_S:.2f}); "
          f"speed-up over FINN path {full_s / median:.1f}x; published max cycles {full.max_cycles}")


if __name__ == "__main__":
    main()
