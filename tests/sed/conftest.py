"""Small generated physics for SED unit tests (no package grids needed)."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.sed.filters import Filter
from skysense.sed.models import DustLibrary, SSPLibrary, planck_lambda


def tophat(name: str, lo_aa: float, hi_aa: float, n: int = 200) -> Filter:
    lam = np.linspace(lo_aa * 0.98, hi_aa * 1.02, n)
    return Filter(name, lam, ((lam >= lo_aa) & (lam <= hi_aa)).astype(float))


@pytest.fixture(scope="session")
def toy_ssp() -> SSPLibrary:
    """SSPs as black bodies cooling with age, fading as t^-0.8 (L_sun/A per M_sun)."""
    lam = np.geomspace(90.0, 1e7, 3000)
    ages = np.geomspace(1e5, 1.3e10, 60)
    temps = 4e4 * (ages / 1e5) ** -0.18
    lum = np.stack([planck_lambda(lam, t) for t in temps])
    lum /= np.trapezoid(lum, lam, axis=1)[:, None]
    lum *= (1e3 * (ages / 1e6) ** -0.8)[:, None]
    live = 1 - 0.3 * np.log10(ages / 1e5) / 5
    return SSPLibrary(lam, ages, lum, np.clip(live, 0.5, 1), name="toy")


@pytest.fixture(scope="session")
def toy_dust() -> DustLibrary:
    lam = np.geomspace(1e4, 1e8, 400)
    umin = np.array([0.5, 1.0, 5.0])
    qpah = np.array([1.12, 2.5])
    delta = np.stack([np.stack([planck_lambda(lam, 18 * u ** (1 / 6)) * lam**-1.5 * (1 + q)
                                for u in umin]) for q in qpah])  # fmt: skip
    power = np.stack(
        [np.stack([planck_lambda(lam, 40 * u ** (1 / 6)) * lam**-1.5 for u in umin]) for _ in qpah]
    )
    return DustLibrary(lam, umin, qpah, delta, power, name="toy")


BANDS = {
    "b1": (1400, 1700),
    "b2": (3300, 4000),
    "b3": (4000, 5500),
    "b4": (5500, 7000),
    "b5": (7000, 9000),
    "b6": (11000, 14000),
    "b7": (20000, 24000),
    "b8": (32000, 39000),
    "b9": (200000, 280000),
    "b10": (800000, 1200000),
    "b11": (2000000, 3000000),
}


@pytest.fixture(scope="session")
def toy_filters() -> list[Filter]:
    return [tophat(k, *v) for k, v in BANDS.items()]
