"""Translation quality against reference translations (the sample ships them; never shown to the model).

Per sub-dataset and overall, over the rows that were translated and have a reference:

* ``chrf``: corpus chrF (sacrebleu, 0-100) of the translated texts (the input without ``/TASK``).
* ``chrf_with_failures``: the same with every failed row scored as an empty translation, so a
  method that keeps more rows is not penalised for attempting the hard ones.
* ``entity_match``: share of reference entities (TCREE: head and tail) equal to the translated
  entity at the same pair position.
* ``entity_in_reference_text``: share of translated entities that occur verbatim in the
  reference text (credits a correct rendering the reference's annotation happens to word differently).

Rounded so that reruns give identical metrics files: chrF to 2 decimals (``CHRF_DECIMALS``), shares to 4
(``SHARE_DECIMALS``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sacrebleu.metrics import CHRF

from mmm import registry
from mmm.records import Sample

ALL = "all"
CHRF_DECIMALS = 2
SHARE_DECIMALS = 4


def score(translated: dict[str, Sample], references: dict[str, Sample], attempted: list[Sample]) -> dict[str, Any]:
    """``translated``/``references`` by id; ``attempted``: every source row (for the coverage counts)."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in attempted:
        if sample.id in references:
            groups[sample.dataset].append(sample)
            groups[ALL].append(sample)
    out: dict[str, Any] = {}
    order = {name: i for i, name in enumerate(registry.DATASETS)}
    for name in sorted(groups, key=lambda g: order.get(g, len(order))):  # the paper's order, "all" last
        out[name] = _score_group([s.id for s in groups[name]], translated, references)
    return out


def _score_group(ids: list[str], translated: dict[str, Sample], references: dict[str, Sample]) -> dict[str, Any]:
    done = [i for i in ids if i in translated]
    refs = [references[i].text for i in done]
    hyps = [translated[i].text for i in done]
    matched = ref_entities = in_text = hyp_entities = 0
    for i in done:
        ref, hyp = references[i], translated[i]
        ref_list, hyp_list = ref.entities(), hyp.entities()
        ref_entities += len(ref_list)
        matched += sum(1 for r, h in zip(ref_list, hyp_list) if r == h)
        hyp_entities += len(hyp_list)
        in_text += sum(1 for h in hyp_list if h in ref.text)
    all_refs = [references[i].text for i in ids]
    all_hyps = [translated[i].text if i in translated else "" for i in ids]
    return {
        "rows_with_reference": len(ids),
        "rows_scored": len(done),
        "chrf": _chrf(hyps, refs),
        "chrf_with_failures": _chrf(all_hyps, all_refs),
        "entity_match": _share(matched, ref_entities),
        "entity_in_reference_text": _share(in_text, hyp_entities),
    }


def _chrf(hyps: list[str], refs: list[str]) -> float | None:
    if not hyps:
        return None
    return round(CHRF().corpus_score(hyps, [refs]).score, CHRF_DECIMALS)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, SHARE_DECIMALS) if whole else None
