"""Learn from every synthesis: the empirical per-node model fitted on finished FINN builds, its
leave-one-build-out validation, the upper bound a budget takes from it, and the calibration set
(``<store>/calibration/``) that ``pynqrepro calibrate`` and the ``vivado`` stage add builds to.

Training rows are the per-node post-route rows of builds in the shell (FINN's
``post_synth_resources.json``), joined by node name with the decision estimate of the same node:
``folding.empirical.node_decision_costs`` of the build's folded HW model where its folder keeps it
(FINN's intermediate_models/), else the same features from its ``estimate_layer_resources.json``
rows (the public builds). DWCs and FIFOs have no estimate row (FINN estimates before inserting them): their fit is a
mean cost per node. A whole design is predicted as the sum of its built nodes (final_hw_config)
plus the board's shell where the scope is in the shell.
"""

import hashlib
import json
import math
import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.folding.decision import (CALIBRATION_DIR, FITTED_RESOURCES, INSERTED_OP_TYPES, NODE_MODEL_FILE,
                                       NodeModel, costs_from_estimate, load_node_model, node_decision_costs,
                                       store_model_path)
from pynqrepro.references.public_builds import PUBLIC_BUILDS, STUDY_OOC_BUILDS, lay_out
from pynqrepro.synthesis.vivado_reports import BUILD_FILES, FOLDING_FILES, FinnBuild, op_type_of, read_finn_build


@dataclass(frozen=True)
class Anchor:
    """A finished build in the calibration set."""

    id: str
    build: FinnBuild
    part: str  # the FPGA part it was built for
    device: dict  # {resource: count} of the part
    shell: dict  # {resource: count} added to an in-shell prediction (the board's shell)
    tools: str
    first_party: bool  # added by ``pynqrepro calibrate`` / the vivado stage, not shipped

    def fits_device(self) -> bool:
        """Whether the real design fitted its own device: only then may it set a budget."""
        return all(self.build.totals[r] <= self.device[r] for r in FITTED_RESOURCES)


# the folded HW model before FINN inserts DWCs/FIFOs, as FINN's builder saves it (intermediate_models/)
FOLDED_MODEL_STEPS = ("step_generate_estimate_reports", "step_minimize_bit_width", "step_apply_folding_config")


def folded_model(build: FinnBuild) -> Path | None:
    """The build's folded HW model among its intermediate models (FINN's ``save_intermediate_models``)."""
    by_step = {path.stem: path for path in build.models}
    return next((by_step[step] for step in FOLDED_MODEL_STEPS if step in by_step), None)


def decision_costs(build: FinnBuild, part: str) -> dict:
    """The compute nodes' decision estimates: ``node_decision_costs`` of the build's folded HW model
    where the folder holds it, else its FINN estimate rows in the same form (public builds whose
    repositories keep no folded model)."""
    model_file = folded_model(build)
    if model_file is None:
        return {name: costs_from_estimate(op_type_of(name), row) for name, row in build.estimate.items()}
    from qonnx.core.modelwrapper import ModelWrapper

    try:
        model = ModelWrapper(str(model_file))
    except Exception as exc:  # protobuf's DecodeError, onnx's checks: not an ONNX model
        raise UserError(f"{model_file} is not an ONNX model ({type(exc).__name__}): pass the output folder of a "
                        f"finished FINN build, its intermediate_models/ as FINN saved them") from None
    return node_decision_costs(model, part)


def node_features(build: FinnBuild, part: str) -> dict:
    """Per built node, ``node_decision_costs``' form: the compute nodes' decision estimates, a zero
    estimate for the DWCs/FIFOs FINN inserts after estimating."""
    compute = decision_costs(build, part)
    features = {}
    for name in build.built_nodes():
        op_type = op_type_of(name)
        if name in compute:
            features[name] = compute[name]
        elif op_type.startswith(INSERTED_OP_TYPES):
            features[name] = costs_from_estimate(op_type, {})
    return features


