"""The import graph of ``lightcycle/``: no cycle, and every deferred import says why it is deferred.

A static check (``ast``), so that it covers modules and functions no other test imports or
calls. Edges are the imports Python executes when a module is first imported:

- module-level imports, including those under ``try``/``if`` (but not ``if TYPE_CHECKING:``,
  which never runs);
- ``from pkg import name`` is an edge to ``pkg`` and, when ``name`` is a submodule, to
  ``pkg.name`` as well;
- importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b`` first: an edge to each,
  except to the importer's own packages, which are always already being imported when it runs
  (an explicit ``from a import x`` inside ``a.b`` still counts, since it reads from ``a``).

A function-level import is "deferred". The project allows one only to break a cycle, to avoid a
heavy optional dependency, or to resolve a lazy public name; it must carry a comment
``# deferred: <reason>`` on its line or on the line above (above a block of consecutive imports, it
covers the block), with one of the reasons below, and
the reason is checked against the graph where it can be.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lightcycle"

# The heavy optional dependencies a deferred import may name (import name -> why it is heavy).
OPTIONAL = {
    "rich": "the rich extra",
    "tensorboard": "the tensorboard extra",
    "tensorboardX": "the tensorboard extra",
    "jsonargparse": "the cli extra",
    "yaml": "jsonargparse's dependency, the cli extra",
    "torchmetrics": "the torchmetrics extra",
    "psutil": "the psutil extra",
    "hypothesis": "the testing extra",
    "torchdata": "the torchdata extra",
    "ipywidgets": "not a dependency; tqdm.auto imports it, for notebooks",
}
# Where importing a module (not the dependency's own package) is what loads the dependency.
OPTIONAL_VIA = {"ipywidgets": ("tqdm.auto",), "tensorboard": ("torch.utils.tensorboard",)}
# torch may be deferred only in a module that the torch-free command-line tool (its entry point and the
# subcommand modules it imports by name to register them) or the pytest plugin (loaded by every pytest
# run where lightcycle is installed) imports.
LIGHT_ENTRIES = (
    "lightcycle.commands.main",
    "lightcycle.commands.demo",
    "lightcycle.commands.diagram",
    "lightcycle.commands.run",
    "lightcycle.commands.verify",
    "lightcycle.testing.pytest_plugin",
)

_REASON = re.compile(
    r"#\s*deferred:\s*(?:"
    r"(?P<cycle>breaks the cycle with (?P<cycle_mod>[\w.]+))"
    r"|(?P<optional>heavy optional dependency (?P<dep>[\w.]+))"
    r"|(?P<torch>torch for the (?:CLI|pytest plugin) start-up)"
    r"|(?P<foreign>lightning for foreign objects)"
    r"|(?P<lazy>lazy public name)"
    r")"
)


@dataclass
class Deferred:
    """One function-level import."""

    module: str
    line: int
    text: str
    targets: list[str]  # the lightcycle modules it runs
    imported: list[str]  # the dotted names it imports (``tqdm.auto``, ``lightcycle.core.module``)
    top_names: list[str]  # the top-level package names it imports (``torch``, ``rich``, ...)
    comment: str  # the text of its own line and the line above


@dataclass
class Graph:
    """Module-level import edges between lightcycle modules, and the deferred imports."""

    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    externals: dict[str, set[str]] = field(default_factory=dict)  # top-level packages imported at module level
    deferred: list[Deferred] = field(default_factory=list)

    def reach(self, start: str) -> set[str]:
        """Modules whose import ``start``'s import runs (``start`` excluded unless on a cycle)."""
        seen: set[str] = set()
        todo = list(self.edges.get(start, ()))
        while todo:
            mod = todo.pop()
            if mod not in seen:
                seen.add(mod)
                todo.extend(self.edges.get(mod, ()))
        return seen


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _targets(node: ast.Import | ast.ImportFrom, current: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The lightcycle modules an import statement names (explicit) and runs (their packages)."""
    named: list[str] = []
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = current.split(".") if is_package else current.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        named = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    own = set(_ancestors(current))
    runs: list[str] = []
    for name in named:
        if name not in modules:
            continue
        runs.append(name)
        runs += [pkg for pkg in _ancestors(name) if pkg not in own and pkg in modules]
    return [name for name in dict.fromkeys(runs) if name != current]


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [] if node.level else [node.module or ""]


def _top_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [name.split(".")[0] for name in _imported(node)]


def _visit(graph: Graph, name: str, lines: list[str], nodes: list[ast.stmt], in_function: bool) -> None:
    """Record the imports among ``nodes`` of module ``name``: edges at module level, else deferred."""
    is_package = graph.modules[name].name == "__init__.py"
    previous: Deferred | None = None  # the deferred import just before, when the block continues
    previous_end = -1
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node):
            _visit(graph, name, lines, node.orelse, in_function)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = _targets(node, name, is_package, graph.modules)
            if not in_function:
                graph.edges[name].update(targets)
                graph.externals[name].update(_top_names(node))
                continue
            text = lines[node.lineno - 1]
            above = lines[node.lineno - 2] if node.lineno >= 2 else ""
            # A comment above a block of consecutive imports covers the block.
            block = previous.comment if previous is not None and node.lineno == previous_end + 1 else ""
            comment = block + "\n" + above + "\n" + text
            found = Deferred(name, node.lineno, text.strip(), targets, _imported(node), _top_names(node), comment)
            graph.deferred.append(found)
            previous, previous_end = found, node.end_lineno or node.lineno
            continue
        previous = None
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child_field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, child_field, None) or []
            _visit(graph, name, lines, [c for c in children if isinstance(c, ast.stmt)], nested)
            for child in children:
                if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                    _visit(graph, name, lines, child.body, nested)


def build_graph(package: Path = PACKAGE) -> Graph:
    """Parse every module of ``package`` into its import graph.

    Args:
        package: the package directory.

    Returns:
        The graph.
    """
    modules = {_module_name(path): path for path in sorted(package.rglob("*.py"))}
    graph = Graph(modules, {name: set() for name in modules}, {name: set() for name in modules})
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        _visit(graph, name, source.splitlines(), ast.parse(source).body, False)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle, as the list of modules along it (first repeated last), or ``None``.

    Args:
        graph: the import graph.

    Returns:
        The cycle, or ``None`` when the graph has none.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(mod: str) -> list[str] | None:
        state[mod] = 1
        path.append(mod)
        for nxt in sorted(graph.edges[mod]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        path.pop()
        state[mod] = 2
        return None

    for mod in sorted(graph.edges):
        if mod not in state:
            found = walk(mod)
            if found:
                return found
    return None


def deferred_problems(graph: Graph) -> list[str]:
    """Each deferred import without an honest ``# deferred: <reason>`` comment, as ``path:line: why``.

    Args:
        graph: the import graph.

    Returns:
        One line per offending import.
    """
    problems: list[str] = []
    light = set().union(*(graph.reach(entry) | {entry} for entry in LIGHT_ENTRIES))
    for item in graph.deferred:
        where = f"{graph.modules[item.module].relative_to(ROOT)}:{item.line}: {item.text}"
        match = _REASON.search(item.comment)
        if match is None:
            problems.append(f"{where}  -- no `# deferred: <reason>` comment")
            continue
        if match["cycle"]:
            other = match["cycle_mod"]
            # Honest only if the import, made at module level, would close a cycle through `other`.
            closes = any(
                item.module in graph.reach(target) and other in ({target} | graph.reach(target))
                for target in item.targets
            )
            if other not in graph.modules or not closes or item.module not in graph.reach(other) | {other}:
                problems.append(f"{where}  -- at module level it would close no cycle with {other}")
        elif match["optional"]:
            dep = match["dep"]
            runs = set(item.targets).union(*(graph.reach(target) for target in item.targets))
            loads = (
                dep in item.top_names
                or any(dep in graph.externals.get(m, ()) for m in runs)
                or bool(set(item.imported) & set(OPTIONAL_VIA.get(dep, ())))
            )
            if dep not in OPTIONAL or not loads:
                problems.append(f"{where}  -- {dep!r} is not what it imports, or not a heavy optional dependency")
        elif match["torch"]:
            runs = set(item.targets).union(*(graph.reach(target) for target in item.targets))
            if "torch" not in item.top_names and not any("torch" in graph.externals.get(m, ()) for m in runs):
                problems.append(f"{where}  -- imports neither torch nor a module that does")
            elif item.module not in light:
                problems.append(f"{where}  -- {item.module} is not imported by the command-line tool or pytest plugin")
        elif match["foreign"] and not {"lightning", "pytorch_lightning"} & set(item.top_names):
            problems.append(f"{where}  -- imports no lightning")
    return problems


GRAPH = build_graph()


def test_the_graph_is_parsed() -> None:
    # Guards the test itself: known edges and deferred imports are seen.
    assert "lightcycle.core.module" in GRAPH.edges["lightcycle.trainer.trainer"] or any(
        "lightcycle.core.module" in item.targets for item in GRAPH.deferred
    )
    assert "lightcycle.core.fx_validator" in GRAPH.edges["lightcycle.core.module"]
    assert len(GRAPH.modules) > 100


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_deferred_imports_say_why() -> None:
    problems = deferred_problems(GRAPH)
    assert not problems, f"{len(problems)} deferred imports without an honest reason:\n" + "\n".join(problems)


def test_the_light_entry_points_import_no_torch_at_module_level() -> None:
    # The static side of tests/test_cli_fast.py: what a deferred "torch for the ... start-up" keeps out.
    light = set().union(*(GRAPH.reach(entry) | {entry} for entry in LIGHT_ENTRIES))
    heavy = sorted(mod for mod in light if "torch" in GRAPH.externals[mod])
    assert not heavy, f"imported by the command-line tool or the pytest plugin, these import torch: {heavy}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    pkg = tmp_path / "lightcycle"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from lightcycle.sub import a\n")
    (pkg / "sub" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lightcycle import c\n"
        "def f():\n    import json\n"
        "def g():\n    # deferred: breaks the cycle with lightcycle.c\n    from lightcycle import c\n"
    )
    (pkg / "b.py").write_text("from lightcycle.sub import a\n")
    (pkg / "c.py").write_text("from lightcycle import b\n")
    global ROOT  # the paths in the messages are relative to ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        graph = build_graph(pkg)
        problems = deferred_problems(graph)
    finally:
        ROOT = saved
    assert find_cycle(graph) is None  # TYPE_CHECKING and function-level imports make no edge
    assert graph.edges["lightcycle.b"] == {"lightcycle.sub", "lightcycle.sub.a"}
    assert len(problems) == 1 and "import json" in problems[0], problems  # g's reason is honest
    graph.edges["lightcycle.sub.a"].add("lightcycle.c")
    assert find_cycle(graph) == ["lightcycle.b", "lightcycle.sub", "lightcycle.sub.a", "lightcycle.c", "lightcycle.b"]


@pytest.mark.parametrize("comment", ["# deferred: because", "# deferred: heavy optional dependency numpy"])
def test_a_vague_reason_is_refused(comment: str) -> None:
    item = Deferred("lightcycle.core.module", 1, "import numpy", [], ["numpy"], ["numpy"], comment)
    graph = Graph(GRAPH.modules, GRAPH.edges, GRAPH.externals, [item])
    assert len(deferred_problems(graph)) == 1
