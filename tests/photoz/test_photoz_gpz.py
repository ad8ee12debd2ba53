"""GPzRegressor against independent answers: a dense exact GP, finite differences, simulation
truth, Monte Carlo, brute-force marginalisation, and scikit-learn's estimator contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import optimize
from sklearn.gaussian_process.kernels import RBF
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_fit_idempotent,
    check_get_params_invariance,
    check_methods_subset_invariance,
)

from skysense.errors import InputError, NotFittedError
from skysense.photoz import COVARIANCES, GPzRegressor
from skysense.photoz.gpz import (
    _design,
    _jax_context,
    _jitted,
    _neg_log_ml,
    _neg_log_ml_np,
    _unpack,
    cost_weights,
)


def _toy(n=60, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


def test_m_equal_n_fixed_hyperparameters_is_the_exact_gp():
    """Weight space with m = n centres at the training points equals the function-space GP
    with kernel k(a, b) = sum_j phi_j(a) phi_j(b) / alpha_j, phi_j = RBF(a, x_j) (sklearn)."""
    X, y = _toy(40, 2)
    Xs = np.random.default_rng(1).uniform(-2.5, 2.5, (25, 2))
    gpz = GPzRegressor(
        m=40,
        covariance="GL",
        heteroscedastic=False,
        linear_mean=False,
        max_iter=0,
        validation_fraction=0.0,
        normalize=False,
        random_state=0,
    ).fit(X, y)
    # Centres are the training points (a permutation of them).
    assert np.allclose(np.sort(gpz.centres_, axis=0), np.sort(X, axis=0))
    gamma2 = gpz.precisions_[0, 0, 0]
    alpha = np.exp(gpz.log_alpha_)
    assert np.allclose(alpha, alpha[0])
    noise_var = np.exp(-gpz.noise_bias_)
    rbf = RBF(length_scale=1.0 / np.sqrt(gamma2))  # exp(-|a-b|^2 gamma^2 / 2)
    phi_train, phi_star = rbf(X, X), rbf(Xs, X)
    K = phi_train @ phi_train.T / alpha[0]
    Ks = phi_star @ phi_train.T / alpha[0]
    Kss = phi_star @ phi_star.T / alpha[0]
    C = K + noise_var * np.eye(len(X))
    yc = y - y.mean()
    mean = Ks @ np.linalg.solve(C, yc) + y.mean()
    var = np.diag(Kss - Ks @ np.linalg.solve(C, Ks.T)) + noise_var
    pred = gpz.predict_components(Xs)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(pred.model_variance + pred.noise_variance, var, rtol=1e-6)
    np.testing.assert_allclose(pred.noise_variance, noise_var)


def test_covariance_code_paths_agree_at_identical_parameters():
    """GL/GD/GC (and VL/VD/VC) start from the same isotropic bases: the diagonal, full and
    missing-band (marginal) code paths must then give the same predictions."""
    X, y = _toy(80, 3)
    Xq = np.random.default_rng(2).uniform(-2, 2, (30, 3))
    Xq[::3, 1] = np.nan
    Xq[::5, 0] = np.nan
    for family in (("GL", "GD", "GC"), ("VL", "VD", "VC")):
        preds = [
            GPzRegressor(m=15, covariance=c, max_iter=0, random_state=3).fit(X, y).predict(Xq)
            for c in family
        ]
        for p in preds[1:]:
            np.testing.assert_allclose(p, preds[0], rtol=1e-9, atol=1e-12)


def _problem(cov, *, missing=True, errors=True, seed=0):
    X, y = _toy(50, 3, seed)
    rng = np.random.default_rng(seed + 10)
    err = 0.1 + 0.1 * rng.random(X.shape) if errors else None
    if missing:
        X[::7, 2] = np.nan
        X[3::11, 0] = np.nan  # row 14 misses two bands
        if err is not None:
            err[np.isnan(X)] = np.nan
    est = GPzRegressor(m=6, covariance=cov, random_state=seed)
    est.x_mean_ = np.nanmean(X, 0)
    est.x_scale_ = np.nanstd(X, 0)
    est.y_mean_ = float(y.mean())
    order, spec, Xn, psi = est._prepare(X, None if err is None else np.nan_to_num(err))
    yc = (y - y.mean())[order]
    omega = cost_weights(y, "balanced")[order]
    theta = est._initial_theta(spec, Xn, psi, yc, omega, np.random.RandomState(seed))
    theta = theta + 0.05 * rng.normal(size=theta.size)  # leave the symmetric start
    return theta, spec, Xn, psi, yc, omega


@pytest.mark.parametrize(
    ("cov", "errors"),
    [(c, e) for c in ("GL", "VL", "GD", "VD", "GC") for e in (True, False)] + [("VC", True)],
)
def test_masked_rows_equal_pattern_groups(cov, errors):
    """The per-row masked marginalisation (one group, NaN = missing) gives the design matrix
    and noise of the per-pattern groups (the Gaussian marginal of each observed subset).
    VC without input errors always uses the pattern groups."""
    theta, spec, Xn, psi, y, omega = _problem(cov, errors=errors)
    assert spec.masked and len(spec.groups) == 1
    X = Xn.copy()
    observed = np.isfinite(X)
    assert not observed.all()
    from skysense.photoz.gpz import _group_rows

    order, groups = _group_rows(observed)
    assert len(groups) > 1
    grouped = dataclasses.replace(spec, groups=groups, masked=False)
    phi_m, ln_beta_m = _design(np, theta, spec, X, psi)
    phi_g, ln_beta_g = _design(
        np,
        theta,
        grouped,
        np.where(observed, X, 0.0)[order],
        None if psi is None else psi[order],
    )
    np.testing.assert_allclose(phi_m[order], phi_g, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ln_beta_m[order], ln_beta_g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("cov", "errors"), [(c, True) for c in COVARIANCES] + [("GC", False), ("VD", False)]
)
def test_gradient_matches_central_differences(cov, errors):
    """JAX gradient of the objective vs central differences of its NumPy twin, with missing
    bands, input errors (or not), heteroscedastic noise, linear mean and cost weights."""
    theta, spec, Xn, psi, y, omega = _problem(cov, errors=errors)
    with _jax_context():
        import jax.numpy as jnp

        (value, _), grad = _jitted("value_and_grad")(
            jnp.asarray(theta),
            spec,
            jnp.asarray(Xn),
            None if psi is None else jnp.asarray(psi),
            jnp.asarray(y),
            jnp.asarray(omega),
        )
        grad = np.asarray(grad)
    assert float(value) == pytest.approx(_neg_log_ml_np(theta, spec, Xn, psi, y, omega), rel=1e-10)
    h = 1e-5
    fd = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        fd[k] = (
            _neg_log_ml_np(theta + e, spec, Xn, psi, y, omega)
            - _neg_log_ml_np(theta - e, spec, Xn, psi, y, omega)
        ) / (2 * h)
    scale = np.max(np.abs(fd))
    np.testing.assert_allclose(grad, fd, atol=1e-6 * scale, rtol=1e-5)


@pytest.mark.parametrize("cov", ["GL", "VD", "GC"])
def test_objective_is_the_dense_gaussian_marginal_likelihood(cov):
    """With unit cost weights the objective is -1/n log N(y | 0, Phi A^-1 Phi^T + B^-1) plus
    the Gaussian prior of the noise weights u ~ N(0, 1/eta), here computed densely by scipy
    (independent of the weight-space Cholesky route that NumPy and JAX share)."""
    from scipy.stats import multivariate_normal

    theta, spec, Xn, psi, y, _ = _problem(cov)
    p = _unpack(theta, spec)
    phi, ln_beta = _design(np, theta, spec, Xn, psi)
    cov_y = (phi * np.exp(-p["ln_alpha"])) @ phi.T + np.diag(np.exp(-ln_beta))
    log_ml = multivariate_normal(np.zeros(y.size), cov_y).logpdf(y)
    assert spec.hetero  # the noise-weight prior is part of the objective
    log_ml += multivariate_normal(np.zeros(spec.m), np.diag(np.exp(-p["ln_eta"]))).logpdf(p["u"])
    value = _neg_log_ml_np(theta, spec, Xn, psi, y, np.ones_like(y))
    assert value == pytest.approx(-log_ml / y.size, rel=1e-9)


def test_recovers_function_and_heteroscedastic_noise():
    rng = np.random.default_rng(42)
    n = 1500
    x = rng.uniform(-3, 3, n)
    true_sd = 0.05 + 0.25 * (x + 3) / 6
    y = np.sinc(x) + true_sd * rng.normal(size=n)
    est = GPzRegressor(m=20, covariance="VL", random_state=0).fit(x[:, None], y)
    grid = np.linspace(-2.7, 2.7, 19)
    pred = est.predict_components(grid[:, None])
    sd_true = 0.05 + 0.25 * (grid + 3) / 6
    np.testing.assert_allclose(np.sqrt(pred.noise_variance), sd_true, rtol=0.25)
    assert np.max(np.abs(pred.mean - np.sinc(grid))) < 0.06
    # The learned noise rises with x, like the truth: a homoscedastic fit cannot.
    assert np.corrcoef(np.sqrt(pred.noise_variance), sd_true)[0, 1] > 0.95
    # Model uncertainty grows away from the data.
    far = est.predict_components(np.array([[0.0], [6.0]]))
    assert far.model_variance[1] > 10 * far.model_variance[0]


def _heteroscedastic(n, rng, noise):
    x = rng.uniform(-3, 3, n)
    sd = 0.05 + 0.25 * (x + 3) / 6
    return x[:, None], np.sinc(x) + sd * noise(rng, n)


def _laplace(rng, n):
    return rng.laplace(scale=1 / np.sqrt(2), size=n)  # unit variance, kurtosis 6


def _gauss(rng, n):
    return rng.normal(size=n)


@pytest.mark.parametrize(
    ("noise", "raw_coverage"), [(_laplace, 1 - np.exp(-np.sqrt(2))), (_gauss, 0.6827)]
)
def test_validation_calibration_gives_68_percent_coverage(noise, raw_coverage):
    """Known heteroscedastic noise. Laplace noise of the right variance puts 1 - e^-sqrt(2)
    = 75.7% of the targets within 1 sigma; the validation-fitted scale brings an independent
    test set to 68.3%. Gaussian noise is already calibrated: the scale stays near 1."""
    rng = np.random.default_rng(7)
    X, y = _heteroscedastic(3000, rng, noise)
    # A large validation set: the quantile's sampling error (~0.01 in coverage) stays well
    # inside the tolerance.
    Xv, yv = _heteroscedastic(3000, rng, noise)
    Xt, yt = _heteroscedastic(40000, np.random.default_rng(8), noise)
    valid = {"X_valid": Xv, "y_valid": yv}
    est = GPzRegressor(m=20, covariance="VL", random_state=0).fit(X, y, **valid)
    raw = GPzRegressor(m=20, covariance="VL", random_state=0, calibrate=False).fit(X, y, **valid)
    assert raw.variance_scale_ == 1.0
    mean, std = est.predict(Xt, return_std=True)
    mean_raw, std_raw = raw.predict(Xt, return_std=True)
    np.testing.assert_array_equal(mean, mean_raw)  # calibration changes only the variance
    cov_raw = np.mean(np.abs(yt - mean_raw) <= std_raw)
    cov = np.mean(np.abs(yt - mean) <= std)
    assert cov_raw == pytest.approx(raw_coverage, abs=0.02)
    assert cov == pytest.approx(0.6827, abs=0.025)
    # Every part of the variance is scaled by the same factor.
    a, b = est.predict_components(Xt[:50]), raw.predict_components(Xt[:50])
    for u, v in ((a.model_variance, b.model_variance), (a.noise_variance, b.noise_variance)):
        np.testing.assert_allclose(u, est.variance_scale_ * v, rtol=1e-12)
    if noise is _gauss:
        assert est.variance_scale_ == pytest.approx(1.0, abs=0.1)
    else:
        assert est.variance_scale_ < 0.9
        assert est.validation_coverage_raw_ > 0.72


def test_calibration_uses_the_validation_rows_only():
    """The scale is the 68.27% quantile of |z - mean| / sigma over the given validation rows."""
    rng = np.random.default_rng(3)
    X, y = _heteroscedastic(1500, rng, _laplace)
    Xv, yv = _heteroscedastic(600, rng, _laplace)
    est = GPzRegressor(m=15, covariance="VL", random_state=0).fit(X, y, X_valid=Xv, y_valid=yv)
    mean, std = est.predict(Xv, return_std=True)
    r_raw = np.abs(yv - mean) / (std / np.sqrt(est.variance_scale_))
    assert est.validation_coverage_raw_ == pytest.approx(np.mean(r_raw <= 1))
    if est.variance_scale_ != 1.0:
        assert np.mean(np.abs(yv - mean) <= std) == pytest.approx(0.6827, abs=2 / len(yv))
    # No validation rows: nothing to calibrate on.
    none = GPzRegressor(m=15, covariance="VL", random_state=0, validation_fraction=0.0)
    assert none.fit(X, y).variance_scale_ == 1.0


@pytest.mark.parametrize("cov", ["VD", "GL", "VC"])
def test_input_errors_match_monte_carlo(cov):
    """With X_err, the mean is E[f(x)] and input_variance is Var[f(x)] over x ~ N(X, err^2)."""
    X, y = _toy(200, 2, 5)
    # Trained (anisotropic) parameters for VD; the initial ones suffice for the others.
    # No variance calibration: this checks the propagation itself, not the validation scale.
    est = GPzRegressor(
        m=12, covariance=cov, random_state=0, max_iter=30 if cov != "GL" else 0, calibrate=False
    )
    est.fit(X, y)
    rng = np.random.default_rng(9)
    Xq = rng.uniform(-1.5, 1.5, (6, 2))
    err = np.full_like(Xq, 0.25)
    Xq[0, 1] = err[0, 1] = np.nan  # a missing band: marginal basis, noise on the other band
    with_err = est.predict_components(Xq, X_err=err)
    draws = Xq[None] + err[None] * rng.normal(size=(40000, *Xq.shape))
    f = est.predict(draws.reshape(-1, 2)).reshape(40000, -1)
    np.testing.assert_allclose(with_err.mean, f.mean(0), atol=4 * f.std(0).max() / 200 + 1e-3)
    np.testing.assert_allclose(with_err.input_variance, f.var(0), rtol=0.05, atol=1e-5)
    without = est.predict_components(Xq)
    assert np.all(without.input_variance == 0)
    assert np.all(with_err.variance > without.noise_variance)


@pytest.mark.parametrize("cov", ["VD", "VC"])
def test_missing_band_is_the_gaussian_marginal(cov):
    """A basis function marginalised over a missing band equals its profile maximum over that
    band (Gaussian: the Schur complement), found here by a 1-D optimiser."""
    X, y = _toy(120, 3, 1)
    # VC is trained so that its precision matrices are far from isotropic.
    est = GPzRegressor(
        m=8, covariance=cov, linear_mean=False, random_state=0, max_iter=15 if cov == "VC" else 0
    )
    est.fit(X, y)
    if cov == "VC":
        off = est.precisions_[:, 0, 1] / np.sqrt(
            est.precisions_[:, 0, 0] * est.precisions_[:, 1, 1]
        )
        assert np.max(np.abs(off)) > 0.05
    xq = np.array([0.3, np.nan, -0.4])
    spec = est._spec(((0, 1, (0, 2)),))
    xn = np.where(np.isfinite(xq), (xq - est.x_mean_) / est.x_scale_, 0.0)[None]
    phi, _ = _design(np, est.theta_, spec, xn, None)
    full = est._spec(((0, 1, (0, 1, 2)),))
    for j in range(est.m):

        def neg_log_phi(v, j=j):
            x = xn.copy()
            x[0, 1] = v
            return -np.log(_design(np, est.theta_, full, x, None)[0][0, j])

        best = optimize.minimize_scalar(neg_log_phi, bracket=(-5, 5), tol=1e-12)
        assert phi[0, j] == pytest.approx(np.exp(-best.fun), rel=1e-6)


def test_sklearn_contract():
    est = GPzRegressor(m=8, max_iter=5, random_state=0)
    check_estimator_cloneable("GPzRegressor", est)
    check_get_params_invariance("GPzRegressor", est)
    check_fit_idempotent("GPzRegressor", est)
    check_methods_subset_invariance("GPzRegressor", est)
    with pytest.raises(NotFittedError, match="not fitted"):
        GPzRegressor().predict(np.zeros((2, 2)))


def test_best_validation_parameters_are_kept():
    X, y = _toy(300, 2, 3)
    est = GPzRegressor(m=10, random_state=0, max_iter=25, n_iter_no_change=25).fit(X, y)
    scores = est.validation_scores_
    assert scores.size == est.n_iter_ + 1
    assert est.best_iteration_ == int(np.argmax(scores))


def test_marginal_precision_is_the_inverse_of_the_marginal_covariance():
    """Schur complement by selection matrices = inv(inv(A)[o, o]), batched, NumPy and JAX."""
    from skysense.photoz.gpz import _marginal_precision

    rng = np.random.default_rng(7)
    L = rng.normal(size=(4, 5, 5))
    A = L @ np.swapaxes(L, 1, 2) + 5 * np.eye(5)
    for o in ([0, 2, 3], [4], [1, 2, 3, 4]):
        want = np.linalg.inv(np.linalg.inv(A)[:, o][:, :, o])
        np.testing.assert_allclose(_marginal_precision(np, A, o, 5), want, rtol=1e-10)
        with _jax_context():
            import jax.numpy as jnp

            got = np.asarray(_marginal_precision(jnp, jnp.asarray(A), o, 5))
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_pattern_precisions_embed_each_inverse_marginal_covariance():
    """The batched Schur complements equal inv(inv(A)[o, o]) on each pattern's observed
    block and 0 elsewhere, NumPy and JAX, including the all-observed pattern (A itself)."""
    from skysense.photoz.gpz import _pattern_precisions

    rng = np.random.default_rng(11)
    L = rng.normal(size=(6, 6))
    A = L @ L.T + 2 * np.eye(6)
    observed = np.array(
        [[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 0]]
    )
    want = np.zeros((len(observed), 6, 6))
    for k, row in enumerate(observed):
        o = np.flatnonzero(row)
        want[k][np.ix_(o, o)] = np.linalg.inv(np.linalg.inv(A)[np.ix_(o, o)])
    got_np = _pattern_precisions(np, A, observed.astype(float))
    np.testing.assert_allclose(got_np, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_np[0], A, rtol=1e-12)
    with _jax_context():
        import jax.numpy as jnp

        got = np.asarray(_pattern_precisions(jnp, jnp.asarray(A), observed.astype(float)))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_unrolled_cholesky_helpers_match_numpy_linalg():
    """The unrolled Cholesky factor, forward substitution, log-determinant and SPD inverse
    (batched, NumPy and JAX) against numpy.linalg's LAPACK routines."""
    from skysense.photoz.gpz import _cholesky, _forward, _logdet, _spd_inverse

    rng = np.random.default_rng(3)
    G = rng.normal(size=(3, 4, 5, 5))
    A = G @ np.swapaxes(G, -1, -2) + 0.1 * np.eye(5)
    B = rng.normal(size=(3, 4, 5, 2))
    L_np = np.linalg.cholesky(A)
    for xp_name in ("numpy", "jax"):
        with _jax_context():
            import jax.numpy as jnp

            xp = np if xp_name == "numpy" else jnp
            L = _cholesky(xp, xp.asarray(A))
            got_l = np.array([[np.asarray(L[i][j]) if j <= i else np.zeros((3, 4))
                               for j in range(5)] for i in range(5)])  # fmt: skip
            np.testing.assert_allclose(np.moveaxis(got_l, (0, 1), (-2, -1)), L_np, atol=1e-12)
            np.testing.assert_allclose(
                np.asarray(_forward(xp, L, xp.asarray(B))), np.linalg.solve(L_np, B), rtol=1e-9
            )
            np.testing.assert_allclose(
                np.asarray(_logdet(xp, L)), np.linalg.slogdet(A)[1], rtol=1e-12
            )
            np.testing.assert_allclose(
                np.asarray(_spd_inverse(xp, xp.asarray(A))), np.linalg.inv(A), rtol=1e-8
            )


