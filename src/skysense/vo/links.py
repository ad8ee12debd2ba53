"""Declared per-row DataLink links of published tables: a small registry (pure but for the
record store of the backend it is given).

A table declares :class:`LinkTemplate` entries at publication time (:func:`declare_links`, or
``publish_arrow(..., links=...)``); they are kept as one JSON record of kind
:data:`RECORD_KIND` per table and read back by the DataLink service
(:mod:`skysense.vo.datalink`) with :func:`declared_links`. Kept apart from the service so that
publishing does not import the HTTP layer.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from skysense.errors import InputError
from skysense.vo.schema import id_column as id_column_of

__all__ = ["LinkTemplate", "declare_links", "declared_links", "RECORD_KIND", "TABLE_NAME"]

RECORD_KIND = "datalink"
#: An ADQL ``schema.table`` name as published (lower case).
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_SEMANTICS = re.compile(r"^(#[a-z][a-z0-9-]*|[a-z][a-z0-9+.-]*:\S+)$")


@dataclass(frozen=True)
class LinkTemplate:
    """A link a published table declares for each of its rows.

    Give either ``url`` or ``table`` (with ``column``).

    Parameters
    ----------
    semantics : str
        A term of the DataLink core vocabulary (``#derivation``, ``#auxiliary``,
        ``#counterpart``, ...) or a full URI.
    description : str
        Human-readable text of the link.
    url : str
        URL template: ``{root}`` (the service root), ``{id}`` (the row's identifier) and any
        column name in braces; values are URL-quoted. Must start with ``{root}/`` or
        ``http(s)://``.
    table, column : str
        Another published table and its column holding the identifier: the link is a TAP
        query for those rows, given only when there is at least one.
    content_type : str
        MIME type of what the link returns (default: VOTable for ``table`` links).
    content_qualifier, local_semantics : str
        DataLink 1.1 columns (e.g. ``content_qualifier="#spectrum"``).
    """

    semantics: str
    description: str
    url: str = ""
    table: str = ""
    column: str = ""
    content_type: str = ""
    content_qualifier: str = ""
    local_semantics: str = ""

    def fields(self) -> list[str]:
        """Names in braces in :attr:`url` other than ``root`` and ``id``."""
        names = [f for _, f, _, _ in string.Formatter().parse(self.url) if f is not None]
        return [n for n in names if n not in ("root", "id")]


def _check_template(t: LinkTemplate, columns: Iterable[str], catalog) -> None:
    if not _SEMANTICS.match(t.semantics):
        raise InputError(f"link semantics {t.semantics!r} must be '#term' or a URI")
    if bool(t.url) == bool(t.table):
        raise InputError(f"link {t.semantics}: give exactly one of url and table")
    if t.url:
        if not t.url.startswith(("{root}/", "http://", "https://")):
            raise InputError(f"link url {t.url!r} must start with '{{root}}/' or http(s)://")
        try:
            missing = sorted(set(t.fields()) - set(columns))
        except ValueError as exc:
            raise InputError(f"link url {t.url!r}: {exc}") from None
        if missing:
            raise InputError(f"link url {t.url!r} names unknown columns {missing}")
    else:
        other = catalog.tables.get(t.table.lower())
        if other is None or not TABLE_NAME.match(t.table.lower()):
            raise InputError(f"link table {t.table!r} is not a published table")
        if t.column.lower() not in other.columns:
            raise InputError(f"link table {t.table!r} has no column {t.column!r}")


def declare_links(
    backend,
    table: str,
    links: Sequence[LinkTemplate | Mapping],
    *,
    id_column: str | None = None,
    replace: bool = True,
) -> list[LinkTemplate]:
    """Declare the per-row DataLink links of a published table.

    Parameters
    ----------
    backend : Backend
        The service database.
    table : str
        ADQL name ``schema.table`` of a published table.
    links : sequence of LinkTemplate or mapping
        The links (mappings take the :class:`LinkTemplate` field names).
    id_column : str, optional
        The column the source identifier matches; default the table's ``meta.id;meta.main``
        column (as cone search's ``ID_MAIN``).
    replace : bool
        Replace the links declared earlier; False adds ``links`` to them (how a later step,
        e.g. one publishing SED spectra, links its products without knowing the others).

    Returns
    -------
    list of LinkTemplate
        Every link now declared for the table.

    Raises
    ------
    InputError
        Unknown table or column, bad semantics, a URL naming unknown columns.
    """
    catalog = backend.catalog()
    key = table.strip().lower()
    info = catalog.tables.get(key)
    if info is None or key.startswith(("tap_schema.", "tap_upload.")):
        raise InputError(f"no published table {table!r}")
    column = (id_column or id_column_of(info)).lower()
    if column not in info.columns:
        raise InputError(f"table {table!r} has no column {id_column!r}")
    templates = []
    allowed = {f.name for f in dataclasses.fields(LinkTemplate)}
    for entry in links:
        if isinstance(entry, Mapping):
            unknown = set(entry) - allowed
            if unknown:
                raise InputError(f"link keys {sorted(unknown)} are not among {sorted(allowed)}")
            entry = LinkTemplate(**{k: str(v) for k, v in entry.items()})
        _check_template(entry, info.columns, catalog)
        templates.append(entry)
    if not replace:
        old_column, old = declared_links(backend, key)
        if old_column is not None and id_column is None:
            column = old_column
        templates = old + [t for t in templates if t not in old]
    backend.put_record(
        RECORD_KIND,
        key,
        {"id_column": column, "links": [dataclasses.asdict(t) for t in templates]},
    )
    return templates


def declared_links(backend, table: str) -> tuple[str | None, list[LinkTemplate]]:
    """``(id_column, templates)`` declared for ``table`` (``(None, [])`` when none)."""
    doc = backend.get_record(RECORD_KIND, table.lower())
    if not doc:
        return None, []
    return doc.get("id_column"), [LinkTemplate(**t) for t in doc.get("links") or []]
