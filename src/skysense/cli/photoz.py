"""``skysense photoz ...``: train a GPz photo-z model, apply it to a catalogue, evaluate it."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from skysense.cli._common import add_area, add_scheduler_option, add_verb
from skysense.errors import InputError

__all__ = ["register"]


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v for v in value.replace(",", " ").split() if v]


def _add_reading(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--names",
        metavar="A,B,...",
        help="column names for a whitespace text catalogue whose header is missing or wrong",
    )


def register(subparsers) -> None:
    verbs = add_area(subparsers, "photoz", "photometric redshifts with sparse Gaussian processes")

    p = add_verb(verbs, "train", _train, "train a GPz model on galaxies with known redshifts")
    p.add_argument("catalog", metavar="CATALOG", help="CSV, FITS, Parquet, HDF5 or text")
    p.add_argument("--target", default="zspec", help="redshift column (default: zspec)")
    p.add_argument("--bands", nargs="+", required=True, metavar="COL", help="band columns")
    p.add_argument("--errors", nargs="+", metavar="COL", help="error columns, one per band")
    p.add_argument("--kind", choices=("mag", "flux"), default="mag", help="band columns hold")
    p.add_argument("--flux-unit", default="uJy", choices=("nJy", "uJy", "mJy", "Jy"))
    p.add_argument(
        "--missing-values",
        nargs="*",
        type=float,
        default=[99.0, -99.0],
        metavar="V",
        help="sentinels meaning 'no measurement' (default: 99 -99)",
    )
    p.add_argument("--m", type=int, default=100, help="number of basis functions (default 100)")
    p.add_argument(
        "--covariance",
        default="VD",
        choices=("GL", "VL", "GD", "VD", "GC", "VC"),
        help="basis covariance (default VD)",
    )
    p.add_argument("--homoscedastic", action="store_true", help="constant noise")
    p.add_argument("--no-linear-mean", action="store_true", help="no linear mean term")
    p.add_argument(
        "--weights", default="none", choices=("none", "balanced", "normalized"), help="cost weights"
    )
    p.add_argument("--max-iter", type=int, default=200)
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="keep the raw predictive variance (default: scaled so that 68.27%% of the "
        "validation galaxies lie within 1 sigma, when they show a significant miscalibration)",
    )
    p.add_argument(
        "--split",
        nargs=3,
        type=float,
        default=[0.8, 0.1, 0.1],
        metavar=("TRAIN", "VALID", "TEST"),
        help="random split fractions (default 0.8 0.1 0.1); validation picks the stopping point",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    _add_reading(p)

    p = add_verb(verbs, "predict", _predict, "add zphot, zphot_err columns to a catalogue")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("catalog", metavar="CATALOG")
    p.add_argument("--out", required=True, metavar="FILE", help=".parquet, .csv or .fits")
    p.add_argument(
        "--bands", nargs="+", metavar="COL", help="check that these are the model's bands"
    )
    p.add_argument("--partition-rows", type=int, default=200_000, help="rows per Dask task")
    _add_reading(p)
    add_scheduler_option(p)

    p = add_verb(verbs, "evaluate", _evaluate, "metrics and plots on galaxies with known z")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("catalog", metavar="CATALOG")
    p.add_argument("--target", default=None, help="redshift column (default: the model's)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for metrics and PNGs")
    _add_reading(p)


def _train(args) -> int:
    from skysense.photoz.io import read_catalogue, save_model
    from skysense.photoz.training import train_model

    source = str(args.catalog)
    frame = read_catalogue(args.catalog, names=_names(args.names))
    model = train_model(
        frame,
        args.bands,
        target=args.target,
        errors=args.errors,
        kind=args.kind,
        flux_unit=args.flux_unit,
        missing_values=args.missing_values,
        split=args.split,
        seed=args.seed,
        source=source,
        m=args.m,
        covariance=args.covariance,
        heteroscedastic=not args.homoscedastic,
        linear_mean=not args.no_linear_mean,
        weights=args.weights,
        max_iter=args.max_iter,
        calibrate=not args.no_calibrate,
    )
    save_model(model, args.out)
    info = model.info
    shown = info.get("test_metrics", {})
    print(
        f"trained on {info['n_train']} galaxies ({info['n_valid']} validation) in "
        f"{info['train_seconds']:.1f} s, "
        f"{info['n_iter']} iterations (kept {info['best_iteration']}); "
        f"sigma scale {math.sqrt(info['variance_scale']):.3f} (validation); "
        + (
            f"test: sigma_NMAD={shown['sigma_nmad']:.4f} outliers={shown['outlier_fraction']:.4f} "
            f"1-sigma coverage={shown['coverage_1sigma']:.3f}; "
            if shown
            else ""
        )
        + f"model written to {args.out}"
    )
    return 0


def _predict(args) -> int:
    from skysense.photoz.engine import predict_catalogue
    from skysense.photoz.io import load_model

    model = load_model(args.model)
    if args.bands is not None:
        unseen = [b for b in args.bands if b not in model.bands]
        if unseen:
            raise InputError(
                f"band(s) {unseen} were never seen by the model, which was trained on "
                f"{model.bands}; train a model with those bands"
            )
    result = predict_catalogue(
        model,
        args.catalog,
        args.out,
        names=_names(args.names),
        partition_rows=args.partition_rows,
        scheduler=args.scheduler,
    )
    print(
        f"{result['n_rows']} rows, {result['n_predicted']} predicted, {result['n_flagged']} "
        f"flagged (zphot_flag=1, NaN) -> {result['out']}"
    )
    return 0


def _evaluate(args) -> int:
    from skysense._atomic import atomic_write_text
    from skysense.photoz import metrics
    from skysense.photoz.io import load_model, read_catalogue
    from skysense.photoz.plots import plot_pit, plot_zspec_zphot
    from skysense.photoz.training import target_values

    model = load_model(args.model)
    source = str(args.catalog)
    frame = read_catalogue(args.catalog, names=_names(args.names))
    target = args.target or model.target
    y = target_values(frame, target, source)
    pred = model.predict_frame(frame, source=source)
    summary = metrics.summary(y, pred["zphot"].to_numpy(), pred["zphot_err"].to_numpy())
    summary["catalogue"] = source
    summary["model"] = str(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    plot_zspec_zphot(y, pred["zphot"].to_numpy(), out / "zspec_zphot.png")
    plot_pit(y, pred["zphot"].to_numpy(), pred["zphot_err"].to_numpy(), out / "pit.png")
    print(
        f"{summary['n']} galaxies: sigma_NMAD={summary['sigma_nmad']:.4f} "
        f"outliers={summary['outlier_fraction']:.4f} bias={summary['bias_mean']:+.5f} "
        f"coverage 1/2 sigma={summary['coverage_1sigma']:.3f}/{summary['coverage_2sigma']:.3f} "
        f"CRPS={summary['crps_mean']:.5f} -> {out}",
        file=sys.stdout,
    )
    return 0
