"""``skysense landuse ...``: train, evaluate and apply land-use classifiers on multispectral
images."""

from __future__ import annotations

import json
import sys

from skysense.cli._common import SCHEDULER, add_area, add_lazy_choice, options, split_names, verb
from skysense.errors import ConfigError

__all__ = ["register"]

_DATA = """
--{0}raster IMAGE | multispectral raster (GeoTIFF, ...)
--{0}labels LABELS | polygons/points (GeoJSON, shapefile, GeoPackage) or a label raster
--{0}statlog FILE | Statlog Landsat sample file (sat.trn)
"""
_FEATURES = """
--label-column str=class | label attribute (default: class)
--classes SCHEME | li2014 (default for rasters), statlog (default for Statlog files), or a
    JSON/YAML scheme file
--mode {pixel,polygon}=pixel | a sample per labelled pixel (window around it) or per polygon
--window PX int=3 | window side (odd; 3)
--stats str=mean,max,std | per-band statistics: mean,max,std,min,center (default mean,max,std)
--band-names B1,B2,... | band names (default b1..bN)
--role ROLE=BAND append | declare a band role (green, red, nir, swir), e.g. --role nir=b4
--indices ndvi,ndwi,... | spectral indices to add (ndvi, ndwi, ndbi, mndwi, gndvi, nbr,
    ngrdi, ndre, ndti); roles not given with --role are recognised from band names such as
    red, nir, swir1 or Sentinel-2's B04, B08, B11
--index-stats STATS | window statistics of the per-pixel indices too, e.g. mean,std,center
--texture PROPS | GLCM texture of the first principal component over the window, e.g.
    contrast,homogeneity,ASM,correlation,entropy
--texture-window PX int | texture window side (odd; default: --window)
--scales PX,PX,... | band means and indices over these larger windows too (odd), e.g. 5,7
--max-per-class N int | subsample each class
"""
_MODEL = """
--param NAME=VALUE append | hyperparameter, e.g. --param n_estimators=500 (repeatable)
--seed int=0 | random_state (default 0)
--jobs int=1 | threads for forests/kNN (default 1)
"""
_TRAIN = """
--tune flag | choose hyperparameters by k-fold CV
--cv int=5 | folds for --tune (default 5)
-o --output MODEL.npz required | model file
--json FILE | write the training summary as JSON
"""
_EVALUATE = """
--model MODEL.npz | score this saved model on the test data
--cv int=5 | k-fold cross-validation folds (default 5)
--blocked-cv PX int | spatially blocked CV: square blocks of PX pixels, each wholly in one
    fold (raster samples; blocks larger than the feature window)
--buffer PX int=0 | with --blocked-cv, leave out training pixels within PX of a test pixel
--holdout FRACTION float | stratified hold-out test fraction instead of k-fold CV
--band-subsets B1,B2,..+ | compare band subsets side by side, e.g. b1,b2,b3,b4 b1,b2,b3,b4,b5,b6
--importances flag | print feature importances
--confusion-png FILE | confusion-matrix plot
--json FILE | write the report(s) as JSON
"""
_CLASSIFY = f"""
model MODEL.npz
raster IMAGE
-o --output CLASSES.tif required | class raster
--proba PROBA.tif | also write class probabilities
--quicklook PNG | also write a PNG with a legend
--block PX int=1024 | window side in pixels, a multiple of 256 (default 1024)
{SCHEDULER}
"""


def _classifiers() -> dict[str, str]:
    from skysense.landuse.classify import CLASSIFIERS

    return CLASSIFIERS


def _add_samples(p, *data: tuple[str, str]) -> None:
    """Data groups (prefix, what), then the feature and classifier groups."""
    for prefix, what in data:
        g = p.add_argument_group(f"{what} data (a raster with labels, or a Statlog file)")
        options(g, _DATA.format(prefix))
    options(p.add_argument_group("features and classes"), _FEATURES)
    g = p.add_argument_group("classifier")
    # choices looked up lazily: landuse.classify imports NumPy, too slow for `--help`
    # default: the model and feature set chosen by cross-validation on the training samples
    # only (issue 20); --classifier rf is the seed's random forest
    add_lazy_choice(g, "--classifier", _classifiers, default="auto", metavar="NAME")
    options(g, _MODEL)


def register(subparsers) -> None:
    verbs = add_area(subparsers, "landuse", "land-use classification of multispectral imagery")
    p = verb(verbs, "train", _train, "train a classifier on labelled samples and save it")
    _add_samples(p, ("", "training"))
    options(p, _TRAIN)
    p = verb(verbs, "evaluate", _evaluate, "accuracy of a saved model on test data, or of a "
             "classifier by cross-validation / hold-out (optionally per band subset)")  # fmt: skip
    _add_samples(p, ("", "training"), ("test-", "independent test"))
    options(p, _EVALUATE)
    verb(verbs, "classify", _classify, "classify a whole raster into a class GeoTIFF", _CLASSIFY)


