"""Helpers shared by the area CLI modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

__all__ = [
    "add_area",
    "add_verb",
    "add_scheduler_option",
    "add_lazy_choice",
    "unreadable_input_errors",
    "astropy_warnings_as_warnings",
]


def add_area(subparsers, name: str, help: str) -> argparse._SubParsersAction:
    """Add ``skysense <name>`` and return its verb sub-parsers."""
    area = subparsers.add_parser(name, help=help, description=help)
    area.set_defaults(_parser=area)
    return area.add_subparsers(dest="verb", metavar="VERB")


def add_verb(verbs, name: str, func, help: str) -> argparse.ArgumentParser:
    """Add ``skysense <area> <name>`` calling ``func(args)``."""
    parser = verbs.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func, _parser=parser)
    return parser


def add_scheduler_option(parser: argparse.ArgumentParser) -> None:
    """``--scheduler ADDRESS``: run on an existing Dask cluster instead of locally."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address (default: a local scheduler in this process)",
    )


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


# Exceptions that libraries raise on a damaged or mistaken input file, by module, looked up
# only in modules already imported (the reader that raised them was imported), so this costs
# no import. Readers should raise InputError naming the file; these are the safety net.
_LIBRARY_INPUT_ERRORS = {
    "pandas.errors": ("ParserError", "EmptyDataError"),
    "pyarrow.lib": ("ArrowException",),
    "yaml": ("YAMLError",),
    "astropy.io.fits.verify": ("VerifyError",),
    "pickle": ("UnpicklingError",),
    "zipfile": ("BadZipFile",),
}


def unreadable_input_errors() -> tuple[type[BaseException], ...]:
    """Exception types meaning "this input file cannot be read", for the CLI's boundary.

    ``OSError`` (a corrupt FITS file, a raster GDAL cannot open, a missing file),
    ``UnicodeDecodeError`` (a binary file given as text), ``EOFError`` (a file cut short) and
    the parse errors of pandas, pyarrow, PyYAML, astropy.io.fits and NumPy's ``.npz`` reader.
    """
    import sys

    found: list[type[BaseException]] = [OSError, UnicodeDecodeError, EOFError]
    for module_name, names in _LIBRARY_INPUT_ERRORS.items():
        module = sys.modules.get(module_name)
        found += [getattr(module, n) for n in names if hasattr(module, n)]
    return tuple(found)


def _stop_astropy_logging_warnings(astropy) -> None:
    log = getattr(astropy, "log", None)
    if log is None or not log.warnings_logging_enabled():
        return
    try:
        log.disable_warnings_logging()
    except Exception:  # astropy.logger.LoggingError
        # showwarning was replaced since (by pytest, say): astropy does not print them now
        pass


class _AfterAstropyImport:
    """Meta-path finder: once ``astropy`` has been imported, stop it logging warnings."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "astropy":
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)  # one use; find the real package without this finder
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _stop_astropy_logging_warnings(module)

        spec.loader.exec_module = exec_module
        return spec


def astropy_warnings_as_warnings() -> Callable[[], None]:
    """Let astropy's warnings reach :mod:`warnings` like any library's; returns an undo.

    astropy's logger replaces ``warnings.showwarning`` when astropy is imported and prints
    its own warnings at once ("WARNING: ... [astropy.io.fits...]"), past the CLI's
    ``catch_warnings`` that holds warnings back until the verb has succeeded or failed.
    The verbs import astropy lazily, so it is switched off right after that import (or now,
    if astropy is already loaded). The returned function removes the import hook if astropy
    was never imported.
    """
    import sys

    if "astropy" in sys.modules:
        _stop_astropy_logging_warnings(sys.modules["astropy"])
        return lambda: None
    finder = _AfterAstropyImport()
    sys.meta_path.insert(0, finder)

    def undo() -> None:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)

    return undo
