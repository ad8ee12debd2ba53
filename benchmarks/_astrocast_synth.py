"""Synthetic development set for AstroCast's default combination rule (not real data).

Rules of :class:`~skysense.astrocast.baselines.SelectForecaster` are designed and their
constants chosen here, on series simulated from a generic published form, never on the
Kenyan files (which every earlier rule had already been scored on). The form:

- weekly time step, ``n_weeks`` samples (``t_days = 7 k``);
- NDVI = a bimodal climatology (annual and semi-annual harmonics, as in East Africa's two
  rainy seasons) + a seasonal AR anomaly ``x_t = phi_1 x_{t-1} + phi_2 x_{t-2} +
  Phi x_{t-52} + s_t eps_t`` with Student-t(5) innovations whose scale ``s_t`` follows the
  season (more variable in the rains) and a mild threshold nonlinearity (dry anomalies
  persist longer: ``phi_1`` rises by ``kappa`` when ``x_{t-1} < 0``), so that the
  non-linear candidates have something to find, plus a slow AR(1) component (weekly
  ``rho`` 0.95-0.99: multi-season droughts);
- the product's smoothing: a centred triangular filter of half-width ``m`` weeks applied to
  NDVI before the index (AstroCast's pipeline smooths NDVI);
- VCI = 100 (NDVI - min) / (max - min) per week of the year over the whole archive (as in
  the stored Kenyan series), VCI3M its trailing 12-week mean
  (:func:`~skysense.astrocast.indices.vci3m`, ``window=12`` as for the weekly files).

Parameters are drawn per series from wide, plausible ranges with one fixed seed
(:data:`SEED`); nothing was fitted to the Kenyan series.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SEED", "synthetic_series", "draw_parameters"]

#: Seed of the development set (fixed before any rule was tried on it).
SEED = 20_2026


def draw_parameters(rng: np.random.Generator) -> dict:
    """One series' parameters, redrawn until the linear part is stationary."""
    while True:
        phi1 = rng.uniform(1.0, 1.7)
        phi2 = -rng.uniform(0.05, 0.75)
        big = rng.uniform(0.0, 0.3)
        kappa = rng.uniform(0.0, 0.12)
        # stationarity of the AR(52) with the larger phi_1 (the dry regime)
        coef = np.zeros(53)
        coef[0] = 1.0
        coef[1], coef[2], coef[52] = -(phi1 + kappa), -phi2, -big
        if np.all(np.abs(np.roots(coef[::-1])) > 1.0 / 0.995):
            break
    return {
        "phi1": phi1,
        "phi2": phi2,
        "Phi": big,
        "kappa": kappa,
        "noise": rng.uniform(0.004, 0.015),
        "season_noise": rng.uniform(0.0, 0.8),
        "a1": rng.uniform(0.03, 0.12),
        "a2": rng.uniform(0.01, 0.08),
        "p1": rng.uniform(0, 2 * np.pi),
        "p2": rng.uniform(0, 2 * np.pi),
        "level": rng.uniform(0.25, 0.6),
        "smooth": int(rng.integers(2, 7)),
        "rho_slow": rng.uniform(0.95, 0.99),
        "slow": rng.uniform(0.3, 1.0),
    }


def _one(rng: np.random.Generator, n_weeks: int, burn: int = 260):
    p = draw_parameters(rng)
    n = n_weeks + burn
    k = np.arange(n)
    phase = 2 * np.pi * k / 52.18
    scale = p["noise"] * (1 + p["season_noise"] * np.cos(phase + p["p1"]))
    eps = rng.standard_t(5, size=n) * scale / np.sqrt(5 / 3)
    x = np.zeros(n)
    for t in range(52, n):
        a1 = p["phi1"] + (p["kappa"] if x[t - 1] < 0 else 0.0)
        x[t] = a1 * x[t - 1] + p["phi2"] * x[t - 2] + p["Phi"] * x[t - 52] + eps[t]
    # a slow AR(1) component (soil moisture, multi-season droughts): weekly rho near 1
    z = np.zeros(n)
    eta = rng.standard_normal(n) * p["noise"] * p["slow"] * np.sqrt(1 - p["rho_slow"] ** 2) * 4
    for t in range(1, n):
        z[t] = p["rho_slow"] * z[t - 1] + eta[t]
    x = x + z
    clim = p["level"] + p["a1"] * np.cos(phase + p["p1"]) + p["a2"] * np.cos(2 * phase + p["p2"])
    ndvi = (clim + x)[burn:]
    m = p["smooth"]
    tri = np.concatenate([np.arange(1, m + 2), np.arange(m, 0, -1)]).astype(float)
    tri /= tri.sum()
    ndvi = np.convolve(np.pad(ndvi, m, mode="edge"), tri, mode="valid")
    return ndvi, p


def synthetic_series(n_series: int = 40, n_weeks: int = 700, seed: int = SEED) -> dict:
    """``{name: (t_days, vci, vci3m, params)}`` for ``n_series`` weekly series."""
    from skysense.astrocast.indices import vci3m

    rng = np.random.default_rng(seed)
    out = {}
    for j in range(n_series):
        ndvi, p = _one(rng, n_weeks)
        t = 7.0 * np.arange(n_weeks)
        woy = (np.arange(n_weeks) % 52).astype(int)
        lo = np.array([ndvi[woy == w].min() for w in range(52)])[woy]
        hi = np.array([ndvi[woy == w].max() for w in range(52)])[woy]
        v = 100.0 * (ndvi - lo) / (hi - lo)
        out[f"S{j:02d}"] = (t, v, vci3m(v, 12), p)
    return out


class _Replay:
    """A candidate that returns its saved hindcast for the issue ``len(t_days) - 1``."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = mean, std  # (n, n_leads), NaN rows where not issued

    def forecast(self, t_days, vci, vci3m, n_leads, extra=None):
        i = len(t_days) - 1
        return self.mean[i, :n_leads], self.std[i, :n_leads]


def replay(frame, series, n_leads: int = 9, start: int = 156, **kwargs):
    """Replay ``SelectForecaster(**kwargs)`` on the saved candidates' hindcasts.

    ``frame``: :func:`~skysense.astrocast.engine.hindcast_regions` rows of one region with
    ``model`` ``auto/<candidate>``; ``series``: that region's ``(t_days, vci, vci3m)``. The
    candidates do not depend on the combination rule, so the replay gives the forecasts the
    rule would have issued without refitting them: ``(mean (n, n_leads), weights (n,
    n_leads, 4))`` by issue index (NaN before ``start``), candidates in the default order.
    """
    from skysense.astrocast.baselines import SelectForecaster

    t, v, y3 = series[:3]
    n = len(t)
    cands = {}
    for name in ("gp", "linear_ar", "ar_gp", "gradient_boosting"):
        g = frame[frame.model == f"auto/{name}"]
        mean = np.full((n, n_leads), np.nan)
        std = np.full((n, n_leads), np.nan)
        mean[g.issue_index, g.lead - 1] = g["mean"]
        std[g.issue_index, g.lead - 1] = g["std"]
        cands[name] = _Replay(mean, std)
    sel = SelectForecaster(candidates=cands, **kwargs)
    out = np.full((n, n_leads), np.nan)
    weights = np.full((n, n_leads, len(cands)), np.nan)
    for i in range(start, n):
        out[i] = sel.forecast(t[: i + 1], v[: i + 1], y3[: i + 1], n_leads)[0]
        weights[i] = sel.weights_
    return out, weights
