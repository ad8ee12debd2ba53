"""XID+ benchmark, blind part: blind extraction and the hidden-source loop (``--part blind``).

Maps: the SPIRE 250 um map of a skysense.sim field of 1 deg^2 (every simulated galaxy
injected, so the confusion noise is the simulation's, 6 arcsec pixels, 18.15 arcsec beam,
2 mJy/beam instrumental noise rising to the edges). Larger maps (10 deg^2) keep those 250 um
fluxes and number counts: the 1 deg^2 flux list is repeated at uniform random positions over
the larger square (a full 10 deg^2 galaxy simulation with SEDs would take minutes and GBs only
to make the same map statistics).

Rows:
- blind extraction of the whole map, one process (skysense.xid.blind.extract_sources, Chapin
  filter with the confusion estimated from the map, peaks, sub-pixel positions, joint PSF fits)
  and tile by tile on the local Dask scheduler (skysense.xid.blind.engine.extract_tiles);
- the detection step on the same matched-filtered S/N map: skysense's find_peaks plus its
  log-quadratic sub-pixel refinement vs photutils ``find_peaks`` (peaks only, its fastest
  setting) and ``find_peaks(centroid_func=centroid_quadratic)`` (peaks plus sub-pixel centres,
  the like-for-like setting); the peak lists are compared;
- completeness / reliability of the 1 deg^2 catalogue against the truth (f50, f90);
- the hidden-source loop (fit, residuals, add, refit until none is left) on a 0.1 deg^2 field
  with 10 bright prior sources removed, against one XID+ fit of the same prior.
"""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np

from benchmarks._harness import RESULTS, Row, timed

__all__ = ["run_blind", "keep_other_rows"]

FWHM, PIX = 18.15, 6.0


def _load() -> list[str]:
    return open("/proc/loadavg").read().split()[:3]


def _sim_1deg2(seed: int):
    from skysense.sim import DEFAULT_MAPS, make_maps, simulate_sky
    from skysense.sim.maps import map_sources
    from skysense.xid.skymap import SkyMap

    sky = simulate_sky(seed=seed, area_deg2=1.0)
    spec = tuple(s for s in DEFAULT_MAPS if s.band == "spire_250")
    m = make_maps(sky, spec)["spire_250"]
    smap = SkyMap("spire_250", m.image.astype(float), m.error.astype(float), m.wcs, FWHM)
    return smap, map_sources(sky), spec[0]


def _scaled_map(area_deg2: float, fluxes: np.ndarray, spec, seed: int):
    """A square map of ``area_deg2`` with the 1 deg^2 flux list repeated at random positions."""
    from skysense.sim.maps import _noise_sigma, inject_point_sources
    from skysense.xid.simulate import tan_wcs
    from skysense.xid.skymap import SkyMap

    rng = np.random.default_rng(seed)
    side = int(round(math.sqrt(area_deg2) * 3600 / PIX))
    reps = int(round(area_deg2))
    flux = np.tile(fluxes, reps)
    x = rng.uniform(-0.5, side - 0.5, flux.size)
    y = rng.uniform(-0.5, side - 0.5, flux.size)
    image = inject_point_sources((side, side), x, y, flux, spec.sigma_pix)
    error = _noise_sigma(spec, (side, side)).astype(float)
    image += error * rng.standard_normal(image.shape)
    return SkyMap("spire_250", image, error, tan_wcs(side, side, PIX), FWHM)


