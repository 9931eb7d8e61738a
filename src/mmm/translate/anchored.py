"""Entity-anchored translation: the word-level pairs hold by construction, not by luck.

The paper's one-shot method asks for the whole record at once and loses every row whose
translated entities do not occur verbatim in the translated text. This method splits the job:

1. **Terms**: every distinct entity (and, for open-domain rows, every label) is translated on its
   own, in short batched prompts through the same LLM layer (cache, budget, retries). The
   glossary (``data/glossary/<src>-<tgt>.yaml``) wins over the model; a Japanese-source entity
   with no Japanese character (``2023``, ``LED``) is kept as written.
2. **Text**: the text is translated with its entity translations listed as required terms.
   With the local backend, ``constrain.AnchorHook`` forces them into the answer and keeps the
   answer in the target script; with an API backend, an answer missing terms is re-asked once
   with the missing terms named, then fails with ``missing_terms``.
3. **Record**: text + the translated entities + the labels (rule-mapped, or translated in step 1),
   checked by the same ``check_translation`` as every method.

Failure reasons: ``entity_<r>``/``label_<r>`` (a term of the row failed: ``empty``, ``overlong``,
``invalid`` for a banned character, or an LLM reason), ``llm_<r>`` (the text request),
``missing_terms``, ``bad_format``, and the shared checks.

One budget (``llm.max_requests``, ``llm.max_cost_usd``) spans all steps. A row is pending (not
failed) while any of its terms, its text or its re-ask is unanswered because the budget was
reached or a batch is still running; a rerun answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmm import registry
from mmm.config import AnchoredOptions
from mmm.llm import (
    GenParams,
    LLMConfig,
    LLMRequest,
    RunReport,
    new_budget,
    run_requests,
)
from mmm.llm.limits import Budget
from mmm.llm.types import PENDING
from mmm.records import FormatError, Sample
from mmm.scripts import HAN_RE, KANA_RE
from mmm.translate.anchor_prompts import (
    LABEL_BANNED,
    STOP,
    TERM_BANNED,
    AnchorPrompts,
    banned_chars,
    first_line,
    load_glossary,
    load_prompts,
)
from mmm.translate.checks import check_translation
from mmm.translate.constrain import AnchorHook
from mmm.translate.types import MethodRun, Outcome, SourceRow, TranslateSettings

NAME = "anchored"
MISSING_TERMS = "missing_terms"
BAD_FORMAT = "bad_format"
TEXT_NGRAM = 4  # local generation: no 4-gram twice in a text, no 3-gram twice in a term
TERM_NGRAM = 3
TERM_BIAS = 2.0  # logits added to a pending term's first token in the text step
PLURAL = {"entity": "entities", "label": "labels"}  # metrics keys of the term steps' LLM summaries
TRIM = " \t\"'「」『』“”.。,、"


@dataclass
class TermResult:
    """A term's translation, or the reason it has none."""

    translation: str | None
    origin: str  # glossary | as_is | model
    reason: str | None = None
    answer: str | None = None


