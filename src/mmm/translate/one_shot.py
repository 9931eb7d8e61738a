"""The paper's method (Section 3.1): one prompt per row, instruction + constraints + one example.

Three separable steps, so other methods can reuse any of them: ``build_requests`` (rows ->
prompts), ``run_requests`` from the LLM layer (cache, budget, retries, backends), and
``read_answers`` (answers -> records or reasons; besides the shared checks, a text equal to
the example's translation is ``copied_example``). Parsing is not part of the cache key: after a
parser fix, a rerun re-reads the paid answers without sending anything.
"""

from __future__ import annotations

from mmm.llm import GenParams, LLMConfig, LLMRequest, RunReport, run_requests
from mmm.translate import template as templates
from mmm.translate.answer import AnswerError, parse_answer
from mmm.translate.checks import check_translation
from mmm.translate.template import PromptTemplate, TemplateError
from mmm.translate.types import MethodRun, Outcome, SourceRow, TranslateSettings

NAME = "one_shot"
COPIED_EXAMPLE = "copied_example"


def load_template(rows: list[SourceRow], target: str, settings: TranslateSettings) -> PromptTemplate:
    """The direction's template, checked against the rows before anything is sent."""
    source = rows[0].sample.lang if rows else "ja"
    template = templates.load(templates.template_path(settings.templates_dir, source, target))
    modes = {row.labels for row in rows}
    if modes - {template.labels}:
        raise TemplateError(f"{template.path}: the template expects labels: {template.labels}, but the input has "
                            f"rows with labels: {', '.join(sorted(modes - {template.labels}))}")
    uncovered = sorted({row.sample.dataset for row in rows} - template.datasets())
    if uncovered:
        raise TemplateError(f"{template.path}: no example for sub-dataset(s) {', '.join(uncovered)}")
    return template


def build_requests(rows: list[SourceRow], template: PromptTemplate, settings: TranslateSettings) -> list[LLMRequest]:
    return [
        LLMRequest(
            id=row.id,
            prompt=template.render(row.sample),
            params=GenParams(max_tokens=settings.max_tokens.for_sample(row.sample, template.target),
                             temperature=settings.temperature, stop=template.stop),
        )
        for row in rows
    ]


def read_answers(rows: list[SourceRow], report: RunReport, template: PromptTemplate) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for row in rows:
        result = report.results[row.id]
        if result.pending:
            outcomes[row.id] = Outcome(row.id, pending=result.error)
            continue
        if not result.ok:
            outcomes[row.id] = Outcome(row.id, reasons=[f"llm_{result.error}"], detail=result.detail)
            continue
        try:
            translated, repairs = parse_answer(result.text or "", template, row.sample, result.finish_reason)
        except AnswerError as exc:
            outcomes[row.id] = Outcome(row.id, reasons=[exc.reason], answer=result.text, detail=exc.detail)
            continue
        reasons = check_translation(row.sample, translated, row.labels)
        example = template.example_for(row.sample)
        if example is not None and translated.text == example.answer.text:
            reasons.append(COPIED_EXAMPLE)  # a small model parroting the demonstration, not translating
        if reasons:
            outcomes[row.id] = Outcome(row.id, reasons=reasons, answer=result.text, detail=translated.output,
                                       repairs=repairs)
        else:
            outcomes[row.id] = Outcome(row.id, record=translated.to_record(), repairs=repairs)
    return outcomes


def translate(rows: list[SourceRow], target: str, settings: TranslateSettings, config: LLMConfig) -> MethodRun:
    template = load_template(rows, target, settings)
    report = run_requests(build_requests(rows, template, settings), config, desc=f"translate {template.direction}")
    return MethodRun(outcomes=read_answers(rows, report, template), llm={"translate": report.summary})
