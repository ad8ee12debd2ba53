import numpy as np
import pytest
import speclite.filters

from skysense.errors import InputError
from skysense.sed.filters import Filter, band_fluxes, filter_weights
from skysense.sed.models import planck_lambda


def test_power_law_through_tophat_matches_analytic():
    # f_nu = lam^beta through a top-hat photon counter: <f> = int lam^(beta-1) / int lam^-1
    lo, hi, beta = 4000.0, 6000.0, 1.7
    grid = np.linspace(3900, 6100, 2201)
    f = Filter("t", grid, np.where((grid >= lo) & (grid <= hi), 1.0, 0.0))
    lam = np.geomspace(1000, 20000, 20000)
    got = band_fluxes(lam, lam**beta, [f])[0]
    want = (hi**beta - lo**beta) / beta / np.log(hi / lo)
    assert got == pytest.approx(want, rel=1e-3)


@pytest.mark.parametrize("name", ["sdss2010-r", "galex-nuv", "wise2010-W3"])
def test_black_body_matches_speclite(name):
    sf = speclite.filters.load_filter(name)
    ours = Filter(name, np.asarray(sf.wavelength), np.asarray(sf.response))
    lam = np.geomspace(500, 4e5, 60000)
    t = 6000.0 if "W3" not in name else 300.0
    flam = planck_lambda(lam, t) * 1e20
    fnu = flam * lam**2 / 2.99792458e18
    ref = sf.get_ab_maggies(flam, lam)  # maggies = <f_nu> / 3631 Jy, f_lam in erg/s/cm2/A
    ref_fnu = float(np.ravel(ref)[0]) * 3631e-23
    assert band_fluxes(lam, fnu, [ours])[0] == pytest.approx(ref_fnu, rel=1e-3)


def test_weights_sum_to_one_and_errors():
    f = Filter("t", np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]))
    lam = np.linspace(0.5, 3.5, 100)
    w = filter_weights(lam, [f])
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(InputError, match="outside"):
        filter_weights(np.linspace(10, 20, 50), [f])
    with pytest.raises(InputError, match="increase"):
        Filter("bad", np.array([2.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(InputError, match="not all zero"):
        Filter("bad", np.array([1.0, 2.0]), np.array([0.0, 0.0]))
