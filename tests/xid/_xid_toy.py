"""The XID+ toy maps in ``xidplus/xid_basic_toy`` of the reference data, as the blind tests read them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.table import Table

from skysense.xid.io import read_map
from skysense.xid.skymap import SkyMap

FWHM_PIX = 3.0  # the toy beam


def read_toy(shared_data, example: str) -> tuple[SkyMap, pd.DataFrame]:
    """The map in mJy/beam (the files are per pixel) and its true sources (X, Y, F, ra, dec)."""
    d = shared_data / "xidplus" / "xid_basic_toy"
    sky = read_map(
        d / f"{example}_noisymap.fits",
        band="toy",
        noise_path=d / f"{example}_sigmap.fits",
        unit="mJy/beam",
    )
    area = 2 * np.pi * (FWHM_PIX / 2.3548200450309493) ** 2  # per pixel -> per beam
    # the header says 4 arcsec pixels (the WCS gives 3.999996)
    sky = SkyMap("toy", sky.image_mjy * area, sky.error_mjy * area, sky.wcs, FWHM_PIX * 4.0)
    src = Table.read(d / f"{example}_src.fits").to_pandas()
    src["ra"], src["dec"] = sky.wcs.pixel_to_world_values(
        src.X.to_numpy(float), src.Y.to_numpy(float)
    )
    return sky, src
