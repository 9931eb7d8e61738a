"""MMM: rebuild the Multilingual MRE-mix datasets and the OIELLM model as a DVC pipeline.

Importing the package changes nothing global; the ``mmm`` command sets up logging and the
offline switches of the Hugging Face libraries when it starts (``mmm.cli.main``).
"""

__version__ = "0.1.0"
