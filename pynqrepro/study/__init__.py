"""The study's experiments as library code: one module per report table, so that everything an
experiment records, ``pynqrepro report <table>`` records too, with the same functions.

Each module has:

- ``EXPERIMENT``: the pytest node of the experiment that records the table. Rows that
  ``pynqrepro report`` records carry the same test id (``EXPERIMENT[case.id]``), so a later run of
  either replaces the other's rows;
- ``TABLE``, ``TITLE``, ``NOTES``: the report;
- ``CASES``: the experiment's parametrisation; ``case.id`` is pytest's id, the case's fields are
  ``pynqrepro report <table>`` options; optionally ``REPORT_CASES``, a superset the report command
  also offers when asked (values the experiment does not run, to keep CI short, e.g. more boards),
  recorded under the same id scheme; ``case.cnv_bits`` the (weight, activation) bits of the
  trained CNV it measures, or None (the pytest plugin asks the store for it before the case runs);
- ``measure(setup, case)``: the measurement, as the study's method section describes it;
- ``tabulate(results, setup, measurement)``: its rows, then the published figures beside them.

``experiments/test_<module>.py`` runs ``measure`` and ``tabulate`` per case and asserts on the
measurement.
"""

from dataclasses import dataclass

TABLES = {  # report table -> the module that measures it
    "training": "pynqrepro.study.training",
    "finn_estimates": "pynqrepro.study.finn_flow",
    "folding": "pynqrepro.study.folding",
    "pruning": "pynqrepro.study.pruning",
    "synthesis": "pynqrepro.study.synthesis",
    "board": "pynqrepro.study.board",
    "calibration": "pynqrepro.study.calibration",
    "design_space": "pynqrepro.study.design_space",
}


@dataclass(frozen=True)
class Bits:
    """A case of one CNV: its weight and activation bit widths."""

    weight_bits: int
    act_bits: int

    @property
    def id(self) -> str:
        return f"{self.weight_bits}w{self.act_bits}a"

    @property
    def cnv_bits(self) -> tuple[int, int]:
        return self.weight_bits, self.act_bits

    @property
    def model(self) -> str:
        return f"CNV W{self.weight_bits}A{self.act_bits}"


def bit_widths(*pairs: tuple[int, int]) -> tuple[Bits, ...]:
    return tuple(Bits(w, a) for w, a in pairs)
