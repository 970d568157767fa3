"""The package's shape, checked from its source: one writer of lifecycle state, no import
cycle, values below tables below the core, and an import that stays light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sspi_model"
# The fields the lifecycle tables govern: a record's `state` (contexts, credentials, async
# contexts). lifecycle.begin / lifecycle.enter are their only writers.
STATE_FIELDS = {"state", "_state"}
EXECUTOR = PACKAGE / "lifecycle.py"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def test_no_lifecycle_state_is_assigned_outside_the_table_executor() -> None:
    offenders = []
    for path in _modules().values():
        if path == EXECUTOR:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                targets = [node.target]
            for target in targets:
                for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(item, ast.Attribute) and item.attr in STATE_FIELDS:
                        offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
            is_setattr = isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr"
            field = node.args[1] if is_setattr and len(node.args) > 1 else None  # type: ignore[attr-defined]
            if getattr(field, "value", None) in STATE_FIELDS:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, "lifecycle state assigned outside lifecycle.py:\n" + "\n".join(offenders)


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the sspi_model modules it imports (anywhere in it, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if sub in modules else base)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def test_no_import_cycle_in_the_package() -> None:
    modules = _modules()
    graph = _imports(modules)
    # Importing a submodule runs its packages' __init__ first; that is not an edge the code
    # chose, so the root package's re-exports are left out of the graph.
    graph.pop("sspi_model", None)
    for edges in graph.values():
        edges.discard("sspi_model")
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for edge in sorted(graph.get(node, ())):
            if state.get(edge) == 1:
                cycles.append(" -> ".join([*stack[stack.index(edge) :], edge]))
            elif edge not in state:
                visit(edge)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_values_and_tables_do_not_import_the_core_or_the_packages() -> None:
    graph = _imports(_modules())
    values = [
        "sspi_model.values",
        "sspi_model.status",
        "sspi_model.handles",
        "sspi_model.buffers",
        "sspi_model.constants",
        "sspi_model.results",
    ]
    lower = {*values, "sspi_model.lifecycle"}
    for module in [*values, "sspi_model.lifecycle"]:
        assert graph[module] <= lower, (module, graph[module] - lower)


def test_importing_the_package_leaves_hypothesis_alone() -> None:
    """Only RandomScheduler and the testing kit use Hypothesis; `import sspi_model` must not
    pay for it (its import time is measured in benchmarks/, not here)."""
    probe = "import sys, sspi_model; print('hypothesis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_readme_layout_names_every_module_and_folder() -> None:
    """Issue 9: the README's Layout section matches the folders: every module and subpackage of
    sspi_model is named there (by its file or folder name), and it names none that is gone."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    package = PACKAGE
    names = {
        path.name
        for path in package.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py") and "__pycache__" not in path.parts
    }
    stems = {name.removesuffix(".py") for name in names}
    folders = {f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").exists()}
    missing = sorted(
        name for name in names | folders
        if name not in layout and name.removesuffix(".py") not in layout
    )
    assert not missing, f"README Layout does not name: {', '.join(missing)}"
    written = set(re.findall(r"\b([a-z_]+)\.py\b", layout))
    gone = sorted(written - stems - {"build"})
    assert not gone, f"README Layout names modules that do not exist: {', '.join(gone)}"


def test_every_delegated_envelope_forwards_to_a_method_of_the_same_signature() -> None:
    """envelope.api_call(delegate=...): the wrapper calls `host.<delegate>.<name>(...)` itself,
    so the method's own body (the same forward) must match what is called: the delegate class
    has a method of that name taking the same parameters, and the body says so."""
    import inspect

    from sspi_model.async_calls import AsyncCalls
    from sspi_model.async_layer import AsyncLayer

    delegated = [
        (name, member)
        for name, member in vars(AsyncCalls).items()
        if getattr(member, "api_delegate", None) == "_async"
    ]
    assert len(delegated) >= 9
    for name, wrapper in delegated:
        target = getattr(AsyncLayer, name)
        ours = list(inspect.signature(wrapper).parameters)
        theirs = list(inspect.signature(target).parameters)
        assert ours == theirs, (name, ours, theirs)
        body = inspect.getsource(wrapper.__wrapped__)
        assert f"return self._async.{name}(" in body, name
