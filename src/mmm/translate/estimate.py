"""The bill before the run: what ``mmm translate`` would send, in requests, tokens and USD.

Nothing is sent and no client is built: the requests are the ones the method would build
(``one_shot.build_requests``; anchored: its term, text and re-ask prompts), over the item's
seeded ``sample``, and each one's cache key is computed the way ``run_requests`` computes it, so
a prompt whose answer is cached counts in the whole bill but not in what remains after the cache.

Every figure has a low and a high value:

- prompt tokens: counted with the provider's tokenizer (``mmm.llm.tokens``); exact for one-shot
  prompts and anchored prompts whose terms are known, bounded where an anchored text prompt
  holds term translations that are not answered yet (low: their calibrated length; high:
  ``term_max_tokens`` each).
- completion tokens: low = the calibrated expected length (target tokens per source character,
  measured on the embedded sample's parallel rows: ``resources/estimate_calibration.yaml``,
  rebuilt by ``calibrate``), capped by the request's ``max_tokens``; high = every answer runs to
  its ``max_tokens`` cap, a ceiling.
- requests: exact for one-shot. Anchored: the term requests are known from the rows' entities
  (and TCONER labels); low assumes every term answer is usable and no text answer needs the
  re-ask, high that every text answer not yet in the cache is re-asked. A term that fails
  leaves its rows without a text request: fewer requests than low, and those rows fail.

USD uses ``llm.prices`` for the model (none: no USD) and ``llm.batch_price_factor`` for the
Batch API column. Identical prompts within an item count once, as the runner sends them once.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmm.config import Price
from mmm.llm import GenParams, LLMConfig, LLMRequest, ResponseCache, cache_key
from mmm.llm.tokens import Tokenizer
from mmm.llm.types import LLMResult
from mmm.records import Sample
from mmm.translate import anchored, one_shot
from mmm.translate.sampling import sample_rows
from mmm.translate.types import SourceRow, TranslateSettings

CALIBRATION = "estimate_calibration.yaml"
PARTS = ("record", "text", "term")  # one-shot answer (input + output lines), anchored text, anchored term
BOUNDS = ("low", "high")


# --- calibration -----------------------------------------------------------------------------


def calibrate(sample_dir: str | Path, templates_dir: str | Path, encodings: Iterable[str] = ("cl100k_base", "o200k_base"),
              ) -> dict[str, Any]:
    """Target tokens per source character, per encoding, direction and answer part, on the sample.

    The sample's Japanese rows and their English and Chinese references are parallel: ja->en and
    ja->zh use them as they are, en->ja and en->zh take the English reference as the source. Each
    entry holds the pooled ratio (sum of tokens / sum of characters, what an estimate multiplies by)
    and the 10th and 90th percentile of the per-row ratio (the spread of a single row).
    """
    from mmm.translate import template as templates

    sample_dir = Path(sample_dir)
    langs = {"ja": _samples(sample_dir / "ja"), "en": _samples(sample_dir / "reference" / "en"),
             "zh": _samples(sample_dir / "reference" / "zh")}
    result: dict[str, Any] = {}
    for encoding in encodings:
        tokenizer = Tokenizer(encoding, True, "completions")
        for source, target in (("ja", "en"), ("ja", "zh"), ("en", "ja"), ("en", "zh")):
            answer_output = templates.load(templates.template_path(templates_dir, source, target)).answer_output
            pairs = [(langs[source][i], langs[target][i]) for i in sorted(langs[source]) if i in langs[target]]
            measured: dict[str, list[tuple[int, int]]] = {part: [] for part in PARTS}
            for src, tgt in pairs:
                measured["record"].append((tokenizer.count(f"{tgt.input}\n{answer_output}\n{tgt.output}"),
                                           len(src.input) + len(src.output)))
                measured["text"].append((tokenizer.count(" " + tgt.text), len(src.text)))
                if len(src.entities()) == len(tgt.entities()):
                    measured["term"] += [(tokenizer.count(" " + t), len(s)) for s, t in zip(src.entities(), tgt.entities())]
            result.setdefault(encoding, {})[f"{source}-{target}"] = {part: _ratio(v) for part, v in measured.items()}
    return result


def _samples(folder: Path) -> dict[str, Sample]:
    from mmm.io import read_samples

    return {s.id: s for path in sorted(folder.glob("*.jsonl")) for s in read_samples(path)}


def _ratio(values: list[tuple[int, int]]) -> dict[str, Any]:
    per_row = sorted(t / c for t, c in values if c)
    deciles = statistics.quantiles(per_row, n=10, method="inclusive")
    return {"ratio": round(sum(t for t, _ in values) / sum(c for _, c in values), 4),
            "p10": round(deciles[0], 4), "p90": round(deciles[-1], 4), "n": len(values)}


def load_calibration() -> dict[str, Any]:
    text = resources.files("mmm").joinpath("resources", CALIBRATION).read_text(encoding="utf-8")
    return yaml.safe_load(text)["calibration"]


# --- the estimate ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Requests and tokens of one bound."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cost(self, price: Price | None, factor: float = 1.0) -> float | None:
        return price.cost(self.prompt_tokens, self.completion_tokens, factor) if price else None

    def __iadd__(self, other: Tally) -> Tally:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self


@dataclass(frozen=True)
class Planned:
    """One request the run may send: its bounds, and whether the cache already answers it."""

    cached: bool
    requests: tuple[int, int]  # (low, high): (0, 1) when it depends on earlier answers
    prompt: tuple[int, int]
    completion: tuple[int, int]


@dataclass
class ItemEstimate:
    item: str
    direction: str
    method: str
    rows: int
    not_sampled: dict[str, int]
    whole: dict[str, Tally] = field(default_factory=lambda: {b: Tally() for b in BOUNDS})
    after_cache: dict[str, Tally] = field(default_factory=lambda: {b: Tally() for b in BOUNDS})
    cached_requests: int = 0

    def add(self, planned: Planned) -> None:
        for i, bound in enumerate(BOUNDS):
            n = planned.requests[i]
            tally = Tally(n, n * planned.prompt[i], n * planned.completion[i])
            self.whole[bound] += tally
            if not planned.cached:
                self.after_cache[bound] += tally
        self.cached_requests += planned.cached


@dataclass
class Estimate:
    """Every item's estimate under one model and price table."""

    model: str
    api: str
    backend: str
    encoding: str
    exact_tokens: bool
    price: Price | None
    batch_factor: float
    items: list[ItemEstimate]

    def total(self, which: str) -> dict[str, Tally]:
        totals = {b: Tally() for b in BOUNDS}
        for item in self.items:
            for bound in BOUNDS:
                totals[bound] += getattr(item, which)[bound]
        return totals

    def to_dict(self) -> dict[str, Any]:
        def bill(tallies: dict[str, Tally]) -> dict[str, Any]:
            return {bound: {"requests": t.requests, "prompt_tokens": t.prompt_tokens,
                            "completion_tokens": t.completion_tokens,
                            "usd": t.cost(self.price), "usd_batch": t.cost(self.price, self.batch_factor)}
                    for bound, t in tallies.items()}

        return {
            "model": self.model, "api": self.api, "backend": self.backend, "encoding": self.encoding,
            "exact_tokens": self.exact_tokens, "price": self.price.model_dump() if self.price else None,
            "batch_price_factor": self.batch_factor,
            "items": {i.item: {"direction": i.direction, "method": i.method, "rows": i.rows, "not_sampled": i.not_sampled,
                               "cached_requests": i.cached_requests, "whole": bill(i.whole),
                               "after_cache": bill(i.after_cache)} for i in self.items},
            "total": {"whole": bill(self.total("whole")), "after_cache": bill(self.total("after_cache"))},
        }


