"""Spherical geometry for the ADQL translator (pure: NumPy and shapely; degrees in, planes out).

A spherical polygon with great-circle edges that fits in an open hemisphere is mapped by the
gnomonic projection about its vertex centroid to a planar polygon with straight edges: great
circles through the hemisphere become straight lines, and the side of an edge a point lies on is
the sign of ``det(v_i, v_i+1, p)`` on the sphere and of the 2-D orientation in the plane. A
convex polygon is therefore the intersection of the half-spaces ``(v_i x v_i+1) . p >= 0`` (with
the vertices ordered counter-clockwise in the plane); a non-convex polygon is cut into triangles
(GEOS' constrained Delaunay triangulation in the plane) whose three half-space tests are OR-ed
together.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from skysense._check import check_positions
from skysense.errors import InputError

__all__ = [
    "unit_vector",
    "PolygonPlanes",
    "polygon_planes",
    "box_vertices",
]


def unit_vector(ra_deg: float, dec_deg: float) -> np.ndarray:
    """Unit vector (3,) of a position in degrees."""
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


class PolygonPlanes:
    """A polygon as an OR of convex pieces, each an AND of planes ``n . p >= 0``.

    Attributes
    ----------
    pieces : list of ndarray (k, 3)
        Plane normals of each convex piece (one piece when the polygon is convex).
    ra, dec : ndarray (m,), deg
        The cleaned vertices, counter-clockwise seen from outside the sphere.
    """

    def __init__(self, pieces: list[np.ndarray], ra: np.ndarray, dec: np.ndarray):
        self.pieces = pieces
        self.ra = ra
        self.dec = dec

    @property
    def convex(self) -> bool:
        return len(self.pieces) == 1

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        """Reference point-in-polygon test (NumPy), the same arithmetic the SQL performs."""
        ra = np.radians(np.asarray(ra_deg, float))
        dec = np.radians(np.asarray(dec_deg, float))
        p = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
        out = np.zeros(p.shape[:-1], dtype=bool)
        for planes in self.pieces:
            out |= np.all(p @ planes.T >= 0, axis=-1)
        return out


def box_vertices(
    ra_deg: float, dec_deg: float, width_deg: float, height_deg: float
) -> tuple[list[float], list[float]]:
    """Vertices of an ADQL BOX: the polygon with corners (ra +- width/2, dec +- height/2).

    ADQL 2.1 defines BOX as the POLYGON with these four vertices (great-circle edges).

    Raises
    ------
    InputError
        When a corner would lie beyond a pole or the sizes are not positive.
    """
    if not (width_deg > 0 and height_deg > 0):
        raise InputError("BOX width and height must be positive")
    lo, hi = dec_deg - height_deg / 2, dec_deg + height_deg / 2
    if lo < -90 or hi > 90:
        raise InputError("BOX corners lie beyond a pole (dec +- height/2 outside [-90, 90])")
    w = width_deg / 2
    return (
        [ra_deg - w, ra_deg - w, ra_deg + w, ra_deg + w],
        [lo, hi, hi, lo],
    )


def _clean(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.stack(
        [
            np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
            np.cos(np.radians(dec)) * np.sin(np.radians(ra)),
            np.sin(np.radians(dec)),
        ],
        axis=1,
    )
    keep = []
    for i in range(len(v)):
        if keep and np.linalg.norm(v[i] - v[keep[-1]]) < 1e-15:
            continue
        keep.append(i)
    if len(keep) > 1 and np.linalg.norm(v[keep[0]] - v[keep[-1]]) < 1e-15:
        keep.pop()
    return ra[keep], dec[keep], v[keep]


def polygon_planes(ra_vertices, dec_vertices) -> PolygonPlanes:
    """Plane decomposition of a spherical polygon (either vertex orientation).

    Parameters
    ----------
    ra_vertices, dec_vertices : array_like (k,), deg
        Vertices in order; the closing edge back to the first vertex is implied.

    Returns
    -------
    PolygonPlanes

    Raises
    ------
    InputError
        Fewer than 3 distinct vertices, a polygon not inside an open hemisphere, collinear
        (zero-area) or self-intersecting polygons.
    """
    ra, dec = check_positions(np.ravel(ra_vertices), np.ravel(dec_vertices), label="polygon vertex")
    ra, dec, v = _clean(ra, dec)
    if len(v) < 3:
        raise InputError("a polygon needs at least 3 distinct vertices")
    c = v.sum(axis=0)
    norm = np.linalg.norm(c)
    if norm < 1e-12 or np.any(v @ (c / norm) <= 1e-9):
        raise InputError("the polygon must fit within a hemisphere")
    c /= norm
    # Tangent-plane basis with e1 x e2 = c, so planar counter-clockwise = counter-clockwise
    # seen from outside the sphere.
    helper = np.array([0.0, 0.0, 1.0]) if abs(c[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, c)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    w = v @ c
    xy = np.stack([(v @ e1) / w, (v @ e2) / w], axis=1)
    area2 = _signed_area2(xy)
    scale = max(np.abs(xy).max(), 1e-300)
    if abs(area2) <= 1e-14 * scale * scale:
        raise InputError("the polygon has no area (collinear vertices)")
    if area2 < 0:
        v, xy, ra, dec = v[::-1], xy[::-1], ra[::-1], dec[::-1]
    if _self_intersects(xy):
        raise InputError("the polygon's edges cross each other")
    if _is_convex(xy):
        planes = np.cross(v, np.roll(v, -1, axis=0))
        return PolygonPlanes([_normalise(planes)], ra, dec)
    pieces = []
    for i, j, k in _ear_clip(xy):
        tri = np.stack([v[i], v[j], v[k]])
        pieces.append(_normalise(np.cross(tri, np.roll(tri, -1, axis=0))))
    return PolygonPlanes(pieces, ra, dec)


def _normalise(planes: np.ndarray) -> np.ndarray:
    # Normalised normals keep n . p on the scale of the angular distance to the edge.
    return planes / np.linalg.norm(planes, axis=1, keepdims=True)


def _signed_area2(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _cross2(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _is_convex(xy: np.ndarray) -> bool:
    n = len(xy)
    for i in range(n):
        if _cross2(xy[i], xy[(i + 1) % n], xy[(i + 2) % n]) < 0:
            return False
    return True


def _self_intersects(xy: np.ndarray) -> bool:
    """Whether the closed planar ring crosses or touches itself.

    GEOS' simplicity test (a sweep, O(n log n)) replaces the former all-pairs edge test, which
    took minutes for thousands of vertices.
    """
    return not shapely.LinearRing(xy).is_simple


def _ear_clip(xy: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangles (vertex indices, counter-clockwise) of a simple counter-clockwise polygon.

    GEOS' constrained Delaunay triangulation (O(n log n); ear clipping was O(n^2) to O(n^3)).
    Triangle corners are the input coordinates themselves, mapped back to their indices (a
    simple polygon has no repeated vertex). Flat (zero-area) triangles cover nothing and are
    left out.
    """
    index = {(float(x), float(y)): i for i, (x, y) in enumerate(xy)}
    tris = shapely.constrained_delaunay_triangles(shapely.Polygon(xy))
    coords = shapely.get_coordinates(shapely.get_parts(tris)).reshape(-1, 4, 2)[:, :3]
    out = []
    for tri in coords:
        try:
            i, j, k = (index[(float(x), float(y))] for x, y in tri)
        except KeyError:
            raise InputError("the polygon could not be triangulated") from None
        turn = _cross2(xy[i], xy[j], xy[k])
        if turn > 0:
            out.append((i, j, k))
        elif turn < 0:
            out.append((i, k, j))
    if not out:
        raise InputError("the polygon could not be triangulated")
    return out
