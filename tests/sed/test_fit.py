import numpy as np
import pytest
from scipy.special import log_ndtr

from skysense.errors import InputError
from skysense.sed.fit import best_scale_chi2, check_photometry, fit_photometry
from skysense.sed.grid import GridConfig, build_grid


def _brute(f, iv, up, m):
    """Scan the normalisation on a fine grid around the optimum, chi^2 as CIGALE defines it."""
    det = ~up & (iv > 0)
    s0 = np.sum(f * m * iv * det) / np.sum(m * m * iv * det)
    s = np.linspace(0.0, 3 * s0, 300001)[:, None]
    chi = np.sum(np.where(det, (f - s * m) ** 2 * iv, 0.0), axis=1)
    sig = 1 / np.sqrt(np.where(up, iv, 1.0))
    chi -= 2 * np.sum(np.where(up, log_ndtr((f - s * m) / sig), 0.0), axis=1)
    k = np.argmin(chi)
    return s[k, 0], chi[k]


@pytest.mark.parametrize("with_upper", [False, True])
def test_scale_and_chi2_match_brute_force(with_upper):
    rng = np.random.default_rng(3)
    m = rng.uniform(0.5, 2.0, (6, 7))
    f = 3.0 * m[2] * rng.normal(1, 0.1, 7)
    iv = 1 / (0.1 * f) ** 2
    up = np.zeros(7, bool)
    if with_upper:
        up[[5, 6]] = True
        f[[5, 6]] = [1.0, 8.0]  # one limit binding, one not
    s, chi2 = best_scale_chi2(f[None], iv[None], up[None], m)
    for j in range(m.shape[0]):
        sb, cb = _brute(f, iv, up, m[j])
        assert s[0, j] == pytest.approx(sb, rel=2e-4)
        assert chi2[0, j] == pytest.approx(cb, rel=1e-6, abs=1e-6)


def test_bayes_estimates_match_explicit_sum(toy_ssp, toy_dust, toy_filters):
    from astropy.cosmology import Planck18

    cfg = GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=(0.3,),
                     tau_main_gyr=(0.5, 3.0), age_gyr=(1.0, 3.0), av_ism=(0.2, 0.8),
                     umin=(1.0, 5.0), frac_agn=(0.0, 0.3), agn_model="blackbody", igm=False)  # fmt: skip
    grid = build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    rng = np.random.default_rng(0)
    true = grid.fluxes_mjy[0, 5].astype(float) * 1e10
    err = 0.1 * true
    flux = true + rng.normal(0, 1, true.size) * err
    res = fit_photometry(grid, flux[None], err[None], [0.3]).iloc[0]
    # explicit loop over models
    m = grid.fluxes_mjy[0].astype(float)
    iv = 1 / err**2
    s = np.array([np.sum(flux * mm * iv) / np.sum(mm * mm * iv) for mm in m])
    chi2 = np.array([np.sum((flux - sj * mm) ** 2 * iv) for sj, mm in zip(s, m)])
    w = np.exp(-0.5 * (chi2 - chi2.min()))
    w /= w.sum()
    assert res["best_model"] == np.argmin(chi2)
    assert res["chi2"] == pytest.approx(chi2.min(), rel=1e-6)
    assert res["bayes_av_ism"] == pytest.approx(np.sum(w * grid.params["av_ism"]), rel=1e-6)
    lm = np.log10(s * grid.props["mstar"])
    var_ls = 1 / (np.array([np.sum(mm * mm * iv) for mm in m]) * (s * np.log(10)) ** 2)
    mean = np.sum(w * lm)
    std = np.sqrt(np.sum(w * (lm**2 + var_ls)) - mean**2)
    assert res["bayes_mstar"] == pytest.approx(mean, abs=1e-9)
    assert res["bayes_mstar_err"] == pytest.approx(std, rel=1e-6)
    assert res["best_mstar"] == pytest.approx(lm[np.argmin(chi2)], abs=1e-9)
    # energy balance: each half fitted alone by an explicit loop
    ir = grid.band_pivot_um >= 10
    alone = 0.0
    for half in (~ir, ir):
        c2 = []
        for mm in m:
            sh = np.sum((flux * mm * iv)[half]) / np.sum((mm * mm * iv)[half])
            c2.append(np.sum(((flux - max(sh, 0) * mm) ** 2 * iv)[half]))
        alone += min(c2)
    assert res["delta_chi2_eb"] == pytest.approx(chi2.min() - alone, rel=1e-6, abs=1e-6)
    r = (flux - s[np.argmin(chi2)] * m[np.argmin(chi2)]) ** 2 * iv
    assert res["chi2_ir"] == pytest.approx(r[ir].sum() / ir.sum(), rel=1e-6)


