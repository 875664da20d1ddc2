"""honora_tts's import graph: no cycle between its packages or between its modules, and no
module importing another package's private (``_``-prefixed) modules or names.

Modules are discovered from the source tree (a package added or split elsewhere is walked too).
Every ``import`` statement counts, those inside functions as well (a lazy import is still a
dependency); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import honora_tts

ROOT = Path(honora_tts.__file__).resolve().parent
PACKAGE = "honora_tts"


@dataclass(frozen=True)
class Edge:
    """``importer`` imports ``target`` (``name``: the imported name, for ``from`` imports)."""

    importer: str
    target: str
    name: str | None
    line: int

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.importer} (line {self.line}) imports {what}"


def discover_modules() -> dict[str, Path]:
    """Every module of honora_tts, by dotted name."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """Each honora_tts module each honora_tts module imports, resolved to modules."""
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        edges.append(Edge(name, _known(alias.name, modules), None, node.lineno))
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    edges.append(Edge(name, submodule, None, node.lineno))
                else:
                    edges.append(Edge(name, _known(base, modules), alias.name, node.lineno))
    return [e for e in edges if e.target != e.importer]


def _known(dotted: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is a module."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """``honora_tts.client.endpoint`` -> ``honora_tts.client``; a top-level module is its own
    unit (``honora_tts.protocol``), and so is ``honora_tts`` itself."""
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _explain(component: list[str], edges: list[Edge], unit) -> str:
    members = set(component)
    lines = [
        f"  {edge}" for edge in edges
        if unit(edge.importer) in members and unit(edge.target) in members
        and unit(edge.importer) != unit(edge.target)
    ]
    return " <-> ".join(component) + ":\n" + "\n".join(lines)


def test_the_walk_finds_the_packages_and_their_imports():
    modules = discover_modules()
    edges = import_edges(modules)
    assert {"honora_tts.client", "honora_tts.client.endpoint", "honora_tts.voices",
            "honora_tts.engines", "honora_tts.localpod"} <= set(modules)
    assert Edge("honora_tts.engines.manager", "honora_tts.engines.xtts_runpod", "XttsRunpodEngine",
                _line_of(modules["honora_tts.engines.manager"],
                         "from honora_tts.engines.xtts_runpod")) in edges
    assert any(e.importer == "honora_tts.client.endpoint" and
               e.target == "honora_tts.client.job_runner" for e in edges)
    # a cycle is found when there is one
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_packages():
    modules = discover_modules()
    edges = import_edges(modules)
    graph: dict[str, set[str]] = {}
    for edge in edges:
        source, target = package_of(edge.importer), package_of(edge.target)
        if source != target and target != PACKAGE:
            graph.setdefault(source, set()).add(target)
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        _explain(c, edges, package_of) for c in found
    )


def test_no_import_cycle_between_modules():
    """Within a package too (a package's ``__init__`` re-exporting its own modules is not a
    cycle: edges into one's own package ``__init__`` are what is refused instead)."""
    modules = discover_modules()
    edges = [e for e in import_edges(modules) if e.target != PACKAGE]
    own_init = [
        e for e in edges
        if modules[e.target].name == "__init__.py" and e.importer.startswith(e.target + ".")
    ]
    assert not own_init, "modules importing their own package's __init__ (import the module " \
        "that defines the name):\n" + "\n".join(f"  {e}" for e in own_init)
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.target)
    found = cycles(graph)
    assert not found, "import cycles between modules:\n" + "\n".join(
        _explain(c, edges, lambda m: m) for c in found
    )


def test_no_module_reaches_into_another_packages_privates():
    modules = discover_modules()
    offences = []
    for edge in import_edges(modules):
        owner = package_of(edge.target)
        if owner == package_of(edge.importer):
            continue
        private_module = any(
            part.startswith("_") and not part.startswith("__")
            for part in edge.target.split(".")
        )
        private_name = edge.name is not None and edge.name.startswith("_")
        if private_module or private_name:
            offences.append(f"  {edge}")
    assert not offences, "imports of another package's private modules or names:\n" + \
        "\n".join(offences)


def _line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(text):
            return number
    raise AssertionError(f"{text!r} not in {path}")
