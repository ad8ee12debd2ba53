"""``skysense landuse ...``: train, evaluate and apply land-use classifiers on multispectral images."""

from __future__ import annotations

import argparse
import json
import sys

from skysense.cli._common import add_area, add_lazy_choice, add_scheduler_option, add_verb
from skysense.errors import ConfigError

__all__ = ["register"]


def _list(value: str | None) -> list[str]:
    return [] if value is None else [v for v in value.replace(",", " ").split() if v]


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def _kv(items: list[str] | None, what: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"expected NAME=VALUE, got {item!r}", key=what)
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _add_data(p: argparse.ArgumentParser, prefix: str = "", what: str = "training") -> None:
    dash = f"--{prefix}" if prefix else "--"
    g = p.add_argument_group(f"{what} data (a raster with labels, or a Statlog file)")
    g.add_argument(f"{dash}raster", metavar="IMAGE", help="multispectral raster (GeoTIFF, ...)")
    g.add_argument(f"{dash}labels", metavar="LABELS",
                   help="polygons/points (GeoJSON, shapefile, GeoPackage) or a label raster")  # fmt: skip
    g.add_argument(f"{dash}statlog", metavar="FILE", help="Statlog Landsat sample file (sat.trn)")


def _add_features(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("features and classes")
    g.add_argument("--label-column", default="class", help="label attribute (default: class)")
    g.add_argument("--classes", default=None, metavar="SCHEME",
                   help="li2014 (default for rasters), statlog (default for Statlog files), or a "
                   "JSON/YAML scheme file")  # fmt: skip
    g.add_argument("--mode", choices=("pixel", "polygon"), default="pixel",
                   help="a sample per labelled pixel (window around it) or per polygon")  # fmt: skip
    g.add_argument("--window", type=int, default=3, metavar="PX", help="window side (odd; 3)")
    g.add_argument("--stats", default="mean,max,std",
                   help="per-band statistics: mean,max,std,min,center (default mean,max,std)")  # fmt: skip
    g.add_argument("--band-names", metavar="B1,B2,...", help="band names (default b1..bN)")
    g.add_argument("--role", action="append", metavar="ROLE=BAND",
                   help="declare a band role (green, red, nir, swir), e.g. --role nir=b4")  # fmt: skip
    g.add_argument("--indices", metavar="ndvi,ndwi,ndbi", help="spectral indices to add")
    g.add_argument("--max-per-class", type=int, metavar="N", help="subsample each class")


def _classifiers() -> dict[str, str]:
    from skysense.landuse.classify import CLASSIFIERS

    return CLASSIFIERS


def _add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("classifier")
    # choices looked up lazily: landuse.classify imports NumPy, too slow for `--help`
    add_lazy_choice(g, "--classifier", _classifiers, default="rf", metavar="NAME")
    g.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="hyperparameter, e.g. --param n_estimators=500 (repeatable)")  # fmt: skip
    g.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    g.add_argument("--jobs", type=int, default=1, help="threads for forests/kNN (default 1)")


def register(subparsers) -> None:
    verbs = add_area(subparsers, "landuse", "land-use classification of multispectral imagery")

    p = add_verb(verbs, "train", _train, "train a classifier on labelled samples and save it")
    _add_data(p)
    _add_features(p)
    _add_model(p)
    p.add_argument("--tune", action="store_true", help="choose hyperparameters by k-fold CV")
    p.add_argument("--cv", type=int, default=5, help="folds for --tune (default 5)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.npz", help="model file")
    p.add_argument("--json", metavar="FILE", help="write the training summary as JSON")

    p = add_verb(verbs, "evaluate", _evaluate,
                 "accuracy of a saved model on test data, or of a classifier by cross-validation "
                 "/ hold-out (optionally per band subset)")  # fmt: skip
    _add_data(p)
    _add_data(p, "test-", "independent test")
    _add_features(p)
    _add_model(p)
    p.add_argument("--model", metavar="MODEL.npz", help="score this saved model on the test data")
    p.add_argument("--cv", type=int, default=5, help="k-fold cross-validation folds (default 5)")
    p.add_argument("--holdout", type=float, metavar="FRACTION",
                   help="stratified hold-out test fraction instead of k-fold CV")  # fmt: skip
    p.add_argument("--band-subsets", nargs="+", metavar="B1,B2,..",
                   help="compare band subsets side by side, e.g. b1,b2,b3,b4 b1,b2,b3,b4,b5,b6")  # fmt: skip
    p.add_argument("--importances", action="store_true", help="print feature importances")
    p.add_argument("--confusion-png", metavar="FILE", help="confusion-matrix plot")
    p.add_argument("--json", metavar="FILE", help="write the report(s) as JSON")

    p = add_verb(verbs, "classify", _classify, "classify a whole raster into a class GeoTIFF")
    p.add_argument("model", metavar="MODEL.npz")
    p.add_argument("raster", metavar="IMAGE")
    p.add_argument("-o", "--output", required=True, metavar="CLASSES.tif", help="class raster")
    p.add_argument("--proba", metavar="PROBA.tif", help="also write class probabilities")
    p.add_argument("--quicklook", metavar="PNG", help="also write a PNG with a legend")
    p.add_argument("--block", type=int, default=1024, metavar="PX",
                   help="window side in pixels, a multiple of 256 (default 1024)")  # fmt: skip
    add_scheduler_option(p)