@pytest.mark.parametrize("cov", ["GC", "VC"])
def test_expected_basis_with_input_errors_is_a_gaussian_convolution(cov):
    """Full covariances with input errors and a missing band: E[phi_j(x)] over
    x ~ N(X, diag(psi)) is (2 pi)^(o/2) |S_j|^(1/2) N(X_o | p_j,o, S_j,oo + Psi_o), with S_j
    the inverse basis precision (scipy's multivariate normal; NumPy and JAX paths)."""
    from scipy.stats import multivariate_normal

    from skysense.photoz.gpz import _group_rows

    theta, spec, Xn, psi, y, omega = _problem(cov)
    assert spec.masked  # training: one program, each row marginalised by its own mask
    p = _unpack(theta, spec)
    lam = p["lam"] if cov == "VC" else np.broadcast_to(p["lam"], (spec.m, spec.d, spec.d))
    S = np.linalg.inv(np.einsum("mki,mkj->mij", lam, lam))
    observed = np.isfinite(Xn)
    assert len({tuple(r) for r in observed}) > 2
    want = np.empty((Xn.shape[0], spec.m))
    for r in range(Xn.shape[0]):
        o = np.flatnonzero(observed[r])
        for j in range(spec.m):
            c = S[j][np.ix_(o, o)]
            want[r, j] = (
                0.5 * len(o) * np.log(2 * np.pi)
                + 0.5 * np.linalg.slogdet(c)[1]
                + multivariate_normal(p["centres"][j, o], c + np.diag(psi[r, o])).logpdf(Xn[r, o])
            )
    spec_lin = dataclasses.replace(spec, linear=False, hetero=False)
    theta_lin = np.concatenate(
        [p["centres"].ravel(), p["lam"].ravel(), p["ln_alpha"][: spec.m], p["b"]]
    )
    phi, _ = _design(np, theta_lin, spec_lin, Xn, psi)
    np.testing.assert_allclose(np.log(phi), want, rtol=1e-9, atol=1e-9)
    with _jax_context():
        import jax
        import jax.numpy as jnp

        phi_j = jax.jit(lambda t, x, s: _design(jnp, t, spec_lin, x, s)[0])(
            jnp.asarray(theta_lin), jnp.asarray(Xn), jnp.asarray(psi)
        )
    np.testing.assert_allclose(np.log(np.asarray(phi_j)), want, rtol=1e-9, atol=1e-9)
    # Prediction's path: rows grouped by missing-band pattern.
    order, groups = _group_rows(observed)
    grouped = dataclasses.replace(spec_lin, groups=groups, masked=False)
    phi_g, _ = _design(np, theta_lin, grouped, np.where(observed, Xn, 0.0)[order], psi[order])
    np.testing.assert_allclose(np.log(phi_g), want[order], rtol=1e-9, atol=1e-9)