def new_estimate(config: LLMConfig, items: list[ItemEstimate]) -> Estimate:
    tokenizer = Tokenizer.for_model(config.model, config.api)
    factor = config.batch_price_factor if config.backend == "openai" else 1.0
    return Estimate(config.model, config.api, config.backend, tokenizer.encoding, tokenizer.exact, config.price(),
                    factor, items)


def estimate_item(
    name: str,
    rows: list[SourceRow],
    target: str,
    settings: TranslateSettings,
    config: LLMConfig,
    sample: Mapping[str, int] | None = None,
    seed: int = 0,
    calibration: dict[str, Any] | None = None,
) -> ItemEstimate:
    """The bill of translating ``rows`` (sampled as the run samples them) into ``target``."""
    chosen, not_sampled = sample_rows(rows, sample, seed)
    source = chosen[0].sample.lang if chosen else (rows[0].sample.lang if rows else "?")
    result = ItemEstimate(name, f"{source}-{target}", settings.method, len(chosen), not_sampled)
    if not chosen:
        return result
    planner = _Planner(config, settings, target, source, calibration or load_calibration())
    if settings.method == one_shot.NAME:
        planned = planner.one_shot(chosen)
    elif settings.method == anchored.NAME:
        planned = planner.anchored(chosen)
    else:
        raise ValueError(f"no estimate for translate.method {settings.method!r}")
    for p in planned:
        result.add(p)
    return result