def test_bad_input_is_named():
    f = np.array([[1.0, 2.0, 3.0, np.nan]])
    with pytest.raises(InputError, match=r"object 'g1', band 'b'.*finite and positive"):
        check_photometry(f, [[0.1, -0.2, 0.1, 0.1]], ids=["g1"], bands=list("abcd"))
    with pytest.raises(InputError, match="object 'g1'.*2 usable band"):
        check_photometry([[1.0, 2.0, np.nan]], [[0.1, 0.1, 0.1]], ids=["g1"])
    with pytest.raises(InputError, match="finite and positive"):
        check_photometry(f, [[0.1, np.inf, 0.1, 0.1]])


def test_redshift_outside_grid(toy_ssp, toy_dust, toy_filters):
    from astropy.cosmology import Planck18

    cfg = GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=(0.2, 0.4),
                     tau_main_gyr=(1.0,), age_gyr=(2.0,), av_ism=(0.3,), igm=False)  # fmt: skip
    grid = build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    f = grid.fluxes_mjy[0, :1].astype(float) * 1e9
    with pytest.raises(InputError, match="object 'x'.*redshift 0.9 outside"):
        fit_photometry(grid, f, f * 0.1, [0.9], ids=["x"])
    assert list(grid.redshift_index(np.array([0.21, 0.29, 0.31, 0.45]))) == [0, 0, 1, 1]