def _primitives(jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= _primitives(inner)
    return names


@pytest.mark.parametrize(("cov", "errors"), [("GC", True), ("VC", True), ("GC", False)])
def test_objective_and_gradient_run_no_lu_factorisation(cov, errors):
    """jaxlib 0.10.2's CPU LU kernel (jnp.linalg.inv/solve/slogdet) could hang forever in a
    GC fit; the compiled objective and its gradient must use none (only Cholesky and
    triangular solves), with missing bands and input errors."""
    import jax

    theta, spec, Xn, psi, y, omega = _problem(cov, errors=errors)
    with _jax_context():
        import jax.numpy as jnp

        closed = jax.make_jaxpr(
            jax.value_and_grad(lambda t: _neg_log_ml(t, spec, Xn, psi, y, omega)[0])
        )(jnp.asarray(theta))
    names = _primitives(closed.jaxpr)
    assert "cholesky" in names  # the weight posterior: the walk does see linear algebra
    assert not names & {"lu", "lu_pivots_to_permutation", "eig", "eigh", "svd", "qr"}


def test_patience_restarts_only_on_a_real_validation_gain():
    """With a gain threshold no iteration can meet, the fit stops after exactly
    n_iter_no_change iterations, still keeping the best-on-validation iterate; with a zero
    threshold it runs on while the score improves."""
    X, y = _toy(300, 2, 3)
    kw = dict(m=10, random_state=0, max_iter=40, n_iter_no_change=4)
    strict = GPzRegressor(**kw, n_iter_no_change_tol=1e9).fit(X, y)
    assert strict.n_iter_ == 4
    assert strict.best_iteration_ == int(np.argmax(strict.validation_scores_))
    loose = GPzRegressor(**kw, n_iter_no_change_tol=0.0).fit(X, y)
    assert loose.n_iter_ > strict.n_iter_
    # Same start, same optimiser path: the first iterations agree.
    np.testing.assert_allclose(loose.validation_scores_[:5], strict.validation_scores_, rtol=1e-9)


def test_cost_weights():
    z = np.array([0.1, 0.1, 0.1, 0.5])
    np.testing.assert_allclose(cost_weights(z, "normalized"), (1 + z) ** -2)
    w = cost_weights(z, "balanced")
    assert w[3] == pytest.approx(3.0) and w[0] == pytest.approx(1.0)
    np.testing.assert_array_equal(cost_weights(z, "none"), 1.0)


def test_bad_input_messages():
    X, y = _toy(30, 2)
    est = GPzRegressor(m=5, max_iter=2)
    Xi = X.copy()
    Xi[4, 1] = np.inf
    with pytest.raises(InputError, match=r"column 1, row 4: X holds an infinite"):
        est.fit(Xi, y)
    yn = y.copy()
    yn[7] = np.nan
    with pytest.raises(InputError, match=r"row 7.*target"):
        est.fit(X, yn)
    with pytest.raises(InputError, match="fewer than the m=50 basis functions"):
        GPzRegressor(m=50).fit(X, y)
    with pytest.raises(InputError, match="covariance"):
        GPzRegressor(covariance="XX").fit(X, y)
    est.fit(X, y)
    with pytest.raises(InputError, match="3 features but the model was trained on 2"):
        est.predict(np.zeros((2, 3)))
    pred = est.predict_components(np.array([[np.nan, np.nan], [0.0, 0.0]]))
    assert np.isnan(pred.mean[0]) and np.isnan(pred.variance[0]) and np.isfinite(pred.mean[1])


def test_verbose_2_reports_progress_in_single_lines(capsys, monkeypatch):
    """Issue 16: where no bar is drawn (a log), long fits print a line now and then."""
    monkeypatch.setenv("SKYSENSE_PROGRESS", "log")
    monkeypatch.setenv("SKYSENSE_PROGRESS_INTERVAL", "0")
    X, y = _toy(80, 2, 1)
    GPzRegressor(m=5, max_iter=4, n_iter_no_change=10, random_state=0, verbose=2).fit(X, y)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("skysense: progress: GPz L-BFGS")]
    assert lines and "\r" not in err and "iterations" in lines[0]


