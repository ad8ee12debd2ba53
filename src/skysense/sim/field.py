"""``write_field``: the whole simulated HELP-like field on disk, atomically.

Layout of ``out_dir``::

    manifest.json
    truth/objects.parquet          every object, true positions (epoch 2016.0) and fluxes (uJy)
    truth/catalogue_rows.parquet   every catalogue (and reference) row -> its true object
    truth/map_sources.parquet      every source injected into the maps (mJy)
    truth/galaxy_properties.parquet  SED parameters, mass, SFR, luminosities and sizes of the
                                     galaxies
    reference/gaia.parquet         Gaia-like stars, epoch 2016.0
    catalogues/<survey>.<ext>      pristine survey catalogues ...
    catalogues/<survey>.yaml       ... and their survey configurations (skysense.catalog.config)
    maps/<band>.fits               IMAGE and ERROR HDUs in mJy/beam with a TAN WCS
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from astropy.table import Table

from skysense import __version__
from skysense._atomic import atomic_dir
from skysense._dask import show_progress
from skysense.errors import InputError
from skysense.sim.maps import DEFAULT_MAPS, MapSpec, make_maps, map_sources
from skysense.sim.radio import DEFAULT_RADIO, RadioSpec, make_radio_catalogue, radio_config
from skysense.sim.sed import BANDS, EFFECTIVE_WAVELENGTH_UM, VEGA_TO_AB
from skysense.sim.shapes import galaxy_shapes
from skysense.sim.sky import TRUTH_EPOCH, simulate_sky, truth_table
from skysense.sim.surveys import (
    DEFAULT_SURVEYS,
    SurveyCatalogue,
    SurveySpec,
    make_reference_catalogue,
    make_survey_catalogue,
)

__all__ = ["write_field", "read_manifest", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"
#: Columns of the galaxy frame that are not model truth (in the objects table or positions).
_NOT_PROPERTIES = {"kind", "ra", "dec", "pmra", "pmdec"}
_REFERENCE_COLUMNS = [
    "source_id",
    "ra",
    "dec",
    "ra_error",
    "dec_error",
    "pmra",
    "pmdec",
    "pmra_error",
    "pmdec_error",
    "phot_g_mean_mag",
    "ref_epoch",
]


def _column_units(spec: SurveySpec) -> dict[str, str]:
    units = {spec.ra_column: "deg", spec.dec_column: "deg"}
    unit = "uJy" if spec.photometry == "flux" else "mag"
    for b in spec.bands:
        for col in (b.total, b.total_err, b.aperture, b.aperture_err):
            units[col] = unit
    if spec.shape_columns is not None:
        units[spec.shape_columns[0]] = "arcsec"
        units[spec.shape_columns[2]] = "deg"
    return units


def _write_catalogue(cat: SurveyCatalogue, directory: Path) -> Path:
    path = directory / cat.spec.file_name
    if cat.spec.format == "parquet":
        cat.table.to_parquet(path, index=False)
    elif cat.spec.format == "csv":
        cat.table.to_csv(path, index=False)
    else:
        table = Table.from_pandas(cat.table, units=_column_units(cat.spec))
        table.meta["SURVEY"] = cat.spec.name
        table.meta["EPOCH"] = cat.spec.epoch
        table.write(path, format="fits")
    with open(directory / f"{cat.spec.name}.yaml", "w", encoding="utf-8") as fh:
        fh.write(
            f"# {cat.spec.name}: simulated by skysense.sim (survey configuration);\n"
            "# position_error_arcsec is the 1-sigma scatter per coordinate.\n"
        )
        yaml.safe_dump(cat.config, fh, sort_keys=False)
    return path


def write_field(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    area_deg2: float = 1.0,
    center: tuple[float, float] = (150.1, 2.2),
    surveys: Sequence[SurveySpec] = DEFAULT_SURVEYS,
    maps: Sequence[MapSpec] = DEFAULT_MAPS,
    mag_limit: float = 26.0,
    star_density_deg2: float = 3000.0,
    noise: bool = True,
    progress: bool | None = None,
    radio: RadioSpec | None = DEFAULT_RADIO,
    sed_model: str = "sed",
) -> dict:
    """Simulate a field and write it under ``out_dir`` (replaced atomically when complete).

    Parameters
    ----------
    out_dir : path
        Output directory; an existing one is replaced only once the new field is complete.
    seed : int
        Field seed: identical inputs give identical files.
    area_deg2 : float, deg^2
        Exact solid angle of the square field (default 1 deg^2).
    center : (float, float), deg
        Field centre (ra, dec); default COSMOS-like (150.1, 2.2).
    surveys : sequence of SurveySpec
        Survey catalogues to write (default :data:`~skysense.sim.surveys.DEFAULT_SURVEYS`).
    maps : sequence of MapSpec
        Far-infrared maps to write (default :data:`~skysense.sim.maps.DEFAULT_MAPS`).
    mag_limit : float, AB mag
        Faintest simulated galaxy in suprime_i.
    star_density_deg2 : float, deg^-2
        Stars with 14 <= i < 24 per deg^2.
    noise : bool
        Add instrumental noise to the map images (False: noiseless signal).
    progress : bool, optional
        Show a progress bar (default: when SKYSENSE_PROGRESS allows and stderr is a terminal).
    radio : RadioSpec, optional
        Radio survey to write with its hosts as truth (:mod:`skysense.sim.radio`); None: none.
    sed_model : {"sed", "blackbody"}
        Galaxy SEDs (see :func:`skysense.sim.simulate_sky`); default the model family of
        :mod:`skysense.sed` through the real filter curves.

    Returns
    -------
    dict
        The manifest written to ``manifest.json``, plus ``timings_s`` (seconds per step; kept
        out of the file so that a seed always gives byte-identical manifests).

    Raises
    ------
    InputError
        On invalid parameters (seed, centre, area, duplicate survey or map names).
    """
    names = [s.name for s in surveys]
    if len(set(names)) != len(names):
        raise InputError(f"survey names must be unique, got {names}")
    bands = [m.band for m in maps]
    if len(set(bands)) != len(bands):
        raise InputError(f"map bands must be unique, got {bands}")
    for spec in surveys:
        spec.validate()
    t_start = time.perf_counter()
    from tqdm.auto import tqdm

    steps = 3 + len(surveys) + len(maps)
    bar = tqdm(
        total=steps,
        desc="sim field",
        unit="step",
        disable=not (show_progress() if progress is None else progress),
    )
    timings: dict[str, float] = {}

    def tick(label: str, t0: float) -> float:
        timings[label] = round(time.perf_counter() - t0, 3)
        bar.set_postfix_str(label)
        bar.update(1)
        return time.perf_counter()

    try:
        with atomic_dir(out_dir) as tmp:
            for sub in ("truth", "reference", "catalogues", "maps"):
                (tmp / sub).mkdir()
            t0 = time.perf_counter()
            sky = simulate_sky(
                seed=seed,
                area_deg2=area_deg2,
                center=center,
                mag_limit=mag_limit,
                star_density_deg2=star_density_deg2,
                sed_model=sed_model,
            )
            objects = truth_table(sky)
            objects.to_parquet(tmp / "truth" / "objects.parquet", index=False)
            t0 = tick("sky", t0)

            rows = []
            survey_manifest = {}
            for spec in surveys:
                cat = make_survey_catalogue(sky, spec)
                path = _write_catalogue(cat, tmp / "catalogues")
                rows.append(cat.rows)
                survey_manifest[spec.name] = {
                    "file": f"catalogues/{path.name}",
                    "config": f"catalogues/{spec.name}.yaml",
                    "format": spec.format,
                    "n_rows": len(cat.table),
                    "bands": [b.band for b in spec.bands],
                    **cat.meta,
                }
                t0 = tick(f"survey {spec.name}", t0)

            radio_manifest = None
            rcat = rtruth = None
            if radio is not None:
                rcat, rtruth = make_radio_catalogue(sky, radio)
            if rcat is not None and len(rcat):  # a field too small for any radio source has none
                rcat.to_csv(tmp / "catalogues" / f"{radio.name}.csv", index=False)
                rtruth.to_parquet(tmp / "truth" / "radio.parquet", index=False)
                with open(tmp / "catalogues" / f"{radio.name}_radio.yaml", "w") as fh:
                    yaml.safe_dump(radio_config(radio, f"{radio.name}.csv"), fh, sort_keys=False)
                radio_manifest = {
                    "file": f"catalogues/{radio.name}.csv",
                    "config": f"catalogues/{radio.name}_radio.yaml",
                    "band": radio.band,
                    "n_rows": len(rcat),
                    "truth": "truth/radio.parquet",
                }

            gaia = make_reference_catalogue(sky)
            gaia[_REFERENCE_COLUMNS].to_parquet(tmp / "reference" / "gaia.parquet", index=False)
            rows.append(
                pd.DataFrame(
                    {
                        "survey": pd.Series(["gaia"] * len(gaia), dtype="str"),
                        "source_id": gaia.source_id.astype(str).astype("str"),
                        "object_id": gaia.object_id.astype(np.int64),
                        "is_duplicate": np.zeros(len(gaia), bool),
                    }
                )
            )
            pd.concat(rows, ignore_index=True).to_parquet(
                tmp / "truth" / "catalogue_rows.parquet", index=False
            )
            t0 = tick("reference", t0)

            map_manifest = {}
            for spec in maps:
                sim_map = make_maps(sky, (spec,), noise=noise)[spec.band]
                sim_map.hdulist().writeto(tmp / "maps" / f"{spec.band}.fits")
                ny, nx = sim_map.image.shape
                map_manifest[spec.band] = {
                    "file": f"maps/{spec.band}.fits",
                    "fwhm_arcsec": float(spec.fwhm_arcsec),
                    "pixel_arcsec": float(spec.pixel_arcsec),
                    "unit": "mJy/beam",
                    "shape": [int(ny), int(nx)],
                    "noise_mjy_beam": float(spec.noise_mjy_beam),
                    "noise_edge_factor": float(spec.noise_edge_factor),
                    "noise_added": bool(noise),
                    "confusion_mjy_beam": round(sim_map.confusion_mjy_beam, 4),
                    "beam_area_pix": spec.beam_area_pix,
                }
                del sim_map
                t0 = tick(f"map {spec.band}", t0)
            map_sources(sky).to_parquet(tmp / "truth" / "map_sources.parquet", index=False)
            gal = sky.galaxies
            props = gal[[c for c in gal.columns if c not in _NOT_PROPERTIES
                         and not c.startswith("f_")]]  # fmt: skip
            shapes = galaxy_shapes(sky.seed, props["object_id"].to_numpy())  # DMU 3 truth
            props = props.assign(axis_ratio=shapes["axis_ratio"].to_numpy(),
                                 pa_deg=shapes["pa_deg"].to_numpy())  # fmt: skip
            props.to_parquet(tmp / "truth" / "galaxy_properties.parquet", index=False)

            manifest = {
                "seed": int(seed),
                "center_ra": sky.geometry.center_ra,
                "center_dec": sky.geometry.center_dec,
                "area_deg2": float(area_deg2),
                "epoch": TRUTH_EPOCH,
                "surveys": survey_manifest,
                "maps": map_manifest,
                **({"radio": radio_manifest} if radio_manifest else {}),
                "truth": {
                    "objects": "truth/objects.parquet",
                    "catalogue_rows": "truth/catalogue_rows.parquet",
                    "map_sources": "truth/map_sources.parquet",
                    "galaxy_properties": "truth/galaxy_properties.parquet",
                },
                "reference": "reference/gaia.parquet",
                "field": {
                    "shape": "square in the TAN plane of the centre",
                    "side_deg": sky.geometry.side_deg,
                    "polygon": sky.geometry.polygon(),
                    "mag_limit_suprime_i": float(mag_limit),
                    "star_density_deg2": float(star_density_deg2),
                    "sed_model": sed_model,
                    "n_galaxies": len(sky.galaxies),
                    "n_stars": len(sky.stars),
                    "n_reference": len(gaia),
                },
                "bands": {
                    b: {
                        "wavelength_um": EFFECTIVE_WAVELENGTH_UM[b],
                        "vega_to_ab": VEGA_TO_AB.get(b, 0.0),
                    }
                    for b in BANDS
                },
                **({"sed_grid": _grid_manifest()} if sed_model == "sed" else {}),
                "generator": {"package": "skysense", "version": __version__},
            }
            with open(tmp / MANIFEST_NAME, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2)
                fh.write("\n")
            tick("manifest", t0)
    finally:
        bar.close()
    manifest["timings_s"] = timings
    manifest["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    return manifest


def _grid_manifest() -> dict:
    """The simulator's model grid: its fingerprint and the physics packages it came from."""
    from skysense.sed.io import physics_provenance
    from skysense.sim.sedmodel import sim_model_grid

    return {
        "fingerprint": sim_model_grid(BANDS).fingerprint,
        "physics": list(physics_provenance()),
        "photometry": "model spectra through the astro-sedpy filter curves",
    }


def read_manifest(field_dir: str | os.PathLike) -> dict:
    """Load ``manifest.json`` of a field written by :func:`write_field`.

    Raises
    ------
    InputError
        When the directory holds no readable manifest.
    """
    path = Path(field_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise InputError("not a simulated field (no manifest.json)", path=field_dir) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg} at line {exc.lineno})", path=path) from None
    except UnicodeDecodeError as exc:  # a binary file: json never sees it, so no JSONDecodeError
        raise InputError(
            f"not a text file (byte {exc.start} is not UTF-8); expected JSON", path=path
        ) from None
    if not isinstance(manifest, dict):
        raise InputError("not a field manifest (expected a JSON object)", path=path)
    return manifest
