"""The default forecaster (SelectForecaster) and its new candidates on generated series."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skysense.astrocast.baselines import (
    ARGPForecaster,
    GradientBoostingForecaster,
    LinearARForecaster,
    PersistenceForecaster,
    SelectForecaster,
    VerifiedErrors,
    diebold_mariano,
    make_forecaster,
)
from skysense.astrocast.hindcast import hindcast
from skysense.astrocast.indices import vci3m
from skysense.astrocast.scores import r2_score
from skysense.errors import InputError

WINDOW = 12


def _ar2(n=520, seed=0, phi=(1.5, -0.6), sigma=4.0):
    """Weekly VCI following an AR(2) around 50 %, and its VCI3M."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(2, n):
        x[i] = phi[0] * x[i - 1] + phi[1] * x[i - 2] + sigma * rng.normal()
    v = 50 + x
    return 7.0 * np.arange(n), v, vci3m(v, WINDOW)


def _small_select(**kw):
    cands = {
        "linear_ar": LinearARForecaster(n_lags=4),
        "persistence": PersistenceForecaster(),
        "gradient_boosting": GradientBoostingForecaster(n_lags=4, refit_every=150, max_iter=20),
    }
    return SelectForecaster(WINDOW, candidates=cands, memory=120, min_verified=20, **kw)


def test_verified_errors_match_brute_force():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    ve = VerifiedErrors(3)
    issued = {}
    for now in range(10, 40):
        ve.update(y[: now + 1])
        m = rng.normal(size=3)
        issued[now] = m
        ve.add(m)
    for h in (1, 2, 3):
        # every forecast issued at i whose target i + h <= 39 (the last sample seen)
        expect = [y[i + h] - issued[i][h - 1] for i in sorted(issued) if i + h <= 39]
        got, issues = ve.recent(h, 1000)
        np.testing.assert_allclose(got, expect)
        assert np.all(issues + h <= 39)


def test_selector_picks_linear_ar_on_an_ar2_process():
    t, v, y3 = _ar2()
    fc = _small_select(combine="select")
    picks = []
    for i in range(100, t.size):
        fc.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 6)
        if i > 300:
            picks.append(fc.choice_)
    picks = np.array(picks)
    for h in range(6):
        assert np.mean(picks[:, h] == "linear_ar") > 0.9, (h, pd.Series(picks[:, h]).value_counts())


def test_selector_sees_only_data_before_each_origin():
    """Every candidate is called with arrays ending at the issue date, and changing the data
    after an origin leaves the forecasts issued up to it unchanged."""
    t, v, y3 = _ar2(n=330, seed=2)

    class Spy(LinearARForecaster):
        seen: list = []

        def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
            Spy.seen.append(len(vci3m))
            return super().forecast(t_days, vci, vci3m, n_leads, extra)

    def run(vv, yy):
        Spy.seen = []
        cands = {"linear_ar": Spy(n_lags=4), "persistence": PersistenceForecaster()}
        fc = SelectForecaster(WINDOW, candidates=cands, memory=60, min_verified=10)
        out = hindcast(t, vv, yy, fc, n_leads=4, start=80)
        return out, list(Spy.seen)

    base, seen = run(v, y3)
    assert seen == list(range(81, 331))  # issue i sees samples 0..i
    cut = 250
    v2, y2 = v.copy(), y3.copy()
    v2[cut + 1 :] += 30.0
    y2[cut + 1 :] += 30.0
    pert, _ = run(v2, y2)
    key = ["issue_index", "lead", "candidate"]
    a = base[base.issue_index <= cut].set_index(key).sort_index()
    b = pert[pert.issue_index <= cut].set_index(key).sort_index()
    np.testing.assert_array_equal(a["mean"].to_numpy(), b["mean"].to_numpy())
    np.testing.assert_array_equal(a["std"].to_numpy(), b["std"].to_numpy())
    # ...and the perturbation does reach the later forecasts (the check could fail)
    later = base.issue_index > cut + 5
    assert not np.allclose(base.loc[later, "mean"], pert.loc[later, "mean"])


def test_stacked_default_intervals_cover_about_68_percent():
    t, v, y3 = _ar2(n=700, seed=4)
    out = hindcast(t, v, y3, _small_select(), n_leads=4, start=100)
    main = out[(out.candidate == "") & (out.issue_index > 250)].dropna(subset=["observed"])
    inside = np.abs(main.observed - main["mean"]) < main["std"]
    assert 0.6 <= inside.mean() <= 0.76
    # the stacked forecast is as good as its best candidate (linear AR) within noise
    ar = out[(out.candidate == "linear_ar") & (out.issue_index > 250)].dropna(subset=["observed"])
    for h in (1, 4):
        r_main = r2_score(main[main.lead == h].observed, main[main.lead == h]["mean"])
        r_ar = r2_score(ar[ar.lead == h].observed, ar[ar.lead == h]["mean"])
        assert r_main >= r_ar - 0.01


