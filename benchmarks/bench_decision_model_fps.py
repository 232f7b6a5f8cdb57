"""Headline foldings on pynqrepro's estimate vs FINN's raw estimate: the fastest whole design
(compute nodes, FINN's DWCs/FIFOs at minimal depth, shell) that fits Pynq-Z1 at LUT ratio 1.0 and
0.85, for untrained CNVs (seed 0, as tests/test_folding.py builds them) at 1w1a, 2w2a, 4w4a.
Prints fps on each model and the ratio. Run: .venv/bin/python benchmarks/bench_decision_model_fps.py"""

import torch
from tabulate import tabulate

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.finnflow.hw_build import build_hw_model
from pynqrepro.finnflow.export import export_qonnx
from pynqrepro.folding.optimise import board_budget, optimise
from pynqrepro.folding.space import SpaceOptions
from pynqrepro.folding.wholedesign import build_design
from pynqrepro.models.cnv import CNV

BOARD = get_board("pynq-z1")


def fastest(design, budget):
    try:
        return optimise(design, budget)
    except UserError:
        return None


rows = []
for bits in (1, 2, 4):
    torch.manual_seed(0)
    model = build_hw_model(export_qonnx(CNV(bits, bits).eval()), BOARD).hw_model
    for label, options in (("PE/SIMD", SpaceOptions()), ("+LUTRAM weights", SpaceOptions(choose_ram_style=True)),
                           ("all FINN choices", SpaceOptions.all_finn_choices())):
        design = build_design(model, BOARD, options)
        for ratio in (1.0, 0.85):
            budget = board_budget(BOARD, ratio)
            ours, finn = fastest(design, budget), fastest(design.as_finn_estimates(), budget)
            fps = [round(f.fps(BOARD.clock_ns), 1) if f else None for f in (finn, ours)]
            rows.append((f"{bits}w{bits}a", label, ratio, *fps, round(fps[1] / fps[0], 3) if all(fps) else None,
                         ours.total("LUT") if ours else None, ours.finn_total("LUT") if ours else None))
print(tabulate(rows, headers=["CNV", "space", "LUT ratio", "fps on FINN raw", "fps on ours", "ours / FINN",
                              "LUT (ours)", "LUT (FINN raw, same folding)"]))