class _Planner:
    """Builds the method's requests without sending them and prices each one."""

    def __init__(self, config: LLMConfig, settings: TranslateSettings, target: str, source: str,
                 calibration: dict[str, Any]):
        self.config, self.settings, self.target, self.source = config, settings, target, source
        self.tokenizer = Tokenizer.for_model(config.model, config.api)
        self.cache = ResponseCache(config.cache_dir, config.family, config.model)
        self.local = config.family.startswith("local")
        ratios = calibration.get(self.tokenizer.encoding, {}).get(f"{source}-{target}")
        if ratios is None:
            raise ValueError(f"no completion calibration for {self.tokenizer.encoding} {source}-{target} "
                             f"(resources/{CALIBRATION})")
        self.ratio = {part: float(ratios[part]["ratio"]) for part in PARTS}
        self.seen: set[str] = set()

    def expected(self, part: str, chars: int, cap: int) -> int:
        return max(1, min(cap, math.ceil(self.ratio[part] * chars)))

    def key(self, request: LLMRequest, hook: Any = None) -> str:
        constraint = {"hook": hook.name, "terms": list(request.required_terms)} if hook is not None and self.local else None
        return cache_key(self.config.family, self.config.model, request.prompt, request.system, request.params, constraint)

    def known(self, request: LLMRequest, expected: int, requests: tuple[int, int] = (1, 1),
              hook: Any = None) -> tuple[Planned | None, LLMResult | None]:
        """A request whose prompt is known: its plan (None when an identical prompt is already
        planned) and its cached answer, if any."""
        key = self.key(request, hook)
        hit = self.cache.get(key)
        answer = None if hit is None else LLMResult(request.id, hit.text, None, True, hit.prompt_tokens,
                                                    hit.completion_tokens, finish_reason=hit.finish_reason)
        if key in self.seen:
            return None, answer
        self.seen.add(key)
        tokens = self.tokenizer.count_request(request)
        cap = request.params.max_tokens
        return Planned(hit is not None, requests, (tokens, tokens), (expected, cap)), answer

    # one-shot ----------------------------------------------------------------------------------

    def one_shot(self, rows: list[SourceRow]) -> list[Planned]:
        template = one_shot.load_template(rows, self.target, self.settings)
        planned = []
        for row, request in zip(rows, one_shot.build_requests(rows, template, self.settings)):
            chars = len(row.sample.input) + len(row.sample.output)
            plan, _ = self.known(request, self.expected("record", chars, request.params.max_tokens))
            if plan is not None:
                planned.append(plan)
        return planned

    # anchored ----------------------------------------------------------------------------------

    def anchored(self, rows: list[SourceRow]) -> list[Planned]:
        from mmm.translate.anchor_prompts import LABEL_BANNED, TERM_BANNED, load_glossary, load_prompts
        from mmm.translate.constrain import AnchorHook

        options = self.settings.options
        if options is None:
            raise ValueError("the anchored method needs translate.anchored options")
        prompts = load_prompts(options.prompts, self.source, self.target)
        glossary = load_glossary(options.glossary, self.source, self.target)
        terms = anchored._Terms(prompts, glossary, options, self.settings, self.config, None)  # type: ignore[arg-type]
        planned: list[Planned] = []
        results: dict[str, dict[str, anchored.TermResult | None]] = {}
        for kind, banned, items in (
            ("entity", TERM_BANNED, anchored._distinct(e for r in rows for e in r.sample.entities())),
            ("label", LABEL_BANNED, anchored._distinct(x for r in rows if r.labels == "translate" for x in anchored._labels(r))),
        ):
            results[kind] = {}
            params = GenParams(max_tokens=options.term_max_tokens, temperature=self.settings.temperature, stop=anchored.STOP)
            hook = AnchorHook(self.target, kind, banned, anchored.TERM_NGRAM)
            for i, item in enumerate(items):
                if item in glossary:
                    results[kind][item] = anchored.TermResult(glossary[item], "glossary")
                    continue
                if terms._keep_as_is(item, banned):
                    results[kind][item] = anchored.TermResult(item, "as_is")
                    continue
                request = LLMRequest(id=f"{kind}:{i}", prompt=prompts.term_prompt(item), params=params)
                plan, answer = self.known(request, self.expected("term", len(item), options.term_max_tokens), hook=hook)
                if plan is not None:
                    planned.append(plan)
                results[kind][item] = None if answer is None else terms._read(_Report({request.id: answer}), request.id, banned)
        text_hook = AnchorHook(self.target, "text", no_repeat_ngram=anchored.TEXT_NGRAM, term_bias=anchored.TERM_BIAS)
        for row in rows:
            planned += self._row(row, prompts, results, text_hook, options.term_max_tokens, options.reask)
        return planned

    def _row(self, row: SourceRow, prompts: Any, results: dict[str, dict[str, Any]], hook: Any, term_max: int,
             reask: bool) -> list[Planned]:
        wanted = [results["entity"][e] for e in row.sample.entities()]
        if row.labels == "translate":
            wanted += [results["label"][x] for x in anchored._labels(row)]
        if any(r is not None and r.translation is None for r in wanted):
            return []  # a term failed (answer in the cache): the row fails without a text request
        reasks = reask and not self.local
        cap = self.settings.max_tokens.for_sample(row.sample, self.target)
        expected = self.expected("text", len(row.sample.text), cap)
        entities = results["entity"]
        if all(entities[e] is not None for e in row.sample.entities()):
            request = anchored._text_request(row, prompts, entities, self.settings, self.target)
            plan, answer = self.known(request, expected, hook=hook)
            planned = [plan] if plan is not None else []
            if answer is None:
                if reasks:  # the re-ask's prompt at its longest: every term named as missing
                    longest = prompts.text_prompt(row.sample.text, anchored._row_terms(row, entities),
                                                  list(request.required_terms))
                    tokens = self.tokenizer.count_request(LLMRequest("reask", longest, request.params))
                    planned.append(Planned(False, (0, 1), (tokens, tokens), (expected, cap)))
                return planned
            if reasks and anchored._missing(answer.text, request):
                second = anchored._reask_request(row, prompts, entities, self.settings, self.target, answer.text)
                plan, _ = self.known(second, expected)
                planned += [plan] if plan is not None else []
            return planned
        # some entity translations are not answered yet: the text prompt holds them, unknown
        pairs = [(e, (entities[e].translation or "") if entities[e] is not None else "") for e in anchored._distinct(row.sample.entities())]
        unknown = [e for e in anchored._distinct(row.sample.entities()) if entities[e] is None]
        low_terms = sum(self.expected("term", len(e), term_max) for e in unknown)
        high_terms = term_max * len(unknown)
        params = GenParams(max_tokens=cap, temperature=self.settings.temperature, stop=anchored.STOP)
        base = self.tokenizer.count_request(LLMRequest("text", prompts.text_prompt(row.sample.text, pairs), params))
        planned = [Planned(False, (1, 1), (base + low_terms, base + high_terms), (expected, cap))]
        if reasks:
            missing = [t for _, t in pairs]
            longest = self.tokenizer.count_request(LLMRequest("reask", prompts.text_prompt(row.sample.text, pairs, missing), params))
            planned.append(Planned(False, (0, 1), (longest + 2 * low_terms, longest + 2 * high_terms), (expected, cap)))
        return planned


