"""MMM: rebuild the Multilingual MRE-mix datasets and the OIELLM model as a DVC pipeline."""

from mmm import offline as _offline

_offline.enforce()

__version__ = "0.1.0"
