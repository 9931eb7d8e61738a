"""Test-set prediction in bounded memory, resumable, on either backend.

* :mod:`.rows`: the test file read twice as a stream: a first pass picks the capped rows (a bounded
  heap per cell) and hashes the file, a second yields the chosen rows in chunks, in file order.
* :mod:`.partial`: the finished chunks of an unfinished run, appended as they finish to a file outside
  DVC's outputs and fingerprinted, so a rerun redoes no finished chunk and never reuses a stale one.
* :mod:`.api`: the ``openai`` backend: the prompts of a chunk through ``mmm.llm`` (cache, retries, budget).

The orchestration and the ``hf`` backend live in :mod:`mmm.predict`.
"""
