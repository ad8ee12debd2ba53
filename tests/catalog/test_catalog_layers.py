"""Import facts of the catalogue area (read from the source, nothing imported).

The core computes on arrays and tables and touches no files, so it imports neither the
area's io (the runners ``*_io`` included), plots and engine nor the CLI; the modules import one another without a
circle; no module imports another area's private names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import skysense

SRC = Path(skysense.__file__).parent
CORE = {
    "aperture", "astrometry", "bands", "bayes", "check", "clipping", "config", "crossmatch", "cuts",
    "dedupe",
    "formats", "masterlist", "match", "merge", "moc", "morphology", "photometry", "preparation",
    "radius",
    "starflags",
}  # fmt: skip
AREAS = {"catalog", "vo", "xid", "photoz", "landuse", "astrocast", "sim", "pipeline", "cli"}


def _ground(module: str) -> bool:
    """The package's ground floor (``errors``, ``_atomic``, ``_config_file``, the shared base
    modules: any top-level ``skysense.<x>`` module), which every area may use."""
    parts = module.split(".")
    return parts[0] == "skysense" and (
        len(parts) == 1 or (len(parts) == 2 and parts[1] not in AREAS)
    )


def _imports(path: Path) -> set[tuple[str, str | None]]:
    """(module, name) of every ``skysense`` import in a file, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skysense"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add((sub, None) if (SRC.parent / (sub.replace(".", "/") + ".py")).exists()
                          else (node.module, alias.name))  # fmt: skip
        elif isinstance(node, ast.Import):
            found |= {(a.name, None) for a in node.names if a.name.startswith("skysense")}
    return found


def _catalog_modules() -> dict[str, set[tuple[str, str | None]]]:
    return {p.stem: _imports(p) for p in (SRC / "catalog").glob("*.py") if p.stem != "__init__"}


def test_core_imports_only_core_and_ground():
    for name, imports in _catalog_modules().items():
        if name not in CORE:
            continue
        for module, _ in imports:
            inside = module.startswith("skysense.catalog.")
            ok = module.removeprefix("skysense.catalog.") in CORE if inside else _ground(module)
            # The ground floor's file writer and Dask helpers are for io and engines only.
            ok = ok and module not in ("skysense._atomic", "skysense._dask")
            assert ok, f"skysense.catalog.{name} (core) imports {module}"


def test_no_import_circle():
    graph = {
        name: {m.removeprefix("skysense.catalog.") for m, _ in imports
               if m.startswith("skysense.catalog.")}
        for name, imports in _catalog_modules().items()
    }  # fmt: skip
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, " -> ".join([*path[path.index(node) :], node])
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, [*path, node])
        done.add(node)

    for name in graph:
        visit(name, [])


def test_no_private_names_of_other_areas():
    files = [*(SRC / "catalog").glob("*.py"), *(SRC / "sim").glob("*.py")]
    files += [SRC / "cli" / f for f in ("catalog.py", "sim.py")]
    for path in files:
        area = path.parent.name
        for module, name in _imports(path):
            other = module.split(".")[1] if "." in module else ""
            private = (name or module.rsplit(".", 1)[-1]).startswith("_")
            dunder = (name or "").startswith("__")
            if private and not dunder and other != area:
                raise AssertionError(f"{path.relative_to(SRC)} imports {module} {name or ''}")
