"""astropy's warnings as ordinary :mod:`warnings` (for front ends that hold warnings back).

astropy's logger replaces ``warnings.showwarning`` when astropy is imported and prints its own
warnings at once; :func:`astropy_warnings_as_warnings` switches that off, so that a caller's
``warnings.catch_warnings`` sees them like any library's (the CLI shows them only after a verb
succeeded, never before its one-line error).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["astropy_warnings_as_warnings"]


def _stop_astropy_logging_warnings(astropy) -> None:
    log = getattr(astropy, "log", None)
    if log is None or not log.warnings_logging_enabled():
        return
    from astropy.logger import LoggingError

    try:
        log.disable_warnings_logging()
    except LoggingError:
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
