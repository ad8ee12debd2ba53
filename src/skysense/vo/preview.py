"""PNG previews of the published maps (the DataLink ``#preview`` links).

:func:`render_preview_png` draws the main image of a map with matplotlib's Agg canvas (no
pyplot, so no global figure state shared between request threads): block-subsampled to at
most :data:`MAX_PREVIEW_PIXELS` along each axis, asinh-stretched between the 0.5th and 99.5th
percentiles (astropy.visualization), north up when the WCS has no rotation (``origin="lower"``).

:func:`cached_preview` keeps one PNG per map file version in a folder of the service's work
directory, written atomically, so a preview is drawn once per published map.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from skysense._atomic import atomic_write_bytes
from skysense.errors import InputError
from skysense.vo.maps import MapInfo

__all__ = ["render_preview_png", "cached_preview", "MAX_PREVIEW_PIXELS"]

#: Largest preview side (pixels); larger maps are subsampled so a preview stays cheap to draw.
MAX_PREVIEW_PIXELS = 512


def render_preview_png(info: MapInfo, *, max_pixels: int = MAX_PREVIEW_PIXELS) -> bytes:
    """PNG bytes of the main image of a published map (blocking).

    Parameters
    ----------
    info : MapInfo
        The registered map (its own copy of the file is read, memory-mapped).
    max_pixels : int
        Largest side of the PNG; the image is subsampled by a whole step to fit.

    Returns
    -------
    bytes
        A PNG of at most ``max_pixels`` x ``max_pixels`` pixels (blank pixels are NaN).

    Raises
    ------
    InputError
        The file cannot be read or its main HDU is not a 2-D image.
    """
    from astropy.io import fits
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    try:
        with fits.open(info.path, memmap=True) as hdul:
            data = hdul[info.hdu].data
            if data is None or data.ndim != 2:
                raise InputError(f"HDU {info.hdu!r} is not a 2-D image", path=info.path)
            step = max(1, math.ceil(max(data.shape) / max_pixels))
            # Striding reads only the rows it keeps from the memory-mapped file.
            image = np.array(data[::step, ::step], dtype=np.float64)
    except (OSError, KeyError, IndexError) as exc:
        raise InputError(f"cannot read the map: {exc}", path=info.path) from None
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        finite = np.zeros(1)
    norm = ImageNormalize(finite, interval=PercentileInterval(99.0), stretch=AsinhStretch())
    ny, nx = image.shape
    dpi = 100
    fig = Figure(figsize=(nx / dpi, ny / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.imshow(image, origin="lower", cmap="inferno", norm=norm, interpolation="nearest")
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()


def cached_preview(info: MapInfo, folder: str | Path) -> Path:
    """The preview PNG of ``info`` in ``folder``, drawn on first use (blocking).

    The file name carries the map file's size and modification time, so republishing a map
    draws a new preview; the previews of older versions of the same map are removed.

    Raises
    ------
    InputError
        See :func:`render_preview_png`.
    """
    folder = Path(folder)
    try:
        st = Path(info.path).stat()
    except OSError as exc:
        raise InputError(f"cannot read the map: {exc}", path=info.path) from None
    target = folder / f"{info.name}-{st.st_size}-{st.st_mtime_ns}.png"
    if target.is_file():
        return target
    png = render_preview_png(info)
    atomic_write_bytes(target, png)
    # Map names are [a-z][a-z0-9_]*, so "<name>-*" never matches another map's previews.
    for old in folder.glob(f"{info.name}-*.png"):
        if old != target:
            old.unlink(missing_ok=True)
    return target