def test_gradient_boosting_learns_a_nonlinear_seasonal_response():
    """VCI3M change depends on the season (not linear in sin/cos of it): trees beat AR."""
    rng = np.random.default_rng(5)
    n = 900
    t = 7.0 * np.arange(n)
    doy = (t % 365.25) / 365.25
    v = 50 + 30 * (np.abs(doy - 0.5) < 0.1) + 2 * rng.normal(size=n)
    y3 = vci3m(v, WINDOW)
    res = {}
    for name, fc in (
        ("gb", GradientBoostingForecaster(n_lags=4, refit_every=100)),
        ("ar", LinearARForecaster(n_lags=4)),
    ):
        out = hindcast(t, v, y3, fc, n_leads=8, start=500).dropna(subset=["observed"])
        o = out[out.lead == 8]
        res[name] = r2_score(o.observed, o["mean"])
    assert res["gb"] > res["ar"] + 0.05, res


def test_ar_gp_correction_matches_scikit_learn_gp():
    """The NumPy conditioning of the GP on verified AR errors against scikit-learn's GP with
    the same (fixed) kernel, at the last issue of a hindcast."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    t, v, y3 = _ar2(n=260, seed=6)
    fc = ARGPForecaster(n_lags=4, min_verified=20, memory=60, refit_every=50)
    for i in range(80, t.size):
        mean, std = fc.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 3)
    ar_mean = fc.errors_.pending_[-1][1]
    now = t.size - 1
    for h in (1, 3):
        e, idx = fc.errors_.recent(h, 60)
        mu, sd = e.mean(), e.std()
        amp, length, noise = fc.hyper_[h]
        kern = ConstantKernel(amp, "fixed") * RBF(length, "fixed") + WhiteKernel(noise, "fixed")
        gp = GaussianProcessRegressor(kern, optimizer=None).fit(idx[:, None].astype(float),
                                                                (e - mu) / sd)  # fmt: skip
        m, s = gp.predict(np.array([[float(now)]]), return_std=True)
        assert mean[h - 1] == pytest.approx(ar_mean[h - 1] + mu + sd * m[0], abs=1e-6)
        assert std[h - 1] == pytest.approx(sd * s[0], rel=1e-4)
    assert not np.allclose(mean, ar_mean)  # the correction is not a no-op


def test_unknown_choices_fail_cleanly():
    with pytest.raises(InputError):
        make_forecaster("nope")
    with pytest.raises(InputError):
        SelectForecaster(combine="vote")
    with pytest.raises(InputError):
        SelectForecaster(candidates={"linear_ar": LinearARForecaster()}, fallback="gp")
    with pytest.raises(InputError):
        SelectForecaster(candidates={"linear_ar": LinearARForecaster()}, prefer="gp")
    with pytest.raises(InputError):
        SelectForecaster(shrink=-1.0)


class _Offset:
    """A candidate forecasting the known future plus a known deterministic offset
    ``offset(i, h)`` (so its verified errors are exactly ``-offset``)."""

    def __init__(self, future, offset):
        self.future, self.offset = future, offset

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        i = len(vci3m) - 1
        hs = np.arange(1, n_leads + 1)
        return self.future[i + hs] + self.offset(i, hs), np.ones(n_leads)


def _min_on_simplex(gram):
    """Independent answer: minimise w' G w on the simplex with SciPy's SLSQP."""
    from scipy.optimize import minimize

    k = gram.shape[0]
    res = minimize(
        lambda w: w @ gram @ w,
        np.full(k, 1.0 / k),
        jac=lambda w: 2 * gram @ w,
        bounds=[(0, 1)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


@pytest.mark.parametrize("seed", range(6))
def test_simplex_weights_match_scipy(seed):
    from skysense.astrocast.baselines import simplex_weights

    rng = np.random.default_rng(seed)
    k = 2 + seed % 4
    e = rng.normal(size=(80, k)) @ rng.normal(size=(k, k)) + rng.normal(size=k)
    gram = e.T @ e / 80
    w = simplex_weights(gram)
    ref = _min_on_simplex(gram)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w @ gram @ w <= ref @ gram @ ref + 1e-9 * np.trace(gram)
    np.testing.assert_allclose(w, ref, atol=1e-4)


def test_stack_weights_are_shrunk_pooled_constrained_least_squares():
    """The default stack against the rule computed independently from the candidates' known
    errors: CLS weights (SLSQP) on the Gram matrices pooled over leads, each scaled by linear
    AR's MSE, shrunk toward linear AR by ``n / (n + shrink * h)``."""
    t, v, y3 = _ar2(n=260)
    future = np.concatenate([y3, np.zeros(20)])
    offs = {
        "linear_ar": lambda i, h: 1.5 * np.sin(0.37 * i + h) + 0.2 * h,
        "other": lambda i, h: 1.2 * np.cos(0.23 * i) - 0.3 * h,
        "third": lambda i, h: 2.0 * np.sin(0.11 * i + 1.0) + 0.5,
    }
    n_leads, memory, first, last, shrink = 3, 60, 30, 200, 40.0
    cands = {k: _Offset(future, f) for k, f in offs.items()}
    sel = SelectForecaster(WINDOW, candidates=cands, memory=memory, min_verified=20,
                           shrink=shrink, lead_cap=None, lead_pool=1.0)  # fmt: skip
    for i in range(first, last + 1):
        mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)
    names = list(offs)
    gram = np.zeros((3, 3))
    for h in range(1, n_leads + 1):
        issues = np.arange(first, last - h + 1)[-memory:]  # verified by the last issue
        err = np.column_stack([-offs[k](issues, h) for k in names])
        g = err.T @ err / len(issues)
        gram += g / g[0, 0]
    w = _min_on_simplex(gram)
    hs = np.arange(1, n_leads + 1)
    expect = []
    for h in hs:
        lam = memory / (memory + shrink * h)
        wh = lam * w + (1 - lam) * np.array([1.0, 0, 0])
        expect.append(y3[last + h] + sum(wh[k] * offs[n](last, h) for k, n in enumerate(names)))
    np.testing.assert_allclose(mean, expect, atol=1e-4)
    assert w[1] > 0.05 and w[2] > 0.05  # a real mix, not linear AR alone
    np.testing.assert_allclose(sel.weights_.sum(1), 1.0)
    # without shrinkage the same weights at every lead; infinite shrinkage: linear AR alone
    plain = SelectForecaster(WINDOW, candidates=cands, memory=memory, min_verified=20, shrink=0,
                             lead_cap=None, lead_pool=1.0)  # fmt: skip
    alone = SelectForecaster(WINDOW, candidates=cands, memory=memory, min_verified=20,
                             shrink=np.inf)  # fmt: skip
    for i in range(first, last + 1):
        plain.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)
        m_alone, _ = alone.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)
    np.testing.assert_allclose(plain.weights_, np.tile(w, (n_leads, 1)), atol=1e-4)
    np.testing.assert_array_equal(m_alone, y3[last + hs] + offs["linear_ar"](last, hs))


