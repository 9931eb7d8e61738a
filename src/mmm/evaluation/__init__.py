"""Evaluation with the paper's Text-level / Word-level / ALL F1 (Section 5.2, Appendix C).

``algorithm1`` is the readable one-sample reference, ``scoring`` the same rule vectorised,
``predictions`` reads and checks the input, ``audits`` counts failure kinds, ``bootstrap`` gives
confidence intervals, ``run`` assembles the metrics, ``report`` writes Table 1 and a chart, and ``paired`` compares two
models on the same rows.
"""

from mmm.evaluation.paired import compare, compare_files
from mmm.evaluation.run import EvalConfig, evaluate, evaluate_and_report, evaluate_file

__all__ = ["EvalConfig", "compare", "compare_files", "evaluate", "evaluate_and_report", "evaluate_file"]
