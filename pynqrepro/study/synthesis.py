"""Vivado synthesis beside FINN's estimates (reports/synthesis.md): every design we make a claim
about, built.

Method: for each bit width the harness trains, FINN's full build of the designs the reports stand
behind, wherever a whole design fits the board: the exact optimiser's folding at the calibrated
budget, FINN's published folding (W1A1, W1A2, W2A2), the fastest channel-pruned network of the
pruning sweep within 1 point of the dense accuracy, and the design-space report's recommended
designs. Each row puts out-of-context and whole-design utilisation and timing beside FINN's raw
estimate and our whole-design estimate with its calibrated bound; a design that is not built is a
row saying why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.references import STUDY_FOLDING_RUNS, has_finn_folding, select
from pynqrepro.study import Bits

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report synthesis --help` is quick
    from pynqrepro.finnflow.estimate import NetworkEstimate
    from pynqrepro.folding.budget_calibration import Margins
    from pynqrepro.folding.optimise import Folding
    from pynqrepro.pipeline import Network, Setup
    from pynqrepro.synthesis.vivado_build import SynthesisBuild

EXPERIMENT = "experiments/test_synthesis.py::test_synthesis"
TABLE = "synthesis"
TITLE = "Vivado synthesis beside FINN's estimates"
BUILT_BITS = ((1, 1), (1, 2), (2, 2), (4, 4), (8, 8))  # every CNV the harness trains
DESIGNS = ("exact", "published", "pruned", "recommended")
PRUNED_BITS = (2, 4, 8)  # the bit widths the pruning study sweeps (pynqrepro.study.pruning.CASES)
PRUNED_MAX_DROP = 1.0  # accuracy points a pruned network may lose against its dense parent
DESIGN_SPACE = "design_space.json"  # the design-space report's rows, in --reports-dir
NOTES = [
    "FINN (finn-plus) builder, BNN-PYNQ steps after layer specialisation: folding, hardware generation with "
    "FIFO sizing, stitched IP, out-of-context synthesis, Zynq bitfile, PYNQ driver, deployment package.",
    "OOC: the accelerator alone (FINN's ooc_synth_and_timing.json), the figures FINN's estimates model; "
    "est/synth ratios against OOC, BRAM in 18 Kb units. design: post-synthesis utilisation of the Zynq design "
    "with shell (post_synth_resources.json), WNS/fmax after routing (post_route_timing.rpt).",
    "FINN est.: FINN's raw estimate of the compute nodes. ours: our whole-design estimate (compute nodes, the "
    "DWCs and FIFOs FINN's build inserts at minimal depths, the board's shell); bound: ours / the calibrated "
    "margin (reports/calibration.md), the most the real design needs if the published syntheses are typical; "
    "fits (certified): every bound within the device.",
    "exact: the optimiser at the calibrated budget (the device x the calibrated margins). published: FINN's "
    f"shipped folding. pruned: the fastest channel-pruned step within {PRUNED_MAX_DROP:g} point of the dense "
    "accuracy, folded by the optimiser at the same budget. recommended: the design-space report's "
    "recommendations at this bit width (a mixed-precision one under the narrowest case covering its widest "
    "layer). A design whose estimate exceeds the device is not built; its row says why.",
    "Study rows: its OOC synthesis results (FINN v0.5b, Pynq-Z1, 10 ns) with its own estimates.",
]


@dataclass(frozen=True)
class Build(Bits):
    """A case of the Vivado (and board) stage: one design of one CNV."""

    design: str

    @property
    def id(self) -> str:
        return f"{self.weight_bits}w{self.act_bits}a-{self.design}"

    @property
    def trains(self) -> bool:
        """The pruned design fine-tunes (the pruning sweep): GPU work at a GPU scale."""
        return self.design == "pruned"


CASES = tuple(Build(w, a, design) for w, a in BUILT_BITS for design in DESIGNS)


@dataclass(frozen=True)
class Candidate:
    """A design to build, or why there is none: ``folding`` None and ``why_not`` says."""

    name: str
    network: Network | None = None
    folding: dict | None = None
    why_not: str = ""
    config: dict = field(default_factory=dict)  # provenance beyond the network and folding


@dataclass(frozen=True)
class Judged:
    """A candidate's estimates: ours (the whole design) with its calibrated bound, and FINN's."""

    ours: Folding
    margins: Margins
    finn: NetworkEstimate

    def bound(self, resource: str) -> int:
        from pynqrepro.folding.budget_calibration import budgeted

        return budgeted(self.ours.total(resource), resource, self.margins)

    def certified(self, board) -> bool:
        return all(self.bound(r) <= limit for r, limit in device_limits(board).items())

    def over_device(self, board) -> list[str]:
        """Resources whose estimate (ours, not the bound) exceeds the device."""
        return [f"{r} {self.ours.total(r):,} > {limit:,}" for r, limit in device_limits(board).items()
                if self.ours.total(r) > limit]


def device_limits(board) -> dict:
    """The resources a certified design is judged on (``Board.limits`` without URAM: no CNV uses it)."""
    return {r: n for r, n in board.limits().items() if r in ("LUT", "BRAM_18K", "DSP")}


@dataclass(frozen=True)
class Synthesis:
    """One candidate: its build, or why it was not built."""

    candidate: Candidate
    judged: Judged | None = None
    build: SynthesisBuild | None = None
    why_not: str = ""


@dataclass(frozen=True)
class Syntheses:
    case: Build
    builds: list  # Synthesis per candidate


def calibrated_margins(setup: Setup) -> Margins:
    """The calibrated budget fractions (``pynqrepro fold``'s default) of this store."""
    from pynqrepro.folding.budget_calibration import calibrated_margins as margins

    return margins(setup.store.root)


def calibrated_budget(setup: Setup):
    """``pynqrepro fold``'s default budget on this board and store."""
    from pynqrepro.folding.budget_calibration import calibrated_budget as budget

    return budget(setup.board, setup.store.root)


def _optimised(name: str, network: Network, setup: Setup, config: dict | None = None) -> Candidate:
    """The exact optimiser's folding of ``network`` at the calibrated budget, or why none fits."""
    from pynqrepro.folding.optimise import optimise
    from pynqrepro.folding.pruned import folding_design

    try:
        folding = optimise(folding_design(network.hw_model, network.board), calibrated_budget(setup))
    except UserError as exc:  # nothing fits the budget: a row that says so
        return Candidate(name, network, why_not=str(exc), config=config or {})
    return Candidate(name, network, folding.config(), config=config or {})


def _exact(setup: Setup, case: Build) -> list[Candidate]:
    from pynqrepro.pipeline import trained_network

    return [_optimised("exact", trained_network(setup, case.weight_bits, case.act_bits), setup)]


def _published(setup: Setup, case: Build) -> list[Candidate]:
    from pynqrepro.pipeline import trained_network

    if not has_finn_folding(case.weight_bits, case.act_bits):
        return [Candidate("FINN published", why_not=f"FINN publishes no {case.model} folding "
                                                    "(it ships W1A1, W1A2 and W2A2)")]
    network = trained_network(setup, case.weight_bits, case.act_bits)
    return [Candidate("FINN published", network, network.published_folding())]


def _pruned(setup: Setup, case: Build) -> list[Candidate]:
    """The fastest channel-pruned step of the pruning sweep within ``PRUNED_MAX_DROP`` of the dense
    accuracy, at the calibrated budget (channel pruning: an ordinary smaller network stock FINN builds)."""
    if case.weight_bits != case.act_bits or case.weight_bits not in PRUNED_BITS:
        return [Candidate("pruned", why_not=f"the pruning study sweeps {', '.join(f'W{b}A{b}' for b in PRUNED_BITS)}; "
                                            f"it prunes no {case.model}")]
    from pynqrepro.finnflow.hw_build import hw_model_artifact
    from pynqrepro.folding.optimise import optimise
    from pynqrepro.folding.pruned import folding_design
    from pynqrepro.pipeline import Network
    from pynqrepro.pruning.sweep import run_sweep, sweep_recipe
    from pynqrepro.training.recipes import trained_checkpoint, training_result
    from pynqrepro.training.trainer import RunOptions

    store, board, bits = setup.store, setup.board, case.weight_bits
    dense = trained_checkpoint(store, setup.scale, bits, bits, setup.data_dir)
    dense_acc = training_result(dense).test_acc
    run = RunOptions(experiments=store.root, data_dir=setup.data_dir, progress=False)
    sweep = sweep_recipe(setup.scale, bits, "channels")
    best, budget = None, calibrated_budget(setup)
    for artifact, result in run_sweep(store, dense, sweep, run, bit_width=bits):
        if dense_acc - result.test_acc > PRUNED_MAX_DROP:
            continue
        network = Network(bits, bits, artifact, hw_model_artifact(store, artifact, board), board)
        try:
            folding = optimise(folding_design(network.hw_model, board), budget)
        except UserError:
            continue
        if best is None or folding.max_cycles < best[0].max_cycles:
            best = (folding, network, result)
    if best is None:
        return [Candidate("pruned", why_not=f"no channel-pruned step within {PRUNED_MAX_DROP:g} point of the "
                                            f"dense {dense_acc:.2f}% fits the calibrated budget")]
    folding, network, result = best
    name = f"pruned (channels step {result.step}, {100 * result.sparsity:.0f}% sparse)"
    return [Candidate(name, network, folding.config(), config={"artifact": network.checkpoint.key})]


def _markdown_target(text: str) -> str:
    """The path of a Markdown link ``[name](path)``, or the text itself."""
    match = re.search(r"\]\(([^)]+)\)", text)
    return match.group(1) if match else text


def recommended_rows(reports_dir: Path | None, board: str) -> tuple[list[dict], str]:
    """(the design-space report's recommended rows for ``board``, why there are none)."""
    path = Path(reports_dir or "reports") / DESIGN_SPACE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], (f"no design-space report at {path}: run experiments/test_design_space.py "
                    "(or pynqrepro explore) first")
    rows = [r["values"] for r in data.get("rows", []) if r.get("values", {}).get("board") == board
            and r["values"].get("recommended")]
    return rows, "" if rows else f"{path} recommends no design for {board}"