@pytest.mark.parametrize("lead_pool", [0.0, 0.5])
def test_stack_lead_pool_weights_each_lead_by_its_own_gram(lead_pool):
    """``lead_pool < 1``: at lead h the CLS weights (SLSQP, independently) on the scaled Gram
    matrices of every lead j weighted by ``lead_pool^|h - j|`` (0: lead h's alone), then the
    same shrinkage toward linear AR; the forecast is the anchor plus weighted differences."""
    t, v, y3 = _ar2(n=260)
    future = np.concatenate([y3, np.zeros(20)])
    # offsets whose best mix differs by lead (the third helps at lead 1 only)
    offs = {
        "linear_ar": lambda i, h: 1.5 * np.sin(0.37 * i + h) + 0.2 * h,
        "other": lambda i, h: 1.2 * np.cos(0.23 * i) - 0.3 * h,
        "third": lambda i, h: (0.4 + h * h) * np.sin(0.11 * i + 1.0) + 0.2 * h,
    }
    n_leads, memory, first, last, shrink = 3, 60, 30, 200, 40.0
    cands = {k: _Offset(future, f) for k, f in offs.items()}
    sel = SelectForecaster(WINDOW, candidates=cands, memory=memory, min_verified=20,
                           shrink=shrink, lead_pool=lead_pool)  # fmt: skip
    for i in range(first, last + 1):
        mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)
    names = list(offs)
    grams = []
    for h in range(1, n_leads + 1):
        issues = np.arange(first, last - h + 1)[-memory:]  # verified by the last issue
        err = np.column_stack([-offs[k](issues, h) for k in names])
        g = err.T @ err / len(issues)
        grams.append(g / g[0, 0])
    expect, ws = [], []
    for h in range(1, n_leads + 1):
        gram = sum(lead_pool ** abs(h - j) * grams[j - 1] for j in range(1, n_leads + 1))
        w = _min_on_simplex(gram)
        ws.append(w)
        lam = memory / (memory + shrink * h)
        wh = lam * w + (1 - lam) * np.array([1.0, 0, 0])
        expect.append(y3[last + h] + sum(wh[k] * offs[n](last, h) for k, n in enumerate(names)))
    np.testing.assert_allclose(mean, expect, atol=1e-4)
    # the weights really differ by lead (else this would not test the rule)
    assert np.abs(ws[0] - ws[2]).max() > 0.05
    lam = memory / (memory + shrink * np.arange(1, n_leads + 1))
    np.testing.assert_allclose(sel.weights_[:, 1:], lam[:, None] * np.array(ws)[:, 1:], atol=1e-4)
    with pytest.raises(InputError, match="lead_pool"):
        SelectForecaster(WINDOW, candidates=cands, lead_pool=1.5)


