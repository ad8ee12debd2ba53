"""skysense: survey astronomy and Earth observation in one package.

Areas: :mod:`skysense.catalog` (HELP masterlists), :mod:`skysense.vo` (Virtual
Observatory server), :mod:`skysense.xid` (XID+ de-blending), :mod:`skysense.photoz`
(GPz photometric redshifts), :mod:`skysense.landuse` (land-use classification),
:mod:`skysense.astrocast` (vegetation forecasts) and :mod:`skysense.sim` (simulated fields).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skysense")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