def training_rows(anchors) -> dict:
    """{op_type: [(costs, real)]} from the per-node rows of the anchors reported in the shell."""
    rows = {}
    for anchor in anchors:
        features = node_features(anchor.build, anchor.part)
        for name, real in anchor.build.nodes.items():
            if name in features:
                rows.setdefault(features[name]["op_type"], []).append((features[name], real))
    return rows


def fit_node_model(anchors, bound: dict | None = None, source: str = "") -> NodeModel:
    """Per op type and resource, ``real = intercept + estimate x E + memory_bits x M`` by least
    squares with non-negative slopes (scikit-learn's LinearRegression(positive=True)): each slope
    says how much of the estimate or memory becomes real hardware. The intercept is fitted only
    where the estimate of that resource is zero for every node of the op type (what FINN prices at
    zero: a mean cost per node); elsewhere the line goes through the origin, so a few costly nodes
    (e.g. unpriced threshold logic) do not become a fixed cost of every small node."""
    from sklearn.linear_model import LinearRegression

    op_types = {}
    for op_type, rows in sorted(training_rows(anchors).items()):
        fitted = {}
        for resource in FITTED_RESOURCES:
            x = [[costs[resource], costs["memory_bits"]] for costs, _ in rows]
            # the fit learns what the threshold LUTs added unfitted leave (0 for the public builds)
            y = [real[resource] - (costs.get("threshold_luts", 0.0) if resource == "LUT" else 0) for costs, real in rows]
            unpriced = all(estimate == 0 for estimate, _ in x)
            fit = LinearRegression(positive=True, fit_intercept=unpriced).fit(x, y)
            fitted[resource] = {"intercept": round(float(fit.intercept_), 3),
                                "estimate": round(float(fit.coef_[0]), 6),
                                "memory_bits": round(float(fit.coef_[1]), 9)}
        op_types[op_type] = fitted
    return NodeModel(op_types, source, bound or {r: None for r in FITTED_RESOURCES})


def predict_design(model: NodeModel, anchor: Anchor) -> dict:
    """The whole design of a build in its scope: its built nodes, plus the shell where in the shell."""
    features = node_features(anchor.build, anchor.part).values()
    return {r: sum(model.predict(c, r) for c in features) + (anchor.shell[r] if anchor.build.in_shell else 0)
            for r in FITTED_RESOURCES}


def finn_design(anchor: Anchor) -> dict:
    """FINN's raw estimate in the build's scope: its estimate of the built compute nodes (it
    estimates no DWC/FIFO before inserting them), plus the shell where in the shell."""
    built = set(anchor.build.built_nodes())
    return {r: sum(row[r] for name, row in anchor.build.estimate.items() if name in built)
            + (anchor.shell[r] if anchor.build.in_shell else 0) for r in FITTED_RESOURCES}


@dataclass(frozen=True)
class HeldOut:
    """One build predicted by the model fitted on the others."""

    anchor: Anchor
    real: dict
    finn: dict
    ours: dict

    def error(self, resource: str, which: str = "ours") -> float | None:
        """(estimate - real) / real; None where the build uses none of it."""
        real = self.real[resource]
        return (getattr(self, which)[resource] - real) / real if real else None


def leave_one_build_out(anchors) -> list[HeldOut]:
    """Each anchor with a FINN estimate, predicted by the model fitted on all other anchors."""
    out = []
    for anchor in anchors:
        if not anchor.build.estimate:
            continue
        model = fit_node_model([a for a in anchors if a is not anchor])
        out.append(HeldOut(anchor, {r: anchor.build.totals[r] for r in FITTED_RESOURCES}, finn_design(anchor),
                           predict_design(model, anchor)))
    return out


def summary(held_out: list[HeldOut], resource: str, which: str = "ours") -> dict:
    errors = [abs(e) for h in held_out if (e := h.error(resource, which)) is not None]
    signed = [e for h in held_out if (e := h.error(resource, which)) is not None]
    return {"median |error|": statistics.median(errors) if errors else None,
            "worst |error|": max(errors) if errors else None,
            "range": (min(signed), max(signed)) if signed else None}


