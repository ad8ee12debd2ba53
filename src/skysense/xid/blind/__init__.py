"""Blind point-source extraction in far-infrared maps, without a prior list.

The same split as the rest of :mod:`skysense.xid`:

- :mod:`~skysense.xid.blind.extract` (pure): matched filter (Chapin et al. 2011), peaks, joint
  PSF fit of blends, :func:`extract_sources`;
- :mod:`~skysense.xid.blind.match` (pure): cross-match with an XID+ catalogue or masterlist,
  :func:`match_blind`;
- :mod:`~skysense.xid.blind.stats` (pure): completeness and reliability against a truth list;
- :mod:`~skysense.xid.blind.io`: catalogue files (FITS with units and filter settings, Parquet);
- :mod:`~skysense.xid.blind.engine`: a large map tile by tile on Dask, :func:`extract_tiles`.

Quick start::

    from skysense.xid import read_map
    from skysense.xid.blind import extract_sources, write_blind_catalogue
    catalogue = extract_sources(read_map("psw.fits", band="spire_250"), snr_threshold=5)
    write_blind_catalogue(catalogue, "blind_250")      # blind_250.fits / .parquet
"""

from skysense.xid.blind import engine, extract, io, match, stats
from skysense.xid.blind.engine import *  # noqa: F403
from skysense.xid.blind.extract import *  # noqa: F403
from skysense.xid.blind.io import *  # noqa: F403
from skysense.xid.blind.match import *  # noqa: F403
from skysense.xid.blind.stats import *  # noqa: F403

# The sub-modules' public names, in the order of the package docstring.
__all__ = [*extract.__all__, *match.__all__, *stats.__all__, *io.__all__, *engine.__all__]
