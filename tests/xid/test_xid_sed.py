"""SED-prior mode: two bands tied by a template recover the injected fluxes."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.errors import InputError
from skysense.xid.model import ConfusionPrior, GaussianBeam, band_model, pointing_matrix
from skysense.xid.sed import SEDTemplates, fit_sed
from skysense.xid.simulate import tan_wcs


def _templates():
    z = np.linspace(0.1, 4.0, 40)
    # two smooth templates: band ratio 350/250 rising with z differently
    t1 = np.stack(
        [10.0 / (1 + z), 7.0 * (1 + 0.3 * z) / (1 + z), 4.0 * (1 + 0.6 * z) / (1 + z)], axis=-1
    )
    t2 = np.stack(
        [10.0 / (1 + z), 4.0 * (1 + 0.1 * z) / (1 + z), 1.5 * (1 + 0.2 * z) / (1 + z)], axis=-1
    )
    return SEDTemplates(z, np.stack([t1, t2]), ["mips_24", "spire_250", "spire_350"])


def test_sed_fit_recovers_fluxes_and_normalisation():
    rng = np.random.default_rng(0)
    tpl = _templates()
    nsrc = 4
    zs = rng.uniform(0.5, 2.5, nsrc)
    norm = rng.uniform(0.3, 1.0, nsrc)  # log10 scale
    true = {}
    for k, b in enumerate(tpl.bands):
        true[b] = 10**norm * np.interp(zs, tpl.z_grid, tpl.flux_mjy[0, :, k])
    wcs = tan_wcs(20, 20, 6.0)
    ra, dec = wcs.pixel_to_world_values(rng.uniform(4, 16, nsrc), rng.uniform(4, 16, nsrc))
    models = {}
    for b, fwhm, pix, noise in (
        ("mips_24", 6.0, 2.0, 0.2),
        ("spire_250", 18.0, 6.0, 1.0),
        ("spire_350", 25.0, 8.0, 1.0),
    ):
        n = int(120 / pix)
        w = tan_wcs(n, n, pix)
        x, y = w.world_to_pixel_values(ra, dec)
        yy, xx = np.mgrid[0:n, 0:n]
        a = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(fwhm), pix)
        d = a @ true[b] + noise * rng.standard_normal(a.shape[0])
        # no confusion noise in this small test: keeps NUTS's trees (and the test) short
        conf = ConfusionPrior("none")
        models[b] = band_model(
            b, a, d, np.full(a.shape[0], noise), flux_upper=np.full(nsrc, 200.0), conf_prior=conf
        )
    post = fit_sed(
        models,
        tpl,
        z_mean=zs,
        z_sigma=None,
        n_samples=150,
        n_warmup=150,
        n_chains=1,
        random_state=1,
    )
    assert post.flux.shape == (1, 150, nsrc, 3)
    for k, b in enumerate(tpl.bands):
        med = np.median(post.flux[..., k].reshape(-1, nsrc), axis=0)
        sd = post.flux[..., k].reshape(-1, nsrc).std(axis=0)
        assert np.all(np.abs(med - true[b]) < 4 * sd + 0.05 * true[b]), b
    ln = post.log_norm.reshape(-1, nsrc)
    assert np.all(np.abs(np.median(ln, 0) - norm) < 4 * ln.std(0) + 0.05)


def test_sed_bad_inputs():
    tpl = _templates()
    with pytest.raises(InputError, match="increasing"):
        SEDTemplates(tpl.z_grid[::-1], tpl.flux_mjy, tpl.bands)
    a = np.eye(3)
    m = {"pacs_100": band_model("pacs_100", a, np.ones(3), np.ones(3))}
    with pytest.raises(InputError, match="no fluxes for band"):
        fit_sed(m, tpl, z_mean=np.ones(3))