def translate(rows: list[SourceRow], target: str, settings: TranslateSettings, config: LLMConfig) -> MethodRun:
    options = settings.options
    if options is None:
        raise ValueError("the anchored method needs translate.anchored options")
    source = rows[0].sample.lang
    prompts = load_prompts(options.prompts, source, target)
    glossary = load_glossary(options.glossary, source, target)
    budget = new_budget(config)
    terms = _Terms(prompts, glossary, options, settings, config, budget)
    entities = terms.translate("entity", _distinct(e for r in rows for e in r.sample.entities()), TERM_BANNED)
    labels = terms.translate("label", _distinct(label for r in rows if r.labels == "translate" for label in _labels(r)),
                             LABEL_BANNED)

    outcomes: dict[str, Outcome] = {}
    ready: list[SourceRow] = []
    for row in rows:
        failed = _failed_terms(row, entities, labels)
        waiting = [r.reason for _, _, r in failed if r.reason in PENDING]
        if waiting:
            outcomes[row.id] = Outcome(row.id, pending=waiting[0])
        elif failed:
            outcomes[row.id] = Outcome(row.id, reasons=sorted({f"{kind}_{r.reason}" for kind, _, r in failed}),
                                       answer=failed[0][2].answer,
                                       detail="; ".join(f"{kind} {term!r}: {r.reason}" for kind, term, r in failed))
        else:
            ready.append(row)

    text_requests = {row.id: _text_request(row, prompts, entities, settings, target) for row in ready}
    hook = AnchorHook(target, "text", no_repeat_ngram=TEXT_NGRAM, term_bias=TERM_BIAS)
    report = run_requests(list(text_requests.values()), config, desc=f"anchored texts {source}-{target}", logits_hook=hook,
                          budget=budget)
    answers = {row.id: report.results[text_requests[row.id].id] for row in ready}
    llm = {**terms.summaries, "text": report.summary}

    local = config.family.startswith("local")
    retry = [row for row in ready if answers[row.id].ok and _missing(answers[row.id].text, text_requests[row.id])]
    if retry and options.reask and not local:
        reasks = {row.id: _reask_request(row, prompts, entities, settings, target, answers[row.id].text) for row in retry}
        second = run_requests(list(reasks.values()), config, desc=f"anchored re-ask {source}-{target}", budget=budget)
        for row in retry:
            if second.results[reasks[row.id].id].ok or second.results[reasks[row.id].id].pending:
                answers[row.id] = second.results[reasks[row.id].id]
        llm["reask"] = second.summary

    for row in ready:
        outcomes[row.id] = _assemble(row, answers[row.id], text_requests[row.id], entities, labels, target)
    stats = {
        "entities": terms.stats("entity", entities),
        "labels": terms.stats("label", labels),
        "texts": {"requests": len(ready), "reasked": len(retry) if options.reask and not local else 0,
                  "missing_terms": sum(1 for o in outcomes.values() if MISSING_TERMS in o.reasons)},
    }
    return MethodRun(outcomes=outcomes, llm=llm, stats=stats)


class _Terms:
    """Step 1: glossary, as-is rule, then the model, for one kind of term at a time."""

    def __init__(self, prompts: AnchorPrompts, glossary: dict[str, str], options: AnchoredOptions,
                 settings: TranslateSettings, config: LLMConfig, budget: Budget):
        self.prompts, self.glossary, self.options, self.settings, self.config = prompts, glossary, options, settings, config
        self.budget = budget
        self.summaries: dict[str, Any] = {}

    def translate(self, kind: str, items: list[str], banned: str) -> dict[str, TermResult]:
        results: dict[str, TermResult] = {}
        requests: dict[str, LLMRequest] = {}
        params = GenParams(max_tokens=self.options.term_max_tokens, temperature=self.settings.temperature, stop=STOP)
        for i, item in enumerate(items):
            if item in self.glossary:
                results[item] = TermResult(self.glossary[item], "glossary")
            elif self._keep_as_is(item, banned):
                results[item] = TermResult(item, "as_is")
            else:
                requests[item] = LLMRequest(id=f"{kind}:{i}", prompt=self.prompts.term_prompt(item), params=params)
        if requests:
            report = run_requests(list(requests.values()), self.config,
                                  desc=f"anchored {PLURAL[kind]} {self.prompts.source}-{self.prompts.target}",
                                  logits_hook=AnchorHook(self.prompts.target, kind, banned, TERM_NGRAM), budget=self.budget)
            self.summaries[PLURAL[kind]] = report.summary
            for item, request in requests.items():
                results[item] = self._read(report, request.id, banned)
        return results

    def _keep_as_is(self, item: str, banned: str) -> bool:
        """A Japanese source term without Japanese script (a number, a Latin name) needs no translation."""
        if self.prompts.source != "ja" or KANA_RE.search(item) or HAN_RE.search(item):
            return False
        return not banned_chars(item, self.prompts.target, banned)

    def _read(self, report: RunReport, request_id: str, banned: str) -> TermResult:
        result = report.results[request_id]
        if not result.ok:
            return TermResult(None, "model", result.error)
        text = first_line(result.text or "").strip(TRIM)
        if not text:
            return TermResult(None, "model", "empty", result.text)
        if result.finish_reason == "length":
            return TermResult(None, "model", "overlong", result.text)
        if banned_chars(text, self.prompts.target, banned):
            return TermResult(None, "model", "invalid", result.text)
        return TermResult(text, "model")

    def stats(self, kind: str, results: dict[str, TermResult]) -> dict[str, Any]:
        failed: dict[str, int] = {}
        for r in results.values():
            if r.translation is None and r.reason not in PENDING:
                failed[r.reason or "?"] = failed.get(r.reason or "?", 0) + 1
        return {"distinct": len(results),
                **{origin: sum(1 for r in results.values() if r.origin == origin and r.translation is not None)
                   for origin in ("glossary", "as_is", "model")},
                "failed": dict(sorted(failed.items())),
                "pending": sum(1 for r in results.values() if r.reason in PENDING)}


