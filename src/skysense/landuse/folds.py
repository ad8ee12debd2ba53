"""Spatially blocked cross-validation folds (pure).

Neighbouring pixels are alike and their windows overlap, so folds of random pixels put
near-copies of every test sample into the training set. Blocked folds keep whole square blocks
of pixels together, with an optional buffer of left-out training pixels around every test
block (Roberts et al. 2017, "Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure").
"""

from __future__ import annotations

import numpy as np

from skysense.errors import ConfigError, InputError

__all__ = ["spatial_folds"]


def spatial_folds(
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    block_px: int,
    folds: int = 5,
    buffer_px: int = 0,
    random_state: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Spatially blocked folds: square blocks of pixels, each block wholly in one fold.

    Blocks are ``block_px`` pixels a side on a grid from pixel (0, 0). They are dealt to the
    folds largest first, each to the fold with the fewest samples so far (ties broken by a
    seeded shuffle), so the folds hold similar numbers of samples. Training samples within
    ``buffer_px`` pixels (Chebyshev distance) of any test sample of the fold are left out of
    that fold's training set, so windows of up to ``buffer_px + 1`` pixels a side share no
    pixel across the split.

    Parameters
    ----------
    rows, cols : ndarray (n,) of int
        Pixel of every sample (>= 0).
    block_px : int
        Block side in pixels (>= 2).
    folds : int
        Number of folds (>= 2, at most the number of occupied blocks).
    buffer_px : int
        Gap between training and test samples, pixels.

    Returns
    -------
    list of (train_index, test_index), one per fold; every sample is in exactly one test set.
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise InputError(f"rows {rows.shape} and cols {cols.shape} must be equal 1-d arrays")
    if rows.size and (rows.min() < 0 or cols.min() < 0):
        raise InputError("every sample needs its pixel (rows, cols >= 0) for spatial folds")
    if block_px < 2:
        raise ConfigError(f"must be at least 2, got {block_px}", key="block_px")
    if folds < 2:
        raise ConfigError(f"need at least 2 folds, got {folds}", key="folds")
    if buffer_px < 0:
        raise ConfigError(f"must be >= 0, got {buffer_px}", key="buffer_px")
    block = (rows // block_px) * (int(cols.max(initial=0)) // block_px + 1) + cols // block_px
    ids, inv, counts = np.unique(block, return_inverse=True, return_counts=True)
    if ids.size < folds:
        raise InputError(f"the samples occupy {ids.size} blocks of {block_px} px, fewer than "
                         f"{folds} folds: use smaller blocks or fewer folds")  # fmt: skip
    rng = np.random.default_rng(random_state)
    order = rng.permutation(ids.size)
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of_block = np.empty(ids.size, np.int64)
    load = np.zeros(folds, np.int64)
    for b in order:
        f = int(np.argmin(load))
        fold_of_block[b] = f
        load[f] += counts[b]
    fold = fold_of_block[inv]
    out = []
    for f in range(folds):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        if buffer_px > 0 and train.size:
            from scipy.ndimage import maximum_filter

            shape = (int(rows.max()) + 1, int(cols.max()) + 1)
            mask = np.zeros(shape, bool)
            mask[rows[test], cols[test]] = True
            near = maximum_filter(mask, size=2 * buffer_px + 1, mode="constant", cval=False)
            train = train[~near[rows[train], cols[train]]]
        out.append((train, test))
    return out
