"""Reference sampler: numpyro NUTS on exactly the model of :mod:`skysense.xid.sampler`.

Used to validate the Gibbs sampler, for benchmarks, and for non-conjugate models (the SED mode
in :mod:`skysense.xid.sed`). Model of one band (XID+'s SPIRE model):

    f_k ~ Uniform(lower_k, upper_k)  (or LogUniform, or Normal or LogNormal truncated to the
                                      bounds)
    hierarchical: log10 location ~ Normal(h_mu, h_sd), scale_dex ~ HalfNormal(h_scale),
                  skew alpha ~ Normal(h_skew_mean, h_skew) (fixed 0 when h_skew = 0),
                  ln f_k ~ SkewNormal(ln location, scale_dex ln 10, alpha) restricted to the
                  bounds, not renormalised to them (the bounds are a box, not part of the
                  population)
    B ~ Normal(mu_B, sigma_B)
    sigma_conf ~ HalfCauchy(scale)   (or HalfNormal, or fixed)
    d_i ~ Normal((A f)_i + B, sqrt(sigma_inst,i^2 + sigma_conf^2))
"""

from __future__ import annotations

import threading
import time

import numpy as np
import scipy.sparse as sp

from skysense.errors import InputError
from skysense.xid.model import BandModel
from skysense.xid.population import delta2, skew_normal_moments
from skysense.xid.sampler import BandPosterior

__all__ = ["nuts_band", "numpyro_band_model", "NUMPYRO_LOCK"]

#: numpyro's effect-handler stack is process-global: two models traced at once in threads
#: (Dask's local scheduler running tiles) corrupt each other's traces, so NUTS runs one at a
#: time per process (XLA still uses every core inside a run; process or cluster workers
#: run in parallel)
NUMPYRO_LOCK = threading.Lock()


def numpyro_band_model(model: BandModel):
    """A numpyro model function (no arguments) for ``model``; sites src_f, bkg, sigma_conf.

    With the hierarchical flux prior also ``pop_log10_median`` (log10 mJy, the
    skew-normal's location), ``pop_sigma_dex`` (dex, its scale) and ``pop_skew`` (alpha).
    """
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import log_ndtr, ndtr

    coo = sp.coo_matrix(model.amat)
    rows = jnp.asarray(coo.row, dtype=jnp.int32)
    cols = jnp.asarray(coo.col, dtype=jnp.int32)
    vals = jnp.asarray(coo.data)
    npix = model.npix
    d = jnp.asarray(model.data_mjy)
    s2 = jnp.asarray(model.sigma_mjy) ** 2
    p = model.flux_prior
    lo, hi = jnp.asarray(p.lower, dtype=float), jnp.asarray(p.upper, dtype=float)
    bp, cp = model.bkg_prior, model.conf_prior

    def fn():
        skew = None
        if p.kind == "hierarchical":
            lmed = numpyro.sample(
                "pop_log10_median", dist.Normal(p.hyper_log10_median, p.hyper_median_sd_dex)
            )
            if p.hyper_sd_dex is None:
                sdex = numpyro.sample("pop_sigma_dex", dist.HalfNormal(p.hyper_sigma_scale_dex))
            else:  # width tied to another band's: ln sd ~ Normal, as the Gibbs sampler
                a = (
                    numpyro.sample("pop_skew", dist.Normal(p.hyper_skew_mean, p.hyper_skew_sd))
                    if p.hyper_skew_sd > 0
                    else 0.0
                )
                lsd = numpyro.sample(
                    "pop_log_sd", dist.Normal(np.log(p.hyper_sd_dex), p.hyper_sd_tolerance)
                )
                # the scale from the sd at this alpha (1 - delta2 = (sd / scale)^2)
                sdex = numpyro.deterministic(
                    "pop_sigma_dex", jnp.exp(lsd) / jnp.sqrt(1.0 - delta2(a))
                )
            m, s = lmed * np.log(10.0), sdex * np.log(10.0)
            ln = dist.TruncatedNormal(m, s, low=jnp.log(lo), high=jnp.log(hi))
            prior = dist.TransformedDistribution(ln, dist.transforms.ExpTransform())
            # undo TruncatedNormal's renormalisation to the bounds, as the Gibbs sampler
            z = ndtr((jnp.log(hi) - m) / s) - ndtr((jnp.log(lo) - m) / s)
            numpyro.factor("pop_box", jnp.sum(jnp.log(jnp.clip(z, 1e-300))))
            if p.hyper_skew_sd > 0:  # skew-normal: 2 phi(z) Phi(alpha z)
                if p.hyper_sd_dex is None:
                    a = numpyro.sample("pop_skew", dist.Normal(p.hyper_skew_mean, p.hyper_skew_sd))
                skew = lambda f: jnp.sum(log_ndtr(a * (jnp.log(f) - m) / s))  # noqa: E731
        elif p.kind == "uniform":
            prior = dist.Uniform(lo, hi)
        elif p.kind == "loguniform":
            prior = dist.LogUniform(lo, hi)
        elif p.kind == "lognormal":  # log10 f ~ Normal(log10 mu, sigma dex), truncated
            ln = dist.TruncatedNormal(
                jnp.log(jnp.asarray(p.mu, dtype=float)),
                jnp.asarray(p.sigma, dtype=float) * np.log(10.0),
                low=jnp.log(lo),
                high=jnp.log(hi),
            )
            prior = dist.TransformedDistribution(ln, dist.transforms.ExpTransform())
            if p.skew is not None:  # a fixed skew-normal population, as the Gibbs sampler
                al, lm = jnp.asarray(p.skew, dtype=float), jnp.log(jnp.asarray(p.mu, dtype=float))
                ls = jnp.asarray(p.sigma, dtype=float) * np.log(10.0)
                skew = lambda f: jnp.sum(log_ndtr(al * (jnp.log(f) - lm) / ls))  # noqa: E731
        else:
            prior = dist.TruncatedNormal(
                jnp.asarray(p.mu, dtype=float), jnp.asarray(p.sigma, dtype=float), low=lo, high=hi
            )
        f = numpyro.sample("src_f", prior.to_event(1))
        if skew is not None:
            numpyro.factor("pop_shape", skew(f))
        b = numpyro.sample("bkg", dist.Normal(bp.mu, bp.sigma))
        if cp.kind == "halfcauchy":
            c = numpyro.sample("sigma_conf", dist.HalfCauchy(cp.scale))
        elif cp.kind == "halfnormal":
            c = numpyro.sample("sigma_conf", dist.HalfNormal(cp.scale))
        else:
            c = cp.fixed
        mu = jax.ops.segment_sum(vals * f[cols], rows, num_segments=npix) + b
        numpyro.sample("obs", dist.Normal(mu, jnp.sqrt(s2 + c**2)).to_event(1), obs=d)

    return fn


