"""Helpers shared by the area CLI modules: a declarative option spec and lazy choices."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping

__all__ = ["add_area", "verb", "options", "keywords", "split_names", "SCHEDULER", "add_lazy_choice"]

SCHEDULER = (
    "--scheduler ADDRESS | Dask scheduler address, e.g. tcp://host:8786 (default: "
    "$SKYSENSE_SCHEDULER, else a local scheduler in this process)"
)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _auto_or_finite(text: str) -> str | float:
    return text if text == "auto" else _finite(text)


_TYPES: dict[str, Callable[[str], object]] = {
    "int": int,
    "float": float,
    "finite": _finite,
    "auto": _auto_or_finite,
    "str": str,
}
_WORDS = {
    "flag": {"action": "store_true"},
    "append": {"action": "append"},
    "required": {"required": True},
}


def _option(line: str) -> tuple[list[str], dict]:
    """(flags or name, ``add_argument`` keywords) of one spec line; see :func:`options`."""
    head, _, text = line.partition(" | ")
    first, *words = head.split()
    flags, metavar, kw = [first], [], {"help": text.strip() or None}
    for word in words:
        key, eq, value = word.partition("=")
        if word.startswith("-"):
            flags.append(word)
        elif word in _WORDS:
            kw.update(_WORDS[word])
        elif key in _TYPES or key.startswith("{"):
            conv = _TYPES.get(key, str)
            if key.startswith("{"):
                kw["choices"] = key.strip("{}").split(",")
            elif conv is not str:
                kw["type"] = conv
            if eq:  # a default; a comma-separated one is a list (of a multi-valued option)
                values = [value] if conv is str else [conv(v) for v in value.split(",")]
                kw["default"] = values if len(values) > 1 else values[0]
        else:
            metavar.append(word)
    if metavar and metavar[-1][-1] in "+*?":
        metavar[-1], kw["nargs"] = metavar[-1][:-1], metavar[-1][-1]
    if len(metavar) > 1:
        kw["nargs"] = len(metavar)
    if metavar:
        kw["metavar"] = tuple(metavar) if len(metavar) > 1 else metavar[0]
    return flags, kw


def options(parser, spec: str) -> None:
    """Declare the options of ``spec`` on ``parser`` (a parser or an argument group), in order.

    One option a line, ``SIGNATURE | HELP``; a line that starts with white space continues the
    help of the line before (argparse folds the white space). The SIGNATURE's words:

    * the first word, and any word that starts with ``-``: the flags (``-o --out``), or the
      name of a positional argument (a first word without a dash);
    * ``int``, ``float``, ``finite`` (a finite float), ``auto`` (``auto`` or a finite float),
      ``str``: the type; ``int=5`` also gives
      the default, ``float=0.8,0.1`` a list default of a multi-valued option;
    * ``{a,b,c}``: the choices, ``{a,b,c}=a`` with a default;
    * ``flag`` (``store_true``), ``append``, ``required``;
    * any other word is the metavar: ``COL+`` (or ``*``, ``?``) also sets ``nargs``, and two or
      more metavar words (``MU SIGMA``) take that many values.
    """
    lines: list[str] = []
    for raw in spec.strip("\n").splitlines():
        if raw[:1].isspace() and lines:
            lines[-1] += " " + raw.strip()
        elif raw.strip():
            lines.append(raw.strip())
    for line in lines:
        flags, kw = _option(line)
        parser.add_argument(*flags, **kw)


def split_names(value: str | None) -> list[str]:
    """The names of a comma- or space-separated option value (``[]`` for ``None``)."""
    return [] if value is None else [v for v in value.replace(",", " ").split() if v]


def keywords(args: argparse.Namespace, names: str) -> dict:
    """The options ``names`` as keyword arguments: ``{"a": args.a, ...}``.

    ``names`` are option names (their ``dest``), separated by white space; ``opt:key`` passes
    ``args.opt`` as ``key`` (an option named unlike the function's keyword).
    """
    pairs = (name.partition(":") for name in names.split())
    return {key or opt: getattr(args, opt) for opt, _, key in pairs}


def add_area(subparsers, name: str, help: str) -> argparse._SubParsersAction:
    """Add ``skysense <name>`` and return its verb sub-parsers."""
    area = subparsers.add_parser(name, help=help, description=help)
    area.set_defaults(_parser=area)
    return area.add_subparsers(dest="verb", metavar="VERB")


def verb(verbs, name: str, func, help: str, *specs: str) -> argparse.ArgumentParser:
    """Add ``skysense <area> <name>`` calling ``func(args)``, with the options of ``specs``.

    ``func`` returns the exit status, ``None`` (0), or a text to print on stdout (status 0).
    Each of ``specs`` is declared with :func:`options`.
    """
    parser = verbs.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func, _parser=parser)
    for spec in specs:
        options(parser, spec)
    return parser


class _LazyChoice(argparse.Action):
    """Store one value whose choices (name -> description) come from ``load()`` on first use.

    ``choices`` and ``help`` are read by argparse only when this option is parsed or its
    verb's help is shown, so building the parser imports nothing heavy.
    """

    def __init__(self, option_strings, dest, load: Callable[[], Mapping[str, str]], **kwargs):
        self._load = load
        super().__init__(option_strings, dest, **kwargs)

    # argparse assigns both in Action.__init__; the values come from `load` instead.
    choices = property(lambda self: list(self._load()), lambda self, value: None)
    help = property(
        lambda self: "; ".join(f"{k}: {v}" for k, v in self._load().items()),
        lambda self, value: None,
    )

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


def add_lazy_choice(
    parser, flag: str, load: Callable[[], Mapping[str, str]], *, default: str, metavar: str
) -> None:
    """``flag NAME``, one of the keys of ``load()`` (described by its values in the help).

    ``load`` is called only when the option is parsed or the verb's help is printed, so an
    area can take its choices from a module that imports heavy libraries.
    """
    parser.add_argument(flag, action=_LazyChoice, load=load, default=default, metavar=metavar)
