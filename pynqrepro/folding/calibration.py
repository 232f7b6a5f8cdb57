"""How far FINN's estimates are from real hardware, and the budget that follows.

The budget "fits" is judged on: the decision model's whole design plus the stated upper bound of its
error (``folding.empirical``: the largest leave-one-build-out under-estimate over public and
first-party FINN builds), i.e. ``decision total x (1 + bound) <= device``, a budget of
``device / (1 + bound)`` per resource (``calibrated_margins``); a resource without data keeps the
whole device and says so.

Beside it, the CNV anchors below (published syntheses of known foldings) compare FINN's estimate with
what those syntheses used; they no longer set the margin (one number from a ``min`` with no spread,
including a design that never fitted its own device).

Per calibration anchor (a known folding of CNV with published post-synthesis resources,
``pynqrepro.references.SYNTHESIS_ANCHORS``), our estimate of that same folding on the finn-plus HW
model of CNV at the anchor's bit widths: compute-only (FINN's ``res_estimation`` of the folded
nodes) and whole design (plus the DWCs/FIFOs FINN's build inserts at minimal depth, plus the
board's shell where the published figure includes it). The estimate depends on the architecture,
the bit widths and the folding, not on training: the HW model is that of a seeded, untrained CNV
(the weights change only FINN's weight bit-width minimisation).

``published / estimate`` per resource says how much more the real design took.
"""

from dataclasses import dataclass, field
from pathlib import Path

from pynqrepro.core.boards import get_board
from pynqrepro.core.options import CALIBRATED
from pynqrepro.core.store import ArtifactStore
from pynqrepro.folding.baselines import from_applied_config
from pynqrepro.folding.empirical import current_node_model
from pynqrepro.folding.optimise import Budget, Folding, board_budget
from pynqrepro.references import BOARD_MEASUREMENTS, SYNTHESIS_ANCHORS, BoardMeasurement, SynthesisAnchor

RESOURCES = {"LUT": "lut", "BRAM_18K": "bram18", "DSP": "dsp"}  # our resource name -> the anchor's field


@dataclass(frozen=True)
class AnchorEstimate:
    """Our estimate of one anchor's folding beside its published figures."""

    anchor: SynthesisAnchor
    folding: Folding  # the anchor's folding in the whole-design space of our HW model
    measurement: BoardMeasurement | None  # the board's measured fps of the same folding, if any

    def published(self, resource: str) -> int:
        return getattr(self.anchor, RESOURCES[resource])

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
    from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
    from pynqrepro.training.recipes import untrained_checkpoint

    checkpoint = untrained_checkpoint(store, anchor.weight_bits, anchor.act_bits)
    return load_hw_model(hw_model_artifact(store, checkpoint, get_board(anchor.board)))


def estimate_anchor(store: ArtifactStore, anchor: SynthesisAnchor) -> AnchorEstimate:
    """Our whole-design estimate of the anchor's folding: FINN's ApplyConfig of it (PE/SIMD and
    the memory styles it sets, then FINN's bit-width minimisation), judged in the space without the
    SIMD x W cap (published foldings exceed it), with the DWCs/FIFOs and the shell FINN's build adds."""
    from pynqrepro.finnflow.foldconfig import model_folding

    hw_model = anchor_hw_model(store, anchor)
    folding = from_applied_config(hw_model, get_board(anchor.board), model_folding(hw_model, anchor.folding()),
                                  anchor.design)
    return AnchorEstimate(anchor, folding, anchor_measurement(anchor))


def estimate_anchors(store: ArtifactStore, anchors=SYNTHESIS_ANCHORS) -> list[AnchorEstimate]:
    return [estimate_anchor(store, anchor) for anchor in anchors]


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
    """``1 / (1 + bound)`` per resource from the empirical model's stated upper bound (the store's
    refit after ``pynqrepro calibrate``, else the shipped fit); 1 where no build tells (no data)."""
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


def upper_bound(folding: Folding, resource: str, margins: Margins) -> int | None:
    """Our stated upper bound of a folding's real whole design (None: no data for the resource)."""
    bound = margins.bound.get(resource)
    return None if bound is None else round(folding.total(resource) * (1 + bound))


def budget_margins(margin: str | float, store_root: Path | None = None) -> Margins:
    """The budget fractions ``--margin`` asks for (``core.options.parse_margin``'s value):
    ``calibrated`` (the model's bound, the store's refit where there is one), or one fraction for
    every resource."""
    if margin == CALIBRATED:
        return calibrated_margins(store_root)
    return Margins(margin, margin, margin, source=f"--margin {margin:g}")
