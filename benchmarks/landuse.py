"""Land use: Statlog Landsat and real scenes, the default model against its strongest baselines.

Data (``../shared/data/landuse``, README section d).

The default model is ``LanduseClassifier()``, i.e. ``classifier="auto"``: it compares its
candidates by cross-validation **of the training samples it is given, and nothing else**,
refits the winner on all of them and records the CV table, the choice and a SHA-256
fingerprint of the training table (checked here against the training table, and against the
test table for inequality). Samples without their pixels (Statlog) are compared by stratified
folds among :data:`skysense.landuse.classify.AUTO_CANDIDATES` (random forest on the seed's
mean/max/std, a random-subspace forest - one random feature per split - on band means and
indices at every scale, random forest, gradient boosting, logistic regression on all features
and on band means + indices, the soft-vote ensemble); raster samples with their pixels by
spatially blocked folds among :data:`skysense.landuse.classify.AUTO_CANDIDATES_BLOCKED` (from
ec4e9e7: the random-subspace forest, the logistic regression and their equal soft vote
``vote``, all on band means and indices at every scale). Both also score the blend of their
candidates.

**Statlog** (official train 4435 / test 2000 rows; each row a 3x3 neighbourhood of 4 Landsat
MSS bands). Features (:func:`statlog_spec_rich`): per band mean, max, std, min and centre;
NDVI, NDWI and the green-red index of the band means and their window statistics; GLCM
texture of the first principal component. ``auto`` chooses by stratified 3-fold CV on (a
3000-row subsample of) the training file before the test file is read, and is scored once on
the test file. The other rows are peers measured in the same run (random forest on mean/max/std
is the seed's method); their test scores are reported, never used to choose. Goal (#20):
OA >= 0.935 and kappa >= 0.92.

**Real scenes** (labelled pixels; spatially blocked outer folds, blocks larger than every
feature window and a buffer that keeps training windows from sharing pixels with test
windows):

- Landsat 7 ETM+ (open-geo-tutorial; 250 x 250 px, 718 hand-labelled pixels, 5 classes;
  bands blue, green, red, NIR, SWIR1, SWIR2, thermal);
- AVIRIS Salinas-A (83 x 86 px, 204 bands, 5348 labelled pixels, 6 crop classes; band roles
  from AVIRIS' nominal band centres). Seed-only by default (the plain random forest is at
  0.98 already, and 204 bands make the nested choice slow).

**Protocol (pre-registered, :data:`PROTOCOL`, also written into the JSON's meta).** Registered
and committed at 15:19 UTC (ec6485e) before any outer fold with fold seeds 300-304 was scored;
the earlier protocol (:data:`PROTOCOL_D8081F0`, seeds 100-104) was confirmed once at 13:08
(+1.6 points, below) and is used up, as are the development seeds 0-4. Development for it used
fold seeds 200-209 only (:data:`DEVELOPMENT`, also in meta).

**Confirmation run** of :data:`PROTOCOL`, 2026-12-07 16:00-16:13 UTC (commit ec4e9e7's code,
``--skip-throughput --scenes landsat7``; load average 9.1-10.2 at the start, 6.3-8.8 at the
end, other helpers' jobs throughout; ``results/landuse.json`` holds every inner CV table and
choice and the load beside each figure):

- Landsat 7, nested blocked CV (blocks 25 px, buffer 6 px, 4 outer folds, ``auto``'s inner CV
  6 blocked folds), outer fold seeds 300-304:

  ===========================  ====================================  ======  ========
  model                        OA per partition (mean)               kappa   macro-F1
  ===========================  ====================================  ======  ========
  auto (default)               0.798 0.866 0.802 0.802 0.811 (0.816)  0.711   0.624
  auto's best single (2nd.)    0.763 0.866 0.802 0.802 0.811 (0.809)  0.699   0.613
  rf on 3x3 mean/max/std       0.733 0.753 0.776 0.790 0.786 (0.767)  0.631   0.602
  ===========================  ====================================  ======  ========

  Gain +6.5, +11.3, +2.6, +1.3, +2.5 points, mean **+4.8: the goal of +3 is met on the mean**
  (not on every partition). Macro-F1 0.624 against 0.602 (per partition 0.635/0.696/0.590/
  0.587/0.611 against 0.575/0.584/0.600/0.640/0.614: better on two, worse on three; the
  urban polygon still has no training pixel in the fold that tests it). The 20 inner choices:
  rf@means+indices 12, vote 4, blend 3, lr@means+indices 1.
- Random-pixel CV (stratified 4 folds, seed 0; ``auto`` nested with stratified inner CV and so
  the AUTO_CANDIDATES) overstates OA by 20-26 points: rf 0.9972 against 0.7326 blocked (seed
  300), auto 1.0000 against 0.7981.
- Band subsets (rf on 3x3 mean/max/std, blocked CV, fold seed 300), Li et al. 2014's
  experiment: 4 bands (B, G, R, NIR) 0.6936 (kappa 0.509, macro-F1 0.482), 6 bands (+SWIR1,2)
  0.7354 (0.573, 0.580), all 7 (+thermal) 0.7326 (0.569, 0.575).
- Statlog (the same run; its candidates are unchanged): ``auto`` chose the ensemble, test OA
  0.9355, kappa 0.9205, macro-F1 0.9232 (goal met, just); the seed's rf 0.9205 / 0.9025. Peers,
  never used to choose: gb on rich 0.9470, rf on rich 0.9300, lr on rich 0.8735.

The earlier confirmation (protocol d8081f0) is kept below and in ``meta.previous_confirmations``.

**Earlier confirmation run** (:data:`PROTOCOL_D8081F0`), 2026-12-07 12:24-13:08 UTC (commit
bf2b57d's code; 2 cores, load average 15-25 from other jobs throughout; ``--skip-throughput
--scenes landsat7``; ``results/landuse.json`` holds every inner CV table, the choice per outer
fold, ``PROTOCOL`` and the load beside each figure):

- Landsat 7, nested blocked CV (blocks 25 px, buffer 6 px, 4 outer folds, ``auto``'s inner CV
  6 blocked folds), outer fold seeds 100-104:

  ===========================  ====================================  ======  ========
  model                        OA per partition (mean)               kappa   macro-F1
  ===========================  ====================================  ======  ========
  auto (default, with blend)   0.759 0.809 0.792 0.726 0.792 (0.776)  0.646   0.610
  auto's best single (2nd.)    0.735 0.809 0.792 0.726 0.792 (0.771)  0.638   0.606
  rf on 3x3 mean/max/std       0.749 0.786 0.754 0.734 0.777 (0.760)  0.620   0.613
  ===========================  ====================================  ======  ========

  (kappa and macro-F1 are means over the partitions.) Gain +1.0, +2.4, +3.9, -0.8, +1.5
  points, mean **+1.6: the goal of +3 is NOT met**, and macro-F1 is not better (0.610 against
  0.613). The 20 inner choices: random-subspace rf on means+indices 13, rf 3, blend 2, rf on
  mean/max/std 1, lr on means+indices 1. The blend won inner CV twice; it changed one outer
  fold's accuracy (seed 100, fold 2: 1.000 against 0.906 for the best single candidate).
  The development estimate on fold seeds 0-4 (+2.5, below) was optimistic by about a point,
  as its docstring warned.
- Random-pixel CV (stratified 4 folds; ``auto`` nested with stratified inner CV) overstates OA
  by 24-25 points: rf 0.9972 against 0.7493 blocked (seed 100), auto 1.0000 against 0.7591.
- Band subsets (rf on 3x3 mean/max/std, blocked CV, fold seed 100), Li et al. 2014's
  experiment: 4 bands (B, G, R, NIR) 0.7145 (kappa 0.548, macro-F1 0.514), 6 bands (+SWIR1,2)
  0.7451 (0.590, 0.587), all 7 (+thermal) 0.7493 (0.605, 0.614).
- Statlog (the same run): ``auto`` chose the ensemble again by 3-fold CV on 3000 training rows
  (CV OA: ensemble 0.9157, blend 0.9153, gb 0.9120, rf 0.9093, rf on mean/max/std 0.9020,
  random-subspace rf 0.8713, lr 0.8693, lr on means+indices 0.8377; 114 s at load 22-25).
  Test: OA 0.9355, kappa 0.9205, macro-F1 0.9232 (goal met, just); the seed's rf 0.9205 /
  0.9025. Peers, reported and never used to choose: gb on rich 0.9470, rf on rich 0.9300, lr
  on rich 0.8735.
- Salinas-A: not in this run (seed-only, ``landuse_salinas.json``, 12-px blocks): the plain rf
  reaches 0.9776 blocked OA (random-pixel 0.9991, +2.2 points), so +3 is out of reach there.

**Development** (before the protocol; fold seeds 0-4; run 10:30-10:44 UTC at load 3-9): auto
without the blend 0.756 0.783 0.879 0.786 0.751 (mean 0.791, kappa 0.668, macro-F1 0.623)
against the seed's rf 0.798 0.759 0.773 0.773 0.724 (0.766, 0.627, 0.600), +2.5 points; the 6
inner folds (3 gave mean 0.772) and the random-subspace candidate were adopted while looking
at these partitions, and a 5-candidate trial (no gb, no ensemble) that gave +6.2 on 4 of them
was picked after seeing outer folds, so neither is a claim. What limits every model: 67 of the
68 urban pixels are one polygon whose only fellow urban polygon lies within the buffer, so in
the fold that tests it no urban pixel is left to train on (urban, class 5, has F1 0 for every
model on fold seed 100); the
rest of the gap is whole barren and herbaceous polygons held out. Tried and not adopted (fixed
models outside the nested evaluation, so no claim): object features of SLIC / Felzenszwalb
segments cut at the block grid; LDA, Gaussian naive Bayes, linear and balanced RBF SVMs;
choosing by inner Brier score or log loss instead of accuracy; pooling 5 inner partitions
(``repeats``: none of 12 choices changed).

Throughput: a generated 6-band raster (``--size`` pixels a side) is classified with a random
forest on 3x3 mean/max/std features through the local threaded Dask scheduler
(``--skip-throughput`` keeps the previous JSON's rows, marked).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._harness import SHARED_DATA, Row, peak_rss_during

__all__ = ["run", "add_arguments"]

#: The evaluation protocol of the real scenes, registered (committed) on 2026-12-07 at about
#: 15:25 UTC, BEFORE any outer fold was scored with fold seeds 300-304. The previous protocol
#: (:data:`PROTOCOL_D8081F0`, seeds 100-104) was confirmed once and is used up, as are the
#: development seeds 0-4. What was decided on what is spelled out, so that a reader can tell
#: development from confirmation.
PROTOCOL = {
    "registered": "2026-12-07T15:25Z, committed before any outer fold with fold seeds 300-304 "
    "was scored (the commit that adds this entry)",
    "primary_claim": "Landsat 7 scene (LE70220491999322EDC01_stack.gtif, training_data.gtif): "
    "mean over the 5 outer partitions with fold seeds 300-304 of OA(auto, the library default "
    "LanduseClassifier() with this benchmark's rich features, at the HEAD of the confirmation "
    "run) - OA(rf on 3x3 mean/max/std, the seed's method) >= 0.03 (3 points). Kappa and "
    "macro-F1 (mean over the partitions) reported beside it for both. Run once; whatever the "
    "outcome, it is reported and no rerun with other settings replaces it",
    "outer_fold_seeds": [300, 301, 302, 303, 304],
    "outer": "4 spatially blocked folds (skysense.landuse.folds.spatial_folds), blocks 25 px, "
    "buffer = rich feature footprint - 1 (training and test windows share no pixel); the same "
    "folds for both models",
    "model": "LanduseClassifier() default (classifier='auto'), candidates and inner blocked CV "
    "as the library has them at the confirmation HEAD, fitted on each outer fold's training "
    "pixels only (coords given, so its inner CV is blocked), predicting the test fold",
    "baseline": "classifier='rf' (balanced random forest, library defaults) on the 3x3 "
    "mean/max/std of all 7 bands, random_state = the partition's fold seed",
    "development": "fold seeds 200-209 only (never run before this entry; checked against the "
    "results JSON meta and the git history: only 0-4 and 100-104 were used), plus inner CV; "
    "the scores of seeds 300-304 are not looked at before the final default is committed",
    "segments": "any segmentation uses the image only (no labels); segment-based features or "
    "smoothing read no pixel farther than the buffer from the pixel they describe, so the "
    "buffer keeps training and test samples apart",
    "secondary": "auto's best single candidate of the same inner CV; random-pixel CV "
    "overstatement (stratified 4 folds, seed 300); band subsets 4/6/7 (rf, blocked, seed 300)",
    "salinas": "plain RF reaches 0.978 blocked OA (12-px blocks): at most 2.2 points of "
    "headroom, so +3 is impossible there by arithmetic; reported seed-only",
    "statlog": "auto chosen by stratified 3-fold CV on the training file before the test file "
    "is read; scored once (rerun if the default changed)",
}

#: What development under :data:`PROTOCOL` (fold seeds 200-209 only, fixed models and nested
#: auto, against the seed's forest on the same folds; load 5-13) found and decided, written
#: before the confirmation run on fold seeds 300-304. Gains in OA points.
DEVELOPMENT = {
    "fixed models, seeds 200-207 (rich features, scales 5,7)": {
        "rf@means+indices (random subspace)": 5.0, "lr@means+indices": 3.3, "lr (all)": 0.0,
        "vote of the two (equal soft vote)": 4.9, "rf (all), seeds 200-204": 0.0,
        "gb (all), seeds 200-204": -1.8},
    "not adopted": {
        "scales 5,7,9,11 / 5,7,9,11,15 (larger buffer)": "rf@means+indices +4.0 / +5.1, "
        "lr@means+indices +5.2 / +5.5 on seeds 200-204: within the noise of scales 5,7",
        "object features: band means (and indices) over the pixels of the 7x7 window in the "
        "centre's Felzenszwalb segment (scale 100, sigma 0.5), added to means+indices": "rf "
        "+5.7 -> +3.4, vote +5.8 -> +4.0 (seeds 200-204)",
    },
    "nested auto": {
        "candidates rf@stats, rf@means+indices, lr@means+indices (+blend), seeds 200-204":
            [-1.3, 3.1, 9.7, 1.5, 10.3],
        "candidates rf@stats, vote@means+indices (+blend), seeds 205-209":
            [0.4, 0.6, 1.3, -1.0, 0.0],
        "candidates vote, rf, lr on means+indices (+blend) = AUTO_CANDIDATES_BLOCKED, "
        "seeds 205-209 (adopted)": [1.3, 3.3, 4.2, 2.4, 2.6],
    },
    "after the decision (no choice made on it)": "Salinas-A, one nested partition (fold seed "
    "200, 12-px blocks, buffer 6 px; a script outside this benchmark, load 6-7): auto with the "
    "new blocked default 0.9903 against the seed's rf 0.9770 on the same folds (chose vote, lr, "
    "lr, vote on means+indices), so the smooth candidates do not cost the hyperspectral scene",
    "decided": "auto's default candidates for blocked CV (samples with their pixels) became "
    "AUTO_CANDIDATES_BLOCKED (the models on smooth features); stratified CV (Statlog, tables "
    "without pixels) keeps AUTO_CANDIDATES",
}  # fmt: skip

#: The previous protocol, registered 2026-12-07 12:22 UTC (d8081f0) and confirmed once
#: (seeds 100-104: auto 0.776 against rf 0.760, +1.6 points, goal not met). Kept as a record.
PROTOCOL_D8081F0 = {
    "registered": "2026-12-07T12:22Z (commit d8081f0), before the confirmation run",
    "primary_claim": "Landsat 7 scene: mean over the 5 outer partitions with fold seeds 100-104 "
    "of OA(auto, the library default) - OA(rf on 3x3 mean/max/std) >= 0.03; macro-F1 and "
    "kappa reported beside it. Whatever the outcome, it is reported; no rerun with other "
    "settings replaces it",
    "outer_fold_seeds": [100, 101, 102, 103, 104],
    "outer": "4 spatially blocked folds, blocks 25 px (Landsat 7) / 12 px (Salinas-A), buffer "
    "= feature footprint - 1 (6 px), so training and test windows share no pixel",
    "model": "LanduseClassifier() (classifier='auto'): AUTO_CANDIDATES (unchanged since "
    "4b6150f) plus their blend (select_classifier(blend=True)), 6 blocked inner folds, chosen "
    "on each outer fold's training pixels only",
    "features": "the rich spec of this file, unchanged since 4b6150f",
    "decided_on_what": {
        "6 inner folds, the random-subspace candidate, the candidate list": "development, "
        "partly while looking at nested results on outer fold seeds 0-3 (contaminated; see "
        "the docstring)",
        "the blend (super learner over the candidates, cross-fitted inner score, chosen only "
        "if its inner CV accuracy beats the best single candidate)": "by principle (a "
        "weighted vote spreads the winner's curse of choosing among candidates whose inner "
        "scores differ by a polygon); checked only for correctness (synthetic data, a "
        "brute-force optimum of the weights) before the confirmation run",
        "fold seeds 100-104": "never run before this protocol was committed",
    },
    "secondary": "auto's best single candidate of the same inner CV (what auto chose before "
    "the blend) on the same partitions; fold seeds 0-4 may be run for continuity, marked "
    "development",
    "salinas": "plain RF reaches 0.978 blocked OA (12-px blocks): at most 2.2 points of "
    "headroom, so +3 is impossible there by arithmetic; reported seed-only",
    "statlog": "auto (with the blend) chosen by stratified 3-fold CV on the training file "
    "before the test file is read; scored once",
}

STATLOG_BEST = 0.906  # kNN, Michie et al. 1994
GOAL_OA, GOAL_KAPPA = 0.935, 0.92
SCENE_GOAL_POINTS = 0.03
TEXTURE = ("contrast", "homogeneity", "ASM", "correlation", "entropy")


def add_arguments(parser) -> None:
    parser.add_argument("--size", type=int, default=10_000, help="throughput raster side (px)")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="keep the previous JSON's throughput rows (marked) instead")  # fmt: skip
    parser.add_argument("--skip-statlog", action="store_true")
    parser.add_argument("--skip-scenes", action="store_true")
    parser.add_argument("--scenes", default="landsat7,salinas", help="real scenes to run")
    parser.add_argument("--folds", type=int, default=4, help="blocked CV folds on the scenes")
    parser.add_argument("--partitions", type=int, default=5,
                        help="outer blocked partitions (fold seeds S, S+1, ...) on the scenes: "
                        "with a few dozen polygons one partition moves OA by whole polygons")  # fmt: skip
    parser.add_argument("--partition-seed", type=int, default=PROTOCOL["outer_fold_seeds"][0],
                        help="S, the first outer fold seed (default: the pre-registered "
                        "confirmation partitions; 0-4 were used in development)")  # fmt: skip
    parser.add_argument("--seed-only-scenes", default="salinas",
                        help="scenes on which only the seed's random forest and the band subsets "
                        "run (salinas: 204 bands make the nested model choice slow)")  # fmt: skip
    parser.add_argument("--skip-random-cv", action="store_true",
                        help="leave out the random-pixel CV of the default (nested, slow)")  # fmt: skip
    parser.add_argument("--candidates", default="",
                        help="auto's candidates (comma-separated keys); default the library's "
                        "AUTO_CANDIDATES")  # fmt: skip


def _loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def statlog_spec_rich(train_pixels):
    """The feature spec of the default model on Statlog: per band mean, max, std, min and
    centre pixel; NDVI, NDWI and the green-red index of the band means and their window
    statistics (bands 1/2/3 as green/red/NIR); GLCM texture of the first principal component
    (8 levels, fitted on ``train_pixels``, the training file's)."""
    from skysense.landuse.features import FeatureSpec, with_texture

    spec = FeatureSpec(("b1", "b2", "b3", "b4"), ("mean", "max", "std", "min", "center"), 3,
                       ("ndvi", "ndwi", "ngrdi"), {"green": "b1", "red": "b2", "nir": "b3"},
                       index_stats=("mean", "std", "min", "max", "center"))  # fmt: skip
    return with_texture(spec, train_pixels.reshape(-1, 4), TEXTURE, levels=8)


def _auto_params(opts, **kw):
    cands = getattr(opts, "candidates", "") or None
    if opts.quick and not cands:
        cands = "rf@stats,rf,lr,lr@means+indices"
    return ({"candidates": cands} if cands else {}) | kw


def _statlog(opts, rows, meta):
    from threadpoolctl import threadpool_limits

    from skysense.landuse.classes import STATLOG
    from skysense.landuse.estimator import LanduseClassifier, _fingerprint, selection_table
    from skysense.landuse.evaluate import accuracy_report, comparison_table
    from skysense.landuse.features import sample_features
    from skysense.landuse.samples_io import read_statlog

    folder = SHARED_DATA / "landuse"
    ptr, ytr = read_statlog(folder / "statlog_landsat_sat.trn")
    spec = statlog_spec_rich(ptr)
    Xtr = sample_features(ptr, spec)
    # the default model is chosen and fitted before the test file is even read
    load0 = _loadavg()
    t0 = time.perf_counter()
    with threadpool_limits(1):  # OpenMP spin-waits badly on a loaded machine
        auto = LanduseClassifier(params=_auto_params(opts), spec=spec, scheme=STATLOG).fit(Xtr, ytr)
    sel = auto.info_["model_selection"]
    sel["seconds_incl_refit"] = time.perf_counter() - t0
    sel["loadavg"] = [load0, _loadavg()]
    assert sel["data_sha256"] == _fingerprint(Xtr, ytr)  # chosen on the training file
    meta["statlog_selection"] = sel
    print(f"statlog: auto chose {sel['chosen']} by {sel['how']} on {sel['n_samples']} of the "
          f"{sel['n_training']} training rows ({sel['seconds_incl_refit']:.0f} s, load "
          f"{load0[0]} -> {_loadavg()[0]}):\n" + selection_table(sel), flush=True)  # fmt: skip
    pte, yte = read_statlog(folder / "statlog_landsat_sat.tst")
    Xte = sample_features(pte, spec)
    assert sel["data_sha256"] != _fingerprint(Xte, yte)
    labels = np.unique(ytr)
    names = [STATLOG.name_of(int(c)) for c in labels]
    chosen = sel["chosen"]
    runs = {f"auto (default, chose {chosen})": auto, "rf on mean/max/std (seed)": ("rf", "stats"),
            "rf on rich": ("rf", "all")}  # fmt: skip
    if not opts.quick:
        runs["gb on rich"] = ("gb", "all")
        runs["lr on rich"] = ("lr", "all")
    reports = {}
    for key, how in runs.items():
        t0 = time.perf_counter()
        if isinstance(how, tuple):
            with threadpool_limits(1):
                est = LanduseClassifier(how[0], {"features": how[1]}, spec=spec).fit(Xtr, ytr)
        else:
            est = how
        rep = accuracy_report(yte, est.predict(Xte), labels, names)
        reports[key] = rep
        macro = float(np.nanmean(rep.f1))
        print(f"  {key}: OA {rep.overall_accuracy:.4f} kappa {rep.kappa:.4f} macro-F1 "
              f"{macro:.4f} (load {_loadavg()[0]})", flush=True)  # fmt: skip
        rows.append(Row(f"statlog test OA: {key}", rep.overall_accuracy, STATLOG_BEST,
                        "Statlog 1994 best (kNN)", unit="accuracy", higher_is_better=True,
                        notes=f"kappa {rep.kappa:.4f}, macro-F1 {macro:.4f}",
                        extra={"kappa": rep.kappa, "macro_f1": macro,
                               "f1": dict(zip(names, rep.f1.tolist())),
                               "fit_predict_s": time.perf_counter() - t0,
                               "loadavg": _loadavg()}))  # fmt: skip
    final = next(iter(reports.values()))
    base = reports["rf on mean/max/std (seed)"]
    best_peer = max(r.overall_accuracy for k, r in reports.items() if not k.startswith("auto"))
    met = final.overall_accuracy >= GOAL_OA and final.kappa >= GOAL_KAPPA
    rows.append(Row("statlog default (auto) OA vs plain RF on mean/max/std", final.overall_accuracy,
                    base.overall_accuracy, "random forest, mean/max/std (seed)",
                    unit="accuracy", higher_is_better=True,
                    notes=f"chose {chosen} by CV on the training file; goal OA >= {GOAL_OA} and "
                    f"kappa >= {GOAL_KAPPA}: {'met' if met else 'NOT met'} (kappa "
                    f"{final.kappa:.4f}); best peer in this run {best_peer:.4f} (reported, "
                    "never used to choose)"))  # fmt: skip
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


def _nested(X, y, r, c, spec, outer, params, *, coords=True):
    """Outer folds: fit ``auto`` (``params``) on the training pixels only (its own blocked CV
    inside them when ``coords``), predict the test fold. Returns predictions, per fold the
    choice, its CV table, and the check that it saw exactly the training fold, and the
    predictions of the best single candidate of the same inner CV (refitted when the blend
    won; a secondary row that shows what the blend adds)."""
    from threadpoolctl import threadpool_limits

    from skysense.landuse.estimator import LanduseClassifier, _fingerprint

    pred = np.zeros_like(y)
    single = np.zeros_like(y)
    folds = []
    for k, (train, test) in enumerate(outer):
        codes, counts = np.unique(y[train], return_counts=True)
        train = train[np.isin(y[train], codes[counts >= 2])]
        t0 = time.perf_counter()
        est = LanduseClassifier(params=params, spec=spec)
        kw = {"coords": np.column_stack([r[train], c[train]])} if coords else {}
        with threadpool_limits(1):
            est.fit(X[train], y[train], **kw)
        pred[test] = est.predict(X[test])
        sel = est.info_["model_selection"]
        if sel["chosen"] == sel["best_single"]:
            single[test] = pred[test]
        else:
            name, _, fs = sel["best_single"].partition("@")
            one = LanduseClassifier(name, dict(_single_params(params, sel["best_single"]))
                                    | ({"features": fs} if fs else {}), spec=spec)  # fmt: skip
            with threadpool_limits(1):
                one.fit(X[train], y[train])
            single[test] = one.predict(X[test])
        # the choice saw the training fold and nothing else
        assert sel["data_sha256"] == _fingerprint(X[train], y[train])
        assert not np.isin(test, train).any()
        folds.append({"fold": k + 1, "chosen": sel["chosen"], "how": sel["how"],
                      "best_single": sel["best_single"], "params": sel["params"],
                      "single_test_accuracy": float(np.mean(single[test] == y[test])),
                      "n_training": sel["n_training"], "table": sel["table"],
                      "test_accuracy": float(np.mean(pred[test] == y[test])),
                      "seconds": time.perf_counter() - t0, "loadavg": _loadavg()})  # fmt: skip
        print(f"    fold {k + 1}: chose {sel['chosen']} ({sel['how']}; "
              f"{time.perf_counter() - t0:.0f} s, load {_loadavg()[0]})", flush=True)  # fmt: skip
    return pred, folds, single


def _single_params(params, key):
    """Hyperparameters of candidate ``key`` of ``auto`` with ``params``."""
    from skysense.landuse.classify import AUTO_CANDIDATES, AUTO_CANDIDATES_BLOCKED

    cands = params.get("candidates")
    if isinstance(cands, dict):
        return cands.get(key, {})
    return (AUTO_CANDIDATES | AUTO_CANDIDATES_BLOCKED).get(key, {})


def _scene(name, opts, rows, meta):
    from threadpoolctl import threadpool_limits

    from skysense.landuse.estimator import selection_table
    from skysense.landuse.evaluate import (
        accuracy_report,
        comparison_table,
        cross_validate,
        spatial_cross_validate,
        subset_columns,
    )
    from skysense.landuse.features import (
        INDICES,
        FeatureSpec,
        feature_set_columns,
        infer_roles,
        window_features,
        with_texture,
    )
    from skysense.landuse.folds import spatial_folds

    img, lab, valid, bands, roles, subsets, block = _load_scene(name)
    roles = roles or infer_roles(bands)
    sel = (lab > 0) & valid
    r, c = np.nonzero(sel)
    y = lab[sel]
    idx = tuple(i for i in ("ndvi", "ndwi", "ndbi", "mndwi", "gndvi", "nbr", "ndti", "ngrdi")
                if all(k in roles for k in INDICES[i]))  # fmt: skip
    rich = FeatureSpec(bands, ("mean", "max", "std"), 3, idx, roles, index_stats=("mean", "std"),
                       scales=(5, 7))  # fmt: skip
    pix = np.moveaxis(img, 0, -1)[valid]
    rich = with_texture(rich, pix, TEXTURE, levels=16, window_px=5)
    X = window_features(img, valid, rich)[sel].astype(np.float64)
    base_cols = feature_set_columns("stats", rich, X.shape[1])  # the seed's 3x3 mean/max/std
    Xb = X[:, base_cols]
    base = FeatureSpec(bands, ("mean", "max", "std"), 3)
    assert [rich.names[i] for i in base_cols] == base.names
    buffer = rich.footprint_px - 1  # windows of training and test pixels share no pixel
    seed_only = name in getattr(opts, "seed_only_scenes", "").split(",")
    info = {"n_samples": int(y.size), "classes": {int(k): int(v) for k, v in
            zip(*np.unique(y, return_counts=True))}, "block_px": block, "buffer_px": buffer,
            "folds": opts.folds, "features_seed": len(base.names), "features_rich": len(rich.names),
            "rich_spec": rich.to_dict() | {"texture_weights": "(fitted)"}, "roles": roles}  # fmt: skip
    print(f"\n{name}: {y.size} labelled pixels, {len(bands)} bands, {len(rich.names)} features, "
          f"blocks {block} px, buffer {buffer} px, {opts.folds} folds; load {_loadavg()}",
          flush=True)  # fmt: skip
    labels = np.unique(y)
    reps, rnd_reps = {}, {}
    n_part = max(1, int(getattr(opts, "partitions", 1)))
    s0 = int(getattr(opts, "partition_seed", 0))
    info["outer_fold_seeds"] = list(range(s0, s0 + n_part))
    parts: dict[str, list] = {"rf on 3x3 mean/max/std (seed)": [], "auto (default)": [],
                              "auto's best single candidate (secondary)": []}  # fmt: skip
    # the seed's random forest on 3x3 mean/max/std, the same outer folds (partition p: fold
    # seed p); partition 0 is the one of the tables below
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for p in range(n_part):
            rep, _ = spatial_cross_validate(Xb, y, r, c, classifier="rf", block_px=block,
                                            folds=opts.folds, buffer_px=buffer,
                                            random_state=s0 + p)  # fmt: skip
            parts["rf on 3x3 mean/max/std (seed)"].append(rep)
        seed_rnd, _ = cross_validate(Xb, y, classifier="rf", folds=opts.folds)
    seed_rep = parts["rf on 3x3 mean/max/std (seed)"][0]
    reps["rf on 3x3 mean/max/std (seed)"] = seed_rep
    rnd_reps["rf on 3x3 mean/max/std (seed)"] = seed_rnd
    print(f"  seed rf: blocked OA {[round(p.overall_accuracy, 4) for p in parts['rf on 3x3 mean/max/std (seed)']]}"
          f" (outer fold seeds {s0}..{s0 + n_part - 1}), random-pixel {seed_rnd.overall_accuracy:.4f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    if not seed_only:
        params = _auto_params(opts, block_px=block, buffer_px=buffer)
        info["auto_nested"] = []
        for p in range(n_part):
            t0 = time.perf_counter()
            outer = spatial_folds(r, c, block_px=block, folds=opts.folds, buffer_px=buffer,
                                  random_state=s0 + p)  # fmt: skip
            pred, folds, single = _nested(X, y, r, c, rich, outer, params)
            rep = accuracy_report(y, pred, labels)
            parts["auto (default)"].append(rep)
            parts["auto's best single candidate (secondary)"].append(
                accuracy_report(y, single, labels)
            )
            info["auto_nested"].append({"partition": p, "folds": folds,
                                        "seconds": time.perf_counter() - t0})  # fmt: skip
            print(f"  partition {p}: auto OA {rep.overall_accuracy:.4f}, seed rf "
                  f"{parts['rf on 3x3 mean/max/std (seed)'][p].overall_accuracy:.4f}", flush=True)  # fmt: skip
            for f in folds:
                print(f"  partition {p} fold {f['fold']} inner CV table ({f['how']}, "
                      f"{f['n_training']} pixels):\n"
                      + "\n".join("    " + ln for ln in selection_table(
                          {"table": f["table"], "chosen": f["chosen"], "scores": {}}).splitlines()))  # fmt: skip
        reps["auto (default)"] = parts["auto (default)"][0]
        if not getattr(opts, "skip_random_cv", False):
            rnd_outer = list(__import__("sklearn.model_selection", fromlist=["x"]).StratifiedKFold(
                opts.folds, shuffle=True, random_state=0).split(X, y))  # fmt: skip
            rpred, rfolds, _ = _nested(X, y, r, c, rich, rnd_outer, _auto_params(opts),
                                       coords=False)  # fmt: skip
            rnd_reps["auto (default)"] = accuracy_report(y, rpred, labels)
            info["auto_random_pixel_cv"] = {"folds": rfolds}
    info["partitions"] = {}
    for label, got in parts.items():
        if not got:
            continue
        oa = np.array([g.overall_accuracy for g in got])
        kappa = np.array([g.kappa for g in got])
        mf1 = np.array([np.nanmean(g.f1) for g in got])
        info["partitions"][label] = {"oa": oa.tolist(), "kappa": kappa.tolist(),
                                     "macro_f1": mf1.tolist()}  # fmt: skip
        rows.append(Row(f"{name} blocked-CV OA, mean of {len(got)} partitions: {label}",
                        float(oa.mean()), None, unit="accuracy", higher_is_better=True,
                        notes=f"sd {oa.std(ddof=1) if oa.size > 1 else 0:.4f}; per partition "
                        f"{np.round(oa, 4).tolist()}; kappa {kappa.mean():.4f}, macro-F1 "
                        f"{mf1.mean():.4f}"))  # fmt: skip
    if parts["auto (default)"]:
        a = np.array([g.overall_accuracy for g in parts["auto (default)"]])
        b = np.array([g.overall_accuracy for g in parts["rf on 3x3 mean/max/std (seed)"]])
        gain = a - b
        rows.append(Row(f"{name} blocked-CV OA, mean of {a.size} partitions: default (auto) vs "
                        "plain RF", float(a.mean()), float(b.mean()),
                        "random forest, 3x3 mean/max/std, same folds", unit="accuracy",
                        higher_is_better=True,
                        notes=f"{100 * gain.mean():+.1f} points (per partition "
                        f"{np.round(100 * gain, 1).tolist()}; goal +{100 * SCENE_GOAL_POINTS:.0f}: "
                        f"{'met' if gain.mean() >= SCENE_GOAL_POINTS else 'NOT met'} on the mean, "
                        f"{'met' if gain.min() >= SCENE_GOAL_POINTS else 'NOT met'} on every "
                        "partition)"))  # fmt: skip
        info["partitions"]["gain_points"] = (100 * gain).tolist()
        print(f"\n{name}, nested blocked CV over {a.size} partitions: auto OA "
              f"{np.round(a, 4).tolist()} (mean {a.mean():.4f}), seed rf {np.round(b, 4).tolist()} "
              f"(mean {b.mean():.4f}), gain {np.round(100 * gain, 1).tolist()} points", flush=True)  # fmt: skip
    for label, rep in reps.items():
        mf1 = float(np.nanmean(rep.f1))
        rnd = rnd_reps.get(label)
        over = None if rnd is None else rnd.overall_accuracy - rep.overall_accuracy
        info[label] = {"blocked": rep.to_dict(), "blocked_macro_f1": mf1,
                       "random_oa": None if rnd is None else rnd.overall_accuracy,
                       "random_macro_f1": None if rnd is None else float(np.nanmean(rnd.f1))}  # fmt: skip
        rows.append(Row(f"{name} blocked-CV OA, partition 0: {label}", rep.overall_accuracy,
                        None if rnd is None else rnd.overall_accuracy,
                        "same model, random-pixel CV", unit="accuracy", higher_is_better=True,
                        notes=f"kappa {rep.kappa:.4f}, macro-F1 {mf1:.4f}"
                        + ("" if over is None else f"; random-pixel CV overstates OA by {over:+.4f}")))  # fmt: skip
    if "auto (default)" in reps:
        d = reps["auto (default)"]
        gain = d.overall_accuracy - seed_rep.overall_accuracy
        chosen = [f["chosen"] for f in info["auto_nested"][0]["folds"]]
        rows.append(Row(f"{name} blocked-CV OA, partition 0: default (auto) vs plain RF",
                        d.overall_accuracy,
                        seed_rep.overall_accuracy, "random forest, 3x3 mean/max/std, same folds",
                        unit="accuracy", higher_is_better=True,
                        notes=f"{100 * gain:+.1f} points (goal +{100 * SCENE_GOAL_POINTS:.0f}: "
                        f"{'met' if gain >= SCENE_GOAL_POINTS else 'NOT met'}); macro-F1 "
                        f"{np.nanmean(d.f1):.4f} vs {np.nanmean(seed_rep.f1):.4f}; chosen per "
                        f"outer fold by inner blocked CV of its training pixels: {chosen}"))  # fmt: skip
    else:
        info["headroom_points"] = 100 * (1 - seed_rep.overall_accuracy)
    # Li et al. 2014: the same random forest on mean/max/std of band subsets
    sub_reps = {}
    for label, sub in subsets.items():
        cols, _ = subset_columns(base, sub)
        with threadpool_limits(1):
            rep, _ = spatial_cross_validate(Xb[:, cols], y, r, c, classifier="rf",
                                            block_px=block, folds=opts.folds, buffer_px=buffer,
                                            random_state=s0)  # fmt: skip
        sub_reps[label] = rep
        rows.append(Row(f"{name} band subset, RF mean/max/std, blocked CV: {label}",
                        rep.overall_accuracy, None, unit="accuracy", higher_is_better=True,
                        notes=f"kappa {rep.kappa:.4f}, macro-F1 {np.nanmean(rep.f1):.4f}"))  # fmt: skip
    info["table"] = comparison_table(reps)
    info["band_subsets_table"] = comparison_table(sub_reps)
    info["loadavg_end"] = _loadavg()
    print(f"\n{name}, spatially blocked CV:\n" + info["table"])
    print(f"\n{name}, band subsets (random forest on mean/max/std, blocked CV):\n"
          + info["band_subsets_table"], flush=True)  # fmt: skip
    meta[f"scene_{name}"] = info


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
    model = train_model(feats[pick], truth[pick], spec, classifier="rf", params=params, n_jobs=2)
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
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    meta: dict = {"load_avg_at_start": os.getloadavg(), "protocol": PROTOCOL | {"head": head},
                  "protocol_d8081f0": PROTOCOL_D8081F0, "development": DEVELOPMENT}  # fmt: skip
    _previous_confirmations(meta)
    if not getattr(opts, "skip_scenes", False):
        for name in [s for s in getattr(opts, "scenes", "landsat7").split(",") if s]:
            _scene(name, opts, rows, meta)
    if not getattr(opts, "skip_statlog", False):
        _statlog(opts, rows, meta)
    else:
        _previous_rows(rows, meta, "statlog", "statlog")
    if not getattr(opts, "skip_throughput", False):
        _throughput(opts, rows, meta)
    else:
        _previous_throughput(rows, meta)
    return rows, meta


def _previous_confirmations(meta):
    """Carry the confirmation runs of earlier protocols (other outer fold seeds) over from the
    previous results JSON into ``meta["previous_confirmations"]``, so a rerun keeps them."""
    import json

    from benchmarks._harness import RESULTS

    path = RESULTS / "landuse.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    om = old.get("meta", {})
    kept = list(om.get("previous_confirmations", []))
    prot = om.get("protocol", {})
    scene = om.get("scene_landsat7", {})
    if prot and prot.get("outer_fold_seeds") != PROTOCOL["outer_fold_seeds"] and scene:
        kept.append({"when": old.get("when"), "protocol": prot,
                     "outer_fold_seeds": scene.get("outer_fold_seeds"),
                     "partitions": scene.get("partitions"),
                     "chosen": [[f["chosen"] for f in p["folds"]]
                                for p in scene.get("auto_nested", [])]})  # fmt: skip
    if kept:
        meta["previous_confirmations"] = kept


def _previous_throughput(rows, meta):
    """The throughput rows of the previous results JSON, kept (marked) when not re-measured."""
    _previous_rows(rows, meta, "classify ", "throughput")


def _previous_rows(rows, meta, task_prefix, meta_prefix):
    """Rows (task starting with ``task_prefix``) and meta entries (key starting with
    ``meta_prefix``) of the previous results JSON, kept when not re-measured in this run
    (rows marked by ``--skip-*``; the throughput rows carry their own mark already)."""
    import json

    from benchmarks._harness import RESULTS

    path = RESULTS / "landuse.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    when = old.get("when", "the previous run")
    for row in old.get("rows", []):
        if row["task"].startswith(task_prefix):
            row.pop("ratio", None)
            if "not re-measured" not in (row.get("notes") or ""):
                row["notes"] = f"{row.get('notes') or ''}; [kept from {when}; not re-measured]"
            rows.append(Row(**row))
    for key, value in old.get("meta", {}).items():
        if key.startswith(meta_prefix):
            meta[key] = value
