"""skysense.vo sits below the pipeline and the simulator, and its backends keep one concern a
module (STYLE: the house's arrows run down).

Read from the source (AST), so nothing is imported: no module of vo imports
``skysense.pipeline``, ``skysense.sim`` or the CLI, at any depth; the modules of
``skysense.vo.backends`` import neither the server nor each other in a circle (the protocol
and the shared metadata import no backend).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VO = Path(__file__).resolve().parents[2] / "src" / "skysense" / "vo"
ABOVE = ("skysense.pipeline", "skysense.sim", "skysense.cli")


def _imports(path: Path) -> list[str]:
    """Every module named by an ``import``/``from ... import`` in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            if node.module == "skysense.vo.backends":  # its modules, imported by name
                out += [f"{node.module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", sorted(VO.rglob("*.py")), ids=lambda p: str(p.relative_to(VO)))
def test_vo_imports_nothing_above_it(path):
    bad = [m for m in _imports(path) if m.startswith(ABOVE)]
    assert bad == [], f"{path.relative_to(VO)} imports {bad}"


def test_backends_modules_import_downwards_only():
    # protocol <- metadata <- base <- duckdb, postgres <- __init__; watchdog stands alone.
    order = ["watchdog", "protocol", "metadata", "base", "duckdb", "postgres", "__init__"]
    below = {
        "watchdog": set(),
        "protocol": set(),
        "metadata": {"protocol"},
        "base": {"protocol", "metadata", "watchdog"},
        "duckdb": {"protocol", "metadata", "base"},
        "postgres": {"protocol", "metadata", "base"},
        "__init__": set(order) - {"__init__"},
    }
    folder = VO / "backends"
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(order)
    for name in order:
        used = {
            m.rsplit(".", 1)[-1]
            for m in _imports(folder / f"{name}.py")
            if m.startswith("skysense.vo.backends.")
        }
        assert used <= below[name], f"backends/{name}.py imports {sorted(used - below[name])}"
        server = [
            m
            for m in _imports(folder / f"{name}.py")
            if m.startswith("skysense.vo.")
            and m.split(".")[2] in ("app", "tap", "uws", "web", "serve", "scs", "sia")
        ]
        assert server == [], f"backends/{name}.py imports the server: {server}"


def test_a_backend_missing_a_hook_cannot_be_built():
    import pytest

    from skysense.vo.backends.base import BackendBase
    from skysense.vo.backends.duckdb import DuckDBBackend

    class Half(BackendBase):
        def _acquire(self):
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()
    # Both real backends implement every hook (a missing one would fail at open_backend).
    assert not DuckDBBackend.__abstractmethods__