def _checkpoint(store, key: str):
    """The store's checkpoint artifact of ``key`` (any stage: trained, imported, pruned), or None."""
    from pynqrepro.core.store import MANIFEST, Artifact, is_built

    for path in sorted(Path(store.root).glob(f"*/{key}")):
        if is_built(path):
            manifest = json.loads((path / MANIFEST).read_text())
            return Artifact(manifest["stage"], key, path, manifest["config"])
    return None


def case_bits(weight_bits: int, act_bits: int) -> tuple[int, int]:
    """The built bit widths under whose case a design of these (widest) bits is built: its own, or
    the narrowest that covers a mixed design's widest layer, so each design is built exactly once."""
    return next(((w, a) for w, a in BUILT_BITS if w >= weight_bits and a >= act_bits), BUILT_BITS[-1])


def _recommended(setup: Setup, case: Build) -> list[Candidate]:
    """The design-space report's recommended designs for the board built under ``case``: those
    whose (widest) bits ``case_bits`` maps to it, mixed precision included."""
    from pynqrepro.finnflow.hw_build import hw_model_artifact
    from pynqrepro.finnflow.foldconfig import read_folding
    from pynqrepro.pipeline import Network
    from pynqrepro.training.checkpoint import find_checkpoint, read_checkpoint

    rows, why_not = recommended_rows(setup.reports_dir, setup.board.name)
    if not rows:
        return [Candidate("recommended", why_not=why_not)]
    out, elsewhere = [], []
    for row in rows:
        name = f"recommended: {row['recommended']}"
        checkpoint = _checkpoint(setup.store, str(row.get("checkpoint key", "")))
        if checkpoint is None:
            out.append(Candidate(name, why_not=f"checkpoint {row.get('checkpoint key')} of the design-space report "
                                               f"is not in the store {setup.store.root}: use the store it was made in"))
            continue
        trained = read_checkpoint(find_checkpoint(checkpoint.path))["config"]
        bits = (trained["weight_bits"], trained["act_bits"])
        layers = trained.get("layer_bits")
        if case_bits(*bits) != case.cnv_bits:
            elsewhere.append(f"{row['recommended']} ({layers or 'W%sA%s' % bits})")
            continue
        if layers:
            name += f" ({layers})"
        folding_path = Path(setup.reports_dir or "reports") / _markdown_target(str(row.get("folding JSON", "")))
        network = Network(*bits, checkpoint, hw_model_artifact(setup.store, checkpoint, setup.board), setup.board)
        out.append(Candidate(name, network, read_folding(folding_path), config={"checkpoint": checkpoint.key}))
    if not out:
        out.append(Candidate("recommended", why_not=f"the design-space report recommends no {case.model} for "
                                                    f"{setup.board.name}; its recommendations: {'; '.join(elsewhere)} "
                                                    "(built under their own bit widths' cases)"))
    return out