def _blind_rows(smap, label: str, quick: bool) -> list[Row]:
    from photutils.centroids import centroid_quadratic
    from photutils.detection import find_peaks as pu_find_peaks

    from skysense.xid.blind.engine import extract_tiles
    from skysense.xid.blind.extract import _refine, extract_sources, find_peaks, matched_filter

    rows = []
    npix = smap.image_mjy.size
    t_one, cat = timed(lambda: extract_sources(smap, snr_threshold=5, confusion_mjy=None))
    conf = cat.attrs["confusion_mjy"]
    t_tiles, tiled = timed(
        lambda: extract_tiles(smap, tile_pix=512, snr_threshold=5, confusion_mjy=None)
    )
    same = _same_catalogue(cat, tiled)
    rows.append(
        Row(
            task=f"blind extraction, SPIRE 250 map {label} ({npix / 1e6:.2f} Mpix)",
            skysense=t_one,
            peer=None,
            unit="s",
            notes=(
                f"one process; {len(cat)} sources >= 5 sigma (confusion {conf:.2f} mJy/beam "
                f"estimated); tiled on local Dask (512 px tiles, {tiled.attrs['n_tiles']} "
                f"tiles): {t_tiles:.2f} s, same catalogue: {same}"
            ),
            extra={
                "n_sources": len(cat),
                "npix": npix,
                "confusion_mjy": conf,
                "tiled_s": t_tiles,
                "n_tiles": tiled.attrs["n_tiles"],
                "tiled_equal": bool(same),
            },
        )
    )
    fm = matched_filter(smap.image_mjy, smap.error_mjy, FWHM, PIX, confusion_mjy=conf)
    snr = fm.snr
    sep = max(1, int(round(0.5 * FWHM / PIX)))
    box = 2 * sep + 1

    def ours():
        iy, ix = find_peaks(snr, 5.0, min_separation_pix=sep)
        return iy, ix, _refine(fm.flux_mjy, iy, ix)

    repeat = 1 if quick else 3
    t_ours, (iy, ix, _) = timed(ours, repeat=repeat)
    t_peaks_only, _ = timed(lambda: find_peaks(snr, 5.0, min_separation_pix=sep), repeat=repeat)
    clean = np.where(np.isfinite(snr), snr, -np.inf)
    t_pu, tab = timed(lambda: pu_find_peaks(clean, 5.0, box_size=box, border_width=1), repeat)
    with warnings.catch_warnings():  # "maximum outside the image" for edge-touching fits
        warnings.simplefilter("ignore")
        t_puc, tabc = timed(
            lambda: pu_find_peaks(
                clean, 5.0, box_size=box, border_width=1, centroid_func=centroid_quadratic
            ),
            1,
        )
    ours_set = set(zip(iy.tolist(), ix.tolist()))
    pu_set = set() if tab is None else set(zip(tab["y_peak"].tolist(), tab["x_peak"].tolist()))
    common = len(ours_set & pu_set)
    rows.append(
        Row(
            task=f"peak finding on the filtered S/N map {label}",
            skysense=t_peaks_only,
            peer=t_pu,
            peer_name="photutils find_peaks",
            unit="s",
            notes=f"{len(ours_set)} vs {len(pu_set)} peaks, {common} in common (box {box} px)",
            extra={"n_ours": len(ours_set), "n_photutils": len(pu_set), "common": common},
        )
    )
    rows.append(
        Row(
            task=f"peaks + sub-pixel centres {label}",
            skysense=t_ours,
            peer=t_puc,
            peer_name="photutils find_peaks + centroid_quadratic",
            unit="s",
            notes=(
                "skysense: 3-point log-quadratic per axis (vectorised); photutils: 2-D "
                f"quadratic fit per peak; {0 if tabc is None else len(tabc)} peaks"
            ),
        )
    )
    return rows, cat


def _same_catalogue(a, b) -> bool:
    """Same sources (matched within 0.01 arcsec; the S/N order may swap near-ties) and the
    same fluxes to 1% of their errors."""
    from skysense.xid.blind.match import nearest_within

    if len(a) != len(b):
        return False
    j, _, _, _ = nearest_within(
        a.ra.to_numpy(), a.dec.to_numpy(), b.ra.to_numpy(), b.dec.to_numpy(), 0.01
    )
    if (j < 0).any() or len(set(j.tolist())) != len(a):
        return False
    diff = np.abs(a.flux_mjy.to_numpy() - b.flux_mjy.to_numpy()[j])
    return bool(np.all(diff <= 0.01 * a.flux_err_mjy.to_numpy()))


def _completeness_row(cat, truth) -> Row:
    from skysense.xid.blind.stats import completeness_reliability

    r = completeness_reliability(
        cat.ra.to_numpy(),
        cat.dec.to_numpy(),
        cat.flux_mjy.to_numpy(),
        truth.ra.to_numpy(),
        truth.dec.to_numpy(),
        truth.f_spire_250.to_numpy(),
        radius_arcsec=0.5 * FWHM,
        edges_mjy=np.geomspace(3, 300, 21),
    )
    return Row(
        task="blind completeness, SPIRE 250 1 deg^2 skysense.sim (5 sigma, Chapin filter)",
        skysense=r.flux50_mjy,
        peer=None,
        unit="mJy (flux at 50% completeness)",
        notes=(
            f"f50 {r.flux50_mjy:.1f} mJy, f90 {r.flux90_mjy:.1f} mJy, reliability above f50 "
            f"{r.reliability_above50:.3f} (truth: brightest source within FWHM/2 holding "
            ">= half the flux)"
        ),
        extra={
            "flux50_mjy": r.flux50_mjy,
            "flux90_mjy": r.flux90_mjy,
            "reliability_above50": r.reliability_above50,
            "bins": r.bins.to_dict(orient="list"),
        },
    )