def _input_variance_brute_force(est, x, s):
    """Var[f(x)] over x ~ N(x0, diag(s)) for one row, written in the information form
    (Gaussian integrals of exp(-1/2 x^T Q x + b^T x) against the input density), band subset
    and matrices by numpy.linalg: independent of the moment form used by GPzRegressor."""
    o = np.flatnonzero(np.isfinite(x))
    x0, Pi = x[o], np.diag(1.0 / s[o])
    m = est.m

    def moments(Q, b, const):
        K = Pi + Q
        h = Pi @ x0 + b
        mu = np.linalg.solve(K, h)
        z = np.exp(-const + 0.5 * h @ mu - 0.5 * x0 @ Pi @ x0)
        z /= np.sqrt(np.linalg.det(K) * np.prod(s[o]))
        return z, z * mu  # E[g], E[g x]

    A = [np.linalg.inv(np.linalg.inv(est.precisions_[j])[np.ix_(o, o)]) for j in range(m)]
    p = est.centres_[:, o]
    w = est.coef_[:m]
    wx = est.coef_[m : m + est.n_features_in_][o] if est.linear_mean else np.zeros(len(o))
    e_phi, e_phi_x = zip(*(moments(A[j], A[j] @ p[j], 0.5 * p[j] @ A[j] @ p[j]) for j in range(m)))
    e_pair = np.array(
        [
            [
                moments(
                    A[j] + A[k],
                    A[j] @ p[j] + A[k] @ p[k],
                    0.5 * (p[j] @ A[j] @ p[j] + p[k] @ A[k] @ p[k]),
                )[0]
                for k in range(m)
            ]
            for j in range(m)
        ]
    )
    mean = w @ np.array(e_phi) + wx @ x0
    second = w @ e_pair @ w + 2.0 * w @ (np.array(e_phi_x) @ wx) + (wx @ x0) ** 2 + wx**2 @ s[o]
    return second - mean**2


