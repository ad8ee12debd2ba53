"""HTTP parameter helpers shared by the SCS, SIA and SODA endpoints.

DAL parameter names are case-insensitive (DALI 1.1 section 3.1); values keep their case.
GET query strings and POST url-encoded or multipart forms are merged.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request

from skysense.errors import InputError
from skysense.vo.bodylimit import read_form

__all__ = ["DALParams", "read_params", "base_url"]


class DALParams:
    """Multi-valued, case-insensitive request parameters (names upper-cased)."""

    def __init__(self, items: list[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            self._values.setdefault(key.upper(), []).append(value)

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name`` (empty list when absent)."""
        return list(self._values.get(name.upper(), []))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The single value of ``name``, ``default`` when absent.

        Raises
        ------
        InputError
            If the parameter is given more than once.
        """
        values = self._values.get(name.upper())
        if not values:
            return default
        if len(values) > 1:
            raise InputError(f"{name.upper()}: given {len(values)} times; give it once")
        return values[0]

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._values

    def names(self) -> list[str]:
        return list(self._values)


async def read_params(request: Request) -> DALParams:
    """Parameters of a GET or POST request (query string plus form fields; file parts are
    ignored). The body's size and read timeout are enforced by
    :class:`~skysense.vo.bodylimit.BodyLimitMiddleware`."""
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            settings = getattr(request.app.state, "settings", None)
            spool = None if settings is None else Path(settings.resolved_workdir) / "spool"
            form = await read_form(request, spool_dir=spool, max_part_size=1 << 20)
            try:
                for key, value in form.multi_items():
                    if isinstance(value, str):
                        items.append((key, value))
            finally:
                await form.close()
    return DALParams(items)


def base_url(request: Request) -> str:
    """Public root URL of the service, without a trailing slash."""
    settings = getattr(request.app.state, "settings", None)
    configured = getattr(settings, "base_url", None)
    if configured:
        return configured.rstrip("/")
    # Starlette's base_url already includes the ASGI root_path (mounts, proxies).
    return str(request.base_url).rstrip("/")