def test_photoz_marginalisation_matches_explicit_sum(toy_ssp, toy_dust, toy_filters):
    from astropy.cosmology import Planck18

    zs = (0.3, 0.4, 0.5, 0.6, 0.7)
    cfg = GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=zs, tau_main_gyr=(0.5, 3.0),
                     age_gyr=(1.0, 3.0), av_ism=(0.2, 0.8), igm=False)  # fmt: skip
    grid = build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    rng = np.random.default_rng(4)
    true = grid.fluxes_mjy[2, 3].astype(float) * 1e10
    err = 0.08 * true
    flux = true + rng.normal(0, 1, true.size) * err
    z, sz = 0.47, 0.06
    res = fit_photometry(grid, flux[None], err[None], [z], z_err=[sz]).iloc[0]
    iv = 1 / err**2
    logw, lm = [], []
    for k, zk in enumerate(zs):
        if abs(zk - z) > 3 * sz and k != 2:
            continue
        for m in grid.fluxes_mjy[k].astype(float):
            s = np.sum(flux * m * iv) / np.sum(m * m * iv)
            logw.append(-0.5 * np.sum((flux - s * m) ** 2 * iv) - 0.5 * ((zk - z) / sz) ** 2)
        lm.append(grid.params["av_ism"])
    logw = np.array(logw)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    av = np.concatenate(lm)
    assert res["bayes_av_ism"] == pytest.approx(np.sum(w * av), rel=1e-9)
    k_best = int(
        np.argmax(
            logw
            + 0.5
            * np.repeat(
                [((zk - z) / sz) ** 2 for zk in zs if abs(zk - z) <= 3 * sz or zk == 0.5],
                grid.n_models,
            )
        )
    )
    assert res["z_grid"] == pytest.approx(
        [zk for zk in zs if abs(zk - z) <= 3 * sz or zk == 0.5][k_best // grid.n_models]
    )
    # a fixed redshift (z_err NaN) equals no z_err at all
    a = fit_photometry(grid, flux[None], err[None], [z], z_err=[np.nan])
    b = fit_photometry(grid, flux[None], err[None], [z])
    assert a.equals(b)


def _explicit_posterior(grid, flux, err, prior_w=None):
    """Scale, chi^2 and normalised posterior weights of every model by an explicit loop."""
    m = grid.fluxes_mjy[0].astype(float)
    iv = 1 / err**2
    s = np.array([np.sum(flux * mm * iv) / np.sum(mm * mm * iv) for mm in m])
    chi2 = np.array([np.sum((flux - sj * mm) ** 2 * iv) for sj, mm in zip(s, m)])
    w = np.exp(-0.5 * (chi2 - chi2.min())) * (1.0 if prior_w is None else prior_w)
    return s, chi2, w / w.sum()


@pytest.mark.parametrize("age_prior", ["nodes", "uniform"])
def test_age_prior_and_models_without_dust(toy_ssp, toy_dust, toy_filters, age_prior):
    # A_V = 0 models have no dust luminosity: log L_dust is averaged over the others (not at a
    # 1e-30 floor); age_prior "uniform" weighs each age node by its cell in linear age
    from astropy.cosmology import Planck18

    cfg = GridConfig(bands=tuple(f.name for f in toy_filters), redshifts=(0.3,),
                     tau_main_gyr=(0.5, 3.0), age_gyr=(0.5, 1.0, 3.0), av_ism=(0.0, 0.3, 0.8),
                     igm=False, age_prior=age_prior)  # fmt: skip
    grid = build_grid(cfg, toy_ssp, toy_dust, toy_filters, cosmology=Planck18)
    assert np.any(grid.props["l_dust"] == 0) and np.any(grid.props["l_dust"] > 0)
    rng = np.random.default_rng(4)
    model = int(np.flatnonzero(grid.params["av_ism"] == 0.3)[0])
    true = grid.fluxes_mjy[0, model].astype(float) * 1e10
    err = 0.3 * true  # weak data: every model keeps some weight
    flux = true + rng.normal(0, 1, true.size) * err
    # cells of the age nodes 0.5, 1, 3 Gyr: [0, 0.75], [0.75, 2], [2, 4]
    width = {0.5: 0.75, 1.0: 1.25, 3.0: 2.0}
    prior = np.array([width[a] for a in grid.params["age_gyr"]]) if age_prior == "uniform" else None
    s, chi2, w = _explicit_posterior(grid, flux, err, prior)
    res = fit_photometry(grid, flux[None], err[None], [0.3]).iloc[0]
    assert res["best_model"] == np.argmin(chi2)  # the prior does not move the best fit
    assert res["bayes_age_gyr"] == pytest.approx(np.sum(w * grid.params["age_gyr"]), rel=1e-9)
    dusty = grid.props["l_dust"] > 0
    ld = np.log10(s[dusty] * grid.props["l_dust"][dusty])
    assert res["bayes_l_dust"] == pytest.approx(np.sum(w[dusty] * ld) / w[dusty].sum(), abs=1e-9)
    assert res["bayes_l_dust"] > 5  # not dragged towards log10(1e-30)
    lm = np.log10(s * grid.props["mstar"])
    assert res["bayes_mstar"] == pytest.approx(np.sum(w * lm), abs=1e-9)
    if age_prior == "uniform":  # older nodes weigh more than with equal weights
        w_eq = _explicit_posterior(grid, flux, err)[2]
        assert res["bayes_age_gyr"] > np.sum(w_eq * grid.params["age_gyr"]) + 0.01
