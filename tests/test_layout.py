"""The layout shows the pipeline: the package-level import graph, read from every import statement in
pynqrepro/ (lazy ones inside functions too), runs only down the floors and has no circle; nor does
the module-level graph, so two modules of one package never import each other, however lazily."""

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


def module_name(path: Path) -> str:
    """``pynqrepro.core.store`` for pynqrepro/core/store.py (a package's __init__: the package)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> list[tuple[str, int]]:
    """(pynqrepro module, line) of every import in ``tree``: ``from pynqrepro.core import claims`` is
    the module pynqrepro.core.claims, ``from pynqrepro.core.store import X`` pynqrepro.core.store."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to this module's package
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found += [(target, node.lineno) for target in targets if target in known and target != module]
    return found


def module_graph() -> dict[str, dict[str, list[str]]]:
    """pynqrepro module -> imported pynqrepro module -> where ("file:line")."""
    paths = sorted(ROOT.rglob("*.py"))
    known = {module_name(path) for path in paths}
    graph = defaultdict(lambda: defaultdict(list))
    for path in paths:
        module = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for target, line in imported_modules(tree, module, path.name == "__init__.py", known):
            graph[module][target].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return graph


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


def test_no_circle_between_modules():
    graph = module_graph()
    assert [" -> ".join(cycle) + f" ({graph[cycle[-2]][cycle[-1]][0]})" for cycle in cycles(graph)] == []


def test_the_module_check_sees_a_circle_inside_a_package():
    known = {"pynqrepro.core.store", "pynqrepro.core.executor", "pynqrepro.core.cluster",
             "pynqrepro.core.cluster.submission", "pynqrepro.core"}
    store = ast.parse("from pynqrepro.core.executor import LOCAL\n")
    executor = ast.parse("def f():\n    from pynqrepro.core.cluster import submission\n")
    submission = ast.parse("from ..store import ArtifactStore\nfrom pynqrepro.core import executor\n")
    graph = {"store": {t.rsplit(".", 1)[1]: [] for t, _ in imported_modules(store, "pynqrepro.core.store", False, known)},
             "executor": {t.rsplit(".", 1)[1]: [] for t, _ in
                          imported_modules(executor, "pynqrepro.core.executor", False, known)},
             "submission": {t.rsplit(".", 1)[1]: [] for t, _ in
                            imported_modules(submission, "pynqrepro.core.cluster.submission", False, known)}}
    assert graph == {"store": {"executor": []}, "executor": {"submission": []},
                     "submission": {"store": [], "executor": []}}
    assert ["executor", "submission", "executor"] in cycles(graph)  # lazy import, relative import, one package


def test_the_check_sees_lazy_and_from_imports():
    tree = ast.parse("from pynqrepro import pipeline\n"
                     "def f():\n    import pynqrepro.core.store\n    from pynqrepro.folding.space import build_space\n")
    assert [unit for unit, _ in imported_units(tree, "board")] == ["pipeline", "core", "folding"]
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == [["a", "b", "c", "a"]]
