"""Design space (reports/design_space.md): which network to deploy on which board. Per-layer bit
widths x channel-pruning levels x the exact whole-design folding at ``pynqrepro fold``'s default
budget, per board; the accuracy-vs-fps Pareto front and two recommended designs per board.

Anchors: HAQ (Wang et al., "HAQ: Hardware-Aware Automated Quantization with Mixed Precision",
CVPR 2019) searches per-layer bits with the hardware's feedback in the loop; HAWQ-V3 (Yao et al.,
"HAWQ-V3: Dyadic Neural Network Quantization", ICML 2021) allocates per-layer bits by an integer
program over layer sensitivity under a latency/size budget. Here the hardware cost is exact and
FINN-consistent (the optimiser's provably fastest whole design that fits the board, DWCs, FIFOs and
shell included), and cheap: so the hardware side is searched exhaustively and training is spent
only where it can move the front.

Method, per board:
1. Parents: the scale's uniform dense CNVs of the space (the training experiment's checkpoints).
2. Hardware, every candidate: its starting point (its parent's weights at its per-layer widths,
   channel-pruned; no training) through FINN's flow and the exact folding. Candidates no folding
   fits are dropped.
3. Pre-filter: a candidate's optimistic accuracy is that of the least accurate trained network of
   at least its capacity (every layer as wide, no more pruned) + ``OPTIMISM_PP``; a candidate some
   trained network beats or equals in fps at that accuracy cannot reach the front and is never
   trained.
4. Multi-fidelity: survivors are fine-tuned ``short`` epochs from their parent (an Optuna trial
   each); successive halving promotes the better half by Pareto rank of (short-fidelity accuracy,
   fps) among the rung, every non-dominated one included, to the full fine-tune; the rest end as
   pruned trials. Optuna's samplers and pruners are single-objective or sample a space they
   model; this space is enumerated and the rung's rule is multi-objective, so the study records
   the trials (ask/tell, its journal storage in the store: a search resumes) and gives the front
   (``best_trials``, its non-dominated set); every fine-tune is a store artifact built as a job
   under ``--executor slurm``.
5. Front and recommendations from the fully trained networks: (a) the most accurate at or above a
   target fps (default: the study's best fps on the board), (b) the fastest within
   ``NEAR_BEST_PP`` of the best accuracy; each re-folded on its trained checkpoint's own HW model,
   its JSON written to ``reports/foldings/`` and put through FINN's build preparation.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pynqrepro.core.errors import UserError
from pynqrepro.core.results import Recorder
from pynqrepro.models.spec import (BIT_WIDTHS, LAYER_BIT_PRESETS, format_layer_bits, parse_layer_bits, uniform_layer_bits,
                                   widest_bits)
from pynqrepro.references import BOARD_MEASUREMENTS, STUDY_FOLDING_RUNS, select

if TYPE_CHECKING:  # the stages are imported where they work, so `pynqrepro report design_space --help` is quick
    from pynqrepro.core.boards import Board
    from pynqrepro.core.store import Artifact, ArtifactStore
    from pynqrepro.folding.optimise import Budget, Folding
    from pynqrepro.pipeline import Setup

EXPERIMENT = "experiments/test_design_space.py::test_design_space"
TABLE = "design_space"
TITLE = "Design space: what to deploy on each board (per-layer bits x channel pruning x exact folding)"
FIGURE = "design_space_front.png"
FOLDINGS = "foldings"  # under reports/
# Uniform shorthands and presets. Cut to fit the laptop reproduction (FINN lowers every candidate once):
# 4/4 does not fit a Pynq-Z1 at fold's default budget; `pynqrepro explore --layer-bits` widens it.
BITS = ("1/1", "2/2", "convs2-fc1", "ends4-mid2")
SPARSITIES = (0.0, 0.3)  # channel pruning: fraction of conv weights removed
OPTIMISM_PP = 1.0  # pre-filter: a candidate may beat the trained network of its capacity by this much
NEAR_BEST_PP = 1.0  # recommendation (b): within this many points of the best accuracy
NOTES = [
    "Recommended rows first: (a) the most accurate design at or above the target fps (the study's best fps on "
    "the board, from its references), (b) the fastest within 1 pp of the best accuracy. Each names its per-layer "
    "bits (W/A per layer, W for the classifier), channel pruning, checkpoint key, folding JSON (FINN ApplyConfig, "
    "passed through FINN's build preparation) and the `pynqrepro build` command.",
    "est. fps / LUT / BRAM18 / DSP: the provably fastest folding whose whole design (compute nodes, FINN's DWCs "
    "and minimal FIFOs, the board's shell) fits `pynqrepro fold`'s default budget, at the board's clock. Front "
    "rows fold the candidate's starting point (its parent's weights at its widths, pruned); recommended rows "
    "re-fold the trained checkpoint (FINN's bit-width minimisation may differ slightly).",
    "acc %: test accuracy of the fully fine-tuned network (uniform dense rows: the training experiment's "
    "checkpoints), on the dataset the header's scale names. Smoke-scale rows are sklearn digits, where most designs are within noise of each other; "
    "paper scale (CIFAR-10) runs the same code through --executor slurm.",
    "Search: the hardware side is exhaustive; candidates that fit no folding, or that a trained network beats "
    f"in fps at their optimistic accuracy (+{OPTIMISM_PP:g} pp over the trained network of at least their "
    "capacity), are never trained; survivors get a short fine-tune, the better half by Pareto rank a full one "
    "(successive halving). Optuna records the trials and gives the front.",
]


@dataclass(frozen=True)
class Case:
    target_board: str

    @property
    def id(self) -> str:
        return self.target_board

    @property
    def cnv_bits(self):
        return None  # trains beyond any one CNV (the marker's trains=True)


STUDY_BOARDS = ("pynq-z1", "ultra96")
CASES = tuple(Case(board) for board in STUDY_BOARDS)


@dataclass(frozen=True)
class Candidate:
    """One network of the space: per-layer bits (canonical text) and channel-pruning level."""

    layer_bits: str
    sparsity: float

    @classmethod
    def of(cls, bits: str, sparsity: float) -> "Candidate":
        """From a uniform shorthand ("2/2"), a preset name or a per-layer list."""
        if bits.count("/") == 1 and "," not in bits:
            try:
                layers = uniform_layer_bits(*(int(b) for b in bits.split("/")))
                parse_layer_bits(format_layer_bits(layers))
            except (ValueError, UserError):
                raise UserError(f"bits {bits!r} is not W/A with W, A in {BIT_WIDTHS}: use e.g. 2/2, a per-layer "
                                f"list or a preset ({', '.join(LAYER_BIT_PRESETS)})") from None
        else:
            layers = parse_layer_bits(bits)
        return cls(format_layer_bits(layers), float(sparsity))

    @property
    def layers(self) -> tuple:
        return parse_layer_bits(self.layer_bits)

    @property
    def uniform(self) -> tuple[int, int] | None:
        """(W, A) of a uniform network, else None."""
        widest = widest_bits(self.layers)
        return widest if self.layers == uniform_layer_bits(*widest) else None

    @property
    def bits_label(self) -> str:
        if self.uniform:
            return "{}/{}".format(*self.uniform)
        return next((name for name, text in LAYER_BIT_PRESETS.items()
                     if format_layer_bits(parse_layer_bits(text)) == self.layer_bits), self.layer_bits)

    @property
    def label(self) -> str:
        return self.bits_label + (f" -{round(100 * self.sparsity)}%ch" if self.sparsity else "")

    def covers(self, other: "Candidate") -> bool:
        """At least ``other``'s capacity: every width at least as wide, pruned no more."""
        return self.sparsity <= other.sparsity and all(
            w >= ow and (a is None or a >= oa) for (w, a), (ow, oa) in zip(self.layers, other.layers))


