"""Spatially blocked folds and the cross-validated choice of the default model (#20)."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.errors import ConfigError, InputError
from skysense.landuse.estimator import LanduseClassifier, select_classifier, train_model
from skysense.landuse.evaluate import cross_validate, spatial_cross_validate
from skysense.landuse.features import FeatureSpec
from skysense.landuse.folds import spatial_folds


def _grid(n_side=40, step=1):
    r, c = np.meshgrid(np.arange(0, n_side, step), np.arange(0, n_side, step), indexing="ij")
    return r.ravel(), c.ravel()


@pytest.mark.parametrize("block, buffer", [(8, 0), (10, 2), (7, 3)])
def test_folds_never_share_blocks_and_keep_the_buffer(block, buffer):
    rows, cols = _grid(40)
    keep = np.random.default_rng(0).random(rows.size) > 0.3
    rows, cols = rows[keep], cols[keep]
    folds = spatial_folds(rows, cols, block_px=block, folds=4, buffer_px=buffer, random_state=1)
    blocks = (rows // block) * 1000 + cols // block
    tested = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tested), np.arange(rows.size))  # every sample tested once
    for f, (train, test) in enumerate(folds):
        assert not set(blocks[train]) & set(blocks[test])
        for g, (_, other) in enumerate(folds):
            if g != f:
                assert not set(blocks[test]) & set(blocks[other])
        # Chebyshev distance of every training sample to every test sample
        d = np.maximum(np.abs(rows[train, None] - rows[None, test]),
                       np.abs(cols[train, None] - cols[None, test]))  # fmt: skip
        assert d.min() > buffer
        if buffer == 0:
            assert train.size + test.size == rows.size
    sizes = [te.size for _, te in folds]
    assert max(sizes) - min(sizes) <= np.bincount(np.unique(blocks, return_inverse=True)[1]).max()


def test_fold_arguments_are_checked():
    rows, cols = _grid(16)
    with pytest.raises(InputError, match="blocks"):
        spatial_folds(rows, cols, block_px=16, folds=2)
    with pytest.raises(ConfigError):
        spatial_folds(rows, cols, block_px=1, folds=2)
    X = np.zeros((rows.size, 1))
    with pytest.raises(ConfigError, match="not larger"):
        spatial_cross_validate(X, rows % 2 + 1, rows, cols, block_px=3, window_px=3)


def _patchy(seed=0, n_side=48, patch=12):
    """Classes in square patches; a feature that is smooth in space (a window mean) plus
    a pixel-level feature that carries the class only weakly."""
    rng = np.random.default_rng(seed)
    rows, cols = _grid(n_side)
    y = ((rows // patch) * 7 + (cols // patch) * 3) % 3 + 1
    # a per-patch random offset: pixels of one patch share it, so random-pixel CV can learn
    # the patch, but a new patch is new
    offset = rng.normal(0, 3, (n_side // patch + 1, n_side // patch + 1))[rows // patch,
                                                                             cols // patch]  # fmt: skip
    X = np.column_stack([offset + 0.3 * rng.normal(size=rows.size),
                         y + rng.normal(0, 1.5, rows.size)])  # fmt: skip
    return X, y, rows, cols


def test_random_pixel_cv_overstates_blocked_cv():
    X, y, rows, cols = _patchy()
    rnd, _ = cross_validate(X, y, classifier="rf", params={"n_estimators": 30}, folds=4)
    blk, acc = spatial_cross_validate(X, y, rows, cols, classifier="rf",
                                      params={"n_estimators": 30}, block_px=12, folds=4)  # fmt: skip
    assert blk.n == y.size and acc.shape == (4,)
    assert rnd.overall_accuracy > blk.overall_accuracy + 0.1


def test_auto_chooses_by_cv_on_training_data_and_saves_the_choice(tmp_path):
    from skysense.landuse.io import load_model, save_model

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] ** 2 + X[:, 1] ** 2 > 1.2, 2, 1)  # a ring: kNN fits, rf fits
    name, params, rec = select_classifier(X, y, ["knn", "rf"], folds=3)
    assert rec["chosen"] == name == max(rec["scores"], key=rec["scores"].get)
    # the blend of the two is scored too (chosen only when it beats both)
    assert set(rec["scores"]) == {"knn", "rf", "blend"} and "stratified 3-fold" in rec["how"]
    spec = FeatureSpec(("a", "b", "c"), ("mean",), 1)
    model = train_model(X, y, spec, classifier="auto",
                        params={"candidates": ["knn", "rf"], "folds": 3})  # fmt: skip
    assert model.chosen_["classifier"] == name
    assert model.info_["model_selection"]["scores"] == rec["scores"]
    path = save_model(model, tmp_path / "m.npz", X_train=X, y_train=y)
    back = load_model(path)
    assert back.classifier == name
    np.testing.assert_allclose(back.predict_proba(X[:20]), model.predict_proba(X[:20]))


def test_auto_uses_blocked_folds_with_coordinates():
    X, y, rows, cols = _patchy(2)
    coords = np.column_stack([rows, cols])
    est = LanduseClassifier("auto", {"candidates": ["rf", "knn"], "folds": 3, "block_px": 12})
    est.fit(X, y, coords=coords)
    sel = est.info_["model_selection"]
    assert "blocked" in sel["how"] and "12 px" in sel["how"]
    with pytest.raises(ConfigError, match="unknown parameter"):
        LanduseClassifier("auto", {"bogus": 1}).fit(X, y)
    with pytest.raises(ConfigError, match="candidate"):
        select_classifier(X, y, ["auto"])


def _two_scale_scene(seed=0):
    """Two classes in 12-px patches: the pixels are noisy (3x3 statistics barely separate
    them), the 7x7 mean separates them well - a scene where the feature set matters."""
    from skysense.landuse.features import window_features

    rng = np.random.default_rng(seed)
    rows, cols = _grid(72)
    truth = ((np.arange(72)[:, None] // 12) + (np.arange(72)[None, :] // 12)) % 2 + 1
    img = np.stack([truth * 1.0, -truth * 1.0]) + rng.normal(0, 2.0, (2, 72, 72))
    img = img + 100.0
    spec = FeatureSpec(("red", "nir"), ("mean", "max", "std"), 3, ("ndvi",),
                       {"red": "red", "nir": "nir"}, scales=(7,))  # fmt: skip
    X = window_features(img, None, spec)[rows, cols].astype(np.float64)
    pick = rng.choice(rows.size, 900, replace=False)
    return X[pick], truth[rows, cols][pick], np.column_stack([rows, cols])[pick], spec, img


def test_auto_compares_feature_sets_on_training_folds_only_and_saves_the_choice(tmp_path):
    """The winner (model and feature set) is what blocked CV of the training table says,
    refitted on all of it; the record fingerprints exactly the table fit was given, and
    the saved model (no pickle) predicts and classifies rasters with the same columns."""
    from skysense.landuse.engine import predict_block
    from skysense.landuse.estimator import _fingerprint
    from skysense.landuse.features import feature_set_columns, window_features
    from skysense.landuse.io import load_model, save_model

    X, y, coords, spec, img = _two_scale_scene()
    train = coords[:, 1] < 48  # the right third is never shown to fit
    cands = {"rf@stats": {"n_estimators": 20}, "lr@means+indices": {}, "lr@stats": {}}
    model = LanduseClassifier("auto", {"candidates": cands, "folds": 3}, spec=spec)
    model.fit(X[train], y[train], coords=coords[train])
    sel = model.info_["model_selection"]
    # the table is the blocked CV of the training samples, nothing else
    again = select_classifier(X[train], y[train], cands, folds=3, coords=coords[train],
                              spec=spec)[2]  # fmt: skip
    assert sel["scores"] == again["scores"] and sel["chosen"] == again["chosen"]
    assert sel["data_sha256"] == _fingerprint(X[train], y[train]) != _fingerprint(X, y)
    assert sel["n_training"] == int(train.sum()) and "blocked" in sel["how"]
    assert "buffer 6 px" in sel["how"]  # default: windows of 7 px share no pixel
    assert sel["chosen"] == max(sel["scores"], key=sel["scores"].get) == "lr@means+indices"
    assert sel["scores"]["lr@means+indices"] > sel["scores"]["rf@stats"] + 0.1
    assert model.chosen_ == {"classifier": "lr", "params": {"features": "means+indices"}}
    cols = feature_set_columns("means+indices", spec, X.shape[1])
    assert [spec.names[i] for i in cols] == ["red_mean", "nir_mean", "ndvi", "red_mean_7px",
                                             "nir_mean_7px", "ndvi_7px"]  # fmt: skip
    # the chosen model is the plain one refitted on all training samples
    plain = LanduseClassifier("lr", {"features": "means+indices"}, spec=spec)
    plain.fit(X[train], y[train])
    np.testing.assert_allclose(model.predict_proba(X), plain.predict_proba(X))
    assert np.mean(model.predict(X[~train]) == y[~train]) > 0.9
    back = load_model(save_model(model, tmp_path / "m.npz", X_train=X[train], y_train=y[train]))
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X))
    assert back.info_["model_selection"]["table"] == json_roundtrip(sel["table"])
    # a forest on a feature subset keeps its columns through the flat (non-pickle) format
    rf = LanduseClassifier("rf", {"n_estimators": 10, "features": "stats"}, spec=spec)
    rf.fit(X[train], y[train])
    back = load_model(save_model(rf, tmp_path / "rf.npz", X_train=X[train]))
    np.testing.assert_allclose(back.predict_proba(X), rf.predict_proba(X), atol=1e-12)
    codes, _ = predict_block(back, img, np.ones(img.shape[1:], bool), 0, False)
    feats = window_features(img, None, spec).reshape(-1, len(spec.names))
    np.testing.assert_array_equal(codes.ravel(), rf.predict(feats))


def json_roundtrip(obj):
    import json

    return json.loads(json.dumps(obj))


def test_auto_early_out_subsample_and_skipped_candidates():
    X, y, coords, spec, _ = _two_scale_scene(1)
    cands = {"lr@means+indices": {}, "lr@stats": {}, "rf@means+indices": {"n_estimators": 10}}
    _, _, rec = select_classifier(X, y, cands, folds=4, max_samples=500, race_margin=0.05, race_min=100,
                                  random_state=3, spec=spec)  # fmt: skip
    t = rec["table"]
    assert rec["n_samples"] == 500 and rec["n_training"] == 900
    assert sum(len(v.get("fold_accuracy", [])) for v in t.values()) < 4 * 3  # some dropped
    dropped = [k for k, v in t.items() if "dropped_after_fold" in v]
    assert dropped and all(len(t[k]["fold_accuracy"]) == t[k]["dropped_after_fold"]
                           for k in dropped)  # fmt: skip
    assert rec["chosen"] not in dropped and "macro_f1" in t[rec["chosen"]]
    # without a spec the feature sets are unknown: those candidates are skipped, said why
    _, _, rec = select_classifier(X, y, ["lr", "lr@stats"], folds=3)
    assert "FeatureSpec" in rec["table"]["lr@stats"]["skipped"] and rec["chosen"] == "lr"
    # a set that repeats another candidate's columns is skipped too
    flat = FeatureSpec(("red", "nir"), ("mean", "max", "std"), 3)
    _, _, rec = select_classifier(X[:, :6], y, ["lr", "lr@stats"], folds=3, spec=flat)
    assert "same model and columns" in rec["table"]["lr@stats"]["skipped"]
    with pytest.raises(ConfigError, match="unknown feature set"):
        select_classifier(X, y, ["lr@bogus"], spec=spec)


def test_default_estimator_is_auto():
    assert LanduseClassifier().classifier == "auto"
    assert train_model.__kwdefaults__["classifier"] == "auto"


def test_auto_repeats_pool_partitions_of_the_blocked_folds():
    """``repeats`` pools the out-of-fold predictions of several blocked partitions: every
    partition tests every sample once, so the pooled accuracy is the mean of the single
    partitions' accuracies (each computed on its own here)."""
    X, y, coords, spec, _ = _two_scale_scene(2)
    cands = {"lr@means+indices": {}, "lr@stats": {}}
    kw = dict(folds=3, coords=coords, block_px=12, spec=spec, race_margin=None)
    one = [select_classifier(X, y, cands, random_state=s, **kw)[2] for s in (5, 6)]
    _, _, both = select_classifier(X, y, cands, random_state=5, repeats=2, **kw)
    assert both["repeats"] == 2 and "2 partitions pooled" in both["how"]
    assert one[0]["repeats"] == 1 and "pooled" not in one[0]["how"]
    for key in cands:
        np.testing.assert_allclose(both["scores"][key],
                                   np.mean([o["scores"][key] for o in one]))  # fmt: skip
        assert both["table"][key]["fold_accuracy"] == (one[0]["table"][key]["fold_accuracy"]
                                                       + one[1]["table"][key]["fold_accuracy"])  # fmt: skip
    with pytest.raises(ConfigError, match="at least 1"):
        select_classifier(X, y, cands, repeats=0, **kw)


