"""How far estimates are from real hardware, which model decides, and the budget that follows.

The decision model, chosen on evidence. Candidates: the analytic model (FINN's estimate with its
blind spots priced: threshold logic, "auto" DSPs, nodes FINN prices at 0) and the per-node fit
(``node_model.json``: real = a + b x FINN's estimate + c x memory bits per op type, fitted on the
public builds' post-route rows, features FINN's raw rows, which is all those builds carry, so the
optimiser multiplies the same quantity). Judged on CNV, the network this product folds: every
published synthesis of a known CNV folding (``DECISION_ANCHORS``: BNN-PYNQ W1A1/W1A2/W2A2, FINN's
cnv-w1a1 before/after PR #209, the study's four OOC runs; none is a training build of the fit, so
every error is held out), each folding estimated on finn-plus's HW model of CNV, whole design in
the published scope. |error| median / worst over the 9 anchors (reports/calibration.md):

=========  =============  =============  ==============
resource   FINN raw       analytic       fit (chosen)
=========  =============  =============  ==============
LUT        28 % / 55 %    33 % / 78 %    9 % / 25 %
BRAM18     20 % / 44 %    20 % / 44 %    11 % / 41 %
DSP        100 % / 100 %  100 % / 100 %  38 % / 50 %
=========  =============  =============  ==============

The fit is lower on every resource, so it decides (``folding.decision``). Its MVAU rows alone
under-estimated the 2- and 4-bit anchors' LUTs by 30-45 %: the public builds' MVAUs threshold at one
level (A1) or beside DSP multipliers (D), so FINN's raw estimate, the fit's only MVAU feature, cannot
carry the threshold levels. The levels beyond one are added at FINN's own distributed-threshold
terms, unfitted (``decision.unfitted_threshold_luts``), which took the worst LUT error from 45 % to
25 %; the bound below carries what is left (+33 % LUT, set by FINN's cnv-w1a1 before PR #209). The
analytic model stays a reported column.

The budget "fits" is judged on: the decision model's whole design plus the stated upper bound of
its error, ``ours x (1 + bound) <= device``, a budget of ``device / (1 + bound)`` per resource
(``calibrated_margins``); the bound is the largest under-estimate ``real / ours - 1`` over the CNV
anchors whose real design fitted its own device (``decision_bound``; the study's 4-bit run,
464 BRAM18 on a 280-BRAM18 part, is excluded, ``bound_exclusions``), written into
``node_model.json`` by ``pynqrepro calibrate --write-shipped``; a resource no anchor under-estimates
has bound 0, one without data keeps the whole device and says so. Public build C (CNV W1A1, MLPerf
Tiny) is not an anchor: its folding names FINN v0.7's layers, which we cannot map (see
``DECISION_ANCHORS``). The foreign public builds (other networks, OOC, FIFO depths sized by
simulation) are held out in ``synthesis.calibrate``'s table with their errors and set no bound.

Per anchor: FINN's estimate of the compute nodes (``res_estimation`` of the folded nodes) and the
whole design (plus the DWCs/FIFOs FINN's build inserts at minimal depth, plus the board's shell
where the published figure includes it). The estimate depends on the architecture, the bit widths
and the folding, not on training: the HW model is that of a seeded, untrained CNV (the weights
change only FINN's weight bit-width minimisation). ``published / estimate`` per resource says how
much more the real design took.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from pynqrepro.core.boards import get_board
from pynqrepro.core.options import CALIBRATED
from pynqrepro.core.store import ArtifactStore
from pynqrepro.folding.baselines import from_applied_config
from pynqrepro.folding.decision import (INSERTED_OP_TYPES, NodeModel, costs_from_estimate, current_node_model,
                                       decision_model, node_decision_costs)
from pynqrepro.folding.optimise import Budget, Folding, board_budget
from pynqrepro.references import BOARD_MEASUREMENTS, SYNTHESIS_ANCHORS, BoardMeasurement, SynthesisAnchor

RESOURCES = {"LUT": "lut", "BRAM_18K": "bram18", "DSP": "dsp"}  # our resource name -> the anchor's field


@dataclass(frozen=True)
class AnchorEstimate:
    """Our estimate of one anchor's folding beside its published figures."""

    anchor: SynthesisAnchor
    folding: Folding  # the anchor's folding in the whole-design space of our HW model
    measurement: BoardMeasurement | None  # the board's measured fps of the same folding, if any
    fitted: dict  # {resource: the decision model (the per-node fit on FINN's rows) in the published scope}
    analytic: dict  # {resource: the analytic model, the reported comparison, in the published scope}

    def published(self, resource: str) -> int:
        return getattr(self.anchor, RESOURCES[resource])

    def ours(self, resource: str) -> int:
        """The decision model's (pynqrepro's estimate) whole design in the published figure's scope,
        as the optimiser totals it."""
        shell = self.folding.insertions.shell.resource(resource)
        return self.folding.total(resource) - shell + (shell if self.anchor.shell else 0)

    def fits_device(self) -> bool:
        """Whether the real design fitted its own device: only then may it set a bound."""
        limits = get_board(self.anchor.board).limits()
        return all(self.published(r) <= limits[r] for r in RESOURCES)

    def error(self, resource: str, which: str = "ours") -> float | None:
        """(estimate - real) / real of ``which`` (fitted: the decision model; finn; analytic); None
        without a real figure."""
        real = self.published(resource)
        if not real:
            return None
        estimate = self.whole(resource) if which == "finn" else getattr(self, which)[resource]
        return (estimate - real) / real

    def compute(self, resource: str) -> int:
        """FINN's estimate of the compute nodes (what FINN's own estimate reports)."""
        return self.folding.finn_compute_total(resource)

    def whole(self, resource: str) -> int:
        """The whole design in the published figure's scope: compute nodes, DWCs and FIFOs, and the
        shell where the anchor includes it."""
        shell = self.folding.insertions.shell.resource(resource) if self.anchor.shell else 0
        return self.compute(resource) + self.folding.inserted_total(resource, finn=True) \
            - self.folding.insertions.shell.resource(resource) + shell

    def ratio(self, resource: str, whole: bool = True) -> float | None:
        """published / estimate (None where we estimate none of the resource)."""
        estimate = self.whole(resource) if whole else self.compute(resource)
        return self.published(resource) / estimate if estimate else None

    def estimated_fps(self) -> float | None:
        """Our fps estimate at the measured board's clock (None without a board measurement)."""
        if self.measurement is None:
            return None
        return self.measurement.clock_mhz * 1e6 / self.folding.max_cycles

    def fps_ratio(self) -> float | None:
        """measured / estimated fps (None without a board measurement)."""
        return self.measurement.measured_fps / self.estimated_fps() if self.measurement else None


