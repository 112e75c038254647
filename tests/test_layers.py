"""The package's import graph: no cycles, and dependencies that point down only.

models -> solvers -> programs -> _config: the problem layer imports numpy,
scipy and ``skconvex._config`` only (cvxpy lazily, for the conic forms), and
neither it nor the solvers know scikit-learn or the estimators. Imports inside
functions count too: a lazy import hides a cycle, it does not remove it.
"""

import ast
import sys
from pathlib import Path

import pytest

import skconvex

ROOT = Path(skconvex.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """Absolute names of the modules ``path`` imports (module level and inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            # ``from . import name`` may import a submodule.
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
    return found


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}
GRAPH = {
    name: sorted(m for m in _imports(path) if m in MODULES and m != name) for name, path in MODULES.items()
}


def test_import_graph_has_no_cycles():
    # Edges into a package's __init__ from its own submodules are how Python
    # resolves relative imports, not dependencies: drop them.
    graph = {
        name: [m for m in deps if not name.startswith(m + ".")] for name, deps in GRAPH.items()
    }
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", ["skconvex.programs", "skconvex.solvers", "skconvex.networks"])
def test_lower_layers_do_not_import_estimators(layer):
    forbidden = ("skconvex.models", "skconvex.path", "skconvex.plotting", "sklearn")
    if layer == "skconvex.programs":
        forbidden += ("skconvex.solvers", "skconvex.arrangements", "skconvex.networks")
    offenders = {}
    for name, path in MODULES.items():
        if name != layer and not name.startswith(layer + "."):
            continue
        bad = sorted(m for m in _imports(path) if m.startswith(forbidden))
        if bad:
            offenders[name] = bad
    assert not offenders, offenders


def test_programs_import_numpy_scipy_and_config_only():
    # array_api_compat: the namespace adapter the array-API programs compute
    # through (programs/_namespace.py), not scikit-learn.
    allowed = ("numpy", "scipy", "array_api_compat", "skconvex._config", "skconvex.programs")
    stdlib = set(sys.stdlib_module_names)
    offenders = {}
    for name, path in MODULES.items():
        if not name.startswith("skconvex.programs"):
            continue
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or (
                isinstance(node, ast.ImportFrom) and node.level
            ):
                continue
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for module in modules:
                if module.split(".")[0] in stdlib or module.startswith(allowed):
                    continue
                # cvxpy only inside the functions that build conic forms.
                if module == "cvxpy" and id(node) not in top_level:
                    continue
                offenders.setdefault(name, []).append(module)
        for module in _imports(path):
            if module.startswith("skconvex") and not module.startswith(allowed):
                offenders.setdefault(name, []).append(module)
    assert not offenders, offenders


def test_old_import_paths_keep_working():
    # Listed in doc/changelog.rst: the problem pieces moved to skconvex.programs.
    import skconvex.losses
    from skconvex.cones import ConeConstrainedProblem
    from skconvex.operators import PatternOperator
    from skconvex.penalties import GroupL2
    from skconvex.recovery import relu_forward

    from skconvex.programs.cones import ConeConstrainedProblem as new_cone
    from skconvex.programs.datafits import SquaredError
    from skconvex.programs.operators import PatternOperator as new_operator

    assert skconvex.losses.SquaredError is SquaredError
    assert ConeConstrainedProblem is new_cone and PatternOperator is new_operator
    assert GroupL2.__module__ == "skconvex.programs.penalties"
    assert relu_forward.__module__ == "skconvex.networks"
