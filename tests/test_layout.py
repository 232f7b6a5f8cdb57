"""The layout shows the pipeline: the package-level import graph, read from every import statement in
pynqrepro/ (lazy ones inside functions too), runs only down the floors and has no circle."""

import ast
from collections import defaultdict
from pathlib import Path

import pynqrepro

# Lowest first. A package may import its own floor's and lower floors' packages; references (the
# published figures) sits beside core, above it so that core never needs it.
FLOORS = (
    ("core",),
    ("references",),
    ("data",),
    ("models",),
    ("training",),
    ("pruning",),
    ("finnflow",),
    ("folding",),
    ("synthesis",),
    ("board",),
    ("pipeline", "study", "cli", "__main__", "pytest_plugin"),
)
FLOOR = {unit: level for level, units in enumerate(FLOORS) for unit in units}
ROOT = Path(pynqrepro.__file__).parent


def unit_of(path: Path) -> str:
    """The package (or top-level module) a file of pynqrepro/ belongs to."""
    first = path.relative_to(ROOT).parts[0]
    return first.removesuffix(".py")


def imported_units(tree: ast.AST, unit: str) -> list[tuple[str, int]]:
    """(pynqrepro unit, line) of every import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside its own package
                found.append((unit, node.lineno))
                continue
            names = ([f"{node.module}.{alias.name}" for alias in node.names] if node.module == "pynqrepro"
                     else [node.module or ""])
        else:
            continue
        found += [(name.split(".")[1], node.lineno) for name in names
                  if name.startswith("pynqrepro.") and name.split(".")[1] != "__init__"]
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> where ("file:line")."""
    graph = defaultdict(lambda: defaultdict(list))
    for path in sorted(ROOT.rglob("*.py")):
        unit = unit_of(path)
        if unit == "__init__":
            continue
        for target, line in imported_units(ast.parse(path.read_text(), str(path)), unit):
            if target != unit:
                graph[unit][target].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return graph


def cycles(graph) -> list[list[str]]:
    """Every circle the depth-first search meets, as the units along it."""
    found, state = [], {}

    def visit(unit, trail):
        state[unit] = "open"
        for target in graph.get(unit, {}):
            if state.get(target) == "open":
                found.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    return found


def test_every_package_has_a_floor():
    units = {unit_of(path) for path in ROOT.rglob("*.py")} - {"__init__"}
    assert units - set(FLOOR) == set(), "declare the new package's floor in FLOORS (and docs/ARCHITECTURE.md)"


def test_no_import_runs_up_a_floor():
    graph = import_graph()
    upward = [f"{unit} -> {target} ({', '.join(where)})"
              for unit, targets in graph.items() for target, where in targets.items()
              if FLOOR[target] > FLOOR[unit]]
    assert upward == []


def test_no_circle_between_packages():
    assert cycles(import_graph()) == []


def test_the_check_sees_lazy_and_from_imports():
    tree = ast.parse("from pynqrepro import pipeline\n"
                     "def f():\n    import pynqrepro.core.store\n    from pynqrepro.folding.space import build_space\n")
    assert [unit for unit, _ in imported_units(tree, "board")] == ["pipeline", "core", "folding"]
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == [["a", "b", "c", "a"]]
