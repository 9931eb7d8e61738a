"""The Great Expectations gate: suites in ``gx/`` (built by ``suites``), custom expectations, the runner.

Import ``mmm.validation.expectations`` (the runner does) before loading any suite.
"""
