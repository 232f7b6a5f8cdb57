"""The foldings the exact optimiser is compared with, as ``Folding`` objects over the same space
(compute groups, or a whole ``Design``, whose foldings are then judged by their whole-design
totals): all-1, a given config (FINN's published CNV foldings), FINN's SetFolding at the best target
that fits, and the study's greedy search.

FINN's SetFolding and FINN's published foldings are judged on the space without the SIMD x W cap
(``UNCAPPED``): SetFolding checks the cap only after a SIMD step missed its target, and the
published foldings exceed it, so the capped space would not contain them.
"""

import copy
import logging

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from pynqrepro.core.boards import Board
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.folding.optimise import Budget, Folding, optimise, unpack
from pynqrepro.folding.space import Group, SpaceOptions, estimated_as
from pynqrepro.references import MVAU_WWIDTH_MAX

NO_WIDTH_CAP = 10**6  # an mvau_wwidth_max no MVAU reaches


def _matching(group: Group, wanted: dict) -> np.ndarray:
    """Mask of the candidates of ``group`` that set ``wanted`` {node: {attr: value}} (missing
    attributes free)."""
    ok = np.ones(len(group), dtype=bool)
    for node, attrs in group.node_attrs.items():
        for attr, param in attrs.items():
            if attr in wanted.get(node, {}):
                value = estimated_as(attr, wanted[node][attr])
                codes = [c for c in np.unique(group.params[param]) if estimated_as(attr, costmodel.decode(attr, c)) == value]
                ok &= np.isin(group.params[param], codes)
    return ok


def _cheapest(group: Group, ok: np.ndarray) -> int:
    score = group.costs.LUT * 10**6 + group.costs.BRAM_18K
    return int(np.flatnonzero(ok)[np.argmin(score[ok])])


def _match(group: Group, wanted: dict) -> int:
    """Index of the candidate of ``group`` that sets ``wanted`` {node: {attr: value}} (missing
    attributes free), cheapest (LUT, BRAM) first; UserError if it is not a legal candidate."""
    ok = _matching(group, wanted)
    if not ok.any():
        raise UserError(f"{group.name}: {wanted.get(group.name)} is not a legal folding of this model "
                        "(PE/SIMD must divide the layer, SIMD x weight bits <= mvau_wwidth_max, and FINN's "
                        "code generation must accept it: MVAU_hls SIMD >= MW / 1024)")
    return _cheapest(group, ok)


def _fixed_settings(groups: list[Group], config: dict) -> list[str]:
    """``node.attr`` settings of ``config`` that the space does not decide (it keeps the model's)
    and that differ from the model's as FINN estimates them, e.g. a published ``ram_style``."""
    out = []
    for group in groups:
        for spec in group.nodes:
            decided = group.node_attrs.get(spec.name, {})
            out += [f"{spec.name}.{attr}={value}" for attr, value in config.get(spec.name, {}).items()
                    if attr not in decided and attr in spec.attrs
                    and estimated_as(attr, value) != estimated_as(attr, spec.attrs[attr])]
    return out


def from_config(space, config: dict, method: str) -> Folding:
    """The folding a FINN ApplyConfig dict describes; as with ApplyConfig, the nodes and attributes
    it omits keep the model's current values. A setting the space cannot take (it keeps the
    model's) is refused: build the space of the model with the config applied (``from_applied_config``)."""
    groups, _ = unpack(space)
    fixed = _fixed_settings(groups, config)
    if fixed:
        raise UserError(f"{method}: the folding sets {', '.join(fixed[:4])}, which this space keeps at the model's "
                        "values: judge it on the model with the folding applied (baselines.from_applied_config)")
    choice = []
    for group in groups:
        current = {spec.name: spec.attrs for spec in group.nodes}
        wanted = {node: {**{a: current[node][a] for a in attrs if a in current[node]}, **config.get(node, {})}
                  for node, attrs in group.node_attrs.items()}
        choice.append(_match(group, wanted) if group.node_attrs else 0)
    return Folding.of(method, space, choice)


def from_applied_config(model: ModelWrapper, board: Board, config: dict, method: str,
                        options: SpaceOptions | None = None) -> Folding:
    """The folding ``config`` makes on ``model`` with every attribute it sets (PE/SIMD, and the
    ``ram_style``/``resType`` FINN's published foldings carry) as FINN's ApplyConfig sets them,
    judged as the whole design FINN builds on ``board`` (space ``options``, default ``UNCAPPED``)."""
    from pynqrepro.finnflow.foldconfig import apply_folding
    from pynqrepro.folding.wholedesign import build_design

    applied = apply_folding(model, config)
    return from_config(build_design(applied, board, options or UNCAPPED), config, method)


def all_ones(space) -> Folding:
    """The slowest legal folding: PE = SIMD = 1, except where FINN's code generation needs more
    (an MVAU_hls with MW > 1024 needs SIMD >= MW / 1024), there the fewest PE x SIMD lanes; the
    model's own implementation settings, cheapest first."""
    groups, _ = unpack(space)
    choice = []
    for group in groups:
        current = {spec.name: spec.attrs for spec in group.nodes}
        own = {node: {a: current[node][a] for a in attrs if a in current[node] and a not in ("PE", "SIMD")}
               for node, attrs in group.node_attrs.items()}
        ok = _matching(group, own)
        lanes = np.ones(len(group), dtype=np.int64)
        for param in ("PE", "SIMD"):
            lanes = lanes * group.params.get(param, 1)
        ok &= lanes == lanes[ok].min() if ok.any() else ok
        choice.append(_cheapest(group, ok) if group.node_attrs else 0)
    return Folding.of("all-1", space, choice)


