"""SED-prior mode (as XID+IR-SED): MIPS 24 and SPIRE bands fitted together.

Each prior source has a flux in every band; the bands are tied by a prior built from a set of
dusty-galaxy templates that the user provides: with a free log-normalisation ``N`` and the
redshift ``z`` (from the prior catalogue or a photo-z, Normal(z, z_err) or fixed),

    p(f_k | N_k, z_k) = (1/T) sum_t prod_b Normal(f_kb | 10^N_k T_tb(z_k), frac 10^N_k T_tb(z_k) + floor_b)

(a template mixture, marginalised over the template index so that NUTS sees only continuous
parameters), and each band's map likelihood is XID+'s (background, and sigma_conf for the
confused bands). Sampled with numpyro NUTS: the mixture prior is not conjugate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from skysense.errors import InputError
from skysense.xid.model import BandModel
from skysense.xid.reference import NUMPYRO_LOCK

__all__ = ["SEDTemplates", "SEDPosterior", "fit_sed", "NORM_PRIORS"]


@dataclasses.dataclass
class SEDTemplates:
    """Template fluxes on a redshift grid.

    Attributes
    ----------
    z_grid : ndarray (n_z,), increasing
    flux_mjy : ndarray (n_templates, n_z, n_bands)
        Flux (mJy) of each template at each redshift in each band for normalisation N = 0.
    bands : list of str, the band of each last-axis entry
    """

    z_grid: np.ndarray
    flux_mjy: np.ndarray
    bands: list

    def __post_init__(self):
        z = np.asarray(self.z_grid, float)
        f = np.asarray(self.flux_mjy, float)
        if z.ndim != 1 or z.size < 2 or np.any(np.diff(z) <= 0):
            raise InputError("SED templates: z_grid must be 1-D and strictly increasing")
        if f.ndim != 3 or f.shape[1] != z.size or f.shape[2] != len(self.bands):
            raise InputError(
                f"SED templates: flux_mjy must have shape (n_templates, {z.size}, {len(self.bands)})"
            )
        if not np.all(np.isfinite(f)) or np.any(f <= 0):
            raise InputError("SED templates: fluxes must be finite and > 0")
        self.z_grid, self.flux_mjy = z, f


@dataclasses.dataclass
class SEDPosterior:
    """Draws of the SED mode; arrays are (n_chains, n_draws, ...)."""

    bands: list
    flux: np.ndarray  # (c, n, nsrc, nband), mJy
    log_norm: np.ndarray  # (c, n, nsrc)
    z: np.ndarray  # (c, n, nsrc)
    bkg: np.ndarray  # (c, n, nband)
    sigma_conf: np.ndarray  # (c, n, nband)
    warmup_s: float = 0.0
    sampling_s: float = 0.0
    #: hierarchical normalisation prior only: draws (c, n) of the population's mean and sd of N
    pop_log_norm: np.ndarray | None = None
    pop_log_norm_sd: np.ndarray | None = None


#: normalisation priors of :func:`fit_sed`
NORM_PRIORS = ("hierarchical", "uniform")


def fit_sed(
    models: Mapping[str, BandModel],
    templates: SEDTemplates,
    *,
    z_mean: np.ndarray,
    z_sigma: np.ndarray | None = None,
    log_norm_bounds: tuple[float, float] = (-3.0, 3.0),
    scatter_fraction: float = 0.2,
    norm_prior: str = "hierarchical",
    n_samples: int = 500,
    n_warmup: int = 500,
    n_chains: int = 2,
    dense_mass: bool | None = None,
    random_state=None,
) -> SEDPosterior:
    """Fit all bands together with the template-mixture SED prior (numpyro NUTS).

    Parameters
    ----------
    models : band -> BandModel, all with the same sources in the same column order
    templates : SEDTemplates covering every band of ``models``
    z_mean, z_sigma : ndarray (nsrc,) - redshift prior; ``z_sigma`` None or 0 fixes z
    log_norm_bounds : bounds of the prior of N (log10 of the template scale)
    norm_prior : ``"hierarchical"`` (default: the sources' N drawn from a population
        Normal(mu, s) truncated to the bounds, mu ~ Normal(bounds' middle, 1.5), s ~
        HalfNormal(1), both sampled: the SED-mode analogue of the hierarchical flux prior,
        learned from the maps) or ``"uniform"`` (XID+IR-SED's flat prior on N)
    scatter_fraction : fractional scatter of the fluxes about the template
    dense_mass : NUTS with a dense mass matrix (default: when there are <= 400 parameters;
        N, z and the fluxes of a source are strongly correlated)

    Returns
    -------
    SEDPosterior
    """
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, init_to_value

    from skysense.xid.sampler import sample_band

    # map likelihoods with thousands of precise pixels need double precision (process-wide)
    numpyro.enable_x64()
    if norm_prior not in NORM_PRIORS:
        raise InputError(f"fit_sed: norm_prior must be one of {NORM_PRIORS}, got {norm_prior!r}")
    bands = list(models)
    if not bands:
        raise InputError("fit_sed needs at least one band")
    nsrc = {m.nsrc for m in models.values()}
    if len(nsrc) != 1:
        raise InputError("fit_sed: every band model must hold the same sources")
    nsrc = nsrc.pop()
    missing = [b for b in bands if b not in templates.bands]
    if missing:
        raise InputError(f"fit_sed: templates have no fluxes for band(s) {missing}")
    col = [templates.bands.index(b) for b in bands]
    tfl = jnp.asarray(templates.flux_mjy[:, :, col])  # (T, Z, B)
    zg = jnp.asarray(templates.z_grid)
    zm = np.asarray(z_mean, float)
    if zm.shape != (nsrc,):
        raise InputError(f"fit_sed: z_mean must have shape ({nsrc},)")
    zs = None if z_sigma is None else np.asarray(z_sigma, float)
    fixed_z = zs is None or np.all(zs <= 0)
    zlo, zhi = float(templates.z_grid[0]), float(templates.z_grid[-1])
    if np.any((zm < zlo) | (zm > zhi)):
        raise InputError(f"fit_sed: redshifts must lie within the template grid [{zlo}, {zhi}]")
    floor = jnp.asarray([float(np.median(models[b].sigma_mjy)) * 0.1 for b in bands])
    data = []
    for b in bands:
        m = models[b]
        coo = sp.coo_matrix(m.amat)
        data.append(
            (
                jnp.asarray(coo.row),
                jnp.asarray(coo.col),
                jnp.asarray(coo.data),
                m.npix,
                jnp.asarray(m.data_mjy),
                jnp.asarray(m.sigma_mjy) ** 2,
                jnp.asarray(m.flux_prior.upper),
                m.bkg_prior,
                m.conf_prior,
            )
        )

    def interp_templates(z):  # (nsrc,) -> (T, nsrc, B)
        return jax.vmap(lambda tz: jax.vmap(lambda col_: jnp.interp(z, zg, col_), 1, 1)(tz))(tfl)

    def model():
        lo_n, hi_n = log_norm_bounds
        if norm_prior == "hierarchical":
            mu_n = numpyro.sample("pop_log_norm", dist.Normal(0.5 * (lo_n + hi_n), 1.5))
            sd_n = numpyro.sample("pop_log_norm_sd", dist.HalfNormal(1.0))
            # truncated (and renormalised) to the bounds, so that they stay a hard box
            pop = dist.TruncatedNormal(mu_n, sd_n, low=lo_n, high=hi_n)
            n = numpyro.sample("log_norm", pop.expand([nsrc]).to_event(1))
        else:
            n = numpyro.sample("log_norm", dist.Uniform(lo_n, hi_n).expand([nsrc]).to_event(1))
        if fixed_z:
            z = jnp.asarray(zm)
        else:
            z = numpyro.sample(
                "z",
                dist.TruncatedNormal(jnp.asarray(zm), jnp.asarray(zs), low=zlo, high=zhi).to_event(
                    1
                ),
            )
        fl = []
        for k, b in enumerate(bands):
            rows, cols, vals, npix, d, s2, upper, bp, cp = data[k]
            f = numpyro.sample(f"src_f_{b}", dist.Uniform(0.0, upper).to_event(1))
            bkg = numpyro.sample(f"bkg_{b}", dist.Normal(bp.mu, bp.sigma))
            if cp.kind == "halfcauchy":
                c = numpyro.sample(f"sigma_conf_{b}", dist.HalfCauchy(cp.scale))
            elif cp.kind == "halfnormal":
                c = numpyro.sample(f"sigma_conf_{b}", dist.HalfNormal(cp.scale))
            else:
                c = cp.fixed
            mu = jax.ops.segment_sum(vals * f[cols], rows, num_segments=npix) + bkg
            numpyro.sample(f"obs_{b}", dist.Normal(mu, jnp.sqrt(s2 + c**2)).to_event(1), obs=d)
            fl.append(f)
        flux = jnp.stack(fl, axis=-1)  # (nsrc, B)
        mean = (10.0**n)[None, :, None] * interp_templates(z)  # (T, nsrc, B)
        sd = scatter_fraction * mean + floor
        lp = dist.Normal(mean, sd).log_prob(flux[None]).sum(-1)  # (T, nsrc)
        numpyro.factor(
            "sed_prior", jax.nn.logsumexp(lp, axis=0).sum() - nsrc * np.log(tfl.shape[0])
        )

    if dense_mass is None:
        dense_mass = nsrc * (len(bands) + 2) <= 400
    seed = int(np.random.default_rng(random_state).integers(2**31))
    # start NUTS where the data put it: a short Gibbs run per band (the bands are independent
    # without the SED prior) gives fluxes, backgrounds and sigma_conf; N follows from them
    init = {}
    ratios = []
    for k, b in enumerate(bands):
        g = sample_band(models[b], n_samples=50, n_warmup=150, n_chains=1, random_state=seed + k)
        f0 = np.median(g.flux[0], axis=0)
        init[f"src_f_{b}"] = np.clip(
            f0, 1e-3 * models[b].flux_prior.upper, 0.999 * models[b].flux_prior.upper
        )
        init[f"bkg_{b}"] = float(np.median(g.bkg))
        if models[b].conf_prior.kind != "none":
            init[f"sigma_conf_{b}"] = max(float(np.median(g.sigma_conf)), 1e-3)
        tz = np.interp(zm, templates.z_grid, templates.flux_mjy[0, :, col[k]])
        ratios.append(init[f"src_f_{b}"] / tz)
    n0 = np.log10(np.maximum(np.median(np.stack(ratios), axis=0), 1e-30))
    lo_n, hi_n = log_norm_bounds
    init["log_norm"] = np.clip(n0, lo_n + 1e-3 * (hi_n - lo_n), hi_n - 1e-3 * (hi_n - lo_n))
    if norm_prior == "hierarchical":
        init["pop_log_norm"] = float(np.mean(init["log_norm"]))
        init["pop_log_norm_sd"] = max(float(np.std(init["log_norm"])), 0.1)
    if not fixed_z:
        init["z"] = np.clip(zm, zlo + 1e-6, zhi - 1e-6)
    mcmc = MCMC(
        NUTS(model, init_strategy=init_to_value(values=init), dense_mass=dense_mass),
        num_warmup=n_warmup,
        num_samples=n_samples,
        num_chains=n_chains,
        chain_method="sequential",
        progress_bar=False,
    )
    with NUMPYRO_LOCK:
        t0 = time.perf_counter()
        mcmc.warmup(jax.random.PRNGKey(seed), collect_warmup=False)
        t1 = time.perf_counter()
        mcmc.run(mcmc.post_warmup_state.rng_key)
        s = mcmc.get_samples(group_by_chain=True)
        t2 = time.perf_counter()
    c, nd = np.asarray(s["log_norm"]).shape[:2]
    flux = np.stack([np.asarray(s[f"src_f_{b}"]) for b in bands], axis=-1)
    z = np.asarray(s["z"]) if "z" in s else np.broadcast_to(zm, (c, nd, nsrc)).copy()
    bkg = np.stack([np.asarray(s[f"bkg_{b}"]) for b in bands], axis=-1)
    conf = np.stack(
        [
            np.asarray(s[f"sigma_conf_{b}"])
            if f"sigma_conf_{b}" in s
            else np.full((c, nd), models[b].conf_prior.fixed)
            for b in bands
        ],
        axis=-1,
    )
    post = SEDPosterior(bands, flux, np.asarray(s["log_norm"]), z, bkg, conf, t1 - t0, t2 - t1)
    if norm_prior == "hierarchical":
        post.pop_log_norm = np.asarray(s["pop_log_norm"])
        post.pop_log_norm_sd = np.asarray(s["pop_log_norm_sd"])
    return post