CANDIDATES = {"exact": _exact, "published": _published, "pruned": _pruned, "recommended": _recommended}


def candidates(setup: Setup, case: Build) -> list[Candidate]:
    """The designs of ``case`` (several for 'recommended'), each with its folding or why none."""
    return CANDIDATES[case.design](setup, case)


def judge(setup: Setup, candidate: Candidate) -> Judged:
    from pynqrepro.folding.baselines import from_applied_config

    network = candidate.network
    ours = from_applied_config(network.hw_model, network.board, candidate.folding, candidate.name)
    return Judged(ours, calibrated_margins(setup), network.estimate(candidate.folding))


def buildable(setup: Setup, candidate: Candidate) -> tuple[Judged | None, str]:
    """(its estimates, why it is not built): a design is built where our estimate of its whole
    design fits the device."""
    if candidate.folding is None:
        return None, candidate.why_not
    judged = judge(setup, candidate)
    over = judged.over_device(setup.board)
    if over:
        return judged, f"does not fit {setup.board.name} (whole-design estimate: {', '.join(over)}): not built"
    return judged, ""


def _synthesise(setup: Setup, candidate: Candidate):
    """Build (or reuse) the design, and add its reports to the store's calibration set, so the next
    fold on this store budgets with the refitted model (``pynqrepro calibrate``)."""
    from pynqrepro.pipeline import synthesis_build
    from pynqrepro.synthesis.calibrate import add_build

    build = synthesis_build(setup, candidate.network, candidate.folding)
    add_build(setup.store.root, build.build_dir, setup.board.name)
    return build


