"""FIFO depths a user's config sets: FINN's ``report/fifo_sizing.json`` or a folding JSON with FIFO
depths (e.g. ``final_hw_config.json`` of a build on a Vivado host), checked shape by shape (the
offending key named), as the ``inFIFODepths`` / ``outFIFODepths`` FINN's InsertFIFO reads.
``folding.wholedesign`` costs the FIFOs at these depths."""

import json
from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel

FOLDING_ATTRS = ("PE", "SIMD")  # the only attributes stream widths (and so FINN's FIFO names) depend on
DEPTH_ATTRS = ("inFIFODepths", "outFIFODepths")
SIZING_KEYS = ("fifo_depths", "fifo_sizes", "fifo_sizes_effective", "impl_style", "ram_style")
FIX = "pass FINN's report/fifo_sizing.json or the final_hw_config.json of a FINN build"


@dataclass(frozen=True)
class FifoDepths:
    """Per HW node, the ``inFIFODepths`` / ``outFIFODepths`` InsertFIFO reads; ``changed`` are the
    nodes whose depths differ from the model's, which a folding JSON must carry."""

    inputs: dict
    outputs: dict
    source: str = "minimal (FINN's default node depths, as force_minimal_fifos builds)"
    changed: frozenset = frozenset()

    @classmethod
    def of_model(cls, model: ModelWrapper) -> "FifoDepths":
        inputs, outputs = {}, {}
        for node in model.graph.node:
            if costmodel.is_hw_node(node):
                inst = costmodel.getHWCustomOp(node)
                inputs[node.name] = tuple(inst.get_nodeattr("inFIFODepths"))
                outputs[node.name] = tuple(inst.get_nodeattr("outFIFODepths"))
        return cls(inputs, outputs)

    def edge(self, producer: str, out_index: int, consumer: str, in_index: int) -> tuple[int, int]:
        """(producer side, consumer side) depths of a stream, indices clamped as InsertFIFO does."""
        out = self.outputs[producer]
        inp = self.inputs[consumer]
        return out[min(out_index, len(out) - 1)], inp[min(in_index, len(inp) - 1)]

    def config(self) -> dict:
        """ApplyConfig entries that make FINN's InsertFIFO use these depths."""
        return {name: {"inFIFODepths": list(self.inputs[name]), "outFIFODepths": list(self.outputs[name])}
                for name in sorted(self.changed)}


def _positive_depth(name: str, value) -> int:
    """A FIFO depth from a user's config: an integer of at least 2, the least FINN's fifo.sv builds
    (StreamingFIFO_rtl.generate_hdl refuses shallower ones)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise UserError(f"FIFO depth {value!r} for {name} is not a positive integer of at least 2 (the least "
                        "FINN's fifo.sv builds): use 2 (the minimal depth) or the depth FINN's FIFO sizing reported")
    return value


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), f"{json.dumps(value)[:40]}")


def read_fifo_config(path: Path) -> dict:
    """The JSON of ``path`` checked for shape: an object, either FINN's fifo_sizing.json (its
    sections objects of FIFO name: value) or a folding JSON (each entry an object of attributes,
    depth lists of integers), setting at least one depth; else a UserError naming the key."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read FIFO config {path} ({exc}): {FIX}") from None
    return check_fifo_config(config, str(path))


def check_fifo_config(config, name: str) -> dict:
    """``config`` if it has a FIFO config's shape (see ``read_fifo_config``), else a UserError."""
    if not isinstance(config, dict):
        raise UserError(f"FIFO config {name} is {_kind(config)}, not a JSON object: {FIX}")
    if "fifo_depths" in config:
        for key in SIZING_KEYS:
            if key in config and not isinstance(config[key], dict):
                raise UserError(f"FIFO config {name}: {key!r} is {_kind(config[key])}, not an object "
                                f"{{FIFO name: value}}: {FIX}")
        depths = config["fifo_depths"]
    else:
        for key, attrs in config.items():
            if not isinstance(attrs, dict):
                raise UserError(f"FIFO config {name}: entry {key!r} is {_kind(attrs)}, not an object of node "
                                f"attributes such as {{\"inFIFODepths\": [2]}}: {FIX}")
            for attr in DEPTH_ATTRS:
                if attr in attrs and (not isinstance(attrs[attr], (list, int)) or attrs[attr] == []):
                    raise UserError(f"FIFO config {name}: {key} {attr} is {_kind(attrs[attr])}, not a non-empty "
                                    f"list of depths such as [2]: {FIX}")
        depths = {key: attrs for key, attrs in config.items() if key != "Defaults"
                  and (any(a in attrs for a in DEPTH_ATTRS) or (key.startswith("StreamingFIFO") and "depth" in attrs))}
    if not depths:
        raise UserError(f"FIFO config {name} sets no FIFO depth (no fifo_depths entry, inFIFODepths/outFIFODepths or "
                        f"StreamingFIFO depth): {FIX}, or drop --fifo-config for minimal depths")
    return config


