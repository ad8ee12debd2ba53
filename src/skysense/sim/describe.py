"""A readable summary of a simulated field from its manifest (what ``skysense sim`` prints)."""

from __future__ import annotations

__all__ = ["describe_manifest"]


def describe_manifest(manifest: dict, title: str) -> str:
    """Lines summarising a field: seed, area, centre, truth counts, catalogues, maps, timing.

    Parameters
    ----------
    manifest : dict
        As written by :func:`skysense.sim.write_field` (:func:`skysense.sim.read_manifest`).
    title : str
        The first line's start, e.g. ``"simulated field demo/field"``.

    Returns
    -------
    str
        One line per item, without a final newline.
    """
    field = manifest.get("field", {})
    lines = [
        f"{title}: seed {manifest['seed']}, {manifest['area_deg2']:g} deg^2 at "
        f"({manifest['center_ra']:.4f}, {manifest['center_dec']:.4f})"
    ]
    if field:
        lines.append(
            f"  truth: {field['n_galaxies']} galaxies, {field['n_stars']} stars; "
            f"reference: {field['n_reference']} Gaia-like stars"
        )
    for name, s in manifest["surveys"].items():
        lines.append(
            f"  catalogue {name:<10} {s['n_rows']:>8} rows  {s['file']}  bands {', '.join(s['bands'])}"
        )
    for band, m in manifest["maps"].items():
        shape = "x".join(str(v) for v in m.get("shape", []))
        conf = m.get("confusion_mjy_beam")
        extra = f", confusion {conf:.3g} mJy/beam" if conf is not None else ""
        lines.append(f'  map {band:<10} {shape:>10} px of {m["pixel_arcsec"]}" {m["file"]}{extra}')
    if "timings_s" in manifest:
        lines.append(f"  done in {manifest['timings_s']['total']:.1f} s")
    return "\n".join(lines)
