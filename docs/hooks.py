"""MkDocs hooks (wired in ``mkdocs.yml``: ``hooks: [docs/hooks.py]``).

- ``<!-- api-modules: skysense.AREA -->`` becomes one mkdocstrings directive per public module of
  the area, so a new module appears in the API reference without editing a page.
- The files of ``examples/`` (beside ``docs/``) are shipped with the site under ``examples/``,
  and page links to them (``../examples/field.yaml``, right on GitHub) are pointed there, so
  they work on both and ``mkdocs build --strict`` checks them.
- Sphinx roles in docstrings (``:func:`~skysense.x.f` ``) lose their role prefix on the page;
  ``~`` keeps the last name only, as in Sphinx.
"""

from __future__ import annotations

import os
import pkgutil
import re
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["public_modules", "on_files", "on_page_markdown", "on_page_content"]

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SHIPPED = ("examples",)  # repository folders whose files the site carries
_MARKER = re.compile(r"^<!--\s*api-modules:\s*([\w.]+)\s*-->\s*$", re.M)
_ROLE = re.compile(
    r":(?:py:)?(?:func|meth|class|mod|attr|data|exc|obj|const):<code>(~?)([^<]+)</code>"
)
_LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


def public_modules(package: str) -> list[str]:
    """Dotted names of the modules of ``package`` not starting with ``_``, sorted; a public
    sub-package comes with its own public modules."""
    folder = SRC.joinpath(*package.split("."))
    out = []
    for m in pkgutil.iter_modules([str(folder)]):
        if not m.name.startswith("_"):
            out.append(f"{package}.{m.name}")
            if m.ispkg:
                out.extend(public_modules(f"{package}.{m.name}"))
    return sorted(out)


def on_files(files: Any, config: Any) -> Any:
    """Add the files of the ``SHIPPED`` folders to the site, under the same names."""
    from mkdocs.structure.files import File

    for folder in SHIPPED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file():
                uri = path.relative_to(ROOT).as_posix()
                files.append(File(uri, str(ROOT), config["site_dir"], False))
    return files


def _shipped_link(target: str, page_uri: str) -> str | None:
    # `target`, relative to the page in docs/, points into a SHIPPED folder: its site path.
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    page_dir = PurePosixPath("docs", page_uri).parent
    resolved = os.path.normpath(str(page_dir / target))
    if resolved.split("/")[0] not in SHIPPED:
        return None
    return os.path.relpath(resolved, PurePosixPath(page_uri).parent.as_posix() or ".")


def _directive(module: str) -> str:
    # A sub-package shows its docstring only: its members have their own modules' sections.
    if SRC.joinpath(*module.split("."), "__init__.py").is_file():
        return f"::: {module}\n    options:\n      members: false"
    return f"::: {module}"


def on_page_markdown(markdown: str, page: Any = None, **kwargs: object) -> str:
    """Replace each marker by ``::: MODULE`` lines (mkdocstrings renders them later) and point
    links to shipped repository files at their copies in the site."""

    def expand(m: re.Match[str]) -> str:
        modules = public_modules(m.group(1))
        if not modules:
            raise ValueError(f"api-modules: package {m.group(1)} has no public module under {SRC}")
        return "\n\n".join(_directive(name) for name in modules)

    def relink(m: re.Match[str]) -> str:
        new = _shipped_link(m.group(1), page.file.src_uri) if page is not None else None
        return m.group(0) if new is None else f"]({new}{m.group(2) or ''})"

    return _LINK.sub(relink, _MARKER.sub(expand, markdown))


def on_page_content(html: str, **kwargs: object) -> str:
    """Drop Sphinx role prefixes that mkdocstrings leaves in front of inline code."""

    def plain(m: re.Match[str]) -> str:
        name = m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)
        return f"<code>{name}</code>"

    return _ROLE.sub(plain, html)
