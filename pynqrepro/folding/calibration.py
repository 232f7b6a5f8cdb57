"""How far FINN's estimates are from real hardware, and the budget margins that follow.

Per calibration anchor (a known folding of CNV with published post-synthesis resources,
``pynqrepro.references.SYNTHESIS_ANCHORS``), our estimate of that same folding on the finn-plus HW
model of CNV at the anchor's bit widths: compute-only (FINN's ``res_estimation`` of the folded
nodes) and whole design (plus the DWCs/FIFOs FINN's build inserts at minimal depth, plus the
board's shell where the published figure includes it). The estimate depends on the architecture,
the bit widths and the folding, not on training: the HW model is that of a seeded, untrained CNV
(the weights change only FINN's weight bit-width minimisation).

``published / estimate`` per resource says how much more the real design took; the margin of a
resource is the budget fraction that would have kept every anchor's real design within its device:
``min(1, estimate / published)`` over the anchors, whole design in the published figure's scope.
"""

from dataclasses import dataclass

from pynqrepro.core.boards import get_board
from pynqrepro.core.options import CALIBRATED
from pynqrepro.core.store import ArtifactStore
from pynqrepro.folding.baselines import from_applied_config
from pynqrepro.folding.optimise import Folding
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
    """Budget fractions per resource, and the anchors they come from."""

    LUT: float
    BRAM_18K: float
    DSP: float
    source: str

    def describe(self) -> str:
        return f"LUT {self.LUT:.3f}, BRAM18 {self.BRAM_18K:.3f}, DSP {self.DSP:.3f} ({self.source})"


def derive_margins(estimates: list[AnchorEstimate]) -> Margins:
    """Per resource, ``min(1, estimate / published)`` of the whole design over the anchors that
    calibrate (``SynthesisAnchor.calibrates``) and where both the estimate and the synthesis use
    the resource: the largest budget fraction under which every such anchor's estimate would have
    kept its real design within the device. 1 where no anchor tells."""
    used = [e for e in estimates if e.anchor.calibrates]
    margins = {r: min([1.0] + [1 / ratio for e in used if (ratio := e.ratio(r))]) for r in RESOURCES}
    return Margins(**margins, source=f"calibrated: whole-design estimates of {len(used)} published syntheses")


def budget_margins(margin: str | float, store: ArtifactStore) -> Margins:
    """The budget fractions ``--margin`` asks for (``core.options.parse_margin``'s value):
    ``calibrated``, derived from the anchors that calibrate (their HW models are built once per
    store, ~30 s each), or one fraction for every resource."""
    if margin == CALIBRATED:
        return derive_margins(estimate_anchors(store, [a for a in SYNTHESIS_ANCHORS if a.calibrates]))
    return Margins(margin, margin, margin, source=f"--margin {margin:g}")