def measure(setup: Setup, case: Build) -> Syntheses:
    builds = []
    for candidate in candidates(setup, case):
        judged, why_not = buildable(setup, candidate)
        build = _synthesise(setup, candidate) if not why_not else None
        builds.append(Synthesis(candidate, judged, build, why_not))
    return Syntheses(case, builds)


def _ratio(value, of) -> float | None:
    return round(value / of, 3) if value is not None and of else None


def synthesis_row(model: str, board, synthesis: Synthesis) -> dict:
    """A row: FINN's raw estimate, ours with its bound and the certified verdict, then the build's
    figures (OOC and whole design) where it was built, else why not."""
    row = {"model": model, "board": board.name, "design": synthesis.candidate.name}
    judged = synthesis.judged
    if judged is not None:
        finn = judged.finn.totals
        row.update({
            "fits (certified)": "yes" if judged.certified(board) else "no",
            "est. fps": round(judged.ours.fps(board.clock_ns), 1),
            "FINN LUT": round(finn["lut"]), "FINN BRAM18": round(finn["bram18"]), "FINN DSP": round(finn["dsp"]),
            "our LUT": judged.ours.total("LUT"), "LUT bound": judged.bound("LUT"),
            "our BRAM18": judged.ours.total("BRAM_18K"), "BRAM18 bound": judged.bound("BRAM_18K"),
            "our DSP": judged.ours.total("DSP"), "DSP bound": judged.bound("DSP"),
        })
    build = synthesis.build
    if build is not None:
        ooc, system = build.ooc, build.system
        row.update({
            "OOC LUT": ooc.lut, "OOC FF": ooc.ff, "OOC BRAM36": ooc.bram36, "OOC DSP": ooc.dsp,
            "OOC fmax MHz": round(ooc.fmax_mhz, 1),
            "design LUT": system.lut, "design BRAM36": system.bram36, "design DSP": system.dsp,
            "design fmax MHz": round(system.fmax_mhz, 1), "FIFO depths": build.fifo_depths,
            "FINN/OOC LUT": _ratio(row.get("FINN LUT"), ooc.lut),
            "ours/design LUT": _ratio(row.get("our LUT"), system.lut),
        })
    if synthesis.why_not:
        row["note"] = synthesis.why_not
    return row


