"""Search time per network and cost-model evaluations per second vs FINN's own estimator; per
budget the compute-only search beside the whole-design search (FINN's DWCs, FIFOs and the shell),
with and without width converters.

Usage: python benchmarks/bench_folding.py HW_MODEL.onnx [--board pynq-z1]
"""

import argparse
import time

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.finn_setup import boot_finn
from pynqrepro.folding import costmodel
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import SpaceOptions, build_space
from pynqrepro.folding.wholedesign import build_design


def _search(space, budget, clock_ns: float) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, result) of one exact search; an infeasible budget is a result
    here. CPU time is this process's, which other load on a shared machine does not inflate."""
    t, cpu = time.perf_counter(), time.process_time()
    try:
        folding = optimise(space, budget)
        result = (f"{folding.fps(clock_ns):,.1f} fps, {folding.total('LUT'):,} LUT, "
                  f"{folding.total('BRAM_18K')} BRAM18, {folding.total('DSP')} DSP"
                  + (f", {folding.converters} DWCs" if folding.whole_design else ""))
    except UserError as exc:
        result = f"infeasible ({exc})"
    return time.perf_counter() - t, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--board", default="pynq-z1")
    args = parser.parse_args()
    boot_finn()
    board = get_board(args.board)
    model = ModelWrapper(args.model)
    spaces = {"exact": SpaceOptions(), "exact+LUTRAM": SpaceOptions(choose_ram_style=True),
              "exact+all FINN options": SpaceOptions.all_finn_choices()}
    mvaus = [g for g in build_space(model, board.part, spaces["exact+all FINN options"])
             if g.nodes[0].op_type.startswith("MVAU")]
    n = 200_000
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for g in mvaus:
        idx = rng.integers(0, len(g), n // len(mvaus))
        costmodel.mvau_costs(g.nodes[0], g.params["PE"][idx], g.params["SIMD"][idx], g.params["ram_style"][idx],
                      res_type=g.params["resType"][idx])
    ours = n / (time.perf_counter() - t)
    samples = [(g, int(i)) for g in mvaus for i in rng.integers(0, len(g), 20)]
    t = time.perf_counter()
    for g, i in samples:
        costmodel.finn_costs(g.nodes[0], [g.assignment(i)[g.name]])
    finn = len(samples) / (time.perf_counter() - t)
    print(f"cost model: {ours:,.0f} candidate evaluations/s (numpy) vs {finn:,.0f}/s (FINN node methods): "
          f"{ours / finn:,.0f}x")
    for method, options in spaces.items():
        t = time.perf_counter()
        groups = build_space(model, board.part, options)
        built = time.perf_counter() - t
        t = time.perf_counter()
        design = build_design(model, board, options)
        no_dwc = build_design(model, board, options, width_converters=False)
        print(f"{method}: space of {sum(len(g) for g in groups):,} candidates built in {built:.3f} s; whole design "
              f"({len(design.insertions.edges)} streams) in {(time.perf_counter() - t) / 2:.3f} s")
        for ratio in (1.0, 0.85, 0.7):
            budget = board_budget(board, ratio)
            compute_s, compute_cpu, compute = _search(groups, budget, board.clock_ns)
            whole_s, whole_cpu, whole = _search(design, budget, board.clock_ns)
            no_dwc_s, no_dwc_cpu, no_dwc_result = _search(no_dwc, budget, board.clock_ns)
            print(f"  LUT ratio {ratio}: compute-only search {compute_s:.3f} s ({compute_cpu:.3f} s CPU) -> {compute}\n"
                  f"    whole-design search {whole_s:.3f} s ({whole_cpu:.3f} s CPU, {whole_s / compute_s:.1f}x)"
                  f" -> {whole}\n"
                  f"    whole design, no width converters {no_dwc_s:.3f} s ({no_dwc_cpu:.3f} s CPU) -> {no_dwc_result}")

if __name__ == "__main__":
    main()