def _hidden_row(seed: int, quick: bool) -> Row:
    from skysense.sim import DEFAULT_MAPS, make_maps, simulate_sky
    from skysense.sim.maps import map_sources
    from skysense.xid.blind.match import nearest_within
    from skysense.xid.fit import fit
    from skysense.xid.hidden.search import find_hidden_sources
    from skysense.xid.skymap import SkyMap

    area = 0.05 if quick else 0.1
    sky = simulate_sky(seed=seed + 3, area_deg2=area)
    spec = tuple(s for s in DEFAULT_MAPS if s.band == "spire_250")
    m = make_maps(sky, spec)["spire_250"]
    smap = SkyMap("spire_250", m.image.astype(float), m.error.astype(float), m.wcs, FWHM)
    truth = map_sources(sky)
    prior = truth[truth.f_spire_250 > 3].reset_index(drop=True)
    prior = prior.assign(id=prior.object_id.astype(str))
    bright = prior[prior.f_spire_250 > 30]
    others = prior[prior.f_spire_250 > 5]
    _, _, n_near, _ = nearest_within(
        bright.ra.to_numpy(),
        bright.dec.to_numpy(),
        others.ra.to_numpy(),
        others.dec.to_numpy(),
        FWHM,
    )
    iso = bright[n_near == 1]
    rng = np.random.default_rng(seed)
    removed = iso.iloc[rng.choice(len(iso), size=min(10, len(iso)), replace=False)]
    kept = prior[~prior.id.isin(removed.id)][["id", "ra", "dec"]]
    kw = {"n_samples": 1000, "n_warmup": 500, "n_chains": 4}
    fit([smap], kept.iloc[:50], random_state=0, n_samples=50, n_warmup=50, n_chains=1)  # compile
    t_fit, _ = timed(lambda: fit([smap], kept, random_state=0, **kw))
    t_loop, h = timed(lambda: find_hidden_sources([smap], kept, random_state=0, **kw))
    cand = h.candidates
    j, _, _, _ = nearest_within(
        removed.ra.to_numpy(), removed.dec.to_numpy(), cand.ra.to_numpy(), cand.dec.to_numpy(), 9.0
    )
    full = find_hidden_sources([smap], prior[["id", "ra", "dec"]], refit=False, **kw)
    false_rate = len(full.candidates) / area
    return Row(
        task=f"hidden-source loop vs one XID+ fit ({len(kept)} priors, {area} deg^2)",
        skysense=t_loop / t_fit,
        peer=None,
        unit="x one fit",
        notes=(
            f"one fit {t_fit:.1f} s (4 chains x 1000 draws); loop {t_loop:.1f} s, "
            f"{h.n_fits} fits, converged {h.converged}, {int(cand.added.sum())} added; "
            f"removed bright sources recovered {int((j >= 0).sum())}/{len(removed)}; "
            f"false candidates with nothing removed {len(full.candidates)} "
            f"({false_rate:.0f} per deg^2, max flux {full.candidates.flux_mjy.max():.1f} mJy)"
        ),
        extra={
            "one_fit_s": t_fit,
            "loop_s": t_loop,
            "n_fits": h.n_fits,
            "converged": h.converged,
            "n_added": int(cand.added.sum()),
            "n_removed": len(removed),
            "n_recovered": int((j >= 0).sum()),
            "removed_flux_mjy": removed.f_spire_250.round(2).tolist(),
            "false_candidates": len(full.candidates),
            "false_per_deg2": false_rate,
            "false_max_flux_mjy": float(full.candidates.flux_mjy.max())
            if len(full.candidates)
            else None,
        },
    )


def run_blind(opts) -> tuple[list[Row], dict]:
    """Rows of the blind part and their meta (load average before and after)."""
    meta = {"blind_load_before": _load()}
    t0 = time.perf_counter()
    smap, truth, spec = _sim_1deg2(opts.seed)
    meta["sim_1deg2_s"] = time.perf_counter() - t0
    rows = []
    areas = [float(a) for a in opts.blind_areas.split(",")]
    if opts.quick:
        areas = [a for a in areas if a <= 1] or [1.0]
    cat1 = None
    for area in areas:
        sm = smap if area == 1 else _scaled_map(area, truth.f_spire_250.to_numpy(), spec, 1)
        r, cat = _blind_rows(sm, f"{area:g} deg^2", opts.quick)
        rows += r
        if area == 1:
            cat1 = cat
        meta[f"load_after_{area:g}deg2"] = _load()
    if cat1 is not None:
        rows.append(_completeness_row(cat1, truth))
    rows.append(_hidden_row(opts.seed, opts.quick))
    meta["blind_load_after"] = _load()
    return rows, meta


def _is_blind(task: str) -> bool:
    return task.startswith(("blind", "peak", "hidden"))


def keep_other_rows(rows: list[Row], meta: dict, *, blind: bool) -> tuple[list[Row], dict]:
    """Add the previous results file's rows of the part not run, so one part's run does not
    erase the other's numbers (their own timestamp is kept in ``meta``)."""
    path = RESULTS / "xid.json"
    if not path.exists():
        return rows, meta
    old = json.loads(path.read_text())
    keep = [r for r in old.get("rows", []) if _is_blind(r["task"]) != blind]
    kept = [Row(**{k: v for k, v in r.items() if k != "ratio"}) for r in keep]
    old_meta = old.get("meta", {})
    part = "sampler" if blind else "blind"
    prev = old_meta.get("carried_over") or {}
    # rows carried over twice keep the time they were measured
    when = prev.get("from") if prev.get("part") == part else old.get("when")
    carried = {"part": part, "from": when, "rows": len(kept)}
    if blind:  # the sampler's meta stays at the top level, as a full run writes it
        top = {k: v for k, v in old_meta.items() if k not in ("blind", "carried_over")}
        meta = {**top, "blind": meta, "carried_over": carried}
    else:
        meta = {**meta, "blind": old_meta.get("blind"), "carried_over": carried}
    return (kept + rows) if blind else (rows + kept), meta