def tabulate(results: Recorder, setup: Setup, syntheses: Syntheses) -> None:
    case, board = syntheses.case, setup.board
    table = results.table(TABLE, title=TITLE, notes=NOTES, summary=f"{__name__}:first_screen")
    source = f"pynqrepro ({setup.scale.name}, {board.clock_ns} ns)"
    for synthesis in syntheses.builds:
        candidate = synthesis.candidate
        config = {**candidate.config, "folding": candidate.folding}
        if candidate.network is not None:
            config["hw_model"] = candidate.network.hw.key
        if synthesis.build is not None:
            config["build"] = synthesis.build.key
        table.add({**synthesis_row(case.model, board, synthesis), "source": source}, config=config)
    if case.design != "exact":
        return  # the study's runs once per bit width
    for run in select(STUDY_FOLDING_RUNS, board=board.name, weight_bits=case.weight_bits, act_bits=case.act_bits):
        if run.synthesised:
            table.add_reference(run, {
                "model": case.model, "board": run.board, "design": run.method, "est. fps": run.est_fps,
                "FINN LUT": run.est_lut, "FINN BRAM18": run.est_bram18,
                "OOC LUT": run.ooc_lut, "OOC FF": run.ooc_ff, "OOC BRAM36": run.ooc_bram36, "OOC DSP": run.ooc_dsp,
                "OOC fmax MHz": run.ooc_fmax_mhz, "FINN/OOC LUT": round(run.est_lut / run.ooc_lut, 3),
            }, config={"run": run.run})


def first_screen(rows: list[dict]) -> list[str]:
    """synthesis.md's answer: per CNV and design, whether it was built and fits, our bound against
    the real design's LUTs, and its fmax; the designs not built, counted (their rows say why)."""
    from tabulate import tabulate as render

    from pynqrepro.core.results import is_reference_row

    ours = [r for r in rows if not is_reference_row(r)]
    built = [r for r in ours if r.get("design LUT") not in (None, "")]
    if not ours:
        return []
    body = [[r["model"], r["board"], r["design"], r.get("fits (certified)", ""), r.get("est. fps", ""),
             r.get("LUT bound", ""), r["design LUT"], r.get("design fmax MHz", "")] for r in built]
    lines = ["## Built designs", "",
             f"{len(built)} of {len(ours)} designs built; the others' rows say why (no such folding, or its "
             "whole design exceeds the device). 'LUT bound' is our calibrated most, 'design LUT' what Vivado used.", ""]
    if body:
        lines.append(render(body, headers=["CNV", "board", "design", "fits (cert.)", "est. fps", "LUT bound",
                                           "design LUT", "fmax MHz"], tablefmt="github", disable_numparse=True))
    return lines
