"""skysense: survey astronomy and Earth observation in one package.

Areas: :mod:`skysense.catalog` (HELP masterlists), :mod:`skysense.vo` (Virtual
Observatory server), :mod:`skysense.xid` (XID+ de-blending), :mod:`skysense.photoz`
(GPz photometric redshifts), :mod:`skysense.landuse` (land-use classification),
:mod:`skysense.astrocast` (vegetation forecasts) and :mod:`skysense.sim` (simulated fields).
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # The version is looked up on first use: importlib.metadata costs ~0.1 s at start-up,
    # which every `skysense ... --help` would otherwise pay.
    if name != "__version__":
        raise AttributeError(f"module 'skysense' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("skysense")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0"
    globals()["__version__"] = value
    return value