def fifo_depths(model: ModelWrapper, config: dict | Path, part: str, reference: dict | None = None) -> FifoDepths:
    """The depths a user's FIFO config sets, as InsertFIFO will read them from node attributes.

    ``config`` is FINN's fifo_sizing.json (``{"fifo_depths": {"StreamingFIFO_rtl_k": depth}}``) or
    a folding JSON (ApplyConfig form) whose HW nodes carry ``inFIFODepths``/``outFIFODepths`` and/or
    whose ``StreamingFIFO_*`` entries carry ``depth``, e.g. FINN's final folding of a build on a
    Vivado host. FIFO names are FINN's for the folding that build used: the config's own PE/SIMD
    entries over ``reference`` (a folding dict, default the model's own). A FIFO before or after a
    DWC sets the producer's or the consumer's depth; one on a plain stream both.
    """
    config = check_fifo_config(config, "given") if isinstance(config, dict) else read_fifo_config(config)
    base = FifoDepths.of_model(model)
    inputs, outputs = dict(base.inputs), dict(base.outputs)
    fifos = {}
    if "fifo_depths" in config:
        fifos.update(config["fifo_depths"])
        styles = config.get("ram_style", {})
        entries = {}
    else:
        entries = {name: attrs for name, attrs in config.items() if name != "Defaults"}
        styles = {name: attrs["ram_style"] for name, attrs in entries.items()
                  if name.startswith("StreamingFIFO") and "ram_style" in attrs}
    styles = {name: style for name, style in styles.items() if style != "auto"}
    if styles:
        raise UserError(f"FIFO config sets ram_style {styles} but a folding JSON can only reproduce 'auto': "
                        "size those FIFOs with large_fifo_mem_style=auto")
    unknown = []
    for name, attrs in entries.items():
        if name.startswith("StreamingFIFO"):
            if "depth" in attrs:
                fifos[name] = attrs["depth"]
        elif name not in inputs:
            if not name.startswith("StreamingDataWidthConverter"):
                unknown.append(name)
        else:
            for attr, target in (("inFIFODepths", inputs), ("outFIFODepths", outputs)):
                if attr in attrs:
                    depths = attrs[attr] if isinstance(attrs[attr], list) else [attrs[attr]]
                    target[name] = tuple(_positive_depth(f"{name} {attr}", d) for d in depths)
    if fifos:
        folding = {**(reference or {}), **{n: {a: v for a, v in attrs.items() if a in FOLDING_ATTRS}
                                          for n, attrs in entries.items() if n in inputs}}
        slots = _fifo_slots(model, folding, part)
        unknown += [name for name in fifos if name not in slots]
        if not unknown:
            for name, depth in fifos.items():
                producer, consumer, role = slots[name]
                depth = _positive_depth(name, depth)
                if role in ("fifo", "fifo before converter", "output fifo"):
                    outputs[producer] = (depth,) + outputs[producer][1:]
                if role in ("fifo", "fifo after converter", "input fifo"):
                    inputs[consumer] = (depth,) + inputs[consumer][1:]
    if unknown:
        raise UserError(f"FIFO config names {', '.join(sorted(unknown)[:5])}, not a HW node of this model nor a FIFO "
                        "FINN inserts for its folding: pass the config of a build of this model (with the folding "
                        "JSON that build used)")
    changed = frozenset(n for n in inputs if inputs[n] != base.inputs[n] or outputs[n] != base.outputs[n])
    return FifoDepths(inputs, outputs, "user FIFO config", changed)


def _fifo_slots(model: ModelWrapper, folding: dict, part: str) -> dict:
    """{FINN FIFO name: (producer, consumer, role)} of ``model`` built at ``folding``, by FINN."""
    from pynqrepro.finnflow.buildprep import insert_dwcs_and_fifos, inserted_nodes
    from pynqrepro.finnflow.foldconfig import apply_folding

    inserted = insert_dwcs_and_fifos(apply_folding(model, folding), part)
    return {n.name: (n.producer, n.consumer, n.role) for n in inserted_nodes(inserted) if n.role != "converter"}