def anchor_measurement(anchor: SynthesisAnchor) -> BoardMeasurement | None:
    """The board measurement of the anchor's own folding (BNN-PYNQ's), if any."""
    return next((m for m in BOARD_MEASUREMENTS if m.folding_file == anchor.folding_file), None)


def anchor_hw_model(store: ArtifactStore, anchor: SynthesisAnchor):
    """The HW-layer model (untrained, seeded CNV at the anchor's bit widths) for the anchor's board."""
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.training.recipes import untrained_checkpoint

    checkpoint = untrained_checkpoint(store, anchor.weight_bits, anchor.act_bits)
    return load_hw_model(hw_model_artifact(store, checkpoint, get_board(anchor.board)))


def estimate_anchor(store: ArtifactStore, anchor: SynthesisAnchor, fit: NodeModel | None = None) -> AnchorEstimate:
    """Our whole-design estimate of the anchor's folding: FINN's ApplyConfig of it (PE/SIMD and
    the memory styles it sets, then FINN's bit-width minimisation), judged in the space without the
    SIMD x W cap (published foldings exceed it), with the DWCs/FIFOs and the shell FINN's build adds;
    beside it the fit ``fit`` (default: the decision model's) node by node and the analytic model."""
    from pynqrepro.finnflow.buildprep import insert_dwcs_and_fifos
    from pynqrepro.finnflow.foldconfig import apply_folding, model_folding

    hw_model = anchor_hw_model(store, anchor)
    board = get_board(anchor.board)
    config = model_folding(hw_model, anchor.folding())
    folding = from_applied_config(hw_model, board, config, anchor.design)
    built = insert_dwcs_and_fifos(apply_folding(hw_model, config), board.part)
    shell = {r: board.shell.resource(r) if anchor.shell else 0 for r in RESOURCES}
    return AnchorEstimate(anchor, folding, anchor_measurement(anchor),
                          fitted_design(fit or decision_model(), built, board.part, shell),
                          analytic_design(built, board.part, shell))


def estimate_anchors(store: ArtifactStore, anchors=SYNTHESIS_ANCHORS, fit: NodeModel | None = None) \
        -> list[AnchorEstimate]:
    return [estimate_anchor(store, anchor, fit) for anchor in anchors]


def fitted_design(fit: NodeModel, built, part: str, shell: dict) -> dict:
    """A per-node fit's whole design of a folded model with its DWCs/FIFOs (``built``), fed what it
    was fitted on: FINN's raw rows of the compute nodes as FINN's build estimates them (before
    inserting DWCs/FIFOs, which get zero features), plus ``shell``."""
    rows = node_decision_costs(built, part)
    inserted = {n.name for n in built.graph.node if n.op_type.startswith(INSERTED_OP_TYPES)}
    features = [costs_from_estimate(rows[name]["op_type"], {}) if name in inserted else rows[name] for name in rows]
    return {r: sum(fit.predict(c, r) for c in features) + shell[r] for r in RESOURCES}