def space(bits=BITS, sparsities=SPARSITIES) -> tuple[Candidate, ...]:
    """Every (bits, pruning level) pair; a uniform dense network of each uniform width is a parent."""
    candidates = tuple(dict.fromkeys(Candidate.of(b, s) for b in bits for s in sparsities))
    if not any(c.uniform and not c.sparsity for c in candidates):
        raise UserError("the space has no uniform dense network to grow candidates from: add e.g. --layer-bits 2/2 "
                        "and --sparsity 0")
    return candidates


@dataclass(frozen=True)
class Hardware:
    fits: bool
    est_fps: float = 0.0
    lut: int = 0
    bram18: int = 0
    dsp: int = 0
    folding: Folding | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Evaluated:
    """A trained candidate: its accuracy at a fidelity, its hardware and its checkpoint."""

    candidate: Candidate
    accuracy: float
    fidelity: str  # "parent" (the training experiment's), "short" or "full"
    hardware: Hardware
    artifact: Artifact


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(accuracy, fps) ``a`` is at least as good as ``b`` in both and better in one."""
    return a[0] >= b[0] and a[1] >= b[1] and a != b


def pareto_ranks(points: list[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting (NSGA-II's fronts): 1 for the non-dominated points, 2 for those only
    the first front dominates, and so on."""
    ranks, left, rank = [0] * len(points), set(range(len(points))), 1
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def optimistic_accuracy(candidate: Candidate, trained: list[Evaluated]) -> float:
    """The best accuracy ``candidate`` is expected to reach: the least accurate trained network of
    at least its capacity, + OPTIMISM_PP (100 with none)."""
    bounds = [e.accuracy for e in trained if e.candidate.covers(candidate)]
    return min(100.0, min(bounds) + OPTIMISM_PP) if bounds else 100.0


