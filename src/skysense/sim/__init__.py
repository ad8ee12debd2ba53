"""A seeded, simulated HELP-like field whose truth is known.

:func:`simulate_sky` draws galaxies (number counts, redshifts, stellar + dust SEDs) and stars
(magnitudes, proper motions); :func:`make_survey_catalogue` observes them as a survey would
(coverage, depth, errors, astrometric offset and scatter, AB/Vega/flux conventions, aperture and
total photometry, duplicates, missing values); :func:`make_maps` renders confusion-limited
far-infrared maps; :func:`write_field` writes all of it with truth tables and a manifest
(the layout of :mod:`skysense.sim.field`). The same seed always gives the same field.
"""

from __future__ import annotations

import importlib

#: The public names, by the module that defines them. The package imports a module when one of
#: its names is first used: importing one light module (``skysense.sim.sed``, the field geometry)
#: does not load the map renderer (numba) and the field writer (astropy.table) with it.
_EXPORTS = {
    "sed": ("BANDS", "OPTICAL_BANDS", "FIR_BANDS", "EFFECTIVE_WAVELENGTH_UM", "VEGA_TO_AB"),
    "geometry": ("FieldGeometry",),
    "sky": ("NumberCounts", "GALAXY_COUNTS", "Sky", "simulate_sky"),
    "surveys": (
        "BandSpec",
        "SurveySpec",
        "SurveyCatalogue",
        "DEFAULT_SURVEYS",
        "select_surveys",
        "make_survey_catalogue",
        "make_reference_catalogue",
    ),
    "maps": ("MapSpec", "SimMap", "DEFAULT_MAPS", "PACS_MAPS", "make_maps", "inject_point_sources"),
    "field": ("write_field", "read_manifest"),
    "describe": ("describe_manifest",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
