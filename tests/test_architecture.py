"""Import facts of the whole package, read from the source with :mod:`ast` (nothing is imported).

Every ``import``/``from ... import`` of every module under ``src/skysense`` counts, at any depth
(inside functions too), except those under ``if TYPE_CHECKING:``, which never run.

Definitions (from STYLE.md, section 1 "Three layers per area" and section 4 "Module map"):

* **area**: ``skysense.<area>`` for <area> in catalog, vo, xid, photoz, landuse, astrocast,
  sim, pipeline. ``skysense.cli`` is the command line; ``errors``, ``_atomic``, ``_dask``,
  ``_config_file`` (any top-level ``skysense.<x>`` module) are the ground floor that every area
  may use, private underscore or not.
* **io** module of an area: a module named ``io.py`` or ``*_io.py``, or any module of an ``io``
  sub-package, at any depth of the area (``xid/blind/io.py`` is xid's io).
* **engine** module: ``engine.py`` or ``*_engine.py`` (the only Dask/LSDB importers).
* **plots** module: ``plots.py`` (figures are written to files, so they sit at the edge).
* **core** of an area: every other module of the area, except the package ``__init__.py``
  files, which are the public facade and may re-export io names. So a core module is one of
  STYLE's "pure" modules: no files, no Dask, no plots.

Facts checked:

(a) no core module imports its own area's io, nor ``skysense.cli``;
(b) no module of an area (or of the CLI) imports another area's private names: a module
    whose dotted path has a ``_``-prefixed part (``skysense.catalog._x``), or a ``_``-prefixed
    name (``from skysense.catalog.match import _helper``);
(c) ``skysense.vo`` imports neither ``skysense.pipeline`` nor ``skysense.sim``;
(d) no import circles: in the graph "module A imports module B" (``from pkg import sub``
    points at ``pkg.sub`` when that is a module, else at ``pkg``), no strongly connected
    component has more than one module.

Each failure lists every violation, one per line, as ``file:line: what``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "skysense"
AREAS = ("catalog", "vo", "xid", "photoz", "landuse", "astrocast", "sim", "pipeline", "sed")


@dataclass(frozen=True)
class Import:
    """One import statement's target: ``module`` (resolved, absolute) and the ``names`` taken."""

    source: str  # importing module, dotted
    path: Path
    line: int
    module: str  # the module named after ``import``/``from``
    names: tuple[str, ...]  # names after ``from ... import`` (empty for ``import x``)

    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: list[Import] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(Import(name, path, node.lineno, alias.name, ()))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            out.append(Import(name, path, node.lineno, module, tuple(a.name for a in node.names)))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


IMPORTS: list[Import] = [imp for name, path in MODULES.items() for imp in _imports_of(name, path)]


def _targets(imp: Import) -> list[str]:
    """The skysense modules an import statement loads (most specific module named)."""
    if not imp.module.startswith("skysense"):
        return []
    out = []
    for n in imp.names:
        if f"{imp.module}.{n}" in MODULES:
            out.append(f"{imp.module}.{n}")
    if len(out) < len(imp.names) or not imp.names:
        module = imp.module
        while module and module not in MODULES:  # `import skysense.x.y` of a missing module
            module = module.rpartition(".")[0]
        if module:
            out.append(module)
    return out


def _area(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in (*AREAS, "cli"):
        return parts[1]
    return None


def _kind(module: str) -> str:
    """``io``, ``engine``, ``plots``, ``init`` or ``core`` for a module of an area."""
    parts = module.split(".")
    last = parts[-1]
    if MODULES[module].name == "__init__.py":
        return "init" if "io" not in parts[2:] else "io"
    if last == "io" or last.endswith("_io") or "io" in parts[2:-1]:
        return "io"
    if last == "engine" or last.endswith("_engine"):
        return "engine"
    if last == "plots":
        return "plots"
    return "core"


def _report(title: str, bad: list[str]) -> str:
    text = f"{len(bad)} {title}:\n" + "\n".join(f"  {b}" for b in bad)
    print(text)
    return text


def test_core_modules_import_neither_their_io_nor_the_cli():
    bad = []
    for imp in IMPORTS:
        area = _area(imp.source)
        if area is None or area == "cli" or _kind(imp.source) != "core":
            continue
        for target in _targets(imp):
            if _area(target) == "cli":
                bad.append(f"{imp.where()}: core {imp.source} imports the CLI ({target})")
            elif _area(target) == area and _kind(target) == "io":
                bad.append(f"{imp.where()}: core {imp.source} imports its area's io ({target})")
    assert not bad, _report("core -> io/CLI imports", bad)


def test_no_area_imports_another_areas_private_names():
    bad = []
    for imp in IMPORTS:
        area = _area(imp.source)
        if area is None or not imp.module.startswith("skysense."):
            continue
        other = _area(imp.module)
        if other is None or other == area:
            continue
        private_parts = [p for p in imp.module.split(".")[1:] if p.startswith("_")]
        private_names = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        if private_parts or private_names:
            what = ", ".join(private_parts + private_names)
            bad.append(f"{imp.where()}: {imp.source} imports private {what} from {imp.module}")
    assert not bad, _report("imports of another area's private names", bad)


def test_vo_imports_neither_pipeline_nor_sim():
    bad = [
        f"{imp.where()}: {imp.source} imports {target}"
        for imp in IMPORTS
        if _area(imp.source) == "vo"
        for target in _targets(imp)
        if _area(target) in ("pipeline", "sim")
    ]
    assert not bad, _report("upward imports from vo", bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_circles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    where: dict[tuple[str, str], str] = {}
    for imp in IMPORTS:
        for target in _targets(imp):
            if target != imp.source:
                graph[imp.source].add(target)
                where.setdefault((imp.source, target), imp.where())
    bad = []
    for component in _cycles(graph):
        members = set(component)
        edges = [
            f"{where[(a, b)]}: {a} -> {b}" for a in component for b in sorted(graph[a] & members)
        ]
        bad.append(f"circle of {len(component)} modules: " + "; ".join(edges))
    assert not bad, _report("import circles", bad)


def test_the_definitions_see_the_package():
    """Guards the test itself: the walk finds modules of every kind in every area."""
    assert {m.split(".")[1] for m in MODULES if _area(m)} >= set(AREAS)
    kinds = {_kind(m) for m in MODULES if _area(m) in AREAS}
    assert {"core", "io", "engine", "plots", "init"} <= kinds
    assert _kind("skysense.catalog.hats_io") == "io"
    assert _targets(Import("x", PKG, 1, "skysense.catalog", ("match",))) == [
        "skysense.catalog.match"
    ]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