class _Never:
    """A candidate without a forecast (NaN), never verified."""

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        return np.full(n_leads, np.nan), np.full(n_leads, np.nan)


@pytest.mark.filterwarnings("error")
def test_stack_without_prefer_anchors_on_the_best_verified_candidate():
    """``prefer=None``: the anchor is the candidate with the smallest past errors, chosen
    among those verified (a candidate without forecasts does not block it), with no warning
    while nothing is verified yet."""
    t, v, y3 = _ar2(n=200)
    future = np.concatenate([y3, np.zeros(20)])
    offs = {"worse": lambda i, h: 2.0 + 0 * h, "better": lambda i, h: -0.5 + 0 * h}
    cands = {k: _Offset(future, f) for k, f in offs.items()} | {"none": _Never()}
    sel = SelectForecaster(WINDOW, candidates=cands, memory=40, min_verified=10, prefer=None,
                           fallback="worse", shrink=np.inf)  # fmt: skip
    hs = np.arange(1, 4)
    for i in range(30, 61):
        mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 3)
        if i == 30:  # nothing verified: the fallback
            np.testing.assert_allclose(mean, y3[i + hs] + 2.0)
    np.testing.assert_allclose(mean, y3[60 + hs] - 0.5)
    assert sel.choice_ == ["better"] * 3


@pytest.mark.parametrize("lead", [1, 3, 6])
def test_diebold_mariano_matches_statsmodels_hac(lead):
    """The statistic is the t-value of a constant under Newey-West (Bartlett, lead - 1 lags)
    standard errors, as statsmodels computes it (no small-sample correction)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(lead)
    e = rng.normal(size=300)
    d = 0.2 + np.convolve(e, np.ones(lead) / lead, mode="same")  # MA(lead - 1) differential
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lead - 1, "use_correction": False}
    )
    np.testing.assert_allclose(diebold_mariano(d, lead), fit.tvalues[0], rtol=1e-10)


def test_diebold_mariano_edge_cases():
    assert diebold_mariano(np.full(10, 0.3), 2) == np.inf
    assert diebold_mariano(np.full(10, -0.3), 2) == -np.inf
    assert diebold_mariano(np.zeros(10), 2) == 0.0
    assert diebold_mariano(np.array([1.0]), 1) == 0.0


class _Noisy:
    """Truth plus independent noise of a given sd (a forecaster only in name: it knows the
    future, so its errors are exactly the noise)."""

    def __init__(self, future, sd, seed):
        self.future, self.sd = future, sd
        self.rng = np.random.default_rng(seed)

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        i = len(vci3m) - 1
        m = self.future[i + 1 : i + 1 + n_leads] + self.sd * self.rng.normal(size=n_leads)
        return m, np.full(n_leads, self.sd)


def test_gate_keeps_linear_ar_against_a_candidate_only_luckier_by_chance():
    """Two candidates with the same error distribution: without the test the selector follows
    whichever was luckier lately (about half the time the other one); with the
    Diebold-Mariano gate it keeps linear AR unless the other is better beyond chance."""
    t, v, y3 = _ar2(n=400)
    future = np.concatenate([y3, np.zeros(10)])

    def picks(gate, sd_other):
        cands = {"linear_ar": _Noisy(future, 1.0, 1), "other": _Noisy(future, sd_other, 2)}
        sel = SelectForecaster(WINDOW, candidates=cands, memory=60, min_verified=20,
                               combine="select", gate=gate)  # fmt: skip
        out = []
        for i in range(30, 380):
            sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 2)
            if i >= 60:
                out.append(sel.choice_)
        return np.asarray(out)

    ungated, gated = picks(None, 1.0), picks(1.645, 1.0)
    assert np.mean(ungated == "other") > 0.25
    assert np.mean(gated == "other") < 0.1
    # a truly better candidate (errors half as large) still gets through the gate
    assert np.mean(picks(1.645, 0.5) == "other") > 0.9


def test_half_width_matches_numpy_quantile():
    from skysense.astrocast.baselines import _half_width_68

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7, 30, 156, 157):
        e = rng.normal(size=n) * 5
        assert _half_width_68(e) == float(np.quantile(np.abs(e), 0.6827))


def test_tree_table_predicts_as_scikit_learn():
    """The NumPy walk of the boosted trees gives scikit-learn's predictions, NaN included."""
    t, v, y3 = _ar2(n=400, seed=4)
    gb = GradientBoostingForecaster(n_lags=4, max_iter=25)
    gb.forecast(t, v, y3, 3)
    rng = np.random.default_rng(5)
    x = 50 + 15 * rng.normal(size=(300, gb.model_.n_features_in_))
    x[rng.random(x.shape) < 0.15] = np.nan
    assert gb.trees_ is not None
    np.testing.assert_array_equal(gb.trees_.predict(x), gb.model_.predict(x))