def analytic_design(built, part: str, shell: dict) -> dict:
    """The analytic model's whole design of ``built`` (compute nodes, DWCs and FIFOs), plus ``shell``."""
    rows = node_decision_costs(built, part, analytic=True).values()
    return {r: sum(row[r] for row in rows) + shell[r] for r in RESOURCES}


# The CNV anchors the decision model is judged on: every published synthesis of a known CNV folding. Public
# build C (CNV W1A1, MLPerf Tiny v0.7, whole design post-implementation) is not among them: its folding names
# FINN v0.7's layers (StreamingFCLayer_Batch_N, Thresholding_Batch_0 for the first layer), which
# finnflow.foldconfig.model_folding does not map onto finn-plus's CNV (it sets 0 of its 9 MVAUs).
DECISION_ANCHORS = SYNTHESIS_ANCHORS


def decision_bound(estimates: list[AnchorEstimate]) -> dict:
    """Per resource, the largest under-estimate ``real / ours - 1`` (>= 0, rounded up) of the
    decision model over the anchors whose design fitted its own device and that state the
    resource with ours > 0; None where none tells (no data)."""
    bound = {}
    for r in RESOURCES:
        ratios = [e.published(r) / e.fitted[r] for e in estimates
                  if e.fits_device() and e.published(r) and e.fitted[r]]
        bound[r] = math.ceil(max(0.0, max(ratios) - 1) * 1e4) / 1e4 if ratios else None
    return bound


def bound_exclusions(estimates: list[AnchorEstimate]) -> dict:
    """{anchor design: why it sets no bound}."""
    out = {}
    for e in estimates:
        if not e.fits_device():
            limits = get_board(e.anchor.board).limits()
            over = ", ".join(f"{r} {e.published(r)} > {limits[r]}" for r in RESOURCES if e.published(r) > limits[r])
            out[e.anchor.design] = f"did not fit its own device ({over})"
    return out


@dataclass(frozen=True)
class Margins:
    """Budget fractions per resource, the bound they come from (None: no data) and its source."""

    LUT: float
    BRAM_18K: float
    DSP: float
    source: str
    bound: dict = field(default_factory=dict)  # {resource: relative upper bound or None}

    def describe(self) -> str:
        def one(label: str, resource: str) -> str:
            if resource in self.bound and self.bound[resource] is None:
                return f"{label} {getattr(self, resource):.3f} (no data)"
            return f"{label} {getattr(self, resource):.3f}"

        return f"{one('LUT', 'LUT')}, {one('BRAM18', 'BRAM_18K')}, {one('DSP', 'DSP')} ({self.source})"


def calibrated_margins(store_root: Path | None = None) -> Margins:
    """``1 / (1 + bound)`` per resource from the decision model's stated upper bound (``node_model.json``;
    the store's refit after ``pynqrepro calibrate`` carries the shipped bound); 1 where no anchor tells."""
    model = current_node_model(store_root)
    fractions = {r: 1.0 / (1.0 + b) if b is not None else 1.0 for r, b in model.bound.items()}
    bound = ", ".join(f"{r.replace('BRAM_18K', 'BRAM18')} " + ("no data" if b is None else f"+{100 * b:.1f} %")
                      for r, b in model.bound.items())
    return Margins(**fractions, bound=dict(model.bound),
                   source=f"calibrated: device / (1 + upper bound {bound}); {model.source}")


def calibrated_budget(board, store_root: Path | None = None) -> Budget:
    """The default budget: a design fits when its decision total x (1 + bound) is within the device."""
    m = calibrated_margins(store_root)
    return board_budget(board, m.LUT, m.BRAM_18K, m.DSP)


def budgeted(total: float, resource: str, margins: Margins) -> int:
    """What a design we estimate at ``total`` counts against the device under ``margins``:
    ceil(total / fraction), within the device exactly when ``total`` is within the budget
    (``board_budget``: the device x fraction, rounded down) the optimiser holds designs to."""
    return math.ceil(total / getattr(margins, resource))


def bounded(total: float, resource: str, margins: Margins) -> int | None:
    """Our stated upper bound of a real whole design we estimate at ``total`` (None: no data): what
    it counts against the device under the calibrated margins, whose fractions are 1 / (1 + bound)."""
    return None if margins.bound.get(resource) is None else budgeted(total, resource, margins)


def upper_bound(folding: Folding, resource: str, margins: Margins) -> int | None:
    """Our stated upper bound of a folding's real whole design (None: no data for the resource)."""
    return bounded(folding.total(resource), resource, margins)


def budget_margins(margin: str | float, store_root: Path | None = None) -> Margins:
    """The budget fractions ``--margin`` asks for (``core.options.parse_margin``'s value):
    ``calibrated`` (the model's bound, the store's refit where there is one), or one fraction for
    every resource."""
    if margin == CALIBRATED:
        return calibrated_margins(store_root)
    return Margins(margin, margin, margin, source=f"--margin {margin:g}")
