"""The Great Expectations gate: suites in ``gx/`` (built by ``suites``), custom expectations, the runner.

Import ``mmm.validation.expectations`` (the runner does) before loading any suite.
"""

import logging
import os

# GX logs hundreds of INFO lines while importing and would phone home unless told not to.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