def describe_bound(bound: dict) -> str:
    return ", ".join(f"{r.replace('BRAM_18K', 'BRAM18')} " + ("no data" if b is None else f"+{100 * b:.1f} %")
                     for r, b in bound.items())


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.0f} %"


def held_out_rows(held_out: list[HeldOut]) -> list[dict]:
    """One row per held-out build: scope, real, FINN's raw estimate, ours and the errors, LUT/BRAM18/DSP."""
    rows = []
    for h in held_out:
        row = {"build": h.anchor.id + (" (first-party)" if h.anchor.first_party else ""), "scope": h.anchor.build.scope,
               "tools": h.anchor.tools.split(";")[0], "fits its device": "yes" if h.anchor.fits_device() else "no"}
        for r, label in (("LUT", "LUT"), ("BRAM_18K", "BRAM18"), ("DSP", "DSP")):
            row.update({f"{label} real": round(h.real[r]), f"{label} FINN": round(h.finn[r]),
                        f"{label} FINN err": _percent(h.error(r, "finn")), f"{label} ours": round(h.ours[r]),
                        f"{label} ours err": _percent(h.error(r))})
        rows.append(row)
    return rows


# --- the anchors: shipped public builds and the store's calibration set -----------------------------

def public_anchors(workdir: Path) -> list[Anchor]:
    """The public builds and the study's OOC runs, laid out as FINN's output folders under
    ``workdir`` and read back."""
    anchors = []
    for public in (*PUBLIC_BUILDS, *STUDY_OOC_BUILDS):
        board = get_board(public.board) if public.board else None
        shell = {r: board.shell.resource(r) if board else 0 for r in FITTED_RESOURCES}
        anchors.append(Anchor(public.id, read_finn_build(lay_out(public, workdir)), public.part, public.device,
                              shell, f"{public.tools}; {public.source}", first_party=False))
    return anchors


def calibration_root(store_root: Path) -> Path:
    return Path(store_root) / CALIBRATION_DIR


def store_anchors(store_root: Path) -> list[Anchor]:
    """The builds ``pynqrepro calibrate`` added to the store's calibration set."""
    builds = calibration_root(store_root) / "builds"
    anchors = []
    for entry in sorted(builds.glob("*/entry.json")) if builds.is_dir() else ():
        if entry.parent.name.startswith("."):  # a staging folder an interrupted add left behind
            continue
        meta = json.loads(entry.read_text())
        board = get_board(meta["board"])
        anchors.append(Anchor(meta["id"], read_finn_build(entry.parent / "build"), board.part, board.limits(),
                              {r: board.shell.resource(r) for r in FITTED_RESOURCES}, meta["tools"],
                              first_party=True))
    return anchors


def with_stated_bound(store, fitted: NodeModel, source: str) -> tuple[NodeModel, list]:
    """``fitted`` with its whole-design bound stated from its errors on the CNV anchors
    (``folding.budget_calibration.decision_bound``; their HW models built in ``store``, about 40 s on a
    fresh one), and the anchors' estimates."""
    from pynqrepro.folding.budget_calibration import DECISION_ANCHORS, bound_exclusions, decision_bound, estimate_anchors

    estimates = estimate_anchors(store, DECISION_ANCHORS, fitted)
    excluded = "; ".join(f"{design}: {why}" for design, why in bound_exclusions(estimates).items())
    model = NodeModel(fitted.op_types, source, decision_bound(estimates),
                      f"largest under-estimate real / ours - 1 over the {len(estimates)} CNV anchors of "
                      f"pynqrepro.folding.budget_calibration.DECISION_ANCHORS that fitted their device (none is a "
                      f"training build); excluded: {excluded or 'none'}")
    return model, estimates


