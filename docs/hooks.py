"""MkDocs hook: expand ``<!-- api-modules: skysense.AREA -->`` into one mkdocstrings directive per
public module of the area, so a new module appears in the API reference without editing a page.

Wired in ``mkdocs.yml`` (``hooks: [docs/hooks.py]``).
"""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

__all__ = ["public_modules", "on_page_markdown"]

SRC = Path(__file__).resolve().parent.parent / "src"
_MARKER = re.compile(r"^<!--\s*api-modules:\s*([\w.]+)\s*-->\s*$", re.M)


def public_modules(package: str) -> list[str]:
    """Dotted names of the modules of ``package`` not starting with ``_``, sorted."""
    folder = SRC.joinpath(*package.split("."))
    return sorted(
        f"{package}.{m.name}"
        for m in pkgutil.iter_modules([str(folder)])
        if not m.name.startswith("_")
    )


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    """Replace each marker by ``::: MODULE`` lines (mkdocstrings renders them later)."""

    def expand(m: re.Match[str]) -> str:
        modules = public_modules(m.group(1))
        if not modules:
            raise ValueError(f"api-modules: package {m.group(1)} has no public module under {SRC}")
        return "\n\n".join(f"::: {name}" for name in modules)

    return _MARKER.sub(expand, markdown)
