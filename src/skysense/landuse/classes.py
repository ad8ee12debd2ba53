"""Class schemes: integer codes, names and display colours of land-use classes.

Codes are positive integers (0 is reserved for "no data" in class rasters, which are written as
``uint8`` when every code is below 256, else ``uint16``). Two schemes are built in
(package data, ``landuse/data/class_schemes.toml``):

- ``li2014``: the eight classes of Li et al. 2014 (Remote Sensing 6, 964), the default;
- ``statlog``: the six classes of the Statlog Landsat data (code 6, "mixture", is absent there).

Other schemes are read from JSON or YAML: ``{"name": ..., "classes": [{"code": 1, "name":
"water", "color": "#1f78b4"}, ...]}``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from skysense._resources import read_toml
from skysense.errors import ConfigError

__all__ = ["LandClass", "ClassScheme", "LI2014", "STATLOG", "BUILTIN_SCHEMES", "get_scheme"]

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclasses.dataclass(frozen=True)
class LandClass:
    """One class: ``code`` (1..65535), ``name``, ``color`` as ``#rrggbb``."""

    code: int
    name: str
    color: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.color[i : i + 2], 16) for i in (1, 3, 5))


@dataclasses.dataclass(frozen=True)
class ClassScheme:
    """An ordered set of classes with unique codes and names."""

    name: str
    classes: tuple[LandClass, ...]

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes:
            raise ConfigError("a class scheme needs at least one class", key="classes")
        codes = [c.code for c in self.classes]
        names = [c.name for c in self.classes]
        for i, c in enumerate(self.classes):
            if not isinstance(c.code, int) or not 1 <= c.code <= 65535:
                raise ConfigError(
                    f"code must be an integer 1..65535, got {c.code!r}", key=f"classes[{i}].code"
                )
            if not _HEX.match(c.color):
                raise ConfigError(
                    f"colour must be '#rrggbb', got {c.color!r}", key=f"classes[{i}].color"
                )
        if len(set(codes)) != len(codes):
            raise ConfigError(f"duplicate class codes {codes}", key="classes")
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate class names {names}", key="classes")

    @property
    def codes(self) -> list[int]:
        return [c.code for c in self.classes]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def name_of(self, code: int) -> str:
        for c in self.classes:
            if c.code == code:
                return c.name
        return f"class {code}"

    def code_of(self, label) -> int:
        """Code of a label given as a code (int or digit string) or a class name."""
        if isinstance(label, str) and not label.strip().lstrip("-").isdigit():
            key = label.strip().lower()
            for c in self.classes:
                if c.name.lower() == key:
                    return c.code
            raise ConfigError(
                f"unknown class name {label!r}; scheme {self.name!r} has {self.names}"
            )
        code = int(label)
        if code not in self.codes:
            raise ConfigError(
                f"class code {code} is not in scheme {self.name!r} (codes {self.codes})"
            )
        return code

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """rasterio colour table: code -> RGBA; 0 (no data) transparent black."""
        cmap = {0: (0, 0, 0, 0)}
        for c in self.classes:
            cmap[c.code] = (*c.rgb, 255)
        return cmap

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": [dataclasses.asdict(c) for c in self.classes]}

    @classmethod
    def from_dict(cls, d: Mapping) -> ClassScheme:
        if not isinstance(d, Mapping) or "classes" not in d:
            raise ConfigError("a class scheme needs a 'classes' list", key="classes")
        out = []
        for i, c in enumerate(d["classes"]):
            try:
                out.append(
                    LandClass(int(c["code"]), str(c["name"]), str(c.get("color", "#808080")))
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"needs integer 'code' and 'name' ({exc})", key=f"classes[{i}]"
                ) from None
        return cls(str(d.get("name", "custom")), tuple(out))

    @classmethod
    def from_codes(cls, codes: Iterable[int], name: str = "auto") -> ClassScheme:
        """A scheme naming classes ``class <code>`` with a default palette."""
        palette = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
        ]  # fmt: skip
        return cls(
            name,
            tuple(
                LandClass(int(c), f"class {int(c)}", palette[i % len(palette)])
                for i, c in enumerate(sorted(set(int(c) for c in codes)))
            ),
        )


LI2014: ClassScheme
"""The eight classes of Li et al. 2014, the default scheme (package data file
``landuse/data/class_schemes.toml``; read at first use)."""

STATLOG: ClassScheme
"""The classes of the Statlog Landsat data (package data file
``landuse/data/class_schemes.toml``; read at first use)."""

BUILTIN_SCHEMES: dict[str, ClassScheme]
"""The built-in schemes by name: ``li2014`` and ``statlog``."""


@functools.cache
def _builtin_schemes() -> dict[str, ClassScheme]:
    records = read_toml("skysense.landuse", "class_schemes.toml")["scheme"]
    return {rec["name"]: ClassScheme.from_dict(rec) for rec in records}


def __getattr__(name: str):
    # The built-in schemes are read from their data file when first asked for, not at import.
    if name == "BUILTIN_SCHEMES":
        return _builtin_schemes()
    if name in ("LI2014", "STATLOG"):
        return _builtin_schemes()[name.lower()]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_scheme(name_or_path: str | Path | None = None) -> ClassScheme:
    """A built-in scheme by name (default ``li2014``) or one read from a JSON/YAML file.

    Raises
    ------
    ConfigError
        Unknown name, unreadable file or invalid content (names the file and key).
    """
    builtin = _builtin_schemes()
    if name_or_path is None:
        return builtin["li2014"]
    key = str(name_or_path)
    if key in builtin:
        return builtin[key]
    path = Path(key)
    if not path.is_file():
        raise ConfigError(f"{key!r} is neither a built-in scheme ({', '.join(builtin)}) nor a file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser error becomes one config error
        raise ConfigError(f"cannot parse class scheme: {exc}", path=path) from None
    try:
        return ClassScheme.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path) from None
