"""The steps of the HELP workflow, built from a :class:`~skysense.pipeline.config.PipelineConfig`.

``prepare:<survey>`` (one per survey) -> ``merge`` -> ``priors`` -> ``xid`` ->
``photoz_train`` -> ``photoz_apply`` -> ``sed`` -> ``publish`` -> ``summary``. Each calls the public API
of its area (:mod:`skysense.catalog`, :mod:`skysense.xid`, :mod:`skysense.photoz`,
:mod:`skysense.vo`) and writes into its own part of the work folder atomically; the XID+ tiles
are kept between interrupted attempts of the same step (same key), as ``xid fit-tiles`` does.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from skysense._atomic import atomic_path, atomic_write_text
from skysense._dask import show_progress
from skysense.errors import ConfigError, InputError
from skysense.pipeline.config import PipelineConfig
from skysense.pipeline.runner import Step, StepContext

__all__ = ["build_steps", "PUBLISH_RECORD_KIND"]

#: Kind of the record the publish step leaves in the VO database (key = schema).
PUBLISH_RECORD_KIND = "pipeline"


def _rel(ctx: StepContext, path: str | os.PathLike) -> str:
    return os.path.relpath(Path(path), ctx.work_dir)


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# -- prepare ---------------------------------------------------------------------------------


def _prepare(ctx: StepContext, *, cfg: PipelineConfig, config: Path, survey: str) -> dict:
    from skysense.catalog.prepare_io import prepare_survey, write_prepared

    opts = cfg.section("prepare")
    result = prepare_survey(config, reference=cfg.reference, moc_order=opts["moc_order"])
    paths = write_prepared(result, ctx.path("prepare", f"{survey}.parquet"))
    counts = result.provenance["counts"]
    astro = result.provenance.get("astrometry") or {}
    message = (
        f"{counts['read']} rows read, {counts['duplicates_removed']} duplicates removed, "
        f"{counts['final']} written"
    )
    if astro:
        message += (
            f"; astrometry offset ({astro['dra_cosdec_arcsec']:+.3f}, "
            f"{astro['ddec_arcsec']:+.3f}) arcsec"
        )
    return {
        "outputs": {k: _rel(ctx, v) for k, v in paths.items()},
        "summary": {"counts": counts, "astrometry": astro},
        "message": message,
    }


# -- merge -----------------------------------------------------------------------------------


def _merge(ctx: StepContext, *, cfg: PipelineConfig, surveys: list[tuple[str, object]]) -> dict:
    from skysense.catalog.merge_config import parse_merge_config
    from skysense.catalog.merge_io import run_merge

    m = cfg.section("merge")
    cats = []
    for survey, entry in surveys:
        item = {
            "file": str(ctx.output(f"prepare:{survey}", "table")),
            "survey": survey,
            "moc": str(ctx.output(f"prepare:{survey}", "moc")),
        }
        if entry.radius_arcsec is not None:
            item["radius_arcsec"] = entry.radius_arcsec
        if entry.position_error_arcsec is not None:
            item["position_error_arcsec"] = entry.position_error_arcsec
        cats.append(item)
    raw = {
        "catalogues": cats,
        "radius_arcsec": m["radius_arcsec"],
        "search_radius_arcsec": m["search_radius_arcsec"],
        "same_filter_rule": m["same_filter_rule"],
        "bayes": m["bayes"],
        "field": cfg.name,
        "output": {"name": "masterlist", "partition_rows": m["partition_rows"]},
    }
    merge_cfg = parse_merge_config(raw, path=cfg.path, base_dir=ctx.work_dir)
    out = ctx.path("merge")
    res = run_merge(
        merge_cfg, out, scheduler=ctx.scheduler, tiled=m["tiled"], progress=show_progress()
    )
    radii = ", ".join(f"{r:g}" for r in res["radii_arcsec"])
    return {
        "outputs": {
            "masterlist": _rel(ctx, out / "masterlist"),
            "associations": _rel(ctx, out / "associations"),
            "provenance": _rel(ctx, out / "provenance.json"),
        },
        "summary": {"n_objects": res["n_objects"], "radii_arcsec": res["radii_arcsec"]},
        "message": f"{res['n_objects']} objects (radii {radii} arcsec)",
    }


def _read_masterlist(ctx: StepContext) -> pd.DataFrame:
    from skysense.catalog.hats_io import read_hats_table

    return read_hats_table(ctx.output("merge", "masterlist"))


# -- radio IDs -------------------------------------------------------------------------------


def _radio(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.catalog.radio.config import load_radio_config
    from skysense.catalog.radio.io import run_radio_id

    config = load_radio_config(cfg.base_dir / cfg.section("radio")["config"])
    out = ctx.path("radio")
    s = run_radio_id(config, ctx.output("merge", "masterlist"), out, scheduler=ctx.scheduler,
                     progress=show_progress())  # fmt: skip
    keys = ("band", "n_radio", "n_ids", "q0", "threshold_lr", "completeness", "reliability",
            "expected_false_ids")  # fmt: skip
    return {
        "outputs": {k: _rel(ctx, v) for k, v in s["outputs"].items()},
        "summary": {k: s[k] for k in keys},
        "message": f"{s['n_ids']} of {s['n_radio']} radio sources identified "
        f"(Q0 {s['q0']:.2f}, {s['expected_false_ids']:.1f} expected false)",
    }


def _with_radio(ctx: StepContext, ml: pd.DataFrame) -> pd.DataFrame:
    """The masterlist with the radio step's columns (joined on help_id)."""
    from skysense.catalog.hats_io import read_hats_table

    radio = read_hats_table(ctx.output("radio", "masterlist"))
    cols = [c for c in radio.columns if c not in ml.columns or c == "help_id"]
    radio = radio[cols].assign(help_id=radio["help_id"].astype(str))
    return ml.assign(help_id=ml["help_id"].astype(str)).merge(radio, on="help_id", how="left")


