"""``skysense photoz ...``: train a GPz photo-z model, apply it to a catalogue, evaluate it."""

from __future__ import annotations

from skysense.cli._common import SCHEDULER, add_area, keywords, split_names, verb

__all__ = ["register"]

_NAMES = """--names A,B,... | column names for a whitespace text catalogue whose header is missing
    or wrong"""
_TRAIN = """
catalog CATALOG | CSV, FITS, Parquet, HDF5 or text
--target str=zspec | redshift column (default: zspec)
--bands COL+ required | band columns
--errors COL+ | error columns, one per band
--kind {mag,flux}=mag | band columns hold
--flux-unit {nJy,uJy,mJy,Jy}=uJy
--missing-values V* float=99.0,-99.0 | sentinels meaning 'no measurement' (default: 99 -99)
--inputs {auto,colours,mag,colours+errors}=auto | model inputs: adjacent colours and the
    middle band's magnitude, the magnitudes, or the colours, middle magnitude and log10 errors
    (needs --errors); auto (default) fits each (colours+errors only with --errors) and
    keeps the best on the validation rows
--m int=100 | number of basis functions (default 100)
--covariance {auto,GL,VL,GD,VD,GC,VC}=auto | basis covariance; auto (default) fits GC and VD
    and keeps the better on the validation rows (GC won on SDSS, VD on DC2)
--homoscedastic flag | constant noise
--no-linear-mean flag | no linear mean term
--weights {auto,none,normalized,balanced}=none | GPz's cost weights; auto refits the
    chosen model with normalized weights, (1+z)^-2 like sigma_NMAD's dz/(1+z), and keeps the
    better on the validation rows; none is the seed's GPz
--max-iter int=200
--no-calibrate flag | keep the raw predictive variance (default: scaled so that 68.27%% of the
    validation galaxies lie within 1 sigma, when they show a significant miscalibration)
--split TRAIN VALID TEST float=0.8,0.1,0.1 | random split fractions (default 0.8 0.1 0.1);
    validation picks the stopping point
--seed int=0 | random seed (default 0)
--out MODEL required | model directory to write
"""
# the _TRAIN options passed on as they are, as keywords of photoz.training.train_model
_TRAIN_KW = (
    "target errors kind flux_unit missing_values inputs split seed m covariance weights max_iter"
)
_PREDICT = f"""
model MODEL
catalog CATALOG
--out FILE required | .parquet, .csv or .fits; a directory (HATS) when CATALOG is a HATS directory
--bands COL+ | check that these are the model's bands
--partition-rows int=200_000 | rows per Dask task
--keep-columns COL+ | HATS catalogues only: copy only these input columns (and the HATS
    position and index columns) beside the photo-z, e.g. help_id for a narrow photo-z table
    (default: all columns)
{_NAMES}
{SCHEDULER}
"""
_EVALUATE = """
model MODEL
catalog CATALOG
--target | redshift column (default: the model's)
--out DIR required | directory for metrics and PNGs
"""


def _train(args) -> str:
    from skysense.photoz.io import read_catalogue, save_model
    from skysense.photoz.training import describe_training, train_model

    frame = read_catalogue(args.catalog, names=split_names(args.names) or None)
    kw = keywords(args, _TRAIN_KW)
    kw.update(heteroscedastic=not args.homoscedastic, linear_mean=not args.no_linear_mean)
    kw.update(calibrate=not args.no_calibrate, source=str(args.catalog))
    model = train_model(frame, args.bands, **kw)
    save_model(model, args.out)
    return f"{describe_training(model.info)}; model written to {args.out}"


def _predict(args) -> str:
    from pathlib import Path

    from skysense.errors import InputError
    from skysense.photoz.engine import describe_prediction, predict_catalogue
    from skysense.photoz.io import load_model

    model = load_model(args.model)
    model.check_bands(args.bands)
    if Path(args.catalog).is_dir():
        from skysense.photoz.engine import predict_hats

        # A HATS catalogue (a masterlist): partition by partition into a HATS directory.
        keep = [c for v in args.keep_columns or [] for c in split_names(v)] or None
        r = predict_hats(model, args.catalog, args.out, scheduler=args.scheduler, columns=keep)
        return describe_prediction(r)
    if args.keep_columns:
        raise InputError("--keep-columns needs a HATS catalogue (a directory)", path=args.catalog)
    r = predict_catalogue(model, args.catalog, args.out, names=split_names(args.names) or None,
                          partition_rows=args.partition_rows, scheduler=args.scheduler)  # fmt: skip
    return describe_prediction(r)


def _evaluate(args) -> str:
    from pathlib import Path

    from skysense.photoz.io import evaluate_catalogue, load_model
    from skysense.photoz.metrics import describe_summary

    kw = {"target": args.target, "names": split_names(args.names) or None, "model_path": args.model}
    s = evaluate_catalogue(load_model(args.model), args.catalog, args.out, **kw)
    return f"{describe_summary(s)} -> {Path(args.out)}"


def register(subparsers) -> None:
    verbs = add_area(subparsers, "photoz", "photometric redshifts with sparse Gaussian processes")
    verb(verbs, "train", _train, "train a GPz model on galaxies with known redshifts", _TRAIN,
         _NAMES)  # fmt: skip
    verb(verbs, "predict", _predict, "add zphot, zphot_err columns to a catalogue", _PREDICT)
    verb(verbs, "evaluate", _evaluate, "metrics and plots on galaxies with known z", _EVALUATE,
         _NAMES)  # fmt: skip
