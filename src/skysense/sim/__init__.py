"""A seeded, simulated HELP-like field whose truth is known.

:func:`simulate_sky` draws galaxies (number counts, redshifts, stellar + dust SEDs) and stars
(magnitudes, proper motions); :func:`make_survey_catalogue` observes them as a survey would
(coverage, depth, errors, astrometric offset and scatter, AB/Vega/flux conventions, aperture and
total photometry, duplicates, missing values); :func:`make_maps` renders confusion-limited
far-infrared maps; :func:`write_field` writes all of it with truth tables and a manifest
(the layout of :mod:`skysense.sim.field`). The same seed always gives the same field.
"""

from skysense.sim.describe import describe_manifest
from skysense.sim.field import read_manifest, write_field
from skysense.sim.geometry import FieldGeometry
from skysense.sim.maps import (
    DEFAULT_MAPS,
    PACS_MAPS,
    MapSpec,
    SimMap,
    inject_point_sources,
    make_maps,
)
from skysense.sim.sed import BANDS, EFFECTIVE_WAVELENGTH_UM, FIR_BANDS, OPTICAL_BANDS, VEGA_TO_AB
from skysense.sim.sky import GALAXY_COUNTS, NumberCounts, Sky, simulate_sky
from skysense.sim.surveys import (
    DEFAULT_SURVEYS,
    BandSpec,
    SurveyCatalogue,
    SurveySpec,
    make_reference_catalogue,
    make_survey_catalogue,
    select_surveys,
)

__all__ = [
    "BANDS",
    "OPTICAL_BANDS",
    "FIR_BANDS",
    "EFFECTIVE_WAVELENGTH_UM",
    "VEGA_TO_AB",
    "FieldGeometry",
    "NumberCounts",
    "GALAXY_COUNTS",
    "Sky",
    "simulate_sky",
    "BandSpec",
    "SurveySpec",
    "SurveyCatalogue",
    "DEFAULT_SURVEYS",
    "select_surveys",
    "make_survey_catalogue",
    "make_reference_catalogue",
    "MapSpec",
    "SimMap",
    "DEFAULT_MAPS",
    "PACS_MAPS",
    "make_maps",
    "inject_point_sources",
    "write_field",
    "read_manifest",
    "describe_manifest",
]
