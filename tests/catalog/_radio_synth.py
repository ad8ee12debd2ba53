"""A seeded radio + optical field with truth, for the radio cross-identification tests.

Optical objects: uniform in a box, magnitudes from counts rising as 10^(0.3 m). A fraction
``q0`` of the radio sources sit on an optical host drawn with a preference for bright hosts
(a Gaussian in magnitude); the rest have no host in the catalogue. Radio positions scatter
around the host by an elliptical Gaussian (semi-axes and PA per source) plus a circular
systematic term; optical positions are exact plus their own small circular error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_field(
    *,
    n_radio: int = 2000,
    q0: float = 0.7,
    density_deg2: float = 30000.0,
    side_deg: float = 2.0,
    dec0: float = 10.0,
    mag_range=(16.0, 24.0),
    host_mag=(18.5, 1.2),
    radio_sigma=(0.8, 2.0),
    systematic_arcsec: float = 0.3,
    optical_sigma_arcsec: float = 0.1,
    edge_arcsec: float = 70.0,
    seed: int = 1,
):
    """Returns (optical DataFrame, radio DataFrame with ``host`` = optical row or -1)."""
    rng = np.random.default_rng(seed)
    n_opt = int(density_deg2 * side_deg**2)
    cosd = np.cos(np.radians(dec0))
    ra = 150.0 + rng.uniform(0, side_deg / cosd, n_opt)
    dec = dec0 + rng.uniform(0, side_deg, n_opt)
    lo, hi = mag_range
    u = rng.uniform(0, 1, n_opt)
    mag = np.log10(10 ** (0.3 * lo) + u * (10 ** (0.3 * hi) - 10 ** (0.3 * lo))) / 0.3
    sig_o = np.full(n_opt, optical_sigma_arcsec)
    opt = pd.DataFrame({"ra": ra, "dec": dec, "m_r": mag, "err_arcsec": sig_o,
                        "m_g": mag + rng.normal(0.6, 0.3, n_opt)})  # fmt: skip
    # Exact positions of the optical objects are their catalogue positions plus their error.
    true_ra, true_dec = ra.copy(), dec.copy()
    opt["ra"] = ra + rng.normal(0, optical_sigma_arcsec, n_opt) / 3600 / cosd
    opt["dec"] = dec + rng.normal(0, optical_sigma_arcsec, n_opt) / 3600

    edge = edge_arcsec / 3600
    inner = (
        (ra > 150 + edge / cosd) & (ra < 150 + (side_deg - edge) / cosd)
        & (dec > dec0 + edge) & (dec < dec0 + side_deg - edge)
    )  # fmt: skip
    n_host = rng.binomial(n_radio, q0)
    # Hosts: importance-sample the optical list so host magnitudes follow N(host_mag).
    w = np.exp(-0.5 * ((mag - host_mag[0]) / host_mag[1]) ** 2) / 10 ** (0.3 * mag)
    w[~inner] = 0
    hosts = rng.choice(n_opt, size=n_host, replace=False, p=w / w.sum())
    # Radio sources without a host: uniform inside the inner box.
    n_blank = n_radio - n_host
    bra = 150 + rng.uniform(edge / cosd, (side_deg - edge) / cosd, n_blank)
    bdec = dec0 + rng.uniform(edge, side_deg - edge, n_blank)
    cra = np.concatenate([true_ra[hosts], bra])
    cdec = np.concatenate([true_dec[hosts], bdec])
    host = np.concatenate([hosts, np.full(n_blank, -1)])
    a = rng.uniform(*radio_sigma, n_radio)
    b = a * rng.uniform(0.5, 1.0, n_radio)
    pa = rng.uniform(0, 180, n_radio)
    t = np.radians(pa)
    z1, z2 = rng.normal(size=(2, n_radio))
    east = a * z1 * np.sin(t) + b * z2 * np.cos(t) + rng.normal(0, systematic_arcsec, n_radio)
    north = a * z1 * np.cos(t) - b * z2 * np.sin(t) + rng.normal(0, systematic_arcsec, n_radio)
    rra = cra + east / 3600 / np.cos(np.radians(cdec))
    rdec = cdec + north / 3600
    order = rng.permutation(n_radio)
    radio = pd.DataFrame({
        "name": [f"R{i:05d}" for i in range(n_radio)], "ra": rra[order], "dec": rdec[order],
        "flux_mjy": 10 ** rng.normal(0, 0.5, n_radio), "flux_err_mjy": np.full(n_radio, 0.05),
        "maj": a[order], "min": b[order], "pa": pa[order], "host": host[order],
    })  # fmt: skip
    return opt, radio