def _failed_terms(row: SourceRow, entities: dict[str, TermResult],
                  labels: dict[str, TermResult]) -> list[tuple[str, str, TermResult]]:
    """(kind, term, result) for each term of ``row`` that has no translation."""
    wanted = [("entity", entities, row.sample.entities())]
    if row.labels == "translate":
        wanted.append(("label", labels, _labels(row)))
    return [(kind, term, results[term]) for kind, results, terms in wanted for term in terms
            if results[term].translation is None]


def _labels(row: SourceRow) -> list[str]:
    return [row.sample.text_label, *row.sample.word_labels()]


def _distinct(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def _row_terms(row: SourceRow, entities: dict[str, TermResult]) -> list[tuple[str, str]]:
    return [(e, entities[e].translation or "") for e in _distinct(row.sample.entities())]


def _text_request(row: SourceRow, prompts: AnchorPrompts, entities: dict[str, TermResult],
                  settings: TranslateSettings, target: str) -> LLMRequest:
    terms = _row_terms(row, entities)
    return LLMRequest(
        id=f"text:{row.id}",
        prompt=prompts.text_prompt(row.sample.text, terms),
        params=GenParams(max_tokens=settings.max_tokens.for_sample(row.sample, target),
                         temperature=settings.temperature, stop=STOP),
        required_terms=tuple(_distinct(t for _, t in terms)),
    )


def _reask_request(row: SourceRow, prompts: AnchorPrompts, entities: dict[str, TermResult],
                   settings: TranslateSettings, target: str, answer: str | None) -> LLMRequest:
    first = _text_request(row, prompts, entities, settings, target)
    missing = _missing(answer, first)
    return LLMRequest(id=f"reask:{row.id}", prompt=prompts.text_prompt(row.sample.text, _row_terms(row, entities), missing),
                      params=first.params, required_terms=first.required_terms)


def _missing(answer: str | None, request: LLMRequest) -> list[str]:
    text = first_line(answer or "")
    return [t for t in request.required_terms if t not in text]


def _assemble(row: SourceRow, result: Any, request: LLMRequest, entities: dict[str, TermResult],
              labels: dict[str, TermResult], target: str) -> Outcome:
    if result.pending:
        return Outcome(row.id, pending=result.error)
    if not result.ok:
        return Outcome(row.id, reasons=[f"llm_{result.error}"], detail=result.detail)
    text = first_line(result.text or "")
    missing = _missing(text, request)
    if missing:
        return Outcome(row.id, reasons=[MISSING_TERMS], answer=result.text, detail="missing: " + "; ".join(missing))
    kind = registry.kind(row.sample.dataset)
    entity_fields = set(kind.entity_fields())

    def label(name: str) -> str:
        return labels[name].translation or name if row.labels == "translate" else name

    pairs = tuple(
        tuple(entities[p].translation or p if i in entity_fields else label(p) if i == kind.label_field else p
              for i, p in enumerate(piece))
        for piece in row.sample.pairs
    )
    translated = Sample(row.id, target, row.sample.dataset, text, row.sample.instruct, label(row.sample.text_label), pairs)
    try:
        translated = Sample.from_record(translated.to_record())  # the strict parser has the last word on the format
    except FormatError as exc:
        return Outcome(row.id, reasons=[BAD_FORMAT], answer=result.text, detail=str(exc))
    reasons = check_translation(row.sample, translated, row.labels)
    if reasons:
        return Outcome(row.id, reasons=reasons, answer=result.text, detail=translated.output)
    return Outcome(row.id, record=translated.to_record())
