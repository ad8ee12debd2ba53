"""bagpipes' own nested-sampling fit of SED mock objects, one object at a time, checkpointed.

``python -m benchmarks._sed_bagpipes WORK [--n 200] [--n-live 100]`` draws ``n`` mock objects
(saved to ``WORK/mocks.npz``, reused when present) and fits them with bagpipes + nautilus on one
process, appending one JSON line per finished object to ``WORK/results.jsonl``; a restarted run
skips finished objects, so a partial run is usable. ``benchmarks/sed.py --bagpipes-work WORK``
fits the same photometry with skysense and compares.

Physics made as close as the two codes allow: the mocks are skysense models with delayed-tau
SFH without burst, modified Charlot & Fall attenuation (slopes -0.7, mu = 0.44), DL07 dust
(q_PAH = 2.5, gamma = 0.02), no AGN, nebular emission (log U = -3) of stars younger than
10 Myr, BC03 at solar metallicity, Inoue14 IGM, Planck18 cosmology. Nebular emission is on in
both because without it the codes treat the Lyman continuum differently (skysense drops it,
bagpipes lets dust absorb part of it, 15-50 % more L_dust for young or dust-poor models); with it
both turn it into nebular light that the birth clouds attenuate. bagpipes fits delayed-tau (tau 0.03-10 Gyr, so that the grid's 0.1 is not at the prior's edge, age 0.1 Gyr to the age of
the Universe at z, log M formed 6-13), its CF00 dust (A_V 0-2.5, eta = 1/mu, n = 0.7, t_bc 10 Myr),
DL07 (U_min 0.5-25, q_PAH 2.5, gamma 0.02), nebular log U = -3, at the mock's redshift; its cosmology is switched to
Planck18 so that distances agree. Priors differ (continuous vs grid), as they must.

``--field FIELD`` fits galaxies of a simulated field (``skysense sim field``) instead: ``n``
galaxies with i < 24 and z < 2 drawn from its truth (``truth/objects.parquet``, true fluxes of
the simulator's SED models, which include nebular emission), given the same HELP-like errors;
saved to ``WORK/field.npz``, results in ``WORK/results_field<tag>.jsonl``.

``--also-field FIELD --n-field N`` fits both in one process, alternating a mock and a field
galaxy (each set keeps its own files), so that a run cut short has some of each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["BANDS", "SIGMA_UJY", "FIELD_SIGMA_UJY", "mock_config", "draw_mocks", "make_mocks",
           "field_mocks", "main"]  # fmt: skip

BANDS = ("megacam_u", "megacam_g", "megacam_r", "megacam_i", "megacam_z", "ukidss_j", "ukidss_k",
         "irac_i1", "irac_i2", "mips_24", "pacs_green", "spire_250", "spire_350")  # fmt: skip
SIGMA_UJY = np.array([0.1, 0.05, 0.05, 0.08, 0.15, 0.5, 0.7, 0.6, 0.8, 5.0, 1500, 2500, 2700])
# the simulator's bands (skysense.sim.sed.BANDS) and HELP-like depths (uJy)
FIELD_SIGMA_UJY = {"megacam_u": 0.1, "megacam_g": 0.05, "megacam_r": 0.05, "suprime_i": 0.08,
                   "ukidss_j": 0.5, "ukidss_k": 0.7, "irac_i1": 0.6, "mips_24": 5.0,
                   "pacs_green": 1500.0, "pacs_red": 3000.0, "spire_250": 2500.0,
                   "spire_350": 2700.0, "spire_500": 2700.0}  # fmt: skip
REDSHIFTS = tuple(float(z) for z in np.round(np.linspace(0.1, 2.0, 20), 2))


def mock_config():
    """The grid the mocks are drawn from (bagpipes' model family: no burst, no AGN)."""
    from skysense.sed.grid import GridConfig

    return GridConfig(
        bands=BANDS,
        redshifts=REDSHIFTS,
        tau_main_gyr=(0.1, 0.3, 1.0, 3.0, 10.0),
        age_gyr=(0.3, 0.7, 1.5, 3.0, 5.0, 8.0),
        av_ism=(0.05, 0.2, 0.4, 0.7, 1.1, 1.6),
        umin=(0.5, 2.0, 5.0, 15.0),
        qpah=(2.5,),
        frac_agn=(0.0,),
        nebular=True,
        logu=-3.0,
    )


def draw_mocks(grid, n: int, rng: np.random.Generator):
    """Mock photometry drawn from ``grid``: redshift node, valid model, log M* uniform in
    9.5-11.5, HELP-like errors (depths :data:`SIGMA_UJY` plus 5 % of the flux).

    Returns
    -------
    (iz, model, scale, flux_mjy, err_mjy)
    """
    from skysense.sed.fit import mock_photometry

    iz = rng.integers(0, grid.redshifts.size, n)
    model = np.empty(n, dtype=np.intp)
    for k in range(grid.redshifts.size):
        rows = np.flatnonzero(iz == k)
        model[rows] = rng.choice(np.flatnonzero(grid.valid[k]), rows.size)
    scale = 10 ** rng.uniform(9.5, 11.5, n) / grid.props["mstar"][model]
    true = grid.fluxes_mjy[iz, model].astype(float) * scale[:, None]
    err = np.sqrt((SIGMA_UJY / 1e3) ** 2 + (0.05 * true) ** 2)
    flux = mock_photometry(grid, iz, model, scale, err, rng)
    return iz, model, scale, flux, err


def make_mocks(n: int, seed: int = 1717) -> dict:
    """``n`` mock objects of :func:`mock_config`'s grid, with their true properties."""
    from skysense.sed import io

    grid = io.make_grid(mock_config())
    iz, model, scale, flux, err = draw_mocks(grid, n, np.random.default_rng(seed))
    out = {"z": grid.redshifts[iz], "flux_mjy": flux, "err_mjy": err}
    for q in ("mstar", "sfr", "l_dust"):
        out["true_log_" + q] = np.log10(np.maximum(grid.props[q][model] * scale, 1e-30))
    for p in ("tau_main_gyr", "age_gyr", "av_ism", "umin"):
        out["true_" + p] = grid.params[p][model]
    return out


def field_mocks(field, n: int, seed: int = 1718) -> dict:
    """``n`` galaxies of a simulated field (i < 24, z < 2) with HELP-like noise added."""
    import pandas as pd

    obj = pd.read_parquet(Path(field) / "truth" / "objects.parquet")
    bands = [b for b in FIELD_SIGMA_UJY if f"f_{b}" in obj]
    gal = obj[(obj["kind"] == "galaxy") & (obj["z"] < 2.0) & (obj["z"] > 0.05)]
    gal = gal[gal["f_suprime_i"] > 10 ** ((23.9 - 24.0) / 2.5)]  # i < 24 (AB, uJy)
    rng = np.random.default_rng(seed)
    pick = gal.iloc[np.sort(rng.choice(len(gal), min(n, len(gal)), replace=False))]
    true = pick[[f"f_{b}" for b in bands]].to_numpy(dtype=float) / 1e3  # mJy
    sig = np.array([FIELD_SIGMA_UJY[b] for b in bands]) / 1e3
    err = np.sqrt(sig**2 + (0.05 * true) ** 2)
    return {"bands": np.array(bands), "z": pick["z"].to_numpy(dtype=float),
            "flux_mjy": true + rng.standard_normal(true.shape) * err, "err_mjy": err,
            "object_id": pick["object_id"].to_numpy(),
            "true_log_mstar": np.log10(pick["mstar_msun"].to_numpy(dtype=float)),
            "true_log_sfr": np.log10(np.maximum(pick["sfr_msun_yr"].to_numpy(dtype=float), 1e-30)),
            "true_log_l_dust": np.log10(pick["l_dust_lsun"].to_numpy(dtype=float))}  # fmt: skip


def _use_planck18(pipes) -> None:
    """Switch bagpipes' precomputed distances and ages to Planck18 (skysense's default)."""
    from astropy.cosmology import Planck18

    u = pipes.utils
    u.cosmo = Planck18
    u.age_at_z[:] = Planck18.age(u.z_array).value
    u.ldist_at_z[:] = Planck18.luminosity_distance(u.z_array).value


def fit_one(pipes, files, flux_mjy, err_mjy, z, name, n_live, n_networks=4, run=""):
    """One bagpipes fit; returns a JSON-able dict of posterior summaries and its run time."""
    phot = np.column_stack([flux_mjy * 1e3, err_mjy * 1e3])  # uJy
    galaxy = pipes.galaxy(name, lambda _id: phot, spectrum_exists=False, filt_list=files)
    instructions = {
        "redshift": float(z),
        # ages up to the age of the Universe at z (older ones are invalid, as in the grid):
        # a prior reaching 13 Gyr at z = 1.5 wastes most live points on -inf likelihoods
        "delayed": {"age": (0.1, float(pipes.utils.cosmo.age(z).value)), "tau": (0.03, 10.0),
                    "massformed": (6.0, 13.0),
                    "metallicity": 1.0},
        # bagpipes reads the DL07 parameters from "dust" (a "dust_emission" entry is ignored)
        "dust": {"type": "CF00", "Av": (0.0, 2.5), "eta": 1.0 / 0.44, "n": 0.7,
                 "qpah": 2.5, "umin": (0.5, 25.0), "gamma": 0.02},
        "nebular": {"logU": -3.0},
        "t_bc": 0.01,
    }  # fmt: skip
    # bagpipes reloads a finished run of the same name instead of fitting: name runs by setting
    fit = pipes.fit(galaxy, instructions, run=f"nl{n_live}nn{n_networks}{run}")
    t0 = time.perf_counter()
    c0 = time.process_time()
    fit.fit(verbose=False, sampler="nautilus", n_live=n_live, pool=1, n_networks=n_networks)
    cpu = time.process_time() - c0
    dt = time.perf_counter() - t0
    fit.posterior.get_advanced_quantities()
    s = fit.posterior.samples
    res = {"seconds": dt, "cpu_seconds": cpu, "n_live": n_live, "n_networks": n_networks}
    for key, vals in (("log_mstar", s["stellar_mass"]), ("log_sfr", np.log10(np.maximum(s["sfr"], 1e-30)))):  # fmt: skip
        p16, p50, p84 = np.percentile(vals, [16, 50, 84])
        res[key] = float(p50)
        res[key + "_err"] = float((p84 - p16) / 2)
    return res


def _load_set(work: Path, field: Path | None, n: int, tag: str) -> tuple[dict, Path, set]:
    """Objects of one set (mocks, or a field's galaxies; drawn once, then reused), its results
    file and the indices already fitted there."""
    mock_file = work / ("field.npz" if field else "mocks.npz")
    if not mock_file.exists():
        mocks = field_mocks(field, n) if field else make_mocks(n)
        tmp = work / f"{mock_file.stem}.tmp.npz"
        np.savez(tmp, **mocks)
        os.replace(tmp, mock_file)
    mocks = dict(np.load(mock_file))
    results = work / f"results{'_field' if field else ''}{tag}.jsonl"
    done = set()
    if results.exists():
        done = {json.loads(line)["index"] for line in results.read_text().splitlines() if line}
    return mocks, results, done


def _filter_files(work: Path, bands) -> list[str]:
    from skysense.sed.io import load_filters

    files = []
    for f in load_filters(tuple(str(b) for b in bands)):
        path = work / f"{f.name}.dat"
        if not path.exists():
            np.savetxt(path, np.column_stack([f.wavelength_aa, f.transmission]))
        files.append(str(path))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks._sed_bagpipes", description=__doc__)
    ap.add_argument("work", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-live", type=int, default=50)
    ap.add_argument("--n-networks", type=int, default=1, help="nautilus' neural networks")
    ap.add_argument("--only", type=int, nargs="*", help="object indices to fit (default: all)")
    ap.add_argument("--tag", default="", help="results file suffix (results{tag}.jsonl)")
    ap.add_argument("--field", type=Path, help="simulated field: fit its galaxies instead")
    ap.add_argument("--also-field", type=Path, help="simulated field: alternate its galaxies "
                    "with the mocks")  # fmt: skip
    ap.add_argument("--n-field", type=int, default=40, help="galaxies of --also-field")
    opts = ap.parse_args(argv)
    work = opts.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sets = [(opts.field, opts.n)]
    if opts.also_field and not opts.field:
        sets.append((opts.also_field.resolve(), opts.n_field))
    queues = []
    for field, n in sets:
        mocks, results, done = _load_set(work, field, n, opts.tag)
        todo = opts.only if opts.only and field is None else range(min(n, mocks["z"].size))
        queues.append([(field, mocks, results, i) for i in todo if i not in done])
    os.chdir(work)  # bagpipes writes pipes/ under the directory it was imported in
    import bagpipes as pipes

    _use_planck18(pipes)
    pipes.utils.make_dirs()
    files = {}
    # alternate the sets (a mock, a field galaxy, ...) until both are done
    order = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
    for field, mocks, results, i in order:
        bands = tuple(str(b) for b in mocks.get("bands", BANDS))
        if bands not in files:
            files[bands] = _filter_files(work, bands)
        name = f"field{i}" if field else f"mock{i}"
        res = fit_one(pipes, files[bands], mocks["flux_mjy"][i], mocks["err_mjy"][i],
                      mocks["z"][i], name, opts.n_live, opts.n_networks, run=opts.tag)  # fmt: skip
        res["index"] = int(i)
        res["loadavg"] = open("/proc/loadavg").read().split()[0]
        with open(results, "a") as fh:  # one line per object, synced: a killed run keeps it
            fh.write(json.dumps(res) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
