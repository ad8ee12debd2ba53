"""Independent, named random sub-streams derived from one seed.

Each simulator component draws from its own stream ``default_rng([seed, crc32(name)])``, so
changing one survey (its depth, its columns, even its existence) never shifts the random numbers
another component receives.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["substream"]


def substream(seed: int, name: str) -> np.random.Generator:
    """Return the random generator of component ``name`` for the field ``seed``.

    Parameters
    ----------
    seed : int
        The field seed (non-negative).
    name : str
        Component name, e.g. ``"sky.galaxies"`` or ``"survey.cfhtls"``.
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])