def _load_samples(args, prefix: str = "", spec=None, scheme=None):
    """(X, y, spec, scheme) from --raster/--labels or --statlog (with ``prefix`` test-)."""
    from skysense.landuse.classify import parse_params
    from skysense.landuse.samples_io import load_samples

    raster, labels, statlog = (getattr(args, f"{prefix.replace('-', '_')}{name}")
                               for name in ("raster", "labels", "statlog"))  # fmt: skip
    if statlog and (raster or labels):
        raise ConfigError(f"give --{prefix}statlog or --{prefix}raster/--{prefix}labels, not both")
    if not statlog and not (raster and labels):
        raise ConfigError(f"need --{prefix}raster and --{prefix}labels (or --{prefix}statlog)")
    return load_samples(
        raster=raster, labels=labels, statlog=statlog, spec=spec, scheme=scheme,
        band_names=split_names(args.band_names) or None, stats=tuple(split_names(args.stats)),
        window_px=args.window, indices=tuple(split_names(args.indices)), classes=args.classes,
        roles=parse_params(args.role, key="--role", convert=False), mode=args.mode,
        label_column=args.label_column, max_per_class=args.max_per_class, random_state=args.seed,
        index_stats=tuple(split_names(args.index_stats)), texture=tuple(split_names(args.texture)),
        texture_window=args.texture_window, return_coords=True,
        scales=_scales(args.scales),
    )  # fmt: skip


def _scales(text: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in split_names(text))
    except ValueError:
        raise ConfigError(
            f"expected odd window sides such as 5,7, got {text!r}", key="--scales"
        ) from None


def _params(args) -> dict:
    from skysense.landuse.classify import parse_params

    return parse_params(args.param, key="--param")


def _write_json(path: str | None, data: dict) -> None:
    if path:
        from skysense._atomic import atomic_write_text

        atomic_write_text(path, json.dumps(data, indent=2, default=float))


def _train(args) -> None:
    from skysense.landuse.estimator import describe_training, train_model
    from skysense.landuse.io import save_model

    X, y, spec, scheme, coords = _load_samples(args)
    kw = {"classifier": args.classifier, "tune": args.tune, "cv": args.cv, "n_jobs": args.jobs}
    # auto compares its candidates on spatially blocked folds when the pixels are known
    model = train_model(X, y, spec, scheme, params=_params(args), random_state=args.seed,
                        coords=coords if args.classifier == "auto" else None, **kw)  # fmt: skip
    save_model(model, args.output, X_train=X, y_train=y)
    print(describe_training(model, len(y)))
    print(f"model written to {args.output}")
    _write_json(args.json, model.info_)


def _evaluate(args) -> None:
    from skysense.landuse.evaluate import evaluate_classifier, evaluate_model
    from skysense.landuse.io import load_model, write_confusion_png

    if args.model:
        model = load_model(args.model)
        X, y, _, _, _ = _load_samples(args, "test-", model.spec, model.scheme_)
        result = evaluate_model(model, X, y, importances=args.importances,
                                random_state=args.seed, name=f"model {args.model}")  # fmt: skip
    else:
        X, y, spec, scheme, coords = _load_samples(args)
        Xt = yt = None
        if args.test_statlog or args.test_raster:
            Xt, yt, _, _, _ = _load_samples(args, "test-", spec, scheme)
        subsets = {s: split_names(s) for s in args.band_subsets} if args.band_subsets else None
        result = evaluate_classifier(X, y, spec, scheme, classifier=args.classifier,
                                     params=_params(args), X_test=Xt, y_test=yt,
                                     band_subsets=subsets, holdout=args.holdout, folds=args.cv,
                                     importances=args.importances, random_state=args.seed,
                                     n_jobs=args.jobs, coords=coords, block_px=args.blocked_cv,
                                     buffer_px=args.buffer)  # fmt: skip
    print(result.text())
    if args.confusion_png:
        write_confusion_png(result.report, args.confusion_png)
    _write_json(args.json, result.to_dict())


def _classify(args) -> None:
    from skysense.landuse.engine import classify_raster
    from skysense.landuse.io import load_model

    model = load_model(args.model)
    res = classify_raster(model, args.raster, args.output, proba_path=args.proba,
                          quicklook_path=args.quicklook, block_px=args.block,
                          scheduler=args.scheduler)  # fmt: skip
    print(res.summary(), file=sys.stderr)
    print(res.class_table(model.scheme_))
    print("written " + ", ".join(map(str, res.written)), file=sys.stderr)
