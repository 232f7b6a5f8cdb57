"""What FINN's build adds around the compute nodes before synthesis, per candidate folding.

Copied from FINN (finn-plus 1.6.1) and tested equal to FINN's ``res_estimation`` on the graph
after FINN's own insertions (tests/test_folding_whole_design.py):

- ``InsertDWC`` (transformation/fpgadataflow/insert_dwc.py) puts a StreamingDataWidthConverter on
  a stream wherever the producer's folded output shape and the consumer's folded input shape differ
  in their last axis (elements per stream word), from the producer's output stream width to the
  consumer's input stream width. ``SpecializeLayers`` makes it StreamingDataWidthConverter_rtl
  (specialize_layers.py, ``_determine_impl_style``: no preferred style and an RTL variant exists);
  its only cost is LUTs, ``StreamingDataWidthConverter.lut_estimation`` (copied in ``dwc_luts``).
- ``InsertFIFO(create_shallow_fifos=True)`` (insert_fifo.py), run after it, puts a StreamingFIFO on
  every stream between HW nodes (so before and after each DWC), one before the first node and one
  after the last. A FIFO is ``folded_shape[-1]`` elements of the producer's output data type wide
  (the producer's output 0, as FINN reads it) and ``max(producer outFIFODepths, consumer
  inFIFODepths)`` deep; the graph input/output FIFOs at least 2 deep; a DWC's own depths are 2.
  It becomes StreamingFIFO_rtl, costed by FINN's own fifo.sv model
  (finn/util/resource_models.py ``_resolve`` + ``_fifo_cost``, called here per distinct width).
- DWCs and FIFOs take no cycles in FINN's estimate (no ``get_exp_cycles``), so the bottleneck, and
  the fps, are the compute nodes'.
- The platform shell (IODMAs + Zynq interconnect) is a per-board figure (``Board.shell``).

Edges are per stream; a stream's costs depend on the producer's output and the consumer's input
stream, so every candidate of a group maps to a *class* per stream end, and an edge holds a
(producer class x consumer class) table. Streams inside a group (a depthwise SWG and its Pool) and
the graph's input/output FIFOs depend on one group only.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.core.boards import Board, Shell
from pynqrepro.core.errors import UserError
from pynqrepro.folding import costmodel
from pynqrepro.folding import decision
from pynqrepro.folding.fifoconfig import FOLDING_ATTRS, FifoDepths
from pynqrepro.folding.space import Group, SpaceOptions, as_finn_estimates, build_space

CONVERTER_OP = "StreamingDataWidthConverter_rtl"
FIFO_OP = "StreamingFIFO_rtl"
DWC_OWN_DEPTH = 2  # a DWC node's inFIFODepths / outFIFODepths (HWCustomOp's default)
IO_MIN_DEPTH = 2  # InsertFIFO: graph input/output FIFOs are at least 2 deep


@lru_cache(maxsize=None)
def _dwc_luts(in_width: int, out_width: int) -> int:
    """StreamingDataWidthConverter.lut_estimation (streamingdatawidthconverter.py), verbatim maths."""
    minw, maxw = min(in_width, out_width), max(in_width, out_width)
    intw = abs(maxw * minw) // math.gcd(maxw, minw)
    cnt_luts = cset_luts = 0
    if in_width != intw:
        cnt_luts += abs(math.ceil(math.log(in_width / intw, 2)))
        cset_luts += intw
    if intw != out_width:
        cnt_luts += abs(math.ceil(math.log(intw / out_width, 2)))
        cset_luts += out_width
    return int(cnt_luts + cset_luts)


dwc_luts = np.vectorize(_dwc_luts, otypes=[np.int64])


@lru_cache(maxsize=None)
def _fifo_cost(depth: int, width: int, versal: bool) -> tuple[int, int, int]:
    """(LUT, BRAM18, URAM) of a StreamingFIFO_rtl: FINN's fifo.sv model at the AXI-padded width."""
    from finn.util.resource_models import _fifo_cost as finn_fifo_cost
    from finn.util.resource_models import _resolve

    padded = -(-width // 8) * 8
    cost = finn_fifo_cost(depth, padded, _resolve(depth, padded, "auto"), versal)
    return int(cost.lut), int(cost.bram), int(cost.uram)


def fifo_costs(depth: int, widths: np.ndarray, part: str) -> dict:
    """{resource: array} of FIFOs ``depth`` deep at each of ``widths`` (bits, unpadded)."""
    from finn.util.basic import is_versal

    widths = np.asarray(widths, dtype=np.int64)
    unique, inverse = np.unique(widths, return_inverse=True)
    table = np.asarray([_fifo_cost(int(depth), int(w), is_versal(part)) for w in unique], dtype=np.int64)
    table = table.reshape(-1, 3)[inverse.reshape(widths.shape)]
    return {"LUT": table[..., 0], "BRAM_18K": table[..., 1], "URAM": table[..., 2],
            "DSP": np.zeros(widths.shape, dtype=np.int64)}


# ----------------------------------------------------------------------------------------------
# Streams and their inserted nodes


@dataclass
class Edge:
    """A stream from ``producer`` (output ``out_index``) to ``consumer`` (input ``in_index``);
    ``producer``/``consumer`` None: the graph input/output, whose FIFO depends on one node.

    ``out_class``/``in_class`` map each candidate of the producer's/consumer's group to a row/column
    of the tables; per class the stream facts FINN reads, per (row, column) what it inserts.
    """

    producer: str | None
    consumer: str | None
    producer_group: int | None
    consumer_group: int | None
    out_class: np.ndarray
    in_class: np.ndarray
    out_elems: np.ndarray  # per row: elements per word of the producer's folded output
    in_elems: np.ndarray  # per column: elements per word of the consumer's folded input
    converter_in: np.ndarray  # per row: the DWC's input width (producer's output stream width)
    converter_out: np.ndarray  # per column: the DWC's output width (consumer's input stream width)
    fifo_width: np.ndarray  # per row: the FIFO after the producer (per column for the graph input)
    depths: tuple  # (plain stream, before a DWC, after a DWC) FIFO depths
    tables: dict = field(repr=False)  # resource -> (rows x columns) our cost of everything inserted
    finn_tables: dict | None = field(repr=False, default=None)  # FINN's (None: same as ``tables``)

    @property
    def converter(self) -> np.ndarray:
        """(rows x columns): where FINN inserts a DWC (never at the graph's input or output)."""
        if None in (self.producer, self.consumer):
            return np.zeros((len(self.out_elems), len(self.in_elems)), dtype=bool)
        return self.out_elems[:, None] != self.in_elems[None, :]

    def cost(self, resource: str, k: int, l: int, finn: bool = False) -> int:
        tables = self.finn_tables if finn and self.finn_tables is not None else self.tables
        return int(tables[resource][k, l])

    def nodes(self, k: int, l: int, part: str) -> list[dict]:
        """What FINN inserts on this stream at row ``k``, column ``l``, in graph order."""
        where = {"producer": self.producer, "consumer": self.consumer}
        if self.producer is None:
            return [_fifo("input fifo", self.depths[0], int(self.fifo_width[l]), part, where)]
        if self.consumer is None:
            return [_fifo("output fifo", self.depths[0], int(self.fifo_width[k]), part, where)]
        if not self.converter[k, l]:
            return [_fifo("fifo", self.depths[0], int(self.fifo_width[k]), part, where)]
        win, wout = int(self.converter_in[k]), int(self.converter_out[l])
        return [_fifo("fifo before converter", self.depths[1], int(self.fifo_width[k]), part, where),
                {"op_type": CONVERTER_OP, "role": "converter", **where, "in_width": win, "out_width": wout,
                 "depth": None, "LUT": _dwc_luts(win, wout), "BRAM_18K": 0, "URAM": 0, "DSP": 0},
                _fifo("fifo after converter", self.depths[2], wout, part, where)]


def _fifo(role: str, depth: int, width: int, part: str, where: dict) -> dict:
    costs = fifo_costs(depth, np.asarray([width]), part)
    return {"op_type": FIFO_OP, "role": role, **where, "in_width": width, "out_width": width, "depth": depth,
            **{r: int(v[0]) for r, v in costs.items()}}


def _per_candidate(spec: costmodel.NodeSpec, group: Group, facts) -> np.ndarray:
    """``facts(inst)`` (a tuple of ints from FINN's node methods) at every candidate of ``group``,
    evaluated once per distinct PE/SIMD of the node: (candidates x len(facts)) array."""
    inst = costmodel.getHWCustomOp(spec.onnx_node)  # a fresh instance: FINN rebuilds its attribute table per
    types = inst.get_nodeattr_types()  # attribute read; it does not depend on the values, so keep one
    inst.get_nodeattr_types = lambda: types
    attrs = {a: p for a, p in group.node_attrs.get(spec.name, {}).items() if a in FOLDING_ATTRS}
    keys = (np.stack([group.params[p] for p in attrs.values()], axis=1) if attrs
            else np.zeros((len(group), 0), dtype=np.int64))
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    saved = {a: inst.get_nodeattr(a) for a in attrs}
    rows = []
    try:
        for key in unique:
            for attr, value in zip(attrs, key):
                inst.set_nodeattr(attr, int(value))
            rows.append(facts(inst))
    finally:
        for attr, value in saved.items():
            inst.set_nodeattr(attr, value)
    return np.asarray(rows, dtype=np.int64).reshape(len(unique), -1)[inverse.reshape(-1)]


def _classes(facts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of ``facts``, class index of every candidate)."""
    unique, inverse = np.unique(facts, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def _out_facts(index: int):
    """InsertDWC reads output ``index``; InsertFIFO reads output 0 (it calls FINN without an index)."""
    return lambda inst: (int(inst.get_folded_output_shape(index)[-1]), int(inst.get_outstream_width(index)),
                         int(inst.get_folded_output_shape()[-1]) * inst.get_output_datatype().bitwidth())


def _in_facts(index: int):
    return lambda inst: (int(inst.get_folded_input_shape(index)[-1]), int(inst.get_instream_width(index)),
                         int(inst.get_folded_input_shape(index)[-1]) * inst.get_input_datatype(index).bitwidth())


def _stream_tables(out: np.ndarray, inp: np.ndarray, depths: tuple, part: str, ours: bool = True) -> dict:
    """Cost of what FINN inserts for every (producer class, consumer class): a FIFO, or FIFO + DWC +
    FIFO; ``ours``: pynqrepro's estimate of each inserted node (``decision.inserted``), else FINN's."""
    direct, before, after = depths
    converter = out[:, 0][:, None] != inp[:, 0][None, :]
    fifo = (lambda t: decision.inserted(FIFO_OP, t)) if ours else (lambda t: t)
    plain = fifo(fifo_costs(direct, out[:, 2], part))
    ahead = fifo(fifo_costs(before, out[:, 2], part))
    behind = fifo(fifo_costs(after, inp[:, 1], part))
    luts = dwc_luts(out[:, 1][:, None], inp[:, 1][None, :])
    zeros = np.zeros(luts.shape, dtype=np.int64)
    dwc = {r: luts if r == "LUT" else zeros for r in costmodel.RESOURCES}
    dwc = decision.inserted(CONVERTER_OP, dwc) if ours else dwc
    tables = {}
    for r in costmodel.RESOURCES:
        converted = ahead[r][:, None] + behind[r][None, :] + dwc[r]
        tables[r] = np.where(converter, converted, plain[r][:, None]).astype(np.int64)
    return tables


def _node_groups(groups: list[Group]) -> dict:
    """node name -> (group index, NodeSpec)."""
    return {spec.name: (g, spec) for g, group in enumerate(groups) for spec in group.nodes}


def _check_known(model: ModelWrapper) -> None:
    """Every node must be a HW node FINN's methods can cost (the cost model knows no other)."""
    for node in model.graph.node:
        if not costmodel.is_hw_node(node):
            raise UserError(f"node {node.name} ({node.op_type}) is not a FINN HW layer, so the cost model does not "
                            "know it and this model's folding cannot be optimised: pass the specialised HW-layer "
                            "model (hw_model.onnx), i.e. FINN's dataflow partition")


def _streams(model: ModelWrapper) -> list[tuple]:
    """(producer, output index, consumer, input index) of every stream; None for the graph's end."""
    outputs = {o.name for o in model.graph.output}
    streams = []
    for node in model.graph.node:
        for out_index, tensor in enumerate(node.output):
            consumers = model.find_consumers(tensor)
            if len(consumers) > 1:
                raise UserError(f"{node.name} feeds {len(consumers)} nodes: FINN cannot stitch a HW fan-out "
                                "(InsertDWC asserts); insert DuplicateStreams in the model")
            if consumers:
                streams.append((node, out_index, consumers[0], list(consumers[0].input).index(tensor)))
            elif tensor in outputs:
                streams.append((node, out_index, None, None))
    for tensor in model.graph.input:
        first = model.find_consumer(tensor.name)
        streams.append((None, None, first, list(first.input).index(tensor.name)))
    return streams


def _port_facts(streams: list, where: dict, groups: list[Group]) -> dict:
    """{(node name, "out"/"in", index): (distinct facts, class per candidate)} of every stream end,
    from one pass of FINN's node methods per node."""
    ports = {}
    for producer, out_index, consumer, in_index in streams:
        if producer is not None:
            ports.setdefault(producer.name, []).append(("out", out_index))
        if consumer is not None:
            ports.setdefault(consumer.name, []).append(("in", in_index))
    out = {}
    for name, wanted in ports.items():
        g, spec = where[name]
        readers = [_out_facts(i) if side == "out" else _in_facts(i) for side, i in wanted]
        facts = _per_candidate(spec, groups[g], lambda inst: sum((read(inst) for read in readers), ()))
        for n, (side, i) in enumerate(wanted):
            out[(name, side, i)] = _classes(facts[:, 3 * n:3 * n + 3])
    return out


def build_edges(model: ModelWrapper, groups: list[Group], part: str, depths: FifoDepths) -> list[Edge]:
    """Every stream of ``model`` (between HW nodes, and the graph's input and output) as an Edge."""
    _check_known(model)
    where = _node_groups(groups)
    streams = _streams(model)
    ports = _port_facts(streams, where, groups)
    single = np.zeros(1, dtype=np.int64)
    edges = []
    for producer, out_index, consumer, in_index in streams:
        if consumer is None:
            out, out_class = ports[(producer.name, "out", out_index)]
            depth = max(depths.outputs[producer.name][out_index], IO_MIN_DEPTH)
            edges.append(_io_edge(producer.name, None, where[producer.name][0], None, out_class, single, out, depth,
                                  part))
            continue
        inp, in_class = ports[(consumer.name, "in", in_index)]
        if producer is None:
            depth = max(depths.inputs[consumer.name][in_index], IO_MIN_DEPTH)
            edges.append(_io_edge(None, consumer.name, None, where[consumer.name][0], single, in_class, inp, depth,
                                  part))
            continue
        out, out_class = ports[(producer.name, "out", out_index)]
        p_depth, c_depth = depths.edge(producer.name, out_index, consumer.name, in_index)
        stream_depths = (max(p_depth, c_depth), max(p_depth, DWC_OWN_DEPTH), max(DWC_OWN_DEPTH, c_depth))
        edges.append(Edge(producer.name, consumer.name, where[producer.name][0], where[consumer.name][0], out_class,
                          in_class, out[:, 0], inp[:, 0], out[:, 1], inp[:, 1], out[:, 2], stream_depths,
                          _stream_tables(out, inp, stream_depths, part),
                          _stream_tables(out, inp, stream_depths, part, ours=False)))
    return edges


def _io_edge(producer, consumer, p_group, c_group, out_class, in_class, facts, depth, part) -> Edge:
    """The graph input's (``producer`` None) or output's FIFO: one row or one column."""
    finn = fifo_costs(depth, facts[:, 2], part)
    costs = decision.inserted(FIFO_OP, finn)
    one = np.zeros(1, dtype=np.int64)
    if producer is None:
        tables, finn = ({r: v[None, :] for r, v in c.items()} for c in (costs, finn))
        return Edge(None, consumer, None, c_group, out_class, in_class, one, facts[:, 0], one, facts[:, 1],
                    facts[:, 2], (depth,) * 3, tables, finn)
    tables, finn = ({r: v[:, None] for r, v in c.items()} for c in (costs, finn))
    return Edge(producer, None, p_group, None, out_class, in_class, facts[:, 0], one, facts[:, 1], one,
                facts[:, 2], (depth,) * 3, tables, finn)


# ----------------------------------------------------------------------------------------------
# The whole design: compute groups + what FINN inserts + the shell


@dataclass
class Insertions:
    """What FINN's build adds to the compute groups: every stream's DWC/FIFOs, and the shell.
    ``width_converters`` False: the user forbids DWCs (neighbouring stream widths must match)."""

    edges: list
    shell: Shell
    depths: FifoDepths
    part: str
    width_converters: bool = True

    def _ends(self, edge: Edge, choice) -> tuple[int, int]:
        k = edge.out_class[choice[edge.producer_group]] if edge.producer_group is not None else 0
        l = edge.in_class[choice[edge.consumer_group]] if edge.consumer_group is not None else 0
        return int(k), int(l)

    def total(self, resource: str, choice, finn: bool = False) -> int:
        """Everything inserted, plus the shell, at ``choice`` (one candidate index per group):
        pynqrepro's estimate, or with ``finn`` FINN's own."""
        inserted = sum(edge.cost(resource, *self._ends(edge, choice), finn=finn) for edge in self.edges)
        return inserted + self.shell.resource(resource)

    def converters(self, choice) -> int:
        """How many DWCs FINN inserts at ``choice``."""
        return sum(bool(edge.converter[self._ends(edge, choice)]) for edge in self.edges)

    def admits(self, choice) -> bool:
        return self.width_converters or self.converters(choice) == 0

    def nodes(self, choice) -> list[dict]:
        """Every DWC/FIFO FINN inserts at ``choice``: op type, role, neighbours, widths, depth, costs."""
        return [node for edge in self.edges for node in edge.nodes(*self._ends(edge, choice), self.part)]

    def within_group(self, group: int, size: int) -> dict:
        """{resource: per-candidate cost} of the streams only group ``group`` decides (inside the
        group, and the graph input/output FIFOs at it); "converters": whether they need a DWC."""
        out = {r: np.zeros(size, dtype=np.int64) for r in costmodel.RESOURCES}
        out["converters"] = np.zeros(size, dtype=bool)
        for edge in self.edges:
            ends = {edge.producer_group, edge.consumer_group} - {None}
            if ends != {group}:
                continue
            k = edge.out_class if edge.producer_group is not None else np.zeros(size, dtype=np.int64)
            l = edge.in_class if edge.consumer_group is not None else np.zeros(size, dtype=np.int64)
            for r in costmodel.RESOURCES:
                out[r] += edge.tables[r][k, l]
            out["converters"] |= edge.converter[k, l]
        return out

    def between_groups(self) -> list[Edge]:
        """Streams between two groups: the coupling the optimiser must decide jointly."""
        return [e for e in self.edges if None not in (e.producer_group, e.consumer_group)
                and e.producer_group != e.consumer_group]


@dataclass
class Design:
    """A HW model's folding decisions (``groups``) and what FINN's build adds to each folding."""

    groups: list
    insertions: Insertions

    def as_finn_estimates(self) -> "Design":
        """The same design costed by FINN's raw estimate (``space.as_finn_estimates``)."""
        edges = [dataclasses.replace(e, tables=e.tables if e.finn_tables is None else e.finn_tables, finn_tables=None)
                 for e in self.insertions.edges]
        return Design(as_finn_estimates(self.groups), dataclasses.replace(self.insertions, edges=edges))

    def without_width_converters(self) -> "Design":
        """The same design with DWCs forbidden: neighbouring stream widths must match."""
        return Design(self.groups, dataclasses.replace(self.insertions, width_converters=False))


def build_design(model: ModelWrapper, board: Board, options: SpaceOptions = SpaceOptions(),
                 fifo_config: FifoDepths | None = None, width_converters: bool = True,
                 shell: Shell | None = None) -> Design:
    """The whole design FINN builds from ``model`` on ``board`` at any folding: compute groups,
    DWCs/FIFOs (minimal depths, or ``fifo_config``'s), and the board's shell (``shell`` overrides)."""
    groups = build_space(model, board.part, options)
    depths = fifo_config or FifoDepths.of_model(model)
    edges = build_edges(model, groups, board.part, depths)
    return Design(groups, Insertions(edges, shell or board.shell, depths, board.part, width_converters))