def test_incremental_state_equals_a_fresh_forecaster():
    """Forecasters that extend their state call by call give what a new instance gives on
    the same history, also after a history that does not continue the last one."""
    t, v, y3 = _ar2(n=300, seed=6)
    y3 = y3.copy()
    y3[[40, 41, 150]] = np.nan
    makers = [
        PersistenceForecaster,
        lambda: LinearARForecaster(n_lags=4),
        lambda: GradientBoostingForecaster(n_lags=4, max_iter=10, refit_every=1),
    ]
    for make in makers:
        kept = make()
        for i in [*range(60, 200, 7), 120, 121, 299]:  # 120: a shorter history again
            m1, s1 = kept.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 4)
            m2, s2 = make().forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 4)
            np.testing.assert_allclose(m1, m2, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(s1, s2, rtol=1e-9)
    # a different series of the same length is not mistaken for the one seen
    ar = LinearARForecaster(n_lags=4)
    a = ar.forecast(t, v, y3, 4)[0]
    b = ar.forecast(t, v[::-1].copy(), y3, 4)[0]
    assert not np.allclose(a, b)


def test_ar_gp_hyperparameters_reach_scikit_learns_optimum():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    rng = np.random.default_rng(9)
    x = np.arange(100.0)
    e = np.cumsum(rng.normal(size=100)) * 0.3 + rng.normal(size=100)
    e = (e - e.mean()) / e.std()
    fc = ARGPForecaster()
    fc._hyper(x, e, 1)
    kern = ConstantKernel(0.5, (1e-3, 1e1)) * RBF(10.0, (1.0, 500.0)) + WhiteKernel(
        0.5, (1e-3, 2.0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianProcessRegressor(kern).fit(x[:, None], e)
    ours = ref.log_marginal_likelihood(np.log(fc.hyper_[1]))
    assert ours >= ref.log_marginal_likelihood(ref.kernel_.theta) - 1e-6
    assert ours > ref.log_marginal_likelihood(kern.theta) + 0.01  # it moved uphill


def test_hac_variance_matches_statsmodels_at_a_long_bandwidth():
    """hac_variance with bandwidth L + 1 is statsmodels' Newey-West variance with L lags
    (times n: the long-run variance, not that of the mean)."""
    import statsmodels.api as sm

    from skysense.astrocast.baselines import hac_variance

    rng = np.random.default_rng(11)
    x = np.zeros(400)
    for i in range(1, x.size):
        x[i] = 0.85 * x[i - 1] + rng.normal()
    for lags in (0, 7, 40):
        fit = sm.OLS(x, np.ones_like(x)).fit(
            cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False}
        )
        np.testing.assert_allclose(hac_variance(x, lags + 1) / x.size, fit.bse[0] ** 2,
                                   rtol=1e-10)  # fmt: skip


def _ar1(rng, n, rho, size=()):
    x = np.zeros((*size, n))
    e = rng.normal(size=(*size, n))
    for i in range(1, n):
        x[..., i] = rho * x[..., i - 1] + e[..., i]
    return x


def test_andrews_bandwidth_recovers_the_long_run_variance_of_an_ar1():
    """Simulation truth: for an AR(1) with rho = 0.6 the bandwidth is near Andrews' value for
    the true rho, and the long-run variance with it near sigma^2 / (1 - rho)^2 = 6.25."""
    from skysense.astrocast.baselines import andrews_bandwidth, hac_variance

    rng = np.random.default_rng(12)
    n, rho = 4000, 0.6
    xs = _ar1(rng, n, rho, (40,))
    bw = np.array([andrews_bandwidth(x) for x in xs])
    alpha = 4 * rho**2 / ((1 - rho) ** 2 * (1 + rho) ** 2)
    assert np.mean(bw) == pytest.approx(1.1447 * (alpha * n) ** (1 / 3), rel=0.1)
    lrv = np.array([hac_variance(x, b) for x, b in zip(xs, bw)])
    assert np.mean(lrv) == pytest.approx(1 / (1 - rho) ** 2, rel=0.1)
    # white noise needs (almost) no lags; a constant or a random walk's extreme cases
    assert andrews_bandwidth(rng.normal(size=n)) < 3
    assert andrews_bandwidth(np.ones(50)) == 0.0
    assert andrews_bandwidth(np.arange(50.0) ** 3) <= 50


def test_evidence_weight_is_zero_without_a_gain_and_a_lower_bound_with_one():
    """Simulation truth with strongly autocorrelated errors (rho 0.9, 156 verified errors,
    as for VCI3M): the anchor's error is ``lam0 u + noise`` with ``u`` the stack minus the
    anchor. Without a gain (lam0 = 0) the bound is exactly 0 in most samples; with lam0 =
    0.7 it is positive in most and below 0.7 in most. (With so few, so correlated errors the
    long-run variance is underestimated: the 95 % bound holds in about 85 % of the samples,
    here and in both cases.) The same bound with an iid standard error is above the truth
    far more often."""
    from skysense.astrocast.baselines import evidence_weight

    rng = np.random.default_rng(13)
    n, reps = 156, 400
    u = _ar1(rng, n, 0.9, (reps,))
    noise = 2.0 * _ar1(rng, n, 0.9, (reps,))

    def bounds(lam0, lead):
        ea = lam0 * u + noise
        return np.array([evidence_weight(a, a - b, lead) for a, b in zip(ea, u)])

    none = bounds(0.0, 1)
    assert np.mean(none == 0.0) > 0.8
    some = bounds(0.7, 1)
    assert np.mean(some > 0) > 0.5 and np.mean(some < 0.7) > 0.8
    assert np.all((none >= 0) & (none <= 1)) and np.all((some >= 0) & (some <= 1))
    # the same statistic with no lags (iid standard error) overstates the evidence
    from scipy.stats import norm

    naive = []
    for a, b in zip(noise, u):
        lam = a @ b / (b @ b)
        r = b * (a - lam * b)
        naive.append(lam - norm.ppf(0.95) * np.sqrt(n * np.mean(r**2)) / (b @ b) > 0)
    assert np.mean(naive) > np.mean(none > 0) + 0.1


def test_evidence_stack_is_linear_ar_to_the_bit_without_evidence_and_moves_with_it():
    """shrink=None (the evidence bound): a candidate that is linear AR plus independent noise carries no gain, so
    the forecast is linear AR's exactly at (nearly) every issue; a candidate with errors
    independent of AR's (averaging the two halves the error variance) earns a weight."""
    t, v, y3 = _ar2(n=420)
    future = np.concatenate([y3, np.zeros(10)])

    class _Once(_Noisy):
        """_Noisy with one draw per issue, however often it is asked."""

        def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
            if getattr(self, "last", (None,))[0] != len(vci3m):
                self.last = (len(vci3m), super().forecast(t_days, vci, vci3m, n_leads))
            return self.last[1]

    class _Plus:
        def __init__(self, base, sd, seed):
            self.base, self.sd, self.rng = base, sd, np.random.default_rng(seed)

        def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
            m, s = self.base.forecast(t_days, vci, vci3m, n_leads)
            return m + self.sd * self.rng.normal(size=n_leads), s

    def run(other):
        ar = _Once(future, 1.0, 1)
        cands = {"linear_ar": ar, "other": other(ar)}
        sel = SelectForecaster(WINDOW, candidates=cands, memory=100, min_verified=20,
                               shrink=None, lead_pool=1.0)  # fmt: skip
        same, lam = [], []
        for i in range(30, 400):
            mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 2)
            ar_mean = sel.last_candidates_["linear_ar"][0]
            if i >= 120:
                same.append(np.array_equal(mean, ar_mean))
                lam.append(sel.lam_.copy())
                w = sel.weights_
                expect = w[:, 0] * ar_mean + w[:, 1] * sel.last_candidates_["other"][0]
                np.testing.assert_allclose(mean, expect, rtol=1e-12)
                np.testing.assert_allclose(w[:, 1], sel.lam_ * w[:, 1].max() / max(
                    sel.lam_.max(), 1e-300), atol=1e-12)  # fmt: skip
        return np.array(same), np.array(lam)

    same, lam = run(lambda ar: _Plus(ar, 1.0, 2))
    assert np.mean(same) > 0.8
    assert np.all(lam[same] == 0) and np.all(lam >= 0)
    same, lam = run(lambda ar: _Noisy(future, 1.0, 3))
    assert np.mean(same) < 0.2
    assert np.mean(lam[-100:]) > 0.3


def test_evidence_weight_is_statsmodels_hac_ols_lower_bound():
    """Independent answer: the bound is statsmodels' OLS of the anchor's errors on ``u``
    (no intercept) with a HAC standard error, ``lam - z_0.95 se``: with the lead as the
    Bartlett bandwidth (white-noise scores, Andrews' bandwidth below the lead) and with
    Andrews' bandwidth (strongly autocorrelated scores, Bartlett weights 1 - k / bw)."""
    import statsmodels.api as sm
    from scipy.stats import norm
    from statsmodels.stats.sandwich_covariance import cov_hac

    from skysense.astrocast.baselines import andrews_bandwidth, evidence_weight

    rng = np.random.default_rng(5)
    n = 300
    u = rng.normal(size=n)
    ea = 0.5 * u + 1.5 * rng.normal(size=n)
    fit = sm.OLS(ea, u[:, None]).fit(
        cov_type="HAC", cov_kwds={"maxlags": 7, "use_correction": False}
    )
    assert andrews_bandwidth(u * fit.resid) < 8
    want = fit.params[0] - norm.ppf(0.95) * fit.bse[0]
    assert 0 < want < 1
    assert evidence_weight(ea, ea - u, 8) == pytest.approx(want, rel=1e-10)

    u = _ar1(rng, n, 0.9)
    ea = 0.6 * u + 1.5 * _ar1(rng, n, 0.9)
    fit = sm.OLS(ea, u[:, None]).fit()
    bw = andrews_bandwidth(u * fit.resid)
    assert bw > 10  # the data's bandwidth, not the lead, decides here
    cov = cov_hac(
        fit,
        nlags=int(np.ceil(bw)) - 1,
        weights_func=lambda nl: 1 - np.arange(nl + 1) / bw,
        use_correction=False,
    )
    want = fit.params[0] - norm.ppf(0.95) * np.sqrt(cov[0, 0])
    assert 0 < want < 1
    assert evidence_weight(ea, ea - u, 2) == pytest.approx(want, rel=1e-10)
    # the clip: a bound below 0 is exactly 0 (no gain: u unrelated to the errors)
    u = rng.normal(size=n)
    e = -0.3 * u + rng.normal(size=n)
    assert e @ u < 0  # a negative least-squares weight: the stack is worse
    assert evidence_weight(e, e - u, 1) == 0.0
    # mismatched errors or a level outside [0.5, 1): a one-line InputError, not numpy's
    from skysense.errors import InputError

    with pytest.raises(InputError, match="one length"):
        evidence_weight(e, e[:-1], 1)
    with pytest.raises(InputError, match="level"):
        evidence_weight(e, e - u, 1, level=1.0)


def test_lead_step_is_the_least_squares_step_toward_the_combination():
    """``lead_step`` against a brute-force minimisation over a fine grid of ``lam`` in [0, 1]
    of the anchor-to-combination errors' sum of squares, and its zero cases."""
    from skysense.astrocast.baselines import lead_step

    rng = np.random.default_rng(7)
    grid = np.linspace(0.0, 1.0, 200001)
    for _ in range(20):
        e = rng.normal(size=(80, 3)) * [1.0, 1.3, 0.8] + 0.5 * rng.normal(size=(80, 1))
        w = rng.dirichlet(np.ones(3))
        u = e[:, 0] - e @ w
        sse = ((e[:, 0][:, None] - grid[None, :] * u[:, None]) ** 2).sum(0)
        assert lead_step(e, w, 0) == pytest.approx(grid[np.argmin(sse)], abs=1e-5)
    e = rng.normal(size=(50, 2))
    # the combination forecasts as the anchor did (u = 0), or makes every error larger
    assert lead_step(np.column_stack([e[:, 0], e[:, 0]]), np.array([0.5, 0.5]), 0) == 0.0
    assert lead_step(np.column_stack([e[:, 0], 2 * e[:, 0]]), np.array([0.0, 1.0]), 0) == 0.0
    # errors independent of the anchor's, same size: half way (capped at 1 otherwise)
    big = rng.normal(size=(200000, 2))
    assert lead_step(big, np.array([0.0, 1.0]), 0) == pytest.approx(0.5, abs=0.01)
    assert lead_step(np.column_stack([e[:, 0], 0 * e[:, 0]]), np.array([0.0, 1.0]), 0) == 1.0


class _Same:
    """A candidate returning another candidate's forecast of the same call."""

    def __init__(self, base):
        self.base = base

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        return self.base.forecast(t_days, vci, vci3m, n_leads, extra)


@pytest.mark.parametrize("lead_cap", [None, "verified", "fit"])
def test_candidates_equal_to_linear_ar_give_linear_ar_to_the_bit(lead_cap):
    """Candidates that forecast exactly as linear AR does carry no information beyond it: the
    stack's forecasts are linear AR's bit for bit at every issue, warm-up or not (the default
    moves toward a stack equal to linear AR; the lead caps do not move at all)."""
    t, v, y3 = _ar2(n=300)
    ar = LinearARForecaster(n_lags=4)
    cands = {"linear_ar": ar, "copy": _Same(ar), "copy2": _Same(ar)}
    sel = SelectForecaster(WINDOW, candidates=cands, memory=60, min_verified=10,
                           lead_cap=lead_cap)  # fmt: skip
    alone = LinearARForecaster(n_lags=4)
    for i in range(40, 300):
        mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 4)
        ref, _ = alone.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 4)
        np.testing.assert_array_equal(mean, ref)
    assert np.all(sel.lam_ > 0) if lead_cap is None else np.all(sel.lam_ == 0.0)