def prefilter(hardware: dict, trained: list[Evaluated]) -> dict:
    """{candidate: why it is never trained} of the untrained candidates of ``hardware``."""
    dropped = {}
    done = {e.candidate for e in trained}
    for candidate, hw in hardware.items():
        if candidate in done:
            continue
        if not hw.fits:
            dropped[candidate] = "no folding fits the board"
            continue
        best = optimistic_accuracy(candidate, trained)
        beaten = [e for e in trained if e.hardware.fits and dominates((e.accuracy, e.hardware.est_fps),
                                                                     (best, hw.est_fps))]
        if beaten:
            dropped[candidate] = (f"{beaten[0].candidate.label} ({beaten[0].accuracy:.2f}%, "
                                  f"{beaten[0].hardware.est_fps:,.0f} fps) beats it even at {best:.2f}%")
    return dropped


def promoted(rung: list[Evaluated], others: list[Evaluated]) -> set:
    """Successive halving on two objectives: the candidates of ``rung`` whose Pareto rank (among
    the rung and the fully trained ``others``) puts them in the better half, and every rank-1 one."""
    ranks = pareto_ranks([(e.accuracy, e.hardware.est_fps) for e in rung + others])[:len(rung)]
    order = sorted(range(len(rung)), key=lambda i: ranks[i])
    keep = set(order[:math.ceil(len(rung) / 2)]) | {i for i, rank in enumerate(ranks) if rank == 1}
    return {rung[i].candidate for i in keep}


# ---- the hardware side: exactly what `pynqrepro fold` does by default ------------------------------

def _fold_defaults(board: Board, store: ArtifactStore):
    """``pynqrepro fold``'s parsed defaults for ``board`` and its default budget: the design space
    folds as the command does, whatever its defaults become."""
    import argparse

    from pynqrepro.folding import cli as fold_cli

    subparsers = argparse.ArgumentParser().add_subparsers()
    fold_cli.register(subparsers)
    args = subparsers.choices["fold"].parse_args(["--model", "model.onnx", "--board", board.name,
                                                  "--store-dir", str(store.root)])
    budget, _ = fold_cli._budget(args, board, fold_cli._margin(args))
    return args, budget


def fold(hw_model, board: Board, store: ArtifactStore) -> Hardware:
    """The exact whole-design folding of ``hw_model`` at ``pynqrepro fold``'s default budget."""
    from pynqrepro.core.errors import UserError
    from pynqrepro.folding import cli as fold_cli
    from pynqrepro.folding.optimise import optimise

    args, budget = _fold_defaults(board, store)
    try:
        folding = optimise(fold_cli._space(args, hw_model, board, ()), budget)
    except UserError:  # infeasible: no folding fits the budget
        return Hardware(fits=False)
    return Hardware(True, folding.fps(board.clock_ns), folding.total("LUT"), folding.total("BRAM_18K"),
                    folding.total("DSP"), folding)


