"""skysense.xid keeps its layers the right way round (STYLE: pure core, io at the edge).

Read from the source (AST), so nothing is imported: the core modules of xid and of its
sub-packages import no io module, no engine and not the CLI, and no module of xid imports a
private name of another area.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

XID = Path(__file__).resolve().parents[2] / "src" / "skysense" / "xid"
EDGE = {"io.py", "engine.py", "__init__.py"}  # the io, engine and re-exporting modules


def _modules(edge: bool) -> list[Path]:
    return sorted(p for p in XID.rglob("*.py") if (p.name in EDGE) == edge)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import``/``from ... import`` in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


@pytest.mark.parametrize("path", _modules(edge=False), ids=lambda p: str(p.relative_to(XID)))
def test_core_modules_import_no_io_engine_or_cli(path):
    bad = [
        m
        for m, _ in _imports(path)
        if m.startswith("skysense.cli")
        or (m.startswith("skysense.xid") and m.rsplit(".", 1)[-1] in ("io", "engine"))
    ]
    assert bad == [], f"{path.relative_to(XID)} imports {bad}"


def test_the_core_is_not_empty_and_io_is_edge():
    core = {str(p.relative_to(XID)) for p in _modules(edge=False)}
    assert {"skymap.py", "fit.py", "blind/extract.py", "hidden/search.py"} <= core
    assert {"io.py", "blind/io.py", "hidden/io.py", "blind/engine.py"} <= {
        str(p.relative_to(XID)) for p in _modules(edge=True)
    }


def test_no_private_name_of_another_area_and_no_private_name_in_the_cli():
    bad = []
    for path in sorted(XID.rglob("*.py")):
        for module, names in _imports(path):
            other = module.startswith("skysense.") and not module.startswith("skysense.xid")
            if other and any(n.startswith("_") for n in names):
                bad.append(f"{path.relative_to(XID)}: {module} {names}")
    cli = XID.parents[0] / "cli" / "xid.py"
    for module, names in _imports(cli):
        private = (
            module.startswith("skysense.")
            and module.split(".")[-1].startswith("_")
            and module != "skysense.cli._common"  # the CLI's own argparse helpers
        )
        if private or (module.startswith("skysense.xid") and any(n.startswith("_") for n in names)):
            bad.append(f"cli/xid.py: {module} {names}")
    assert bad == []