@pytest.mark.parametrize("linear", [True, False])
@pytest.mark.parametrize("cov", ["VD", "VC", "GD"])
@pytest.mark.parametrize("chunk", [1, None])
def test_vectorised_input_variance_equals_per_row_brute_force(cov, linear, chunk, monkeypatch):
    """The batched input-noise moments (all rows and basis pairs at once, row chunks) equal a
    per-row brute-force evaluation, with random anisotropic basis functions and missing bands."""
    from skysense.photoz import gpz

    if chunk is not None:
        monkeypatch.setattr(gpz, "_MOMENT_CHUNK", chunk)  # one row per chunk
    rng = np.random.default_rng(11)
    d, m = 3, 6
    X, y = _toy(80, d, 3)
    est = GPzRegressor(m=m, covariance=cov, linear_mean=linear, max_iter=0, random_state=0)
    est.fit(X, y, X_err=np.full_like(X, 0.1))
    # Random parameters (the moments only read these): far from the isotropic initial ones.
    if cov[1] == "C":
        F = rng.normal(size=(m, d, d))
        est.precisions_ = np.einsum("mij,mkj->mik", F, F) + 0.3 * np.eye(d)
    else:
        est.precisions_ = np.einsum("md,de->mde", rng.uniform(0.2, 3.0, (m, d)), np.eye(d))
    est.centres_ = rng.normal(size=(m, d))
    est.coef_ = rng.normal(size=est.coef_.shape)
    n = 40
    Xq = rng.normal(size=(n, d))
    s = rng.uniform(0.05, 0.6, (n, d))
    missing = rng.random((n, d)) < 0.3
    missing[np.all(missing, axis=1), 0] = False  # every row keeps a band
    Xq[missing] = np.nan
    observed = np.isfinite(Xq)
    order, groups = gpz._group_rows(observed)
    assert len(groups) > 3  # several missing-band patterns
    spec = est._spec(groups, True)
    got = est._input_variance(spec, np.where(observed, Xq, 0.0)[order], s[order])
    want = np.array([_input_variance_brute_force(est, Xq[i], s[i]) for i in order])
    assert np.all(want > 0)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
