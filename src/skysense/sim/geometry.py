"""The field footprint: a square in the gnomonic (TAN) tangent plane of the field centre.

Working in the tangent plane of the centre makes the field well defined anywhere on the sky:
right ascensions wrap through 0/360 naturally and a field at the pole is still a square. The
side is chosen so that the square's exact solid angle equals the requested area.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from skysense.errors import InputError

__all__ = ["FieldGeometry", "tangent_to_sky", "sky_to_tangent"]

_DEG2_PER_SR = (180.0 / math.pi) ** 2


def tangent_to_sky(
    xi: np.ndarray, eta: np.ndarray, ra0_deg: float, dec0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic de-projection of standard coordinates to (ra, dec).

    Parameters
    ----------
    xi, eta : ndarray (n,), radians (tangent-plane units; xi grows to the east)
    ra0_deg, dec0_deg : float, deg
        Tangent point.

    Returns
    -------
    ra, dec : ndarray (n,), deg; ra in [0, 360).
    """
    ra0 = math.radians(ra0_deg)
    dec0 = math.radians(dec0_deg)
    xi = np.asarray(xi, dtype=float)
    eta = np.asarray(eta, dtype=float)
    denom = math.cos(dec0) - eta * math.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(math.sin(dec0) + eta * math.cos(dec0), np.sqrt(xi**2 + denom**2))
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def sky_to_tangent(
    ra_deg: np.ndarray, dec_deg: np.ndarray, ra0_deg: float, dec0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection of (ra, dec) onto the tangent plane at (ra0, dec0).

    Returns
    -------
    xi, eta : ndarray (n,), radians (tangent-plane units). Points more than 90 deg away from the
        tangent point get NaN.
    """
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    ra0 = math.radians(ra0_deg)
    dec0 = math.radians(dec0_deg)
    dra = ra - ra0
    cosc = math.sin(dec0) * np.sin(dec) + math.cos(dec0) * np.cos(dec) * np.cos(dra)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.cos(dec) * np.sin(dra) / cosc
        eta = (math.cos(dec0) * np.sin(dec) - math.sin(dec0) * np.cos(dec) * np.cos(dra)) / cosc
    bad = cosc <= 0
    xi = np.where(bad, np.nan, xi)
    eta = np.where(bad, np.nan, eta)
    return xi, eta


@dataclasses.dataclass(frozen=True)
class FieldGeometry:
    """A square field of exact solid angle ``area_deg2`` centred on (``center_ra``, ``center_dec``).

    Parameters
    ----------
    center_ra, center_dec : float, deg
    area_deg2 : float, deg^2
        Exact solid angle of the square.
    """

    center_ra: float
    center_dec: float
    area_deg2: float

    def __post_init__(self):
        if not (math.isfinite(self.center_ra) and math.isfinite(self.center_dec)):
            raise InputError(f"center must be finite, got ({self.center_ra}, {self.center_dec})")
        if not -90.0 <= self.center_dec <= 90.0:
            raise InputError(f"center dec must be within [-90, 90] deg, got {self.center_dec}")
        if not (math.isfinite(self.area_deg2) and 0.0 < self.area_deg2 <= 400.0):
            raise InputError(f"area_deg2 must be in (0, 400], got {self.area_deg2}")
        object.__setattr__(self, "center_ra", float(self.center_ra) % 360.0)

    @property
    def half_side_tan(self) -> float:
        """Half side of the square in tangent-plane units (radians at the centre)."""
        # Solid angle of a tangent-plane rectangle with half sides a, b at unit distance:
        # Omega = 4 arcsin(ab / sqrt((1+a^2)(1+b^2))); for a = b: 4 arcsin(a^2 / (1 + a^2)).
        s = math.sin(self.area_deg2 / _DEG2_PER_SR / 4.0)
        return math.sqrt(s / (1.0 - s))

    @property
    def side_deg(self) -> float:
        """Side of the square in the tangent plane, deg (at the centre)."""
        return 2.0 * math.degrees(self.half_side_tan)

    def tangent_box(
        self, fraction: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
    ) -> tuple[float, float, float, float]:
        """Sub-box of the square as (xi_min, xi_max, eta_min, eta_max), radians.

        ``fraction`` = (x0, x1, y0, y1) in units of the side, 0 = west/south edge (east = +xi).
        """
        a = self.half_side_tan
        x0, x1, y0, y1 = fraction
        return (-a + 2 * a * x0, -a + 2 * a * x1, -a + 2 * a * y0, -a + 2 * a * y1)

    def contains(
        self,
        ra_deg: np.ndarray,
        dec_deg: np.ndarray,
        fraction: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0),
    ) -> np.ndarray:
        """Boolean mask (n,) of the positions inside the (sub-)square ``fraction``."""
        xi, eta = sky_to_tangent(ra_deg, dec_deg, self.center_ra, self.center_dec)
        x_lo, x_hi, y_lo, y_hi = self.tangent_box(fraction)
        with np.errstate(invalid="ignore"):
            return (xi >= x_lo) & (xi < x_hi) & (eta >= y_lo) & (eta < y_hi)

    def polygon(
        self, fraction: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
    ) -> list[list[float]]:
        """Corners [[ra, dec], ...] (deg) of the (sub-)square, counter-clockwise on the sky."""
        x_lo, x_hi, y_lo, y_hi = self.tangent_box(fraction)
        xi = np.array([x_hi, x_lo, x_lo, x_hi])
        eta = np.array([y_lo, y_lo, y_hi, y_hi])
        ra, dec = tangent_to_sky(xi, eta, self.center_ra, self.center_dec)
        return [[float(r), float(d)] for r, d in zip(ra, dec)]

    def solid_angle_deg2(
        self, fraction: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
    ) -> float:
        """Exact solid angle (deg^2) of the (sub-)square ``fraction``."""
        x_lo, x_hi, y_lo, y_hi = self.tangent_box(fraction)

        def corner(x: float, y: float) -> float:
            # Solid angle of the rectangle [0, x] x [0, y] (signed), from the closed form.
            return math.copysign(1.0, x * y) * math.asin(
                abs(x * y) / math.sqrt((1 + x * x) * (1 + y * y))
            )

        omega = corner(x_hi, y_hi) - corner(x_lo, y_hi) - corner(x_hi, y_lo) + corner(x_lo, y_lo)
        return omega * _DEG2_PER_SR

    def sample_uniform(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` positions uniform on the sphere inside the square.

        Draws in the tangent plane and keeps each point with probability cos^3(theta) (the
        Jacobian dOmega = cos^3(theta) dxi deta of the gnomonic projection), so the density is
        exactly uniform per steradian.

        Returns
        -------
        ra, dec : ndarray (n,), deg
        """
        a = self.half_side_tan
        xi_out = np.empty(0)
        eta_out = np.empty(0)
        while xi_out.size < n:
            m = int((n - xi_out.size) * 1.05) + 16
            xi = rng.uniform(-a, a, m)
            eta = rng.uniform(-a, a, m)
            keep = rng.uniform(0.0, 1.0, m) < (1.0 + xi**2 + eta**2) ** -1.5
            xi_out = np.concatenate([xi_out, xi[keep]])
            eta_out = np.concatenate([eta_out, eta[keep]])
        return tangent_to_sky(xi_out[:n], eta_out[:n], self.center_ra, self.center_dec)
