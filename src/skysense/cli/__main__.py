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
import warnings
from collections.abc import Sequence

from skysense._warnings import astropy_warnings_as_warnings
from skysense.errors import SkysenseError, unreadable_input_errors

__all__ = ["main", "build_parser"]


class _Version(argparse.Action):
    """``--version``, with the version looked up only when asked for (it is slow to find)."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from skysense import __version__

        print(f"skysense {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one sub-command per area module found in this package."""
    parser = argparse.ArgumentParser(
        prog="skysense",
        description="Survey astronomy and Earth observation: catalogues, a VO server, XID+, "
        "photo-z, land use and vegetation forecasts.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
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
    # Library warnings are held back while the verb runs: if it fails, the one error line is
    # all the user sees (with --debug, they come before the traceback); if it succeeds, they
    # are shown after its output.
    undo = astropy_warnings_as_warnings()
    try:
        with warnings.catch_warnings(record=True) as caught:
            status, failed = _run(func, args)
    except BaseException:
        _show(caught)
        raise
    finally:
        undo()
    if not failed:
        _show(caught)
    return status


def _run(func, args: argparse.Namespace) -> tuple[int, bool]:
    """(exit status, whether the verb failed with a one-line error)."""
    try:
        result = func(args)
        if isinstance(result, str):  # a verb's summary
            print(result, flush=True)
            result = 0
    except KeyboardInterrupt:
        print("skysense: interrupted", file=sys.stderr)
        return 130, False
    except BrokenPipeError:
        # The reader went away (`skysense ... | head`): stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141, False
    except SkysenseError as exc:
        if args.debug:
            raise
        line = _one_line(exc)
    except unreadable_input_errors() as exc:
        # a library's own error about a bad file, not turned into an InputError by its reader
        if args.debug:
            raise
        line = _one_line(exc, library=True)
    else:
        return int(result or 0), False
    print(f"skysense: error: {line}", file=sys.stderr)
    return 2, True


def _show(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def _one_line(exc: BaseException, library: bool = False) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = " ".join(str(exc).split())
    if library and isinstance(exc, OSError):
        text = f"{type(exc).__name__}: {text}"  # e.g. a corrupt FITS file, a refused connection
    elif library:
        # say what kind of failure it was; the library's text alone can be cryptic
        text = f"cannot read an input file: {type(exc).__name__}: {text}"
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
