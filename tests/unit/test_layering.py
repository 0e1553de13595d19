"""The package's layers, read from the source: a module imports only from
its own layer or below, nothing outside the gRPC adapters imports them, and
no chain of imports (at module level or inside functions) leads back to
where it started."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "swapline"

# Lowest first. A module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("swapline", "swapline.errors", "swapline.v1"),
    ("swapline.concurrency", "swapline.media"),
    ("swapline.stages",),
    ("swapline.config", "swapline.protocol", "swapline.train"),
    ("swapline.pipeline", "swapline.model"),
    ("swapline.runtime", "swapline.jobs", "swapline.evaluation"),
    ("swapline.protocol.jobs",),
    ("swapline.servers", "swapline.client"),
    ("swapline.devtools",),
    ("swapline.cli",),
)
ADAPTERS = "swapline.servers"


def module_name(path: Path) -> str:
    parts = ["swapline", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "v1" not in path.relative_to(PACKAGE).parts
    }


def layer_of(module: str) -> int:
    best, found = -1, -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), number
    assert found >= 0, f"{module} is in no layer: add it to LAYERS"
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Every swapline module ``path`` imports, wherever the import stands."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "swapline")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                assert package is not None
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.split(".")[0] != "swapline":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {name for name in found if not name.startswith("swapline.v1")}


def graph() -> dict[str, set[str]]:
    modules = sources()
    known = set(modules)
    return {name: imports(path, known) for name, path in modules.items()}


def test_every_module_imports_only_its_own_layer_or_below() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_only_the_adapters_import_the_adapters() -> None:
    outside = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if not module.startswith(ADAPTERS)
        for target in targets
        if target == ADAPTERS or target.startswith(ADAPTERS + ".")
    ]
    assert not outside, "\n".join(outside)


def test_no_chain_of_imports_comes_back() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if target == module:
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_layer_test_sees_imports_inside_functions() -> None:
    """The cli imports most of its work inside its handlers: those count."""
    assert "swapline.model.export" in graph()["swapline.cli.model"]
