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

from skysense.xid.blind.engine import extract_tiles, pixel_tiles
from skysense.xid.blind.extract import (
    CATALOGUE_UNITS,
    FilteredMap,
    PSFFit,
    estimate_confusion_mjy,
    extract_sources,
    find_peaks,
    matched_filter,
    psf_fit_fluxes,
)
from skysense.xid.blind.io import BLIND_COLUMNS, read_blind_catalogue, write_blind_catalogue
from skysense.xid.blind.match import MATCH_UNITS, describe_match, match_blind, nearest_within
from skysense.xid.blind.stats import (
    CompletenessResult,
    brightest_owner,
    completeness_reliability,
)

__all__ = [
    "FilteredMap",
    "matched_filter",
    "find_peaks",
    "extract_sources",
    "psf_fit_fluxes",
    "PSFFit",
    "estimate_confusion_mjy",
    "CATALOGUE_UNITS",
    "nearest_within",
    "match_blind",
    "describe_match",
    "MATCH_UNITS",
    "CompletenessResult",
    "brightest_owner",
    "completeness_reliability",
    "write_blind_catalogue",
    "read_blind_catalogue",
    "BLIND_COLUMNS",
    "pixel_tiles",
    "extract_tiles",
]