# -- XID+ priors and fit ---------------------------------------------------------------------


def _priors(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.catalog.cuts import cut_columns, evaluate_cut

    ml = _read_masterlist(ctx)
    source = str(ctx.output("merge", "masterlist"))
    cut = cfg.section("xid")["priors"]["cut"]
    cols = cut_columns(cut)
    for c in cols:
        if c not in ml.columns:
            from skysense.catalog.config import did_you_mean

            raise InputError(
                f"xid.priors.cut names column {c!r}, not in the masterlist"
                + did_you_mean(c, [k for k in ml.columns if not k.startswith("_")]),
                path=source,
                column=c,
            )
    keep = evaluate_cut(cut, {c: _numeric(ml, c) for c in cols}, len(ml))
    field = cfg.section("field")
    ra, dec = ml["ra"].to_numpy(float), ml["dec"].to_numpy(float)
    if field["center"] is not None:
        from astropy.coordinates import SkyCoord

        centre = SkyCoord(*field["center"], unit="deg")
        sep = SkyCoord(ra, dec, unit="deg").separation(centre).deg
        keep &= sep <= field["radius_deg"]
    if cfg.field_moc is not None:
        import astropy.units as u

        from skysense.xid.io import read_moc

        keep &= read_moc(cfg.field_moc).contains_lonlat(ra * u.deg, dec * u.deg)
    if not keep.any():
        raise InputError(f"no masterlist object passes the prior cut {cut!r}", path=source)
    prior = pd.DataFrame(
        {"id": ml["help_id"].astype(str).to_numpy()[keep], "ra": ra[keep], "dec": dec[keep]}
    )
    for c in cols:
        prior[c] = _numeric(ml, c)[keep]
    out = ctx.path("priors.parquet")
    with atomic_path(out) as tmp:
        prior.to_parquet(tmp, index=False)
    return {
        "outputs": {"priors": _rel(ctx, out)},
        "summary": {"n_priors": len(prior), "n_masterlist": len(ml)},
        "message": f"{len(prior)} of {len(ml)} masterlist objects selected by {cut!r}",
    }


def _xid(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.xid.engine import fit_tiles
    from skysense.xid.io import read_fit_inputs

    x = cfg.section("xid")
    out = ctx.path("xid")
    marker = out / ".key"
    # Finished tiles are reused only by a retry of the same step (same key): anything else
    # (new priors, maps or settings) starts the folder afresh.
    if out.exists() and (not marker.is_file() or marker.read_text().strip() != ctx.key):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, ctx.key)
    inp = read_fit_inputs(
        [m.file for m in cfg.maps],
        [m.band for m in cfg.maps],
        ctx.output("priors", "priors"),
        noise=[m.noise for m in cfg.maps],
        moc=cfg.field_moc,
        id_column="id",
    )
    cat = fit_tiles(
        inp.maps,
        inp.prior,
        out,
        sources_per_tile=x["sources_per_tile"],
        scheduler=ctx.scheduler,
        **inp.fit_kwargs(),
        sampler=x["sampler"],
        n_samples=x["samples"],
        n_warmup=x["warmup"],
        n_chains=x["chains"],
        random_state=x["seed"],
        flux_kind=x["flux_prior"],
    )
    flags = [c for c in cat.columns if c.startswith("flag_xid_")]
    n_flagged = int(sum(cat[c].fillna(False).astype(bool).sum() for c in flags))
    n_tiles = int(cat["xid_tile"].nunique()) if "xid_tile" in cat else 0
    bands = ", ".join(m.band for m in cfg.maps)
    return {
        "outputs": {
            "catalogue": _rel(ctx, out / "catalogue.parquet"),
            "catalogue_fits": _rel(ctx, out / "catalogue.fits"),
            "unfitted": _rel(ctx, out / "unfitted.csv"),
        },
        "summary": {"n_sources": len(cat), "n_tiles": n_tiles, "n_flagged": n_flagged},
        "message": (
            f"{len(cat)} prior sources fitted in {bands} over {n_tiles} tiles; "
            f"{n_flagged} source-band(s) flagged"
        ),
    }


# -- photo-z ---------------------------------------------------------------------------------


def _training_frame(ctx: StepContext, cfg: PipelineConfig, ml: pd.DataFrame) -> pd.DataFrame:
    """Masterlist rows matched to the training set, with the training redshift ``zspec``."""
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    from skysense.photoz.io import read_catalogue

    t = cfg.section("photoz")["training"]
    path = cfg.training
    train = read_catalogue(path)
    for key in ("ra", "dec", "z"):
        if t[key] not in train.columns:
            from skysense.catalog.config import did_you_mean

            raise InputError(
                f"no column {t[key]!r} (photoz.training.{key})"
                + did_you_mean(t[key], train.columns),
                path=path,
                column=t[key],
            )
    z = _numeric(train, t["z"])
    tra, tdec = _numeric(train, t["ra"]), _numeric(train, t["dec"])
    ok = np.isfinite(z) & np.isfinite(tra) & np.isfinite(tdec)
    train_c = SkyCoord(tra[ok], tdec[ok], unit="deg")
    ml_c = SkyCoord(ml["ra"].to_numpy(float), ml["dec"].to_numpy(float), unit="deg")
    idx, sep, _ = match_coordinates_sky(train_c, ml_c)
    hit = sep.arcsec <= t["radius_arcsec"]
    matched = pd.DataFrame(
        {"row": idx[hit], "zspec": z[ok][hit], "sep_arcsec": sep.arcsec[hit]}
    ).sort_values("sep_arcsec")
    matched = matched.drop_duplicates("row")  # one training redshift per object: the nearest
    frame = ml.iloc[matched["row"].to_numpy()].reset_index(drop=True)
    frame["zspec"] = matched["zspec"].to_numpy()
    frame.attrs["n_training"] = int(ok.sum())
    return frame


def _photoz_train(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.photoz.io import load_model, save_model
    from skysense.photoz.preprocess import band_matrix
    from skysense.photoz.training import train_model

    p = cfg.section("photoz")
    ml = _read_masterlist(ctx)
    out = ctx.path("photoz", "model")
    training_out = ctx.path("photoz", "training.parquet")
    if cfg.model is not None:
        model = load_model(cfg.model)
        model.check_columns(ml.columns, str(ctx.output("merge", "masterlist")))
        save_model(model, out)
        with atomic_path(training_out) as tmp:
            pd.DataFrame({"help_id": pd.Series([], dtype=str), "zspec": []}).to_parquet(tmp)
        return {
            "outputs": {"model": _rel(ctx, out), "training": _rel(ctx, training_out)},
            "summary": {"loaded": str(cfg.model)},
            "message": f"loaded the model {cfg.model}",
        }
    frame = _training_frame(ctx, cfg, ml)
    bands, errors = list(p["bands"]), None if p["errors"] is None else list(p["errors"])
    X, _ = band_matrix(frame, bands, errors, source=str(cfg.training))
    usable = np.isfinite(X).any(axis=1)  # objects with no measured band cannot be trained on
    if usable.sum() < 2 * p["m"]:
        raise InputError(
            f"only {int(usable.sum())} training objects match the masterlist within "
            f"{p['training']['radius_arcsec']} arcsec; GPz with m={p['m']} needs at least "
            f"{2 * p['m']}",
            path=cfg.training,
        )
    model = train_model(
        frame[usable].reset_index(drop=True),
        bands,
        errors=errors,
        target="zspec",
        split=(1.0 - p["valid_fraction"], p["valid_fraction"], 0.0),
        seed=p["seed"],
        source=str(cfg.training),
        m=p["m"],
        covariance=p["covariance"],
        max_iter=p["max_iter"],
        verbose=int(show_progress()),
    )
    info = {"n_training_set": frame.attrs["n_training"], "n_matched": int(len(frame))}
    info |= model.info
    model.info = info
    save_model(model, out)
    used = frame.loc[usable, ["help_id", "zspec"]].copy()
    used["help_id"] = used["help_id"].astype(str)
    with atomic_path(training_out) as tmp:
        used.to_parquet(tmp, index=False)
    vm = info.get("valid_metrics", {})
    message = f"trained GPz on {info['n_train']} galaxies ({info['n_valid']} validation)"
    if vm:
        message += f"; validation sigma_NMAD={vm['sigma_nmad']:.4f}"
    return {
        "outputs": {"model": _rel(ctx, out), "training": _rel(ctx, training_out)},
        "summary": info,
        "message": message,
    }


def _photoz_apply(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.photoz.engine import predict_hats, predict_partitions
    from skysense.photoz.io import load_model
    from skysense.photoz.model import FLAG_OK

    rows = cfg.section("photoz")["partition_rows"]
    model = load_model(ctx.output("photoz_train", "model"))
    src = ctx.output("merge", "masterlist")
    out = ctx.path("photoz", "masterlist_photoz.parquet")
    if src.is_dir():
        # A HATS masterlist: predicted partition by partition on Dask (the driver never holds
        # the masterlist), then the partitions copied into the one Parquet file that the later
        # steps read, batch by batch, in read_hats_table's row order (the same rows, columns
        # and values as predicting the whole table in the driver).
        scratch = ctx.path("photoz", ".masterlist_photoz.hats")
        try:
            r = predict_hats(model, src, scratch, scheduler=ctx.scheduler, batch_rows=rows)
            _concat_hats(scratch, out, rows, metadata_from=src)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        n_rows, n_ok = r["n_rows"], r["n_predicted"]
    else:
        ml = _read_masterlist(ctx)
        parts = [ml.iloc[s : s + rows] for s in range(0, max(len(ml), 1), rows)]
        result = predict_partitions(model, parts, scheduler=ctx.scheduler, source=str(src))
        with atomic_path(out) as tmp:
            result.to_parquet(tmp, index=False)
        n_rows, n_ok = len(result), int((result["zphot_flag"] == FLAG_OK).sum())
    return {
        "outputs": {"masterlist": _rel(ctx, out)},
        "summary": {"n_rows": n_rows, "n_predicted": n_ok},
        "message": f"{n_ok} of {n_rows} objects have a photo-z",
    }


def _concat_hats(src: Path, out: Path, batch_rows: int, metadata_from: Path) -> None:
    """The rows of the HATS catalogue ``src`` in one Parquet file ``out`` (atomically), in
    :func:`~skysense.catalog.hats_io.hats_files` order, ``batch_rows`` at a time; the schema
    metadata (pandas dtypes) of the HATS catalogue ``metadata_from``'s first partition."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skysense.catalog.hats_io import hats_files

    files = hats_files(src)
    # As read_hats_table: partitions' types promoted to a common schema.
    schema = pa.unify_schemas(
        [pq.read_schema(f).remove_metadata() for f in files], promote_options="permissive"
    )
    # pandas reads back the masterlist's dtypes (e.g. help_id's string dtype), as when the
    # in-driver frame, read with that metadata, was written by pandas.
    schema = schema.with_metadata(pq.read_schema(hats_files(metadata_from)[0]).metadata)
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
                writer.write_table(pa.Table.from_batches([batch]).select(schema.names).cast(schema))


# -- SED fits --------------------------------------------------------------------------------


def _sed(ctx: StepContext, *, cfg: PipelineConfig) -> dict:
    from skysense.sed.engine import run_pipeline_sed

    p = cfg.section("sed")
    has_photoz = "photoz_apply" in ctx.records
    ml = (
        pd.read_parquet(ctx.output("photoz_apply", "masterlist"))
        if has_photoz
        else _read_masterlist(ctx)
    )
    xid = pd.read_parquet(ctx.output("xid", "catalogue")) if "xid" in ctx.records else None
    s = run_pipeline_sed(cfg.base_dir / p["grid"], ml, xid, ctx.path("sed"),
                         cache_dir=cfg.work_dir / "sed_grids", z_columns=p["z_columns"],
                         chunk_rows=p["chunk_rows"], eb_threshold=p["eb_threshold"],
                         scheduler=ctx.scheduler)  # fmt: skip
    outputs = {k: _rel(ctx, s.pop(k)) for k in ("properties", "spectra")}
    return {"outputs": outputs, "summary": s,
            "message": f"{s['n_fitted']} of {s['n_objects']} objects fitted"}  # fmt: skip


# -- publish ---------------------------------------------------------------------------------


def _published(record: dict, *, cfg: PipelineConfig) -> bool:
    from skysense.vo.backends import open_backend

    if not cfg.db:
        return False
    backend = open_backend(cfg.db, create=False)
    try:
        doc = backend.get_record(PUBLISH_RECORD_KIND, cfg.section("publish")["schema"])
    finally:
        backend.close()
    return doc is not None and doc.get("key") == record.get("key")


def _link_xid(backend, masterlist: str, xid: str) -> None:
    """DataLink per-source links between the masterlist and XID+ rows (by help_id)."""
    from skysense.vo.datalink import declare_links

    declare_links(
        backend,
        masterlist,
        [
            {
                "semantics": "#auxiliary",
                "description": "XID+ far-infrared fluxes of this source",
                "table": xid,
                "column": "help_id",
            }
        ],
        replace=False,
    )
    declare_links(
        backend,
        xid,
        [
            {
                "semantics": "#progenitor",
                "description": "The masterlist row of this XID+ prior",
                "table": masterlist,
                "column": "help_id",
            }
        ],
        replace=False,
    )


def _publish_frame(backend, frame, name: str, description: str, meta, ra: str, dec: str) -> None:
    """Publish one table of the run (its positions in ``ra``/``dec``), tagged with its name."""
    import pyarrow as pa

    from skysense.vo.publish import publish_arrow

    table = pa.Table.from_pandas(frame, preserve_index=False)
    publish_arrow(backend, table, name, description=description, meta=meta, ra=ra, dec=dec,
                  source=name)  # fmt: skip


def _publish(ctx: StepContext, *, cfg: PipelineConfig, surveys: list[str]) -> dict:
    import warnings

    from skysense.pipeline.metadata import masterlist_meta, xid_meta
    from skysense.vo.backends import open_backend

    p = cfg.section("publish")
    schema = p["schema"]
    has_photoz = "photoz_apply" in ctx.records
    ml = (
        pd.read_parquet(ctx.output("photoz_apply", "masterlist"))
        if has_photoz
        else _read_masterlist(ctx)
    )
    ml = ml.drop(columns=[c for c in ml.columns if c.startswith("_")])
    ml["help_id"] = ml["help_id"].astype(str)
    if "radio" in ctx.records:
        ml = _with_radio(ctx, ml)
    tables, maps = [], []
    backend = open_backend(cfg.db)
    try:
        name = f"{schema}.{p['masterlist_table']}"
        text = f"HELP masterlist of {cfg.name}: {len(ml)} objects merged from {', '.join(surveys)}"
        if has_photoz:
            text += ", with GPz photometric redshifts (zphot, zphot_err)"
        _publish_frame(backend, ml, name, text, masterlist_meta(ml.columns, surveys), "ra", "dec")
        tables.append(name)
        if "xid" in ctx.records:
            cat = pd.read_parquet(ctx.output("xid", "catalogue"))
            cat["HELP_ID"] = cat["HELP_ID"].astype(str)
            if has_photoz:
                z = ml[["help_id", "zphot", "zphot_err", "zphot_flag"]]
                cat = cat.merge(z, left_on="HELP_ID", right_on="help_id", how="left")
                cat = cat.drop(columns=["help_id"])
            name = f"{schema}.{p['xid_table']}"
            bands = ", ".join(m.band for m in cfg.maps)
            cut = cfg.section("xid")["priors"]["cut"]
            text = f"XID+ de-blended fluxes in {bands} of {cfg.name} for the priors {cut!r}"
            if has_photoz:
                text += ", with the masterlist photo-z"
            _publish_frame(backend, cat, name, text, xid_meta(cat.columns), "RA", "Dec")
            tables.append(name)
            _link_xid(backend, f"{schema}.{p['masterlist_table']}", name)
        if "sed" in ctx.records:
            from skysense.sed.io import publish_sed_files

            tables += publish_sed_files(
                backend, ctx.output("sed", "properties"), ctx.output("sed", "spectra"),
                schema=schema, name=cfg.section("sed")["table"],
                masterlist=f"{schema}.{p['masterlist_table']}",
            )  # fmt: skip
        if p["maps"]:
            from skysense.vo.maps import publish_map

            for m in cfg.maps:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # FITS header fix-up chatter
                    publish_map(
                        backend,
                        m.file,
                        name=m.band,
                        description=f"{cfg.name} {m.band} map (input of XID+)",
                    )
                maps.append(m.band)
        backend.put_record(
            PUBLISH_RECORD_KIND, schema, {"key": ctx.key, "tables": tables, "maps": maps}
        )
    finally:
        backend.close()
    return {
        "outputs": {},
        "summary": {"db": cfg.relative(cfg.db), "tables": tables, "maps": maps},
        "message": f"published {', '.join(tables + [f'map {m}' for m in maps])}",
    }


# -- summary ---------------------------------------------------------------------------------


def _summary(ctx: StepContext, *, cfg: PipelineConfig, surveys: list[str]) -> dict:
    from skysense.pipeline.summary import truth_summary, write_summary

    counts = {
        name: {
            "message": rec.get("message", ""),
            "seconds": rec.get("timing", {}).get("seconds"),
            **(rec.get("summary") or {}),
        }
        for name, rec in ctx.records.items()
    }
    doc = {"field": cfg.name, "steps": counts}
    if cfg.truth is not None:
        ml_path = (
            ctx.output("photoz_apply", "masterlist")
            if "photoz_apply" in ctx.records
            else ctx.output("merge", "masterlist")
        )
        doc["truth"] = truth_summary(
            cfg.truth,
            masterlist=ml_path,
            surveys=surveys,
            xid=ctx.output("xid", "catalogue") if "xid" in ctx.records else None,
            training=(
                ctx.output("photoz_train", "training") if "photoz_train" in ctx.records else None
            ),
            bands=[m.band for m in cfg.maps],
            radio=ctx.output("radio", "summary").parent if "radio" in ctx.records else None,
            sed=ctx.output("sed", "properties") if "sed" in ctx.records else None,
        )
    paths = write_summary(doc, ctx.path("summary"))
    return {
        "outputs": {k: _rel(ctx, v) for k, v in paths.items()},
        "summary": doc.get("truth", {}),
        "message": f"run summary {_rel(ctx, paths['markdown'])}",
    }


# -- the plan --------------------------------------------------------------------------------


def build_steps(cfg: PipelineConfig) -> list[Step]:
    """The steps of ``cfg`` in dependency order (see the module docstring).

    Raises
    ------
    ConfigError
        A survey configuration is invalid, or two name the same survey.
    """
    from skysense.catalog.config import load_config

    ref = (cfg.reference,) if cfg.reference is not None else ()
    steps: list[Step] = []
    surveys: list[tuple[str, object]] = []
    for entry in cfg.surveys:
        sc = load_config(entry.config)
        if sc.survey in [s for s, _ in surveys]:
            raise ConfigError(f"survey {sc.survey!r} is listed twice", path=cfg.path, key="surveys")
        surveys.append((sc.survey, entry))
        steps.append(
            Step(
                f"prepare:{sc.survey}",
                functools.partial(_prepare, cfg=cfg, config=entry.config, survey=sc.survey),
                inputs=(entry.config, Path(sc.file_path), *ref),
                params={"prepare": cfg.section("prepare")},
                primary_input=cfg.relative(entry.config),
            )
        )
    names = [s for s, _ in surveys]
    merge_params = {
        "merge": cfg.section("merge"),
        "field": cfg.name,
        "surveys": [[s, e.radius_arcsec, e.position_error_arcsec] for s, e in surveys],
    }
    steps.append(
        Step(
            "merge",
            functools.partial(_merge, cfg=cfg, surveys=surveys),
            deps=tuple(f"prepare:{s}" for s in names),
            params=merge_params,
            primary_input="the prepared catalogues",
        )
    )
    final = ["merge"]
    radio = cfg.section("radio")
    if radio["config"]:
        from skysense.catalog.radio.config import load_radio_config

        rc = load_radio_config(cfg.base_dir / radio["config"])
        steps.append(
            Step(
                "radio",
                functools.partial(_radio, cfg=cfg),
                deps=("merge",),
                inputs=(cfg.base_dir / radio["config"], rc.file),
                params={"radio": radio},
                primary_input=cfg.relative(rc.file),
            )
        )
        final.append("radio")
    xid = cfg.section("xid")
    map_files = tuple(m.file for m in cfg.maps) + tuple(m.noise for m in cfg.maps if m.noise)
    if cfg.maps:
        priors = {"priors": xid["priors"], "field": cfg.section("field")}
        steps.append(
            Step(
                "priors",
                functools.partial(_priors, cfg=cfg),
                deps=("merge",),
                inputs=(cfg.field_moc,) if cfg.field_moc is not None else (),
                params=priors,
                primary_input="the masterlist",
            )
        )
        fit = {k: v for k, v in xid.items() if k not in ("priors", "maps")}
        fit["bands"] = [m.band for m in cfg.maps]
        steps.append(
            Step(
                "xid",
                functools.partial(_xid, cfg=cfg),
                deps=("priors",),
                inputs=map_files + ((cfg.field_moc,) if cfg.field_moc is not None else ()),
                params=fit,
                primary_input=", ".join(cfg.relative(m.file) for m in cfg.maps),
            )
        )
        final.append("xid")
    pz = cfg.section("photoz")
    if cfg.training is not None or cfg.model is not None:
        train_params = {k: v for k, v in pz.items() if k not in ("partition_rows",)}
        if cfg.model is not None:
            train_params = {"model": "given"}
        steps.append(
            Step(
                "photoz_train",
                functools.partial(_photoz_train, cfg=cfg),
                deps=("merge",),
                inputs=(cfg.model if cfg.model is not None else cfg.training,),
                params=train_params,
                primary_input=cfg.relative(cfg.model or cfg.training),
            )
        )
        steps.append(
            Step(
                "photoz_apply",
                functools.partial(_photoz_apply, cfg=cfg),
                deps=("photoz_train", "merge"),
                params={"partition_rows": pz["partition_rows"]},
                primary_input="the masterlist",
            )
        )
        final.append("photoz_apply")
    sed = cfg.section("sed")
    if sed["grid"]:
        steps.append(
            Step(
                "sed",
                functools.partial(_sed, cfg=cfg),
                deps=tuple(s for s in ("merge", "xid", "photoz_apply") if s in final),
                inputs=(cfg.base_dir / sed["grid"],),
                params={"sed": sed},
                primary_input=cfg.relative(cfg.base_dir / sed["grid"]),
            )
        )
        final.append("sed")
    if cfg.db is not None:
        pub = cfg.section("publish")
        steps.append(
            Step(
                "publish",
                functools.partial(_publish, cfg=cfg, surveys=names),
                deps=tuple(final),
                inputs=map_files if pub["maps"] else (),
                params={"publish": pub, "db": cfg.relative(cfg.db), "field": cfg.name},
                primary_input=cfg.relative(cfg.db),
                is_complete=functools.partial(_published, cfg=cfg),
            )
        )
        final.append("publish")
    truth_files = ()
    if cfg.truth is not None:
        truth_files = tuple(
            cfg.truth / "truth" / f
            for f in ("objects.parquet", "catalogue_rows.parquet", "map_sources.parquet")
            if (cfg.truth / "truth" / f).is_file()
        )
    steps.append(
        Step(
            "summary",
            functools.partial(_summary, cfg=cfg, surveys=names),
            deps=tuple(s.name for s in steps if s.name in final or s.name == "photoz_train"),
            inputs=truth_files,
            params={"truth": cfg.truth is not None},
            primary_input=cfg.relative(cfg.truth) if cfg.truth else "the step records",
        )
    )
    return steps
