"""Land use: Statlog Landsat and real scenes, the default model against its strongest baselines.

Data (``../shared/data/landuse``, README section d).

**Statlog** (official train 4435 / test 2000 rows; each row a 3x3 neighbourhood of 4 Landsat
MSS bands, pixel-major, and the class of the centre pixel). Feature sets:

- ``stats``: mean, max, std of each band over the window (12, Li et al. 2014);
- ``rich``: the 36 values; mean, max, std, min per band; NDVI, NDWI and the green-red index
  of the band means, and their window mean, std, min, max and centre pixel (bands 1/2/3 as
  green/red/NIR); NDVI and NDWI with the second NIR band (std, centre); GLCM contrast,
  homogeneity, ASM, correlation and entropy of the first principal component (8 levels,
  fitted on the training pixels).

Protocol: the default model ``auto`` chooses among random forest, gradient boosting and the
soft-vote ensemble by 3-fold stratified CV **on the training file only**
(:func:`skysense.landuse.estimator.select_classifier`, scores in the JSON), is fitted on the
whole training file and scored once on the test file. The other rows are peers measured in the
same run (random forest on ``stats`` is the seed's method); their test scores are reported, never
used to choose. Goal (#20): OA >= 0.935 and kappa >= 0.92.

**Real scenes** (labelled pixels, spatially blocked CV; blocks larger than every feature
window, and a buffer that keeps training windows from sharing pixels with test windows):

- Landsat 7 ETM+ (open-geo-tutorial; 250 x 250 px, 718 hand-labelled pixels, 5 classes;
  bands blue, green, red, NIR, SWIR1, SWIR2, thermal);
- AVIRIS Salinas-A (83 x 86 px, 204 bands, 5348 labelled pixels, 6 crop classes; band roles
  from AVIRIS' nominal band centres, 400-2500 nm in 224 channels less the removed water bands).

Per scene: the plain random forest on 3x3 mean/max/std (the seed's method) against ``auto``
on rich features (indices and their window statistics, GLCM texture over 5x5 windows) with
its model chosen by blocked CV inside every training fold (nested); OA, kappa and macro-F1;
the same models under random-pixel CV, to show how much it overstates accuracy; and the
band-subset experiment of Li et al. 2014 (random forest on mean/max/std, 4 against 6 against
all bands) under blocked CV.

Measured (2026-12-07, 2 cores with a load average of 13-27 from other jobs; ``landuse.json``
from ``--skip-throughput --scenes landsat7 --candidates rf,gb``, ``landuse_salinas.json`` from
the Salinas-A scene with ``--seed-only-scenes salinas``, written separately): see the JSON files.

Why the default loses on Landsat 7 (diagnosis, 2026-12-07). The 718 labels are ~40
hand-drawn polygons; the 4 blocked folds leave 67 of the 68 urban pixels (two neighbouring
polygons) without a single urban training pixel, so no model scores above ~0.91. The errors
that decide the comparison are whole polygons of barren and herbaceous land. Window maxima,
standard deviations and GLCM texture describe a polygon's own pattern and do not transfer to
other polygons of the class (RF on the rich features 0.766, below RF on mean/max/std); band
means over larger windows with the indices do, but only for smooth models. The selection is
not leaking (it sees only training-fold pixels) - it chooses badly: blocked CV inside ~540
training pixels ranks the tree models first, and the choice among feature sets x models by
that inner CV reached 0.779 in an exploratory nested run (RF, LR, SVM, kNN on six feature sets). The window-scale
experiment (``--scale-models``, :func:`_scale_selected`) makes the choice of the feature window
(3x3 mean/max/std, or means + indices over 3/5/7 px) by inner blocked CV for a fixed model:
random forest 0.7925 (-0.6 points against the seed's RF on the same folds, 0.7981), kNN 0.8162
(+1.8), logistic regression (``lr``) 0.8788, macro-F1 0.700 against 0.615 (+8.1 points). The
window is chosen honestly, but the model family (lr) was picked after seeing blocked-CV scores
on this scene, and there is no second labelled real scene to confirm it on (Salinas-A is at
0.978 already), so it is reported as an experiment, not made the default.

Throughput: a generated 6-band raster (``--size`` pixels a side) is classified with a random
forest on 3x3 mean/max/std features through the local threaded Dask scheduler.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._harness import SHARED_DATA, Row, peak_rss_during

__all__ = ["run", "add_arguments"]

STATLOG_BEST = 0.906  # kNN, Michie et al. 1994
GOAL_OA, GOAL_KAPPA = 0.935, 0.92
SCENE_GOAL_POINTS = 0.03
TEXTURE = ("contrast", "homogeneity", "ASM", "correlation", "entropy")


def add_arguments(parser) -> None:
    parser.add_argument("--size", type=int, default=10_000, help="throughput raster side (px)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-statlog", action="store_true")
    parser.add_argument("--skip-scenes", action="store_true")
    parser.add_argument("--scenes", default="landsat7,salinas", help="real scenes to run")
    parser.add_argument("--folds", type=int, default=4, help="blocked CV folds on the scenes")
    parser.add_argument("--seed-only-scenes", default="",
                        help="scenes on which only the seed's random forest and the band subsets "
                        "run (e.g. salinas: 204 bands make the nested model choice slow)")  # fmt: skip
    parser.add_argument("--scale-models", default="rf,lr,knn",
                        help="models of the window-scale experiment on the scenes ('' skips it)")  # fmt: skip
    parser.add_argument("--scale-only", action="store_true",
                        help="on the scenes run only the window-scale experiment")  # fmt: skip
    parser.add_argument("--candidates", default="rf,gb,ensemble",
                        help="models auto chooses among on Statlog (by CV on the training file)")  # fmt: skip


def _loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def statlog_features(pixels, train_pixels):
    """``stats`` and ``rich`` feature tables of Statlog 3x3 samples (texture fitted on
    ``train_pixels``, the training file's)."""
    from skysense.landuse.features import FeatureSpec, sample_features, with_texture
    from skysense.landuse.samples import statlog_spec

    bands = ("b1", "b2", "b3", "b4")
    n = pixels.shape[0]
    s1 = FeatureSpec(bands, ("mean", "max", "std", "min"), 3, ("ndvi", "ndwi", "ngrdi"),
                     {"green": "b1", "red": "b2", "nir": "b3"},
                     index_stats=("mean", "std", "min", "max", "center"))  # fmt: skip
    s2 = FeatureSpec(bands, ("mean",), 3, ("ndvi", "ndwi"),
                     {"green": "b1", "red": "b2", "nir": "b4"}, index_stats=("std", "center"))  # fmt: skip
    st = with_texture(FeatureSpec(bands, ("mean",), 3), train_pixels.reshape(-1, 4), TEXTURE,
                      levels=8)  # fmt: skip
    rich = np.hstack([pixels.reshape(n, 36), sample_features(pixels, s1),
                      sample_features(pixels, s2)[:, 4:], sample_features(pixels, st)[:, 4:]])  # fmt: skip
    return {"stats": sample_features(pixels, statlog_spec()), "rich": rich}


def _fit_predict(name, params, Xa, ya, Xb):
    from threadpoolctl import threadpool_limits

    from skysense.landuse.classify import make_classifier

    est = make_classifier(name, random_state=0, n_jobs=1, **dict(params or {}))
    with threadpool_limits(1):  # OpenMP spin-waits badly on a loaded machine
        est.fit(Xa, ya)
        return est.predict(Xb)


def _statlog(opts, rows, meta):
    from threadpoolctl import threadpool_limits

    from skysense.landuse.classes import STATLOG
    from skysense.landuse.estimator import select_classifier
    from skysense.landuse.evaluate import accuracy_report, comparison_table
    from skysense.landuse.samples_io import read_statlog

    folder = SHARED_DATA / "landuse"
    ptr, ytr = read_statlog(folder / "statlog_landsat_sat.trn")
    pte, yte = read_statlog(folder / "statlog_landsat_sat.tst")
    Ftr, Fte = statlog_features(ptr, ptr), statlog_features(pte, ptr)
    labels = np.unique(ytr)
    names = [STATLOG.name_of(int(c)) for c in labels]
    load0 = _loadavg()
    cands = {c: {} for c in ("rf,gb" if opts.quick else opts.candidates).split(",")}
    t0 = time.perf_counter()
    with threadpool_limits(1):
        chosen, params, record = select_classifier(Ftr["rich"], ytr, cands, folds=3)
    record["seconds"] = time.perf_counter() - t0
    record["loadavg"] = [load0, _loadavg()]
    meta["statlog_selection"] = record
    print(f"statlog: auto chose {chosen} on the training file ({record['how']}): "
          + ", ".join(f"{k} {v:.4f}" for k, v in record["scores"].items()), flush=True)  # fmt: skip
    runs = [("auto", "rich"), ("rf", "stats"), ("gb", "stats"), ("rf", "rich")]
    runs += [(c, "rich") for c in cands if c not in (chosen, "rf")]
    reports = {}
    for clf, fs in runs:
        t0 = time.perf_counter()
        name, p = (chosen, params) if clf == "auto" else (clf, {})
        pred = _fit_predict(name, p, Ftr[fs], ytr, Fte[fs])
        rep = accuracy_report(yte, pred, labels, names)
        key = f"{clf} on {fs}" + (f" (= {chosen})" if clf == "auto" else "")
        reports[key] = rep
        macro = float(np.nanmean(rep.f1))
        print(f"  {key}: OA {rep.overall_accuracy:.4f} kappa {rep.kappa:.4f} "
              f"(load {_loadavg()[0]})", flush=True)  # fmt: skip
        rows.append(Row(f"statlog test OA: {key}", rep.overall_accuracy, STATLOG_BEST,
                        "Statlog 1994 best (kNN)", unit="accuracy", higher_is_better=True,
                        notes=f"kappa {rep.kappa:.4f}, macro-F1 {macro:.4f}",
                        extra={"kappa": rep.kappa, "macro_f1": macro,
                               "f1": dict(zip(names, rep.f1.tolist())),
                               "fit_predict_s": time.perf_counter() - t0,
                               "loadavg": _loadavg()}))  # fmt: skip
    final = reports[f"auto on rich (= {chosen})"]
    base = reports["rf on stats"]
    best_peer = max(r.overall_accuracy for k, r in reports.items() if not k.startswith("auto"))
    rows.append(Row("statlog default (auto) OA vs plain RF on stats", final.overall_accuracy,
                    base.overall_accuracy, "random forest, mean/max/std (seed)",
                    unit="accuracy", higher_is_better=True,
                    notes=f"goal OA >= {GOAL_OA}: {'met' if final.overall_accuracy >= GOAL_OA else 'NOT met'}; "
                    f"best peer in this run {best_peer:.4f}"))  # fmt: skip
    rows.append(Row("statlog default (auto) kappa", final.kappa, GOAL_KAPPA, "goal", unit="kappa",
                    higher_is_better=True,
                    notes="met" if final.kappa >= GOAL_KAPPA else "NOT met"))  # fmt: skip
    table = comparison_table(reports)
    print("\nStatlog Landsat test set (2000 rows), per-class F1 (codes: "
          + ", ".join(f"{c} {n}" for c, n in zip(labels, names)) + ")\n" + table)  # fmt: skip
    print("\ndefault model (auto):\n" + final.table() + "\n", flush=True)
    meta["statlog_table"] = table
    meta["statlog_final"] = final.to_dict()


# AVIRIS: 224 channels over about 400-2500 nm; Salinas "corrected" drops channels 108-112,
# 154-167 and 224 (1-based). Nominal centres, good to a channel for choosing band roles.
_AVIRIS_DROPPED = set(range(108, 113)) | set(range(154, 168)) | {224}
_ROLE_NM = {"blue": 480, "green": 560, "red": 660, "nir": 860, "swir": 1650, "swir2": 2200}


def _load_scene(name):
    folder = SHARED_DATA / "landuse"
    if name == "landsat7":
        import rasterio

        with rasterio.open(folder / "LE70220491999322EDC01_stack.gtif") as src:
            img = src.read()[:7].astype(np.float64)
        with rasterio.open(folder / "training_data.gtif") as src:
            lab = src.read(1).astype(np.int64)
        valid = (img != -9999).all(axis=0)
        bands = ("blue", "green", "red", "nir", "swir1", "swir2", "thermal")
        subsets = {"4 bands (B,G,R,NIR)": bands[:4], "6 bands (+SWIR1,2)": bands[:6],
                   "all 7 (+thermal)": bands}  # fmt: skip
        return img, lab, valid, bands, None, subsets, 25
    from scipy.io import loadmat

    img = loadmat(folder / "SalinasA_corrected.mat")["salinasA_corrected"]
    lab = loadmat(folder / "SalinasA_gt.mat")["salinasA_gt"].astype(np.int64)
    img = np.moveaxis(img.astype(np.float64), -1, 0)
    kept = [k for k in range(1, 225) if k not in _AVIRIS_DROPPED]
    nm = 400 + (np.asarray(kept) - 1) * (2500 - 400) / 223
    bands = tuple(f"ch{k:03d}" for k in kept)
    roles = {r: bands[int(np.argmin(np.abs(nm - w)))] for r, w in _ROLE_NM.items()}
    four = tuple(roles[r] for r in ("blue", "green", "red", "nir"))
    six = four + (roles["swir"], roles["swir2"])
    subsets = {"4 bands (B,G,R,NIR)": four, "6 bands (+SWIR1,2)": six, "all 204": bands}
    return img, lab, np.ones(lab.shape, bool), bands, roles, subsets, 12


def _scene(name, opts, rows, meta):
    from skysense.landuse.evaluate import cross_validate, spatial_cross_validate, subset_columns
    from skysense.landuse.features import (
        INDICES,
        FeatureSpec,
        infer_roles,
        window_features,
        with_texture,
    )

    img, lab, valid, bands, roles, subsets, block = _load_scene(name)
    roles = roles or infer_roles(bands)
    sel = (lab > 0) & valid
    r, c = np.nonzero(sel)
    y = lab[sel]
    base = FeatureSpec(bands, ("mean", "max", "std"), 3)
    idx = tuple(i for i in ("ndvi", "ndwi", "ndbi", "mndwi", "gndvi", "nbr", "ndti", "ngrdi")
                if all(k in roles for k in INDICES[i]))  # fmt: skip
    rich = FeatureSpec(bands, ("mean", "max", "std"), 3, idx, roles, index_stats=("mean", "std"))
    pix = np.moveaxis(img, 0, -1)[valid]
    rich = with_texture(rich, pix, TEXTURE, levels=16, window_px=5)
    Xb = window_features(img, valid, base)[sel].astype(np.float64)
    Xr = window_features(img, valid, rich)[sel].astype(np.float64)
    buffer = 2 * rich.halo_px  # windows of training and test pixels share no pixel
    kw = {"block_px": block, "folds": opts.folds, "buffer_px": buffer, "window_px": 5}
    auto = {"candidates": ["rf", "gb"], "folds": 3, "block_px": block, "buffer_px": buffer}
    info = {"n_samples": int(y.size), "classes": {int(k): int(v) for k, v in
            zip(*np.unique(y, return_counts=True))}, "block_px": block, "buffer_px": buffer,
            "folds": opts.folds, "features_base": len(base.names), "features_rich": len(rich.names),
            "indices": list(idx), "roles": roles}  # fmt: skip
    print(f"\n{name}: {y.size} labelled pixels, {len(bands)} bands, blocks {block} px, "
          f"buffer {buffer} px, {opts.folds} folds; load {_loadavg()}", flush=True)  # fmt: skip
    runs = {"rf on mean/max/std (seed)": ("rf", {}, Xb), "auto on rich (default)": ("auto", auto, Xr),
            "rf on rich": ("rf", {}, Xr), "gb on rich": ("gb", {}, Xr)}  # fmt: skip
    seed_only = name in getattr(opts, "seed_only_scenes", "").split(",")
    from threadpoolctl import threadpool_limits

    models = [m for m in getattr(opts, "scale_models", "").split(",") if m]
    if models:
        with threadpool_limits(1):
            sc = _scale_selected(img, valid, sel, y, r, c, bands, roles, idx, block, opts.folds,
                                 models)  # fmt: skip
        info["window_chosen_by_inner_blocked_cv"] = sc
        seed = sc["rf (seed) on 3x3 mean/max/std, same folds"]["blocked"]
        for m in models:
            b = sc[m]["blocked"]
            gain = b["overall_accuracy"] - seed["overall_accuracy"]
            rows.append(Row(f"{name} blocked-CV OA: {m}, feature window chosen by inner blocked CV",
                            b["overall_accuracy"], seed["overall_accuracy"],
                            "random forest, 3x3 mean/max/std, same folds", unit="accuracy",
                            higher_is_better=True,
                            notes=f"{100 * gain:+.1f} points; macro-F1 "
                            f"{np.nanmean(np.array(b['f1'], float)):.4f} vs "
                            f"{np.nanmean(np.array(seed['f1'], float)):.4f}; chose "
                            + ", ".join(p["chosen"] for p in sc[m]["choices"])
                            + f"; buffer {sc['buffer_px']} px; load {_loadavg()[0]}"))  # fmt: skip
    if getattr(opts, "scale_only", False):
        meta[f"scene_{name}_scale"] = info
        return
    if opts.quick or seed_only:
        runs.pop("gb on rich")
    if seed_only:
        runs = {k: v for k, v in runs.items() if k.startswith("rf on mean")}
    reps = {}

    for label, (clf, params, X) in runs.items():
        t0 = time.perf_counter()
        with threadpool_limits(1):
            blk, accs = spatial_cross_validate(X, y, r, c, classifier=clf, params=params, **kw)
            rnd, _ = cross_validate(X, y, classifier=clf,
                                    params=params if clf != "auto" else {"candidates": ["rf", "gb"], "folds": 3},
                                    folds=opts.folds)  # fmt: skip
        reps[label] = blk
        mf1, rmf1 = float(np.nanmean(blk.f1)), float(np.nanmean(rnd.f1))
        over = rnd.overall_accuracy - blk.overall_accuracy
        print(f"  {label}: blocked OA {blk.overall_accuracy:.4f} kappa {blk.kappa:.4f} macro-F1 "
              f"{mf1:.4f}; random-pixel OA {rnd.overall_accuracy:.4f} (overstates by "
              f"{over:+.4f}); {time.perf_counter() - t0:.0f} s, load {_loadavg()[0]}", flush=True)  # fmt: skip
        info[label] = {"blocked": blk.to_dict(), "blocked_fold_accuracy": accs.tolist(),
                       "random_oa": rnd.overall_accuracy, "random_macro_f1": rmf1,
                       "seconds": time.perf_counter() - t0, "loadavg": _loadavg()}  # fmt: skip
        rows.append(Row(f"{name} blocked-CV OA: {label}", blk.overall_accuracy,
                        rnd.overall_accuracy, "same model, random-pixel CV", unit="accuracy",
                        higher_is_better=True,
                        notes=f"kappa {blk.kappa:.4f}, macro-F1 {mf1:.4f}; random-pixel CV "
                        f"overstates OA by {over:+.4f}"))  # fmt: skip
    s = reps["rf on mean/max/std (seed)"]
    d = reps.get("auto on rich (default)", s)
    gain = d.overall_accuracy - s.overall_accuracy
    if not seed_only:
        rows.append(Row(f"{name} blocked-CV OA: default vs plain RF", d.overall_accuracy,
                    s.overall_accuracy, "random forest, 3x3 mean/max/std", unit="accuracy",
                    higher_is_better=True,
                    notes=f"{100 * gain:+.1f} points (goal +{100 * SCENE_GOAL_POINTS:.0f}: "
                    f"{'met' if gain >= SCENE_GOAL_POINTS else 'NOT met'}); macro-F1 "
                    f"{np.nanmean(d.f1):.4f} vs {np.nanmean(s.f1):.4f}"))  # fmt: skip
    else:
        info["headroom_points"] = 100 * (1 - s.overall_accuracy)
    # Li et al. 2014: the same random forest on mean/max/std of band subsets
    sub_reps = {}
    for label, sub in subsets.items():
        cols, _ = subset_columns(base, sub)
        with threadpool_limits(1):
            rep, _ = spatial_cross_validate(Xb[:, cols], y, r, c, classifier="rf", **kw)
        sub_reps[label] = rep
        rows.append(Row(f"{name} band subset, RF mean/max/std, blocked CV: {label}",
                        rep.overall_accuracy, None, unit="accuracy", higher_is_better=True,
                        notes=f"kappa {rep.kappa:.4f}, macro-F1 {np.nanmean(rep.f1):.4f}"))  # fmt: skip
    from skysense.landuse.evaluate import comparison_table

    info["table"] = comparison_table(reps)
    info["band_subsets_table"] = comparison_table(sub_reps)
    print(f"\n{name}, spatially blocked CV:\n" + info["table"])
    print(f"\n{name}, band subsets (random forest on mean/max/std, blocked CV):\n"
          + info["band_subsets_table"], flush=True)  # fmt: skip
    meta[f"scene_{name}"] = info


def _scale_selected(img, valid, sel, y, r, c, bands, roles, idx, block, folds, models):
    """Nested blocked CV of "the feature window chosen by blocked CV on the training pixels".

    Candidates: the seed's 3x3 mean/max/std, and band means with the spectral indices over 3,
    5 and 7 px windows. In every outer fold the candidate with the best pooled accuracy under
    3-fold blocked CV of that fold's training pixels only (same block size and buffer) is
    fitted on them and predicts the test fold; the test fold is never looked at. The buffer
    keeps the largest (7 px) windows of training and test pixels apart. Returns, per model,
    the pooled report, the choices per fold, and the seed's RF on the same folds.
    """
    from skysense.landuse.estimator import fold_estimator
    from skysense.landuse.evaluate import accuracy_report, spatial_cross_validate
    from skysense.landuse.features import FeatureSpec, window_features
    from skysense.landuse.folds import spatial_folds

    cands = {"3x3 mean/max/std": FeatureSpec(bands, ("mean", "max", "std"), 3)}
    for w in (3, 5, 7):
        cands[f"{w}x{w} means+indices"] = FeatureSpec(bands, ("mean",), w, idx, roles)
    X = {k: window_features(img, valid, s)[sel].astype(np.float64) for k, s in cands.items()}
    buffer = 2 * max(s.halo_px for s in cands.values())
    outer = spatial_folds(r, c, block_px=block, folds=folds, buffer_px=buffer)
    labels = np.unique(y)
    out = {"buffer_px": buffer, "candidates": list(cands)}
    for model in ["rf (seed) on 3x3 mean/max/std, same folds", *models]:
        pred = np.zeros_like(y)
        picks = []
        for train, test in outer:
            codes, counts = np.unique(y[train], return_counts=True)
            train = train[np.isin(y[train], codes[counts >= 5])]
            if model.startswith("rf (seed)"):
                best, name = "3x3 mean/max/std", "rf"
            else:
                name = model
                inner = {}
                for k, Xk in X.items():
                    rep, _ = spatial_cross_validate(Xk[train], y[train], r[train], c[train],
                                                    classifier=name, block_px=block, folds=3,
                                                    buffer_px=buffer)  # fmt: skip
                    inner[k] = rep.overall_accuracy
                best = max(inner, key=lambda k: (inner[k], -list(cands).index(k)))
                picks.append({"chosen": best, "inner_oa": inner})
            est = fold_estimator(name, None).fit(X[best][train], y[train])
            pred[test] = est.predict(X[best][test])
        rep = accuracy_report(y, pred, labels)
        out[model] = {"blocked": rep.to_dict(), "choices": picks}
        print(f"  window chosen by inner blocked CV, {model}: OA {rep.overall_accuracy:.4f} "
              f"macro-F1 {np.nanmean(rep.f1):.4f}; chose {[p['chosen'] for p in picks]} "
              f"(load {_loadavg()[0]})", flush=True)  # fmt: skip
    return out


def _make_raster(path: Path, size: int, seed: int = 0) -> np.ndarray:
    """6-band uint8 raster: six classes in 64-px tiles, per-class band means, noise sd 12."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    means = rng.uniform(30, 220, size=(7, 6))
    profile = dict(driver="GTiff", width=size, height=size, count=6, dtype="uint8",
                   crs="EPSG:32630", transform=from_origin(400000, 4500000, 10, 10),
                   tiled=True, blockxsize=256, blockysize=256, nodata=0)  # fmt: skip
    step = 1024
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, step):
            nr = min(step, size - r0)
            r = (np.arange(r0, r0 + nr) // 64)[:, None]
            c = (np.arange(size) // 64)[None, :]
            truth = (r * 5 + c * 3) % 6 + 1
            img = means[truth].transpose(2, 0, 1) + rng.normal(0, 12, (6, nr, size)).astype(
                np.float32
            )
            dst.write(np.clip(img, 1, 255).astype(np.uint8), window=Window(0, r0, size, nr))
    return means


def _throughput(opts, rows, meta):
    import rasterio

    from skysense.landuse.engine import classify_raster
    from skysense.landuse.estimator import train_model
    from skysense.landuse.features import FeatureSpec, window_features

    size = 2048 if opts.quick else opts.size
    tmp = Path(tempfile.mkdtemp(prefix="skysense-landuse-", dir="/tmp"))
    img = tmp / f"img_{size}.tif"
    t0 = time.perf_counter()
    _make_raster(img, size)
    gen_s = time.perf_counter() - t0
    spec = FeatureSpec(tuple(f"b{i}" for i in range(1, 7)), ("mean", "max", "std"), 3)
    with rasterio.open(img) as src:  # training pixels from the first 1024 x 1024 window
        from rasterio.windows import Window

        block = src.read(window=Window(0, 0, 1024, 1024))
    feats = window_features(block, None, spec).reshape(-1, len(spec.names))
    r = np.arange(1024)[:, None] // 64
    c = np.arange(1024)[None, :] // 64
    truth = ((r * 5 + c * 3) % 6 + 1).ravel()
    pick = np.random.default_rng(1).choice(truth.size, 6000, replace=False)
    params = {"n_estimators": 32, "max_depth": 12, "min_samples_leaf": 5}
    model = train_model(feats[pick], truth[pick], spec, params=params, n_jobs=2)
    load_before = os.getloadavg()
    os.environ["SKYSENSE_PROGRESS"] = "0"
    wall, peak, res = peak_rss_during(
        lambda: classify_raster(model, img, tmp / "classes.tif", block_px=1024)
    )
    load_after = os.getloadavg()
    with rasterio.open(tmp / "classes.tif") as out:
        sub = out.read(1, window=rasterio.windows.Window(0, 0, 2048, 2048))
    r = np.arange(2048)[:, None] // 64
    c = np.arange(2048)[None, :] // 64
    acc = float(np.mean(sub == (r * 5 + c * 3) % 6 + 1))
    note = (f"{size}x{size}x6 uint8, RF {params['n_estimators']} trees depth<={params['max_depth']}, "
            f"3x3 mean/max/std; load avg {load_before[0]:.1f} -> {load_after[0]:.1f} on "
            f"{os.cpu_count()} cpus")  # fmt: skip
    rows.append(Row(f"classify {size}x{size} 6-band raster: wall", wall, 60.0, "goal", unit="s",
                    notes=note, extra={"windows": res.n_windows, "accuracy_2048_corner": acc,
                                       "generate_s": gen_s}))  # fmt: skip
    rows.append(Row(f"classify {size}x{size}: peak RSS increase", peak / 2**30, 2.0, "goal",
                    unit="GiB", notes="threads included (local threaded scheduler)"))  # fmt: skip
    rows.append(Row(f"classify {size}x{size}: pixels per second", size * size / wall, None,
                    unit="px/s", higher_is_better=True,
                    notes=f"accuracy on a 2048^2 corner vs truth {acc:.4f}"))  # fmt: skip
    meta["throughput"] = {"size": size, "wall_s": wall, "peak_rss_gib": peak / 2**30,
                          "loadavg_before": load_before, "loadavg_after": load_after}  # fmt: skip
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


def run(opts):
    rows: list[Row] = []
    meta: dict = {"load_avg_at_start": os.getloadavg()}
    if not getattr(opts, "skip_statlog", False):
        _statlog(opts, rows, meta)
    if not getattr(opts, "skip_scenes", False):
        for name in [s for s in getattr(opts, "scenes", "landsat7").split(",") if s]:
            _scene(name, opts, rows, meta)
    if not getattr(opts, "skip_throughput", False):
        _throughput(opts, rows, meta)
    return rows, meta