def checkpoint_hardware(store: ArtifactStore, checkpoint: Artifact, board: Board) -> Hardware:
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model

    return fold(load_hw_model(hw_model_artifact(store, checkpoint, board)), board, store)


# ---- the search ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fidelities:
    """Fine-tuning epochs from the parent: the short rung, and the full fine-tune of survivors."""

    short: int
    full: int

    @classmethod
    def of(cls, prune_epochs: int) -> "Fidelities":
        """The scale's fine-tuning length is the full rung; a quarter of it (at least 1) the short."""
        return cls(max(1, prune_epochs // 4), max(prune_epochs, 2))


@dataclass
class Exploration:
    board: Board
    candidates: tuple[Candidate, ...]
    hardware: dict  # Candidate -> Hardware (of its starting point; a parent's: its checkpoint)
    dropped: dict  # Candidate -> reason (pre-filter)
    evaluated: list  # Evaluated, every fidelity
    front: list  # Evaluated at full fidelity on the front (Optuna's best_trials), by fps
    halved: set  # candidates stopped after the short fine-tune
    trainings: dict  # fidelity -> fine-tunes this search's results rest on (parents not counted)

    def full(self) -> list[Evaluated]:
        return [e for e in self.evaluated if e.fidelity in ("parent", "full")]


def parent_of(candidate: Candidate, parents: dict) -> tuple[int, int]:
    """The uniform parent ((W, A) of ``parents``) a candidate is grown from: the narrowest covering
    all its layers, else the widest."""
    widest = widest_bits(candidate.layers)
    covering = [bits for bits in parents if bits[0] >= widest[0] and bits[1] >= widest[1]]
    return min(covering, key=sum) if covering else max(parents, key=sum)


def _study(store: ArtifactStore, name: str):
    """The search's Optuna study (accuracy and fps maximised) in a journal file in the store."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = store.root / "optuna" / "design_space.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name=name, storage=storage, directions=["maximize", "maximize"],
                               load_if_exists=True)


def explore(store: ArtifactStore, board: Board, candidates: tuple[Candidate, ...], parents: dict,
            fidelities: Fidelities, run, gpu: bool = False, study_prefix: str = "design-space") -> Exploration:
    """The search over ``candidates`` on ``board`` from trained uniform dense ``parents``
    ({(W, A): (checkpoint artifact, test accuracy)}); its Optuna study is named by the prefix, the
    board and a digest of the space, fidelities and parents."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    from pynqrepro.pruning.candidates import CandidateResult, candidate_artifact

    labels = [c.label for c in candidates]
    distribution = {"candidate": CategoricalDistribution(labels)}
    space_id = hashlib.sha256(json.dumps([labels, fidelities.short, fidelities.full,
                                          sorted(a.key for a, _ in parents.values())]).encode()).hexdigest()[:16]
    study = _study(store, f"{study_prefix}-{board.name}-{space_id}")

    def start(candidate: Candidate) -> Artifact:
        checkpoint, _ = parents[parent_of(candidate, parents)]
        if candidate.uniform in parents and not candidate.sparsity:
            return checkpoint
        return candidate_artifact(store, checkpoint, candidate.layer_bits, candidate.sparsity, 0, run, gpu=gpu)

    starts = {c: start(c) for c in candidates}
    hardware = {c: checkpoint_hardware(store, starts[c], board) for c in candidates}
    trained = [Evaluated(c, parents[c.uniform][1], "parent", hardware[c], starts[c]) for c in candidates
               if c.uniform in parents and not c.sparsity]
    dropped = prefilter(hardware, trained)
    survivors = [c for c in candidates if c not in dropped and c not in {e.candidate for e in trained}]

    def tuned(candidate: Candidate, begin: Artifact, epochs: int, fidelity: str) -> Evaluated:
        artifact = candidate_artifact(store, begin, candidate.layer_bits, candidate.sparsity, epochs, run, gpu=gpu)
        return Evaluated(candidate, CandidateResult.read(artifact).test_acc, fidelity, hardware[candidate], artifact)

    rung = [tuned(c, starts[c], fidelities.short, "short") for c in survivors]
    keep = promoted(rung, trained)
    full = {e.candidate: tuned(e.candidate, e.artifact, fidelities.full - fidelities.short, "full")
            for e in rung if e.candidate in keep}

    # One trial per candidate: a parent or a fully fine-tuned one COMPLETE with (accuracy, fps), one
    # halving stopped PRUNED with its short-fidelity accuracy kept; a resumed search adds none twice.
    recorded = {t.params["candidate"] for t in study.trials}
    for evaluated in trained + rung:
        candidate = evaluated.candidate
        if candidate.label in recorded:
            continue
        final = evaluated if evaluated.fidelity == "parent" else full.get(candidate)
        attrs = {"layer_bits": candidate.layer_bits, "sparsity": candidate.sparsity, "fidelity": evaluated.fidelity,
                 "artifact": (final or evaluated).artifact.key}
        if evaluated.fidelity == "short":
            attrs.update(short_acc=evaluated.accuracy, fidelity="full" if final else "short")
        study.add_trial(optuna.trial.create_trial(
            params={"candidate": candidate.label}, distributions=distribution, user_attrs=attrs,
            values=[final.accuracy, final.hardware.est_fps] if final else None,
            state=optuna.trial.TrialState.COMPLETE if final else optuna.trial.TrialState.PRUNED))
    finals = {e.candidate.label: e for e in trained + list(full.values())}
    front = sorted((finals[t.params["candidate"]] for t in study.best_trials if t.params["candidate"] in finals),
                   key=lambda e: e.hardware.est_fps)
    return Exploration(board, candidates, hardware, dropped, trained + rung + list(full.values()), front,
                       {e.candidate for e in rung if e.candidate not in keep},
                       {"short": len(rung), "full": len(full)})


# ---- recommendations -----------------------------------------------------------------------------

def study_best_fps(board: Board) -> float | None:
    """The study's best figure on ``board``: its fastest folding run's estimate or the fastest
    on-board measurement recorded for the board (None: the study has none)."""
    figures = [r.est_fps for r in select(STUDY_FOLDING_RUNS, board=board.name)]
    figures += [r.measured_fps for r in select(BOARD_MEASUREMENTS, board=board.name)]
    return max(figures) if figures else None


@dataclass(frozen=True)
class Recommendation:
    rule: str  # "a" or "b"
    title: str  # e.g. "a: most accurate at >= 6,944 fps"
    design: Evaluated
    hardware: Hardware  # re-folded on the trained checkpoint's HW model
    folding_json: Path  # under reports/
    finn_check: list  # FINN's build preparation: where its figures differ from ours ([]: none)


def recommend(front: list[Evaluated], target_fps: float | None) -> list[tuple[str, str, Evaluated]]:
    """[(rule, title, design)] for (a) and (b) on a Pareto front."""
    if not front:
        return []
    out = []
    fast = [e for e in front if target_fps is None or e.hardware.est_fps >= target_fps]
    if fast:
        target = f">= {target_fps:,.0f} fps" if target_fps is not None else "any fps"
        out.append(("a", f"a: most accurate at {target}", max(fast, key=lambda e: (e.accuracy, e.hardware.est_fps))))
    else:
        out.append(("a", f"a: none reaches {target_fps:,.0f} fps; the fastest",
                    max(front, key=lambda e: e.hardware.est_fps)))
    best = max(e.accuracy for e in front)
    near = [e for e in front if e.accuracy >= best - NEAR_BEST_PP]
    out.append(("b", f"b: fastest within {NEAR_BEST_PP:g} pp of the best accuracy ({best:.2f}%)",
                max(near, key=lambda e: (e.hardware.est_fps, e.accuracy))))
    return out


def recommended_designs(store: ArtifactStore, exploration: Exploration,
                        target_fps: float | None) -> list[Recommendation]:
    """The recommended designs, each re-folded on its trained checkpoint and its folding put
    through FINN's build preparation (a rejection raises); ``tabulate`` writes the JSONs to
    ``reports/foldings/``."""
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.folding.outputs import finn_build_check

    board, out = exploration.board, []
    for rule, title, design in recommend(exploration.front, target_fps):
        hw_model = load_hw_model(hw_model_artifact(store, design.artifact, board))
        hardware = fold(hw_model, board, store)
        path = Path(FOLDINGS) / f"{board.name}-{rule}.json"
        out.append(Recommendation(rule, title, design, hardware, path, finn_build_check(hw_model, hardware.folding, board)))
    return out


@dataclass
class DesignSpace:
    case: Case
    exploration: Exploration
    target_fps: float | None
    recommendations: list


def measure(setup: Setup, case: Case, candidates: tuple[Candidate, ...] | None = None,
            target_fps: float | None = None) -> DesignSpace:
    """The search on the case's board over ``candidates`` (default: ``space()``); recommendation
    (a) at ``target_fps`` (default: the study's best fps on the board)."""
    from pynqrepro.core.boards import get_board
    from pynqrepro.training.recipes import trained_checkpoint, training_result
    from pynqrepro.training.trainer import RunOptions

    board, store, scale = get_board(case.target_board), setup.store, setup.scale
    candidates = candidates or space()
    parents = {}
    for bits in sorted({c.uniform for c in candidates if c.uniform}):
        checkpoint = trained_checkpoint(store, scale, *bits, setup.data_dir)
        parents[bits] = (checkpoint, training_result(checkpoint).test_acc)
    run = RunOptions(experiments=store.root, data_dir=setup.data_dir, progress=False)
    exploration = explore(store, board, candidates, parents, Fidelities.of(scale.prune_epochs), run,
                          gpu=scale.needs_gpu, study_prefix=scale.name)
    target = target_fps or study_best_fps(board)
    return DesignSpace(case, exploration, target, recommended_designs(store, exploration, target))


# ---- the report ----------------------------------------------------------------------------------

def mixed_verdict(exploration: Exploration) -> str:
    """Where per-layer mixed precision helps on this board, and where not: the front's mixed
    designs, the dominated ones, and those the search stopped."""
    front = {e.candidate for e in exploration.front}
    mixed = [c for c in exploration.candidates if c.uniform is None]
    on_front = [e for e in exploration.front if e.candidate.uniform is None]
    dominated = [e.candidate.label for e in exploration.full() if e.candidate.uniform is None and e.candidate not in front]
    halved = [c.label for c in mixed if c in exploration.halved]
    dropped = [c.label for c in mixed if c in exploration.dropped]
    parts = []
    if on_front:
        parts.append("helps: " + ", ".join(f"{e.candidate.label} ({e.accuracy:.2f}%, {e.hardware.est_fps:,.0f} fps)"
                                           for e in on_front) + " on the front, which no uniform design dominates")
    else:
        parts.append("does not help on this board: no mixed design is on the front")
    for label, names in (("dominated by a uniform design", dominated), ("stopped after the short fine-tune", halved),
                         ("never trained (pre-filter)", dropped)):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return "; ".join(parts)


def design_row(board, e: Evaluated, hw: Hardware) -> dict:
    """A candidate's row: its accuracy, and its fps and share of the device, or that nothing fits."""
    row = {"board": board.name, "design": e.candidate.label, "layer bits": e.candidate.layer_bits,
           "pruning %": round(100 * e.candidate.sparsity), "acc %": round(e.accuracy, 2)}
    if not hw.fits:  # no fps or share of the device to show: say so rather than print zeros
        return {**row, "fits": "no: no folding fits fold's default budget"}
    return {**row, "est fps": round(hw.est_fps, 1), "LUT %": round(100 * hw.lut / board.luts, 1),
            "BRAM18 %": round(100 * hw.bram18 / board.bram18, 1), "DSP %": round(100 * hw.dsp / board.dsp, 1)}


def tabulate(results: Recorder, setup: Setup, measured: DesignSpace) -> None:
    exploration, board = measured.exploration, measured.exploration.board
    table = results.table(TABLE, title=TITLE, notes=NOTES, plot=f"{__name__}:front_plot")

    def design(e: Evaluated, hw: Hardware) -> dict:
        return design_row(board, e, hw)

    from pynqrepro.folding.outputs import write_config

    store_root = setup.store.root
    for rec in measured.recommendations:
        write_config(rec.hardware.folding, results.figure_path(str(rec.folding_json)))
        artifact = rec.design.artifact
        relative = artifact.path.relative_to(store_root)
        command = (f"pynqrepro build $PYNQREPRO_STORE/{relative} --board {board.name} "
                   f"--folding reports/{rec.folding_json}")
        check = "passed" + (f" ({'; '.join(rec.finn_check)})" if rec.finn_check else ", FINN's figures equal ours")
        table.add({"recommended": rec.title, **design(rec.design, rec.hardware), "checkpoint key": artifact.key,
                   "folding JSON": str(rec.folding_json), "build command": command, "FINN build check": check}, config={"checkpoint": artifact.key, "layer_bits": rec.design.candidate.layer_bits})
    for e in exploration.front:
        table.add({**design(e, e.hardware), "recommended": "", "on front": True, "trained": e.fidelity},
                  config={"artifact": e.artifact.key})
    front = {e.candidate for e in exploration.front}
    for e in exploration.full():
        if e.candidate not in front:
            table.add({**design(e, e.hardware), "recommended": "", "on front": False, "trained": e.fidelity},
                      config={"artifact": e.artifact.key})
    size = len(exploration.candidates)
    trainings = exploration.trainings
    table.add({"board": board.name, "design": "search", "recommended": "",
               "note": (f"{size} candidates (bits {', '.join(dict.fromkeys(c.bits_label for c in exploration.candidates))}"
                        f" x pruning {', '.join(str(round(100 * s)) + '%' for s in sorted({c.sparsity for c in exploration.candidates}))}); "
                        f"hardware folded for all {size}; {len(exploration.dropped)} dropped before training "
                        f"({'; '.join(f'{c.label}: {why}' for c, why in exploration.dropped.items()) or 'none'}); "
                        f"{trainings['short']} short and {trainings['full']} full fine-tunes (store artifacts, shared by the boards) "
                        f"({len(exploration.halved)} stopped by halving); "
                        f"{sum(1 for e in exploration.evaluated if e.fidelity == 'parent')} parents from the training "
                        f"experiment")})
    table.add({"board": board.name, "design": "mixed precision", "recommended": "", "note": mixed_verdict(exploration)})


def front_plot(rows: list[dict], reports_dir: Path) -> None:
    """Accuracy against estimated fps per board: every fully trained design, the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    designs = [r for r in rows if r.get("est fps") not in (None, "") and not r.get("recommended")]
    boards = sorted({r["board"] for r in designs})
    if not boards:
        return
    fig, axes = plt.subplots(1, len(boards), figsize=(5.5 * len(boards), 4.2), squeeze=False)
    for ax, name in zip(axes[0], boards):
        board_rows = [r for r in designs if r["board"] == name]
        for on_front, style in ((False, "o"), (True, "s")):
            pts = [r for r in board_rows if bool(r.get("on front")) == on_front]
            ax.scatter([float(r["est fps"]) for r in pts], [float(r["acc %"]) for r in pts], marker=style,
                       label="Pareto front" if on_front else "dominated", zorder=3)
            for r in pts:
                ax.annotate(r["design"], (float(r["est fps"]), float(r["acc %"])), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        front = sorted((float(r["est fps"]), float(r["acc %"])) for r in board_rows if r.get("on front"))
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", alpha=0.6)
        ax.set_xscale("log")
        ax.set_title(f"{name}: accuracy vs est. fps")
        ax.set_xlabel("estimated fps (exact folding, whole design)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(reports_dir) / FIGURE, dpi=120)
    plt.close(fig)


def summary(measured: DesignSpace) -> str:
    """The board's answer in a few lines: the front, the recommendations, the search's cost."""
    exploration = measured.exploration
    lines = [f"{exploration.board.name}: front " + ", ".join(
        f"{e.candidate.label} {e.accuracy:.2f}% {e.hardware.est_fps:,.0f} fps" for e in exploration.front)]
    for rec in measured.recommendations:
        lines.append(f"  {rec.title}: {rec.design.candidate.label} ({rec.design.candidate.layer_bits}), "
                     f"{rec.design.accuracy:.2f}%, {rec.hardware.est_fps:,.0f} fps, folding reports/{rec.folding_json}")
    lines.append(f"  search: {len(exploration.candidates)} candidates, {len(exploration.dropped)} dropped before "
                 f"training, {exploration.trainings['short']} short + {exploration.trainings['full']} full fine-tunes")
    return "\n".join(lines)
