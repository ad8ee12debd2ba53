"""auto's blend of its candidates (issue 20): weights, cross-fitted score, the fitted vote."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.errors import ConfigError
from skysense.landuse.classify import make_classifier
from skysense.landuse.estimator import (
    BLEND,
    LanduseClassifier,
    _blend_rows,
    mixture_weights,
    select_classifier,
)
from skysense.landuse.features import FeatureSpec


def _grid_weights(Q, floor=1e-3, n=200):
    """Brute force over the 3-simplex: the weights of the largest soft-vote log-likelihood."""
    Q = np.maximum(Q, floor)
    g = np.linspace(0, 1, n + 1)
    best, arg = -np.inf, None
    for a in g:
        for b in g[g <= 1 - a + 1e-12]:
            w = np.array([a, b, max(0.0, 1 - a - b)])
            v = np.log(Q @ w).sum()
            if v > best:
                best, arg = v, w
    return arg


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_weights_match_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    Q = np.column_stack([rng.uniform(size=150), rng.beta(2, 1, 150), rng.uniform(size=150) ** 3])
    w = mixture_weights(Q)
    assert w.min() >= 0 and w.sum() == pytest.approx(1)
    np.testing.assert_allclose(w, _grid_weights(Q), atol=0.01)


def test_a_model_better_on_every_sample_takes_all_weight():
    rng = np.random.default_rng(3)
    u = rng.uniform(0.05, 1, 200)
    np.testing.assert_allclose(mixture_weights(np.column_stack([u**2, u, u**3])), [0, 1, 0],
                               atol=1e-6)  # fmt: skip


def test_blend_score_is_cross_fitted():
    # fold 0: model 0 right, model 1 wrong; fold 1 the opposite. Weights fitted on the other
    # fold always favour the wrong model, so the cross-fitted accuracy is 0; in-sample
    # weights (0.5/0.5 with a slight edge) would score far better.
    n = 20
    labels = np.array([1, 2])
    yi = np.zeros(2 * n, np.int64)
    fold = np.repeat([0, 1], n)
    P = np.zeros((2 * n, 2, 2))
    P[:n, :, 0] = [0.9, 0.1]
    P[:n, :, 1] = [0.2, 0.8]
    P[n:, :, 0] = [0.2, 0.8]
    P[n:, :, 1] = [0.9, 0.1]
    row = _blend_rows(P, yi, fold, labels, ["a", "b"])
    assert row["accuracy"] == 0.0 and row["fold_accuracy"] == [0.0, 0.0]
    # the refitted weights see every fold: the two models weigh the same
    assert row["members"] == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-4)


def test_blend_score_with_repeats_fits_each_partition_on_its_own_other_folds():
    # repeats: every sample is scored once per partition; the weights that score a fold of one
    # partition must not see the same samples' probabilities from another partition
    rng = np.random.default_rng(6)
    m = 90
    labels = np.array([1, 2, 3])
    yi = rng.integers(0, 3, m)
    P = rng.dirichlet(np.ones(3), size=(2, m, 3)).transpose(0, 1, 3, 2)  # (rep, m, cls, k)
    P[..., :2] = 0.85 * P[..., :2] + 0.15 * np.eye(3)[yi][..., None]  # two weak models
    folds = np.stack([rng.permutation(np.arange(m) % 3), 3 + rng.permutation(np.arange(m) % 3)])
    rows = [_blend_rows(P[r], yi, folds[r], labels, ["a", "b", "c"]) for r in (0, 1)]
    both = _blend_rows(P.reshape(2 * m, 3, 3), np.tile(yi, 2), folds.ravel(), labels,
                       ["a", "b", "c"], rep=np.repeat([0, 1], m))  # fmt: skip
    assert both["fold_accuracy"] == rows[0]["fold_accuracy"] + rows[1]["fold_accuracy"]
    np.testing.assert_array_equal(
        both["prediction"], np.concatenate([r["prediction"] for r in rows])
    )
    mixed = _blend_rows(P.reshape(2 * m, 3, 3), np.tile(yi, 2), folds.ravel(), labels,
                        ["a", "b", "c"])  # fmt: skip
    assert np.sum(mixed["prediction"] != both["prediction"]) > 10  # pooling them differs


def test_blend_classifier_is_the_weighted_mean_of_its_members_on_their_columns(tmp_path):
    from skysense.landuse.io import load_model, save_model

    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 8))
    y = np.where(X[:, 0] + 0.5 * X[:, 2] > 0, 2, 1) + (X[:, 1] > 1)
    spec = FeatureSpec(("a", "b"), ("mean", "max", "std", "min"), 3)
    members = [["rf@stats", 0.7, {"n_estimators": 20}], ["lr", 0.3, {}]]
    model = LanduseClassifier(BLEND, {"members": members}, spec=spec).fit(X, y)
    from skysense.landuse.features import feature_set_columns

    cols = feature_set_columns("stats", spec, 8)
    assert len(cols) == 6
    rf = make_classifier("rf", random_state=0, n_estimators=20).fit(X[:, cols], y)
    lr = make_classifier("lr").fit(X, y)
    want = 0.7 * rf.predict_proba(X[:, cols]) + 0.3 * lr.predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), want, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.unique(y)[want.argmax(axis=1)])
    back = load_model(save_model(model, tmp_path / "b.npz", X_train=X, y_train=y))
    np.testing.assert_allclose(back.predict_proba(X), want, rtol=1e-9)


@pytest.mark.parametrize(
    "members",
    [None, [], [["rf", 0.5]], [["auto", 1.0, {}]], [["rf", -1.0, {}]], [["nope", 1.0, {}]]],
)
def test_bad_blend_members_are_refused(members):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat([1, 2], 20)
    with pytest.raises(ConfigError):
        LanduseClassifier(BLEND, {"members": members}).fit(X, y)


def test_auto_takes_the_blend_only_when_its_cv_accuracy_beats_every_single_candidate():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(360, 5))
    y = 1 + (X[:, 0] + X[:, 1] ** 2 > 0.8) + (X[:, 2] > 0.7)
    cands = {"rf": {"n_estimators": 30}, "lr": {}, "knn": {}}
    for seed in range(3):
        key, params, rec = select_classifier(X, y, cands, folds=3, random_state=seed)
        blend = rec["table"][BLEND]
        single = max(rec["table"][k]["accuracy"] for k in cands)
        assert rec["best_single"] in cands
        assert rec["table"][rec["best_single"]]["accuracy"] == single
        assert (key == BLEND) == (blend["accuracy"] > single)
        if key == BLEND:
            assert [m[0] for m in params["members"]] == list(blend["members"])
            assert sum(m[1] for m in params["members"]) == pytest.approx(1)
    off = select_classifier(X, y, cands, folds=3, blend=False)[2]
    assert BLEND not in off["table"] and off["chosen"] in cands
