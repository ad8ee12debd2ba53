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
    assert set(rec["scores"]) == {"knn", "rf"} and "stratified 3-fold" in rec["how"]
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
