"""Vivado synthesis beside FINN's estimates (reports/synthesis.md).

Method: FINN's full build of the trained CNVs at FINN's published foldings and at the exact folding
optimiser's choice within the study's LUT budget; out-of-context and whole-design (shell included)
utilisation and timing beside FINN's estimate of the same folding, with the study's out-of-context
runs as reference rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.references import STUDY_FOLDING_RUNS, STUDY_LUT_RATIO, select
from pynqrepro.study import Bits, bit_widths

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report synthesis --help` is quick
    from pynqrepro.finnflow.estimate import NetworkEstimate
    from pynqrepro.pipeline import Network, Setup
    from pynqrepro.synthesis.build import SynthesisBuild

EXPERIMENT = "experiments/test_synthesis.py::test_synthesis"
TABLE = "synthesis"
TITLE = "Vivado synthesis beside FINN's estimates"
NOTES = [
    "FINN (finn-plus) builder, BNN-PYNQ steps after layer specialisation: folding, hardware generation with "
    "FIFO sizing, stitched IP, out-of-context synthesis, Zynq bitfile, PYNQ driver, deployment package.",
    "OOC: the accelerator alone (FINN's ooc_synth_and_timing.json), the figures FINN's estimates model; "
    "est/synth ratios against OOC, BRAM in 18 Kb units. Whole design: post-synthesis utilisation of the "
    "Zynq design with shell (post_synth_resources.json), WNS/fmax after routing (post_route_timing.rpt).",
    f"exact: pynqrepro's folding optimiser at {STUDY_LUT_RATIO:g} x the board's LUTs (FINN's cost model), budgeting "
    "the whole design (compute nodes, FINN's DWCs and FIFOs at minimal depths, the board's shell); the build "
    "then sizes its FIFOs by simulation, so its design LUT/BRAM may exceed that estimate.",
    "Study rows: its OOC synthesis results (FINN v0.5b, Pynq-Z1, 10 ns) with its own estimates.",
]
CASES = bit_widths((1, 1), (1, 2), (2, 2))  # FINN publishes CNV foldings for these


@dataclass(frozen=True)
class Synthesis:
    """One folding's build beside FINN's estimate of it."""

    folding_name: str
    folding: dict
    build: SynthesisBuild
    estimate: NetworkEstimate


@dataclass(frozen=True)
class Syntheses:
    case: Bits
    network: Network
    builds: list  # Synthesis per folding built
    unbuilt: dict  # folding name -> why there is no such folding (nothing fits the budget)


def _exact_folding(network: Network) -> tuple[dict | None, str]:
    """The exact optimiser's folding whose whole design fits the study's LUT budget, or why none fits."""
    from pynqrepro.folding.optimise import board_budget, optimise
    from pynqrepro.folding.wholedesign import build_design

    budget = board_budget(network.board, STUDY_LUT_RATIO)
    try:
        return optimise(build_design(network.hw_model, network.board), budget).config(), ""
    except UserError as exc:  # nothing fits the budget: recorded as a note row
        return None, str(exc)


def _synthesise(setup: Setup, network: Network, name: str, folding: dict) -> Synthesis:
    """Build (or reuse) the design, and add its reports to the store's calibration set, so the next
    fold on this store budgets with the refitted model (``pynqrepro calibrate``)."""
    from pynqrepro.pipeline import synthesis_build
    from pynqrepro.synthesis.calibrate import add_build

    build = synthesis_build(setup, network, folding)
    add_build(setup.store.root, build.build_dir, network.board.name)
    return Synthesis(name, folding, build, network.estimate(folding))


def measure(setup: Setup, case: Bits) -> Syntheses:
    from pynqrepro.pipeline import trained_network

    network = trained_network(setup, case.weight_bits, case.act_bits)
    builds, unbuilt = [_synthesise(setup, network, "FINN published", network.published_folding())], {}
    exact, why_not = _exact_folding(network)
    name = f"exact, {STUDY_LUT_RATIO:g} LUT"
    if exact is None:
        unbuilt[name] = why_not
    else:
        builds.append(_synthesise(setup, network, name, exact))
    return Syntheses(case, network, builds, unbuilt)


def tabulate(results: Recorder, setup: Setup, syntheses: Syntheses) -> None:
    from pynqrepro.synthesis.reports import estimate_ratios

    case, network, board = syntheses.case, syntheses.network, setup.board
    table = results.table(TABLE, title=TITLE, notes=NOTES)
    for synthesis in syntheses.builds:
        est, ooc, system = synthesis.estimate.totals, synthesis.build.ooc, synthesis.build.system
        table.add({
            "model": case.model, "board": board.name, "folding": synthesis.folding_name,
            "est. LUT": round(est["lut"]), "OOC LUT": ooc.lut, "OOC FF": ooc.ff,
            "est. BRAM18": round(est["bram18"]), "OOC BRAM36": ooc.bram36,
            "est. DSP": round(est["dsp"]), "OOC DSP": ooc.dsp,
            **estimate_ratios(est["lut"], est["bram18"], est["dsp"], ooc),
            "OOC WNS ns": ooc.wns_ns, "OOC fmax MHz": round(ooc.fmax_mhz, 1),
            "design LUT": system.lut, "design BRAM36": system.bram36, "design WNS ns": system.wns_ns,
            "design fmax MHz": round(system.fmax_mhz, 1), "est. fps": round(synthesis.estimate.est_fps, 1),
            "FIFO depths": synthesis.build.fifo_depths,
            "source": f"pynqrepro ({setup.scale.name}, {board.clock_ns} ns)",
        }, config={"hw_model": network.hw.key, "build": synthesis.build.key, "folding": synthesis.folding})
    for name, why_not in syntheses.unbuilt.items():
        table.add({"model": case.model, "board": board.name, "folding": name, "note": why_not,
                   "source": f"pynqrepro ({setup.scale.name})"}, config={"hw_model": network.hw.key})
    for run in select(STUDY_FOLDING_RUNS, board=board.name, weight_bits=case.weight_bits, act_bits=case.act_bits):
        if run.synthesised:
            table.add_reference(run, {
                "model": case.model, "board": run.board, "folding": run.method,
                "est. LUT": run.est_lut, "OOC LUT": run.ooc_lut, "OOC FF": run.ooc_ff,
                "est. BRAM18": run.est_bram18, "OOC BRAM36": run.ooc_bram36, "OOC DSP": run.ooc_dsp,
                "LUT est/synth": round(run.est_lut / run.ooc_lut, 3),
                "BRAM18 est/synth": round(run.est_bram18 / (2 * run.ooc_bram36), 3),
                "OOC fmax MHz": run.ooc_fmax_mhz, "est. fps": run.est_fps,
            }, config={"run": run.run})