def test_auto_candidates_named_by_key_keep_the_default_hyperparameters():
    """``candidates="rf@means+indices"`` (as --param gives it) is the default candidate of
    that name, the random-subspace forest (one random feature per split), not a plain rf."""
    from skysense.landuse.classify import AUTO_CANDIDATES

    assert AUTO_CANDIDATES["rf@means+indices"] == {"max_features": 1}
    X, y, coords, spec, _ = _two_scale_scene(3)
    model = LanduseClassifier("auto", {"candidates": "rf@means+indices,lr@stats",
                                       "block_px": 12, "blend": False}, spec=spec)  # fmt: skip
    model.fit(X, y, coords=coords)
    sel = model.info_["model_selection"]
    assert sel["chosen"] == "rf@means+indices"  # 7x7 means separate the classes, 3x3 do not
    assert model.chosen_["params"] == {"max_features": 1, "features": "means+indices"}
    assert model.estimator_.max_features == 1
    # an unknown key still gets no hyperparameters
    _, params, _ = select_classifier(X, y, "et@means+indices", spec=spec)
    assert params == {}


def test_auto_default_folds_six_blocked_three_stratified():
    """Blocked comparisons default to 6 folds (at most one per occupied block), so each
    trains on 5/6 of the polygons; stratified ones keep 3."""
    X, y, coords, spec, _ = _two_scale_scene(4)
    cands = {"lr@means+indices": {}, "lr@stats": {}}
    _, _, rec = select_classifier(X, y, cands, coords=coords, block_px=12, spec=spec)
    assert rec["folds"] == 6 and "blocked 6-fold" in rec["how"]
    assert all(len(v["fold_accuracy"]) == 6 for v in rec["table"].values())
    # 4 occupied blocks of 36 px: 4 folds
    _, _, rec = select_classifier(X, y, cands, coords=coords, block_px=36, spec=spec)
    assert rec["folds"] == 4 and np.unique(coords // 36, axis=0).shape[0] == 4
    _, _, rec = select_classifier(X, y, cands, spec=spec)
    assert rec["folds"] == 3 and "stratified 3-fold" in rec["how"]


def test_vote_is_the_equal_soft_vote_of_its_two_members():
    """``vote``: the average of a random-subspace forest's and a balanced logistic
    regression's probabilities, each fitted alone with the same seed (independent answer)."""
    from skysense.landuse.classify import make_classifier

    X, y, _, _, _ = _two_scale_scene(5)
    vote = make_classifier("vote", random_state=3).fit(X, y)
    rf = make_classifier("rf", random_state=3, max_features=1, oob_score=False).fit(X, y)
    lr = make_classifier("lr", random_state=3).fit(X, y)
    want = (rf.predict_proba(X[:50]) + lr.predict_proba(X[:50])) / 2
    np.testing.assert_allclose(vote.predict_proba(X[:50]), want, atol=1e-12)
    assert vote.named_estimators_["rf"].max_features == 1
    sub = make_classifier("vote", rf__n_estimators=7, lr__C=0.5)
    assert sub.estimators[0][1].n_estimators == 7 and sub.estimators[1][1][-1].C == 0.5
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_classifier("vote", svm__C=1.0)


def test_auto_default_candidates_blocked_are_the_smooth_models_stratified_unchanged():
    """With the samples' pixels (blocked CV) ``auto`` compares AUTO_CANDIDATES_BLOCKED; without
    them, or without a spec that has the smooth feature set, AUTO_CANDIDATES."""
    from skysense.landuse.classify import AUTO_CANDIDATES, AUTO_CANDIDATES_BLOCKED

    X, y, coords, spec, _ = _two_scale_scene(6)
    X, y, coords = X[:400], y[:400], coords[:400]
    kw = dict(block_px=12, spec=spec, race_margin=None, blend=False, folds=2, max_samples=150)
    _, _, rec = select_classifier(X, y, coords=coords, **kw)
    assert set(rec["table"]) == set(AUTO_CANDIDATES_BLOCKED)
    assert all("means+indices" in k for k in rec["table"])
    key, params, rec = select_classifier(X, y, "vote@means+indices,rf@stats", coords=coords, **kw)
    assert set(rec["table"]) == {"vote@means+indices", "rf@stats"}
    _, _, rec = select_classifier(X, y, ["rf@stats", "lr"], spec=spec, race_margin=None,
                                  blend=False, max_samples=150)  # fmt: skip
    assert set(rec["table"]) == {"rf@stats", "lr"}
    # no pixels, no spec, or a spec without the smooth set: the stratified defaults
    from skysense.landuse.estimator import default_candidates

    assert default_candidates(True, spec, X.shape[1]) == AUTO_CANDIDATES_BLOCKED
    assert default_candidates(False, spec, X.shape[1]) == AUTO_CANDIDATES
    assert default_candidates(True, None, X.shape[1]) == AUTO_CANDIDATES
    no_means = FeatureSpec(("red", "nir"), ("max", "std"), 3)
    assert default_candidates(True, no_means, 4) == AUTO_CANDIDATES
