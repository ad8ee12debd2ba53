"""Radio cross-identification of a masterlist by the likelihood-ratio method (HELP DMU 8/9).

- :mod:`.lr` (core): f(r), n(m), q(m), Q0, LR, reliability, threshold;
- :mod:`.identify` (core): candidate pairs -> IDs (:func:`~.identify.cross_identify`) and the
  masterlist columns;
- :mod:`.config` (core): the ``RADIO.yaml`` configuration;
- :mod:`.engine`: the candidate search on Dask, one task per masterlist partition;
- :mod:`.io`: :func:`~.io.run_radio_id`, what ``skysense catalog radio-id`` calls;
- :mod:`.plots`: the diagnostic PNG.
"""

from skysense.catalog.radio.config import RadioConfig, load_radio_config, parse_radio_config
from skysense.catalog.radio.identify import RadioIDResult, RadioIDSettings, cross_identify

__all__ = [
    "RadioConfig",
    "RadioIDResult",
    "RadioIDSettings",
    "cross_identify",
    "load_radio_config",
    "parse_radio_config",
]