def test_warm_up_is_linear_ar_to_the_bit():
    """Until ``min_verified`` errors of linear AR exist at every lead the stack is linear AR
    exactly (weight 1.0, no arithmetic on the other candidates), whatever they forecast."""
    t, v, y3 = _ar2(n=200)
    future = np.concatenate([y3, np.zeros(20)])
    ar = _Noisy(future, 1.0, 1)
    cands = {"linear_ar": ar, "other": _Noisy(future, 1.0, 2)}
    sel = SelectForecaster(WINDOW, candidates=cands, memory=60, min_verified=20)
    n_leads, first = 3, 30
    moved = False
    for i in range(first, 120):
        mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)
        ar_mean = sel.last_candidates_["linear_ar"][0]
        # the last lead verifies its 20th error at issue first + 19 + n_leads
        if i < first + 20 + n_leads - 1:
            np.testing.assert_array_equal(mean, ar_mean)
            np.testing.assert_array_equal(sel.weights_[:, 1], 0.0)
        else:
            moved |= not np.array_equal(mean, ar_mean)
    assert moved  # an independent, equally good candidate does earn a weight later


@pytest.mark.parametrize("lead_cap", ["verified", "fit"])
def test_lead_cap_keeps_linear_ar_at_a_lead_where_the_stack_only_hurts(lead_cap):
    """One weight vector serves every lead. A candidate whose errors are independent of linear
    AR's at lead 1 (averaging helps) but 1.2 times linear AR's at lead 2 (moving toward it
    only hurts) gets a pooled weight (about 0.4); with the lead cap, lead 2 stays linear AR to the bit while
    lead 1 moves, and lead 1's weight is the shrinkage's, since the step allowed there is
    larger. Without the cap both leads move."""
    t, v, y3 = _ar2(n=320)
    future = np.concatenate([y3, np.zeros(10)])
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(330, 2, 2))  # issue, lead, candidate

    class _Err:
        def __init__(self, err):
            self.err = err

        def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
            i = len(vci3m) - 1
            hs = np.arange(1, n_leads + 1)
            return future[i + hs] - self.err(i), np.ones(n_leads)

    ar = _Err(lambda i: noise[i, :, 0])
    other = _Err(lambda i: np.array([noise[i, 0, 1], 1.2 * noise[i, 1, 0]]))

    def run(cap):
        sel = SelectForecaster(WINDOW, candidates={"linear_ar": ar, "other": other}, memory=100,
                               min_verified=20, shrink=40.0, lead_cap=cap)  # fmt: skip
        for i in range(30, 310):
            mean, _ = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], 2)
        return sel, mean

    sel, mean = run(lead_cap)
    ar_mean = ar.forecast(None, None, y3[:310], 2)[0]
    assert mean[1] == ar_mean[1] and sel.lam_[1] == 0.0
    assert sel.weights_[0, 1] > 0.05
    assert sel.lam_[0] == pytest.approx(100 / (100 + 40.0))
    plain, mean0 = run(None)
    assert plain.lam_[1] == pytest.approx(100 / (100 + 80.0)) and mean0[1] != ar_mean[1]
