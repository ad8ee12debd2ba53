"""Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file into plain data, and
the start every configuration parser shares (:func:`config_base`, :func:`config_entries`)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from skysense.errors import ConfigError

__all__ = ["read_config_file", "config_base", "config_entries"]


def read_config_file(path: str | os.PathLike) -> Any:
    """The parsed document (usually a dict; ``None`` for an empty YAML file).

    Raises
    ------
    ConfigError
        Missing file, binary file or syntax error, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("configuration file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a binary file given as a config
        raise ConfigError(
            f"not a text file (byte {exc.start} is not UTF-8); expected YAML or TOML", path=path
        ) from None
    # The wordings are part of the interface: messages (and tests) say "<file>: syntax error"
    # for TOML and "YAML syntax error" for YAML; the parser's detail follows on one line.
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"syntax error (TOML): {_one_line(exc)}", path=path) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {_one_line(exc)}", path=path) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def config_base(
    raw: Any, path: str | os.PathLike | None = None, base_dir: str | os.PathLike | None = None
) -> tuple[Path | None, Path]:
    """The file a parsed configuration came from, and the folder its file names are relative to.

    Parameters
    ----------
    raw : Any
        The parsed document; it must be a mapping.
    path : path-like, optional
        The file it came from (for messages).
    base_dir : path-like, optional
        The folder relative file names are relative to (default: that of ``path``, else the
        working folder).

    Returns
    -------
    (path, base) : Path or None, Path
        ``base`` is absolute.

    Raises
    ------
    ConfigError
        ``raw`` is not a mapping.
    """
    path = None if path is None else Path(path)
    base = Path(base_dir) if base_dir is not None else (path.parent if path else Path.cwd())
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping", path=path)
    return path, base.resolve()


def config_entries(
    items: list, path: Path | None, key: str, field: str, what: str
) -> list[tuple[str, dict]]:
    """``(key, mapping)`` for each entry of a configuration list (``surveys``, ``catalogues``).

    An entry is a mapping, or a plain string standing for ``{field: string}``. ``key`` names
    the list (``"catalogues"``); the keys returned name each entry (``"catalogues[2]"``).

    Raises
    ------
    ConfigError
        An entry is neither (``what`` says what the string is: ``"a file name"``).
    """
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {field: item}
        if not isinstance(item, dict):
            raise ConfigError(f"must be {what} or a mapping", path=path, key=where)
        out.append((where, item))
    return out