@dataclass
class _Report:
    """The part of a ``RunReport`` that ``anchored._Terms._read`` reads."""

    results: dict[str, LLMResult]


# --- the table -------------------------------------------------------------------------------


def render(estimate: Estimate) -> str:
    """The estimate as a fixed-width table (whole bill and after the cache, per item and in total)."""
    price = (f"${estimate.price.input:g} in / ${estimate.price.output:g} out per 1M tokens" if estimate.price
             else f"no price for {estimate.model} in llm.prices: no USD")
    tokens = estimate.encoding + ("" if estimate.exact_tokens else f" (a stand-in: {estimate.model}'s tokenizer is unknown)")
    lines = [f"translate estimate (nothing sent): {estimate.backend} model {estimate.model}, api {estimate.api}, "
             f"tokens {tokens}; {price}; batch x{estimate.batch_factor:g}"]
    header = ("item", "method", "rows", "bill", "requests", "prompt tokens", "completion tokens", "USD", "USD batch")
    table: list[tuple[str, ...]] = [header]

    def cells(name: str, method: str, rows: str, bill: str, tallies: dict[str, Tally]) -> tuple[str, ...]:
        low, high = tallies["low"], tallies["high"]
        return (name, method, rows, bill, _span(low.requests, high.requests),
                _span(low.prompt_tokens, high.prompt_tokens), _span(low.completion_tokens, high.completion_tokens),
                _usd_span(low.cost(estimate.price), high.cost(estimate.price)),
                _usd_span(low.cost(estimate.price, estimate.batch_factor), high.cost(estimate.price, estimate.batch_factor)))

    for item in estimate.items:
        table.append(cells(item.item, item.method, str(item.rows), "whole", item.whole))
        table.append(cells("", "", "", "after cache", item.after_cache))
    table.append(cells("total", "", str(sum(i.rows for i in estimate.items)), "whole", estimate.total("whole")))
    table.append(cells("", "", "", "after cache", estimate.total("after_cache")))
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    right = {2, 4, 5, 6, 7, 8}
    for r in table:
        lines.append("  ".join(v.rjust(w) if c in right else v.ljust(w) for c, (v, w) in enumerate(zip(r, widths))).rstrip())
    left_out = {i.item: sum(i.not_sampled.values()) for i in estimate.items if i.not_sampled}
    if left_out:
        lines.append("not sampled (translate.items.*.sample, never sent): "
                     + ", ".join(f"{k} {v} rows" for k, v in left_out.items()))
    lines += [f"  {note}" for note in notes(estimate)]
    return "\n".join(lines)


