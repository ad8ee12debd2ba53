"""The field configuration of a simulated field (:func:`skysense.sim.write_field`).

:func:`write_sim_config` writes ``FIELD.yaml`` naming the field's survey configurations,
reference, maps and truth, plus a spectroscopic training set ``specz.parquet`` drawn from the
truth (a random part of the galaxies brighter than i = 24, true positions and redshifts, as a
redshift survey would deliver). It is the same file a user writes for a real field
(``examples/field.yaml``) with other file names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path, atomic_write_text
from skysense.photometry import mag_to_flux_ujy

__all__ = ["write_sim_config", "write_training_set", "training_set_path"]

_BANDS = ["megacam_u", "megacam_g", "megacam_r", "suprime_i", "ukidss_j", "ukidss_k", "irac_i1"]
# Merge priority: the deep optical detection first, IRAC (less precise positions) last.
_ORDER = ["suprime", "cfhtls", "ukidss", "swire"]


def write_training_set(
    field_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fraction: float = 0.5,
    i_max: float = 24.0,
    random_state: int = 0,
) -> int:
    """Write a simulated redshift survey of the field: ``specz_id, ra, dec, zspec``.

    Parameters
    ----------
    field_dir : path
        A simulated field.
    out : path
        Parquet file written (atomically).
    fraction : float
        Fraction of the galaxies brighter than ``i_max`` observed.
    i_max : float, AB mag
        Magnitude limit in suprime_i (true flux).
    random_state : int

    Returns
    -------
    int
        Number of redshifts written.
    """
    objects = pd.read_parquet(Path(field_dir) / "truth" / "objects.parquet")
    flux_limit_ujy = float(mag_to_flux_ujy(i_max)[0])
    pool = objects[(objects["kind"] == "galaxy") & (objects["f_suprime_i"] > flux_limit_ujy)]
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(len(pool), size=int(round(fraction * len(pool))), replace=False))
    sample = pool.iloc[pick]
    table = pd.DataFrame(
        {
            "specz_id": np.arange(1, len(sample) + 1),
            "ra": sample["ra"].to_numpy(),
            "dec": sample["dec"].to_numpy(),
            "zspec": sample["z"].to_numpy(),
        }
    )
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    return len(table)


def training_set_path(config: str | os.PathLike) -> Path:
    """The spectroscopic training set :func:`write_sim_config` writes beside the field
    configuration ``config``: ``specz.parquet`` in its folder."""
    return Path(config).parent / "specz.parquet"


def write_sim_config(
    field_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    db: str = "vo.duckdb",
    work_dir: str = "pipeline",
    prior_cut: str = "f_irac_i1 > 20",
    samples: int = 200,
    chains: int = 2,
    gpz_m: int = 50,
    gpz_max_iter: int = 200,
) -> Path:
    """Write the field configuration (and ``specz.parquet`` beside it) for a simulated field.

    Parameters
    ----------
    field_dir : path
        A field written by :func:`skysense.sim.write_field`.
    out : path
        The YAML file; relative file names in it are relative to its folder.
    db : str
        VO database (file relative to ``out``'s folder, or a PostgreSQL URL).
    work_dir : str
        Work folder of the pipeline (relative to ``out``'s folder).
    prior_cut : str
        XID+ prior selection on the masterlist.
    samples, chains : int
        XID+ posterior samples (and as many warm-up draws) and chains.
    gpz_m, gpz_max_iter : int
        GPz basis functions and iterations.

    Returns
    -------
    Path
        ``out``.
    """
    from skysense.sim import read_manifest  # the simulator is heavy to import; needed here only

    field = Path(field_dir).resolve()
    manifest = read_manifest(field)
    out = Path(out)
    base = out.parent.resolve()
    base.mkdir(parents=True, exist_ok=True)

    def rel(p: Path) -> str:
        return os.path.relpath(p, base)

    n_z = write_training_set(field, training_set_path(base / out.name))
    surveys = sorted(manifest.get("surveys") or {}, key=lambda s: (_ORDER + [s]).index(s))
    survey_lines = []
    for s in surveys:
        line = f"  - config: {rel(field / manifest['surveys'][s]['config'])}"
        if s == "swire":
            line += "\n    radius_arcsec: 1.5            # IRAC positions are less precise"
        survey_lines.append(line)
    map_lines = [
        f"    - {{band: {band}, file: {rel(field / entry['file'])}}}"
        for band, entry in sorted((manifest.get("maps") or {}).items())
    ]
    bands = [
        b for b in _BANDS if any(b in (e.get("bands") or []) for e in manifest["surveys"].values())
    ]
    radio = manifest.get("radio")
    radio_text = (
        f"radio:                             # radio IDs by likelihood ratio\n"
        f"  config: {rel(field / radio['config'])}\n"
        if radio
        else ""
    )
    text = f"""\
# Field configuration of `skysense pipeline run`, written by skysense.pipeline.write_sim_config
# for the simulated field {rel(field)} (seed {manifest.get("seed")}, {manifest.get("area_deg2")} deg^2).
# File names are relative to this file. See docs/configuration.md.
field:
  name: sim-cosmos
  center: [{manifest["center_ra"]:.4f}, {manifest["center_dec"]:.4f}]   # deg
  radius_deg: 1.0                  # XID+ priors are taken within this radius of the centre
work_dir: {work_dir}               # step outputs, records and the run summary
reference: {rel(field / manifest.get("reference", "reference/gaia.parquet"))}   # Gaia-like: astrometry, star flags
surveys:                           # merge priority: first is highest
{chr(10).join(survey_lines)}
prepare:
  moc_order: 10
merge:
  radius_arcsec: 0.8
  same_filter_rule: priority
xid:
  priors:
    cut: "{prior_cut}"             # on masterlist columns (uJy)
  maps:
{chr(10).join(map_lines)}
  sources_per_tile: 300
  samples: {samples}
  warmup: {samples}
  chains: {chains}
  seed: 1
photoz:
  training:                        # {n_z} simulated spectroscopic redshifts
    file: specz.parquet
    ra: ra
    dec: dec
    z: zspec
    radius_arcsec: 1.0
  bands: [{", ".join("m_" + b for b in bands)}]
  errors: [{", ".join("merr_" + b for b in bands)}]
  m: {gpz_m}
  max_iter: {gpz_max_iter}
  seed: 0
{radio_text}publish:
  db: {db}
  schema: help
truth: {rel(field)}                # simulated field: the run summary is checked against it
"""
    atomic_write_text(out, text)
    return out