def _load_samples(args, prefix: str = "", spec=None, scheme=None):
    """(X, y, spec, scheme) from --raster/--labels or --statlog (with ``prefix`` test-)."""
    from skysense.landuse.samples_io import load_samples

    attr = prefix.replace("-", "_")
    raster = getattr(args, f"{attr}raster")
    labels = getattr(args, f"{attr}labels")
    statlog = getattr(args, f"{attr}statlog")
    if statlog and (raster or labels):
        raise ConfigError(f"give --{prefix}statlog or --{prefix}raster/--{prefix}labels, not both")
    if not statlog and not (raster and labels):
        raise ConfigError(f"need --{prefix}raster and --{prefix}labels (or --{prefix}statlog)")
    return load_samples(
        raster=raster,
        labels=labels,
        statlog=statlog,
        spec=spec,
        scheme=scheme,
        band_names=_list(args.band_names) or None,
        stats=tuple(_list(args.stats)),
        window_px=args.window,
        indices=tuple(_list(args.indices)),
        roles=_kv(args.role, "--role"),
        classes=args.classes,
        label_column=args.label_column,
        mode=args.mode,
        max_per_class=args.max_per_class,
        random_state=args.seed,
    )


def _params(args) -> dict:
    return {k: _value(v) for k, v in _kv(args.param, "--param").items()}


def _train(args) -> int:
    from skysense.landuse.estimator import train_model
    from skysense.landuse.io import save_model

    X, y, spec, scheme = _load_samples(args)
    model = train_model(X, y, spec, scheme, classifier=args.classifier, params=_params(args),
                        tune=args.tune, cv=args.cv, random_state=args.seed, n_jobs=args.jobs)  # fmt: skip
    save_model(model, args.output, X_train=X, y_train=y)
    info = model.info_
    counts = ", ".join(f"{scheme.name_of(int(c))}: {n}" for c, n in info["n_samples"].items())
    print(f"trained {args.classifier} on {len(y)} samples ({counts}); {len(spec.names)} "
          f"features: {', '.join(spec.names)}")  # fmt: skip
    if "oob_accuracy" in info:
        print(f"out-of-bag accuracy {info['oob_accuracy']:.4f}")
    if "cv_tuning" in info:
        t = info["cv_tuning"]
        print(f"{t['folds']}-fold CV chose {t['best_params']} (accuracy {t['best_accuracy']:.4f})")
    print(f"model written to {args.output}")
    if args.json:
        from skysense._atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(info, indent=2, default=float))
    return 0


def _evaluate(args) -> int:
    from skysense.landuse.evaluate import evaluate_classifier, evaluate_model
    from skysense.landuse.io import load_model, write_confusion_png

    if args.model:
        model = load_model(args.model)
        X, y, _, _ = _load_samples(args, "test-", model.spec, model.scheme_)
        result = evaluate_model(model, X, y, importances=args.importances,
                                random_state=args.seed, name=f"model {args.model}")  # fmt: skip
    else:
        X, y, spec, scheme = _load_samples(args)
        Xt = yt = None
        if args.test_statlog or args.test_raster:
            Xt, yt, _, _ = _load_samples(args, "test-", spec, scheme)
        subsets = {s: _list(s) for s in args.band_subsets} if args.band_subsets else None
        result = evaluate_classifier(X, y, spec, scheme, classifier=args.classifier,
                                     params=_params(args), X_test=Xt, y_test=yt,
                                     band_subsets=subsets, holdout=args.holdout, folds=args.cv,
                                     importances=args.importances, random_state=args.seed,
                                     n_jobs=args.jobs)  # fmt: skip
    print(result.text())
    if args.confusion_png:
        write_confusion_png(result.report, args.confusion_png)
    if args.json:
        from skysense._atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=2, default=float))
    return 0


def _classify(args) -> int:
    from skysense.landuse.engine import classify_raster
    from skysense.landuse.io import load_model

    model = load_model(args.model)
    res = classify_raster(model, args.raster, args.output, proba_path=args.proba,
                          quicklook_path=args.quicklook, block_px=args.block,
                          scheduler=args.scheduler)  # fmt: skip
    total = sum(res.pixel_counts.values())
    print(f"classified {total} pixels in {res.n_windows} windows ({res.elapsed_s:.1f} s); "
          f"{res.n_nodata} nodata", file=sys.stderr)  # fmt: skip
    for code, n in sorted(res.pixel_counts.items()):
        print(f"{code}\t{model.scheme_.name_of(code)}\t{n}\t{n / total:.4f}")
    print(f"written {res.class_path}" + (f", {res.proba_path}" if res.proba_path else "")
          + (f", {res.quicklook_path}" if res.quicklook_path else ""), file=sys.stderr)  # fmt: skip
    return 0
