"""``skysense <area> <verb>``: discovers the area modules and turns errors into one line.

A :class:`~skysense.errors.SkysenseError` (or a bad file) exits with status 2 and one readable
line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from skysense import __version__
from skysense.errors import SkysenseError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one sub-command per area module found in this package."""
    parser = argparse.ArgumentParser(
        prog="skysense",
        description="Survey astronomy and Earth observation: catalogues, a VO server, XID+, "
        "photo-z, land use and vegetation forecasts.",
    )
    parser.add_argument("--version", action="version", version=f"skysense {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    areas = parser.add_subparsers(dest="area", metavar="AREA")
    import skysense.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"skysense.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(areas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skysense`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        # `skysense` or `skysense <area>` alone: show the relevant help.
        sub = getattr(args, "_parser", parser)
        sub.print_help()
        return 0 if args.area is None else 2
    try:
        result = func(args)
    except KeyboardInterrupt:
        print("skysense: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`skysense ... | head`): stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (SkysenseError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if args.debug:
            raise
        print(f"skysense: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
