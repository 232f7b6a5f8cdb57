"""The code a stage's artifact depends on, as a hash that the store's keys include.

Grain: the module that defines a stage's build function plus every pynqrepro module it imports,
transitively, read from its import statements (lazy ones inside functions too) — not the whole
package tree. So a fix in a build function, or in anything it calls, gives its stage (and, through
input keys, every stage downstream) new keys, while a change elsewhere (a report table, the folding
search, a CLI) leaves a days-long training's entry valid. A whole-tree hash would be simpler and
would invalidate every training on every commit; a per-function hash would miss the helpers a
build calls. The store's own machinery (claims, executors, cluster, progress), which moves bytes
but never shapes them, is left out, as are the third-party libraries, whose versions the key holds.

The hash is over the modules' source text, so a comment edit counts too: when in doubt, rebuild.
It is taken once per process, when a stage first asks: the code that process runs is the code it
loaded then.
"""

import ast
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "pynqrepro"
ROOT = Path(__file__).resolve().parents[1]
# modules that move artifacts but never shape their content
MACHINERY = ("pynqrepro.core.store", "pynqrepro.core.claims", "pynqrepro.core.executor",
             "pynqrepro.core.executor_options", "pynqrepro.core.progress", "pynqrepro.core.store_identity",
             "pynqrepro.core.fingerprint", "pynqrepro.core.cluster")


def _is_machinery(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in MACHINERY)


@lru_cache(maxsize=None)
def _source(module: str) -> tuple[Path, bool] | None:
    """(file, is_package) of a module's Python source, None if it has none. A pynqrepro module is
    found by its path (nothing is imported); another one (a test's build) must be imported already."""
    if module.split(".")[0] == PACKAGE:
        base = ROOT.joinpath(*module.split(".")[1:])
        for path, is_package in ((base.with_suffix(".py"), False), (base / "__init__.py", True)):
            if path.is_file():
                return path, is_package
        return None
    origin = getattr(sys.modules.get(module), "__file__", None)
    return (Path(origin), Path(origin).name == "__init__.py") if origin and origin.endswith(".py") else None


@lru_cache(maxsize=None)
def _imports(module: str) -> frozenset[str]:
    """The pynqrepro modules ``module`` imports (``from pynqrepro.core import claims`` counts as
    pynqrepro.core.claims)."""
    path, is_package = _source(module)
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if _source(f"{base}.{alias.name}") else base)
    return frozenset(name for name in found if name.split(".")[0] == PACKAGE)


@lru_cache(maxsize=None)
def code_modules(module: str) -> frozenset[str]:
    """``module`` and the pynqrepro modules it imports, transitively, less the store's machinery."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen or (name != module and _is_machinery(name)):
            continue
        seen.add(name)
        if _source(name) is not None:
            todo += sorted(_imports(name))
    return frozenset(name for name in seen if _source(name) is not None)


@lru_cache(maxsize=None)
def code_fingerprint(module: str) -> str:
    """sha256 over the source of ``code_modules(module)`` (a module outside pynqrepro, e.g. a
    test's, counts with its own source)."""
    digest = hashlib.sha256()
    for name in sorted(code_modules(module)):
        digest.update(f"{name}\0".encode() + _source(name)[0].read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def build_module(build) -> str:
    """The module that defines a build callable (a function, a lambda, a functools.partial, a
    callable object)."""
    while hasattr(build, "func"):  # functools.partial
        build = build.func
    return getattr(build, "__module__", None) or type(build).__module__