def regenerate_shipped_model(store, path: Path = NODE_MODEL_FILE) -> tuple[NodeModel, list[HeldOut], list]:
    """Refit ``node_model.json`` on the public builds and state its bound (``with_stated_bound``): the
    package's file, a library call, never a hand edit. Returns the model, the builds held out, the
    anchors' estimates."""
    with tempfile.TemporaryDirectory() as tmp:
        anchors = public_anchors(Path(tmp))
        held_out = leave_one_build_out(anchors)
        fitted = fit_node_model(anchors)
    model, estimates = with_stated_bound(store, fitted, "public FINN builds " + ", ".join(b.id for b in PUBLIC_BUILDS)
                                         + " (references/data/public-builds); features: FINN's raw estimate rows")
    atomic_write_json(path, model.to_json())
    return model, held_out, estimates


def calibrated_model(store_root: Path, workdir: Path) -> tuple[NodeModel, list[HeldOut], list[Anchor]]:
    """The model refitted on the public builds and the store's calibration set, with the builds held
    out. With first-party builds its bound is stated anew on the CNV anchors (HW models built in the
    store), so ``fold``'s calibrated budget follows the refit; without, it is the shipped model."""
    from pynqrepro.core.store import ArtifactStore

    anchors = public_anchors(workdir) + store_anchors(store_root)
    firsts = sum(a.first_party for a in anchors)
    held_out = leave_one_build_out(anchors)
    if not firsts:
        return load_node_model(), held_out, anchors
    source = f"public FINN builds + {firsts} first-party build(s) of the calibration set; features: FINN's raw estimate rows"
    model, _ = with_stated_bound(ArtifactStore(store_root), fit_node_model(anchors, source=source), source)
    return model, held_out, anchors


def _report_files(build_dir: Path) -> list[str]:
    """The files of a build folder the calibration reads (relative paths), in a fixed order."""
    models = [f"intermediate_models/{step}.onnx" for step in FOLDED_MODEL_STEPS]
    names = (*BUILD_FILES.values(), *FOLDING_FILES, *[m for m in models if (build_dir / m).is_file()][:1])
    return sorted(rel for rel in names if (build_dir / rel).is_file())


def _build_id(build_dir: Path) -> str:
    digest = hashlib.sha256()
    for rel in _report_files(build_dir):
        digest.update(rel.encode() + b"\0" + (build_dir / rel).read_bytes())
    return digest.hexdigest()[:16]


def add_build(store_root: Path, build_dir: Path, board_name: str, tools: str = "") -> str:
    """Add a finished build's reports to the calibration set and refit the store's model. The
    build is read in full first (a malformed or foreign file: one-line UserError, set unchanged);
    its files enter under a content id by one rename; the refit replaces the model atomically.
    Returns the id (the same build added twice is one entry)."""
    build_dir = Path(build_dir)
    build = read_finn_build(build_dir)
    if not build.estimate and not build.nodes:
        raise UserError(f"{build_dir} has neither FINN's estimate (report/estimate_layer_resources.json) nor "
                        f"per-node resources: the calibration needs one of them; run the build with "
                        f"ESTIMATE_REPORTS among generate_outputs")
    board = get_board(board_name)
    build_id = _build_id(build_dir)
    builds = calibration_root(store_root) / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    final = builds / build_id
    if not final.exists():
        staging = Path(tempfile.mkdtemp(dir=builds, prefix=".adding-"))
        try:
            for rel in _report_files(build_dir):
                (staging / "build" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(build_dir / rel, staging / "build" / rel)
            (staging / "entry.json").write_text(json.dumps(
                {"id": build_id, "board": board.name, "source": str(build_dir.resolve()),
                 "tools": tools or f"{build.tool}; first-party build", "scope": build.scope}, indent=2))
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():  # else another process added the same build first
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        model, _, _ = calibrated_model(store_root, Path(tmp))
    atomic_write_json(store_model_path(store_root), model.to_json())
    return build_id


