"""The Great Expectations gate: suites in ``gx/`` (built by ``suites``), custom expectations, the runner,
and ``waivers`` (the filter rules the params waived, which the gate then does not check for those languages).

Import ``mmm.validation.expectations`` (the runner does) before loading any suite.
"""