def nuts_band(
    model: BandModel,
    *,
    n_samples: int = 1000,
    n_warmup: int = 500,
    n_chains: int = 4,
    random_state: int | None = None,
    max_tree_depth: int = 10,
) -> BandPosterior:
    """Sample one band with numpyro NUTS (chains run one after the other on the CPU).

    Returns a :class:`BandPosterior` whose ``warmup_s`` covers JIT compilation plus warm-up
    (reported separately as ``compile_s`` from a 1-step run) and ``sampling_s`` the kept draws.
    """
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS

    numpyro.enable_x64()  # thousands of pixels: float32 log-densities lose the posterior's detail
    if n_samples < 1 or n_chains < 1:
        raise InputError("n_samples and n_chains must be >= 1")
    fn = numpyro_band_model(model)
    seed = int(np.random.default_rng(random_state).integers(2**31))
    flux, bkg, conf, hmed, hsig, hskew = [], [], [], [], [], []
    warm = samp = comp = cpu = 0.0
    with NUMPYRO_LOCK:
        for ch in range(n_chains):
            kernel = NUTS(fn, max_tree_depth=max_tree_depth)
            mcmc = MCMC(
                kernel, num_warmup=n_warmup, num_samples=n_samples, num_chains=1, progress_bar=False
            )
            key = jax.random.PRNGKey(seed + ch)
            t0 = time.perf_counter()
            mcmc.warmup(key, collect_warmup=False)
            t1 = time.perf_counter()
            c1 = time.process_time()
            mcmc.run(mcmc.post_warmup_state.rng_key)
            jax.block_until_ready(mcmc.get_samples())
            c2 = time.process_time()
            t2 = time.perf_counter()
            c_run = None
            if ch == 0:
                # the sampling loop is compiled on first use: rerun (same key, same draws) to time
                # the draws alone; the difference is the compilation time
                t3 = time.perf_counter()
                c3 = time.process_time()
                mcmc.run(mcmc.post_warmup_state.rng_key)
                jax.block_until_ready(mcmc.get_samples())
                c_run = time.process_time() - c3
                comp = (t2 - t1) - (time.perf_counter() - t3)
                t2 = t1 + (time.perf_counter() - t3)
            warm += t1 - t0
            samp += t2 - t1
            cpu += (c2 - c1) if c_run is None else c_run
            s = mcmc.get_samples()
            flux.append(np.asarray(s["src_f"]))
            bkg.append(np.asarray(s["bkg"]))
            if "pop_sigma_dex" in s:
                # the moments of log10 f, as the Gibbs sampler reports them
                alpha = np.asarray(s.get("pop_skew", np.zeros(n_samples)))
                mean, sd = skew_normal_moments(
                    np.asarray(s["pop_log10_median"]), np.asarray(s["pop_sigma_dex"]), alpha
                )
                hmed.append(10.0**mean)
                hsig.append(sd)
                hskew.append(alpha)
            conf.append(
                np.asarray(s["sigma_conf"])
                if "sigma_conf" in s
                else np.full(n_samples, model.conf_prior.fixed)
            )
    return BandPosterior(
        model.band,
        np.stack(flux),
        np.stack(bkg),
        np.stack(conf),
        warmup_s=warm,
        sampling_s=samp,
        compile_s=max(comp, 0.0),
        sampling_cpu_s=cpu,
        pop_median_mjy=np.stack(hmed) if hmed else None,
        pop_sigma_dex=np.stack(hsig) if hsig else None,
        pop_skew=np.stack(hskew) if hskew else None,
    )
