"""Dataset translation (paper Section 3.1): rule-based label mapping, then LLM translation.

``label_map`` maps every text- and word-level label by the registry's tables (its own stage);
``run.translate_file`` translates a file with a method from ``methods`` (``one_shot``: the
paper's instruction + constraints + one example), built from ``template`` (prompt files),
``answer`` (reading answers back, strictly), ``checks`` (structure kept) and ``quality``
(chrF and entity alignment against references). The LLM calls go through ``mmm.llm``.
"""