def _light_copy(model: ModelWrapper) -> ModelWrapper:
    """The graph without weight initializers: SetFolding and the estimates never read them, and
    copying a few attributes per target is 10x cheaper than copying the weights."""
    proto = copy.deepcopy(model.model)
    del proto.graph.initializer[:]
    return ModelWrapper(proto)


def _model_config(model: ModelWrapper, groups: list[Group]) -> dict:
    config = {}
    for group in groups:
        for node_name, attrs in group.node_attrs.items():
            inst = getCustomOp(model.get_node_from_name(node_name))
            config[node_name] = {a: inst.get_nodeattr(a) for a in attrs}
    return config


UNCAPPED = SpaceOptions(mvau_wwidth_max=NO_WIDTH_CAP)  # the space where FINN's own foldings live


def setfolding_baseline(model: ModelWrapper, uncapped, budget: Budget) -> Folding | None:
    """FINN's SetFolding as the folding experiment compares it: at the fastest target that fits
    ``budget``, searched from the exact optimum over ``uncapped`` (the ``UNCAPPED`` space's groups,
    or its whole ``Design``, whose totals then judge the fit) upwards (None when nothing fits)."""
    try:
        floor = optimise(uncapped, budget).max_cycles
    except UserError:
        return None
    return setfolding_at_budget(model, uncapped, budget, floor)


def setfolding_at_budget(model: ModelWrapper, space, budget: Budget, floor: int = 0,
                         mvau_wwidth_max: int = MVAU_WWIDTH_MAX) -> Folding | None:
    """FINN's SetFolding at the fastest target whose result fits ``budget`` (None if none does).

    ``groups`` must not cap SIMD by ``mvau_wwidth_max``: SetFolding checks the cap only after a
    SIMD step missed the target, so a step that meets it may exceed the cap. Targets are the
    distinct candidate cycle counts from ``floor`` (the exact optimum over those groups: no
    fitting folding is faster) upwards. Whether SetFolding's result fits is not monotone in the target, so
    every target is tried in ascending order; each node's choice only relaxes as the target grows,
    so the first fitting result is the fastest one. A target at which SetFolding picks a folding
    outside ``space`` (e.g. an HLS MVAU SIMD below MW / 1024, which FINN's code generation rejects)
    is skipped: that design cannot be built.
    """
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    groups, _ = unpack(space)
    light = _light_copy(model)
    targets = np.unique(np.concatenate([g.costs.cycles for g in groups]))
    logging.disable(logging.WARNING)  # SetFolding warns for every node missing a target
    try:
        for target in targets[targets >= floor]:
            folded = light.transform(SetFolding(int(target), mvau_wwidth_max=mvau_wwidth_max))
            try:
                result = from_config(space, _model_config(folded, groups), f"FINN SetFolding (target {int(target)})")
            except UserError:  # SetFolding chose a folding FINN's own code generation rejects: it cannot be built
                continue
            if result.fits(budget):
                return result
    finally:
        logging.disable(logging.NOTSET)
    return None


def _parallelism(group: Group, i: int) -> tuple[int, int]:
    """Elements per cycle a group consumes and produces (SIMD in, PE out for an MVAU)."""
    p = {k: int(v[i]) for k, v in group.params.items()}
    if "SIMD" in p and "PE" in p:
        return p["SIMD"], p["PE"]
    value = p.get("SIMD", p.get("PE", 1))
    return value, value


def study_greedy(space, budget: Budget, prio: str = "simd") -> Folding:
    """The study's ``set_folding_exhaustive`` search as it describes it: from all-1, repeatedly move
    the slowest group to its next faster candidate (ties in cycles broken by larger SIMD for
    ``prio="simd"``, by PE closest to SIMD for ``"balanced"``) whose stream widths stay
    compatible with its neighbours (one divides the other) and whose total LUTs stay within the
    budget; stop when the slowest group cannot move. BRAM is not checked, and the LUTs are the
    compute nodes' (the study's estimate had no DWCs or FIFOs), as in the study."""
    if prio not in ("simd", "balanced"):
        raise UserError(f"greedy priority {prio!r} unknown: use 'simd' or 'balanced'")
    groups, _ = unpack(space)
    choice = all_ones(groups).choice
    lut = sum(int(g.costs.LUT[i]) for g, i in zip(groups, choice))

    def viable(k: int, i: int) -> bool:
        inp, out = _parallelism(groups[k], i)
        for j, own in ((k - 1, inp), (k + 1, out)):
            if 0 <= j < len(groups):
                other = _parallelism(groups[j], choice[j])[1 if j < k else 0]
                if max(own, other) % min(own, other):
                    return False
        return True

    while True:
        cycles = np.asarray([g.costs.cycles[i] for g, i in zip(groups, choice)])
        k = int(np.argmax(cycles))
        group, current = groups[k], choice[k]
        faster = np.flatnonzero(group.costs.cycles < group.costs.cycles[current])
        if len(faster) == 0:
            break
        simd = group.params.get("SIMD", np.ones(len(group)))[faster]
        pe = group.params.get("PE", np.ones(len(group)))[faster]
        tie = -simd if prio == "simd" else np.abs(np.log(pe / simd))
        moved = False
        for i in faster[np.lexsort((tie, -group.costs.cycles[faster]))]:
            step_lut = lut - int(group.costs.LUT[current]) + int(group.costs.LUT[i])
            if step_lut <= budget.LUT and viable(k, i):
                choice[k], lut, moved = int(i), step_lut, True
                break
        if not moved:
            break
    return Folding.of(f"study greedy (prio {prio})", space, choice)
