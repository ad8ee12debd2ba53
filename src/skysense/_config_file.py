"""Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file into plain data."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from skysense.errors import ConfigError

__all__ = ["read_config_file"]


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
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"TOML syntax error: {exc}", path=path) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}".replace("\n", " "), path=path) from None