def notes(estimate: Estimate) -> list[str]:
    """What the low and high values assume."""
    methods = {i.method for i in estimate.items}
    out = ["low-high: low = completions of the calibrated expected length (target tokens per source character "
           f"on the sample's parallel rows, resources/{CALIBRATION}), high = every answer at its max_tokens cap"]
    if anchored.NAME in methods:
        out.append("anchored: low = every term answer usable and no re-ask; high = every text answer not in the cache "
                   "re-asked, unanswered term translations in text prompts at term_max_tokens each; a failed term "
                   "drops its rows' text requests (fewer requests than low)")
    out.append("after cache: prompts whose answer is in llm.cache_dir cost nothing; identical prompts count once per item")
    return out


def _span(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _usd_span(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"${low:,.4f}" if round(low, 4) == round(high, 4) else f"${low:,.4f}-${high:,.4f}"


def run_estimate(jobs: Mapping[str, Any], settings: TranslateSettings, config: LLMConfig, seed: int,
                 json_path: str | Path | None = None) -> str:
    """Estimate every job (``TranslateItem``-like: ``input``, ``to``, ``sample``); returns the table.

    Every input is read first, and a missing one is reported together with the others.
    """
    from mmm.io import InputError, Problem, write_json
    from mmm.translate.run import read_source_rows

    missing = [Problem(str(job.input), 0, f"translate item {name!r}: input not found (run the stages before "
                                          "translate, e.g. `dvc repro label_map`)")
               for name, job in jobs.items() if not Path(job.input).is_file()]
    if missing:
        raise InputError(missing)
    calibration = load_calibration()
    items = [estimate_item(name, read_source_rows(job.input, job.to), job.to, settings, config, job.sample, seed,
                           calibration) for name, job in jobs.items()]
    result = new_estimate(config, items)
    if json_path is not None:
        write_json(json_path, {**result.to_dict(), "notes": notes(result)})
    return render(result)
