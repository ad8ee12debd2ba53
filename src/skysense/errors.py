"""The skysense exception hierarchy.

Every error a user can cause derives from :class:`SkysenseError`; the CLI turns it into one
readable line and a non-zero exit. Errors about data name where the problem is: the file,
the column, the row (0-based, as in the file after its header) or the query position.
"""

from __future__ import annotations

__all__ = [
    "SkysenseError",
    "InputError",
    "ConfigError",
    "QueryError",
    "NotFittedError",
    "unreadable_input_errors",
]


class SkysenseError(Exception):
    """Base class of every error skysense raises on purpose."""


class InputError(SkysenseError, ValueError):
    """Bad input data, located as precisely as possible.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or os.PathLike, optional
        The file the data came from.
    column : str, optional
        The offending column.
    row : int, optional
        The offending row (0-based).
    """

    def __init__(self, message: str, *, path=None, column=None, row=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.column = column
        self.row = row
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ConfigError(InputError):
    """A configuration file or option is invalid (names the file and key)."""

    def __init__(self, message: str, *, path=None, key=None):
        self.key = key
        super().__init__(message if key is None else f"{key}: {message}", path=path)


class QueryError(SkysenseError, ValueError):
    """A query (ADQL) could not be parsed or is not allowed.

    ``line`` and ``column`` are 1-based positions of the offending token.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        self.message = message
        self.line = line
        self.column = column
        pos = "" if line is None else f" (line {line}, column {column})"
        super().__init__(f"{message}{pos}")


class NotFittedError(SkysenseError, AttributeError):
    """A model was used before ``fit`` (mirrors scikit-learn's exception)."""


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
    """Exception types meaning "this input file cannot be read" (for the CLI and other edges).

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
