"""Batched greedy generation with a trained OIELLM: the test-set predictions and ``mmm extract``.

Prompts are tokenized exactly as in training (:mod:`mmm.modeling.sequence`), sorted by length
and generated in left-padded batches with the KV cache; a row stops at EOS or at its first
newline (the separator the model was trained to answer after, and which never occurs in an
answer). The predictions file is the evaluator's input: one row per test record with
``id, lang, dataset, input, output`` (the gold joint output), ``prediction`` (the generation,
in the model's target format), ``target`` and ``finish`` (``eos``, ``newline`` or
``max_new_tokens``, so truncations are visible).

``predict.constrained`` (``grammar`` or ``schema``) holds every answer to the MMM output grammar
(:mod:`mmm.modeling.constrained`); the metrics file records the mode.

The test file is read as a stream (:mod:`mmm.prediction.rows`) and predicted ``predict.chunk_rows`` rows at a
time; each finished chunk is appended to a fingerprinted partial file (:mod:`mmm.prediction.partial`) outside
DVC's outputs, so a killed run resumes without redoing a finished chunk. At the end the predictions and metrics
are written from the partial file as one set and the partial file is removed.

``predict.backend``: ``hf`` generates here (under ``accelerate launch`` with several processes each rank
generates a slice of every chunk and rank 0 saves it); ``openai`` asks an OpenAI-compatible server
(:mod:`mmm.prediction.api`) and writes the same file.

The metrics file holds results only (counts), so predicting twice with the same inputs on the
same machine writes the same bytes (:mod:`mmm.modeling.determinism`); generation time and
throughput go to the untracked run log (``mmm.runlog``, name ``predict``).
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmm import publish, registry, runlog
from mmm.config import LLMConfig, PredictConfig
from mmm.errors import IncompleteRun, MMMError
from mmm.io import portable_path, write_json, write_jsonl
from mmm.modeling import prototypes
from mmm.modeling.constrained import (
    ConstraintError,
    RowSpec,
    check_mode,
    processor_factory,
    row_spec,
)
from mmm.modeling.determinism import reproducible
from mmm.modeling.generation import Engine
from mmm.modeling.loading import ModelDirError, check_model_dir, read_format
from mmm.modeling.relabel import Answer, relabel
from mmm.modeling.sequence import (
    SequenceError,
    dataset_for_task,
    encode_prompt,
    parse_prediction,
)
from mmm.modeling.world import cpu_world
from mmm.prediction import rows
from mmm.prediction.api import ApiGenerator, check_servable, server_config
from mmm.prediction.partial import Partial, fingerprint, weights_sha256
from mmm.prediction.tally import Tally
from mmm.prediction.types import Generation
from mmm.records import FormatError, format_input, split_input
from mmm.split import rank_key
from mmm.validation import gate

log = logging.getLogger(__name__)


FINISH = {"eos": "eos", "stop": "newline", "length": "max_new_tokens"}  # the core's reasons, in predictions' words


class Generator:
    """A trained model ready for batched greedy answers in its training format.

    Its answer budget comes from the folder's ``generation_config.json``, its stop rule is the
    format's newline (:meth:`Engine.folder_settings`) and its target format from ``oiellm.json``,
    so a model folder is all ``mmm extract`` needs."""

    def __init__(self, model_dir: str | Path, dtype: str = "float32", device: Any = None):
        import torch

        self.format = read_format(model_dir)
        device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.engine = Engine.load(model_dir, dtype, device)
        self.settings = self.engine.folder_settings()
        self.prototypes = prototypes.load(model_dir)

    @property
    def target(self) -> str:
        return self.format["target"]

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def generate(self, inputs: list[str], max_new_tokens: int | None = None, batch_size: int = 16,
                 progress: bool = False, min_new_tokens: int = 0,
                 stop_strings: tuple[str, ...] | None = None,
                 constraints: Sequence[RowSpec | None] | None = None) -> list[Generation]:
        """Greedy answers for ``inputs`` (record inputs ``text/INSTRUCT``), in input order.

        ``max_new_tokens`` and ``stop_strings`` default to the folder's settings; prompts are
        batched longest first so a batch carries little padding. ``constraints`` (one per input,
        ``None`` = free) hold rows to the MMM grammar (:mod:`mmm.modeling.constrained`)."""
        from tqdm.auto import tqdm

        settings = replace(self.settings, min_new_tokens=min_new_tokens)
        if max_new_tokens is not None:
            settings = replace(settings, max_new_tokens=max_new_tokens)
        if stop_strings is not None:
            settings = replace(settings, stop_strings=tuple(stop_strings))
        prompts = [encode_prompt(self.tokenizer, text) for text in inputs]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc="predict", disable=not progress)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            factory = None
            if constraints is not None and any(constraints[i] is not None for i in chunk):
                factory = processor_factory(self.tokenizer, [constraints[i] for i in chunk], settings.max_new_tokens,
                                            settings.stop_strings, sorted(self.engine.eos_ids))
            for i, out in zip(chunk, self.engine.generate([prompts[i] for i in chunk], settings, factory)):
                results[i] = Generation(out.text.strip(), FINISH[out.finish], out.new_tokens)
            bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]

    def choose_labels(self, inputs: Sequence[str], answers: Sequence[str], datasets: Sequence[str],
                      constraints: Sequence[RowSpec | None], rescore_labels: bool,
                      label_prototypes: bool) -> tuple[list[str], int]:
        """``answers`` with each word label of a row's closed set (its constraint's) re-picked, and how many labels
        changed: by the joint probability of label and entity (``rescore_labels``, :mod:`mmm.modeling.relabel`) or
        by the folder's label prototypes (``label_prototypes``, :mod:`mmm.modeling.prototypes`; none in the
        folder: unchanged). Rows without a closed set (no constraint, open-domain labels) are returned as they are."""
        allowed = [None if spec is None or spec.word_labels is None else sorted(x.decode() for x in spec.word_labels)
                   for spec in constraints]
        if rescore_labels:
            rows = [Answer(input_, answer, dataset, "" if spec is None else spec.marker.decode()[1:-1], self.target,
                           None if labels is None else tuple(labels))
                    for input_, answer, dataset, spec, labels in zip(inputs, answers, datasets, constraints, allowed)]
            return relabel(self.engine.model, self.tokenizer, rows)
        if label_prototypes and self.prototypes is not None:
            return prototypes.relabel(self.engine.model, self.tokenizer, self.prototypes, inputs, answers, datasets,
                                      allowed, self.target)
        return list(answers), 0


def check_rescore(rescore_labels: bool, constrained: str) -> None:
    """Rescoring picks among a closed label set, which only a constrained mode knows."""
    if rescore_labels and check_mode(constrained) == "off":
        raise ConstraintError("rescore_labels needs a closed label set: constrained schema (or grammar with given labels)")


def cap_per_cell(records: list[dict], cap: int | None, seed: int) -> list[dict]:
    """At most ``cap`` rows per (lang, dataset), chosen by a seeded hash of the id; file order kept.

    The plain reference of :func:`mmm.prediction.rows.select`, which finds the same rows in a stream."""
    if cap is None:
        return records
    by_cell: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_cell[(record["lang"], record["dataset"])].append(i)
    chosen: set[int] = set()
    for indices in by_cell.values():
        chosen.update(sorted(indices, key=lambda i: rank_key(seed, records[i]["id"]))[:cap])
    return [r for i, r in enumerate(records) if i in chosen]


def constraints_for(records: Sequence[dict], mode: str, target: str) -> list[RowSpec | None] | None:
    """Each record's decoding constraint under ``mode`` (``None`` for ``off``), from its lang, dataset and input."""
    if check_mode(mode) == "off":
        return None
    specs: list[RowSpec | None] = []
    for record in records:
        text, task = split_input(record["input"], record["dataset"])
        specs.append(row_spec(mode, text, task, record["dataset"], record["lang"], target, record.get("labels")))
    return specs


def well_formed(prediction: str, record: dict, target: str) -> bool:
    try:
        _, instruct = split_input(record["input"], record["dataset"])
        parse_prediction(prediction, record["dataset"], instruct, target)
    except FormatError:
        return False
    return True


def run(cfg: PredictConfig, test_path: str | Path, out_path: str | Path, metrics_path: str | Path,
        log_dir: str | Path | None = None, llm: LLMConfig | None = None) -> dict[str, Any]:
    """Predict the (capped) test set chunk by chunk, resumably; rank 0 publishes predictions and metrics.

    ``llm``: the ``llm`` section, whose retries, limits, budget and cache the ``openai`` backend uses. Returns, on
    rank 0, the metrics written plus ``telemetry`` (times and throughput, also written to the run log in ``log_dir``)
    and its ``new_tokens_per_s`` for the summary line. Refuses to start (``GateError``), before the model loads,
    unless the validation gate ``cfg.gate`` passed ``test_path`` as it is now; with backend openai, refuses
    constrained decoding and rescoring before anything is sent."""
    publish.check_distinct({"out": Path(out_path), "metrics": Path(metrics_path)}, [Path(test_path)])
    check_rescore(cfg.rescore_labels, cfg.constrained)
    if cfg.rescore_labels and cfg.label_prototypes:
        raise ConstraintError("predict.rescore_labels and predict.label_prototypes both re-pick word labels: "
                              "set one of them to false")
    if cfg.backend == "openai":
        check_servable(cfg.constrained, cfg.rescore_labels)
        if llm is None:
            raise ValueError("backend openai needs the llm settings")
    gate.require(cfg.gate, test_path, "predict")
    if cfg.backend == "openai":
        return _run(cfg, test_path, out_path, metrics_path, log_dir, lambda: _ApiWorld(cfg, llm))  # type: ignore[arg-type]
    with reproducible(cfg.seed, cfg.threads):
        return _run(cfg, test_path, out_path, metrics_path, log_dir, lambda: _HfWorld(cfg))


class _HfWorld:
    """The hf backend under accelerate: every rank generates a slice of each chunk, rank 0 gathers and saves it."""

    def __init__(self, cfg: PredictConfig):
        from accelerate import PartialState

        self.cfg = cfg
        self.state = PartialState(cpu=cpu_world())
        self.generator = Generator(cfg.model, cfg.dtype, self.state.device)
        self.target = self.generator.target
        if cfg.label_prototypes and self.generator.prototypes is None and self.state.is_main_process:
            log.warning("%s has no label prototypes (trained before them, or with train.prototypes.datasets empty): "
                        "word labels stay as generated", cfg.model)
        self.processes = self.state.num_processes
        self.is_main = self.state.is_main_process

    def share(self, value: int) -> int:
        """Rank 0's ``value`` on every rank."""
        if self.processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    def predict(self, chunk: list[dict]) -> tuple[list[dict], int]:
        from accelerate.utils import gather_object

        cfg, generator = self.cfg, self.generator
        with self.state.split_between_processes(chunk) as mine:
            specs = constraints_for(mine, cfg.constrained, generator.target)
            generations = generator.generate([r["input"] for r in mine], cfg.max_new_tokens, cfg.batch_size,
                                             progress=self.state.is_local_main_process, constraints=specs)
            texts, relabelled = [g.text for g in generations], 0
            if specs is not None:
                texts, relabelled = generator.choose_labels([r["input"] for r in mine], texts, [r["dataset"] for r in mine],
                                                            specs, cfg.rescore_labels, cfg.label_prototypes)
            answered = [_row(r, text, generator.target, g) for r, g, text in zip(mine, generations, texts)]
        if self.processes > 1:
            answered = gather_object(answered)
            relabelled = sum(gather_object([relabelled]))
        return answered, relabelled

    def wait(self) -> None:
        self.state.wait_for_everyone()

    def close(self) -> None:
        pass

    def generated_tokens(self, predicted: list[dict]) -> int:
        return sum(row["_new_tokens"] for row in predicted)

    def weights(self) -> str:
        return weights_sha256(self.cfg.model)

    def telemetry(self) -> dict[str, Any]:
        return {}


class _ApiWorld:
    """The openai backend: one process, each chunk's prompts through ``mmm.llm`` (``mmm.prediction.api``)."""

    processes = 1
    is_main = True

    def __init__(self, cfg: PredictConfig, llm: LLMConfig):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise MMMError("predict.backend openai runs as one process (the server parallelises): launch it without "
                           "several processes (predict.accelerate_config cpu.yaml, or plain mmm predict)")
        self.generator = ApiGenerator(cfg.model, server_config(llm, cfg.base_url, cfg.served_model, cfg.concurrency))
        self.target = self.generator.target
        self.max_new_tokens = cfg.max_new_tokens

    def share(self, value: int) -> int:
        return value

    def predict(self, chunk: list[dict]) -> tuple[list[dict], int]:
        generations = self.generator.generate([r["input"] for r in chunk], self.max_new_tokens)
        return [_row(r, g.text, self.target, g) for r, g in zip(chunk, generations)], 0

    def wait(self) -> None:
        pass

    def close(self) -> None:
        self.generator.close()

    def generated_tokens(self, predicted: list[dict]) -> int:
        """Tokens the server generated for the last chunk (cached answers cost none)."""
        return self.generator.summaries[-1].completion_tokens

    def weights(self) -> str:
        return self.generator.weights

    def telemetry(self) -> dict[str, Any]:
        return {"llm": self.generator.telemetry()}


def _row(record: dict, text: str, target: str, generation: Generation) -> dict:
    return {**{k: record[k] for k in ("id", "lang", "dataset", "input", "output")}, "prediction": text,
            "target": target, "finish": generation.finish, "_new_tokens": generation.new_tokens}


def _run(cfg: PredictConfig, test_path: str | Path, out_path: str | Path, metrics_path: str | Path,
         log_dir: str | Path | None, make_world: Callable[[], _HfWorld | _ApiWorld]) -> dict[str, Any]:
    wall_start = time.perf_counter()
    selection = rows.select(test_path, cfg.max_rows_per_cell, cfg.seed)  # a bad test file fails before the model loads
    world = make_world()
    partial = None
    if world.is_main:
        partial = Partial(cfg.checkpoints, fingerprint(cfg, world.weights(), selection.sha256, out_path, world.processes))
    resumed = world.share(len(partial.done) if partial is not None else 0)
    start = time.perf_counter()
    fresh_tokens = 0
    try:
        for index, chunk in enumerate(rows.chunks(test_path, selection, cfg.chunk_rows)):
            if index < resumed:
                continue
            try:
                predicted, relabelled = world.predict(chunk)
            except IncompleteRun as exc:
                saved = min(index * cfg.chunk_rows, selection.count)
                raise IncompleteRun(f"predict: {saved} of {selection.count} rows saved in "
                                    f"{partial.path if partial else '-'}, nothing published", *exc.problems) from None
            if partial is not None:
                fresh_tokens += world.generated_tokens(predicted)
                partial.append(index, predicted, relabelled)
    finally:
        world.close()
    generate_time = time.perf_counter() - start
    result: dict[str, Any] = {}
    if partial is not None:
        metrics = _publish(cfg, partial, selection, world, out_path, metrics_path)
        partial.remove()
        telemetry = {
            "generate_time_s": round(generate_time, 1),
            "wall_time_s": round(time.perf_counter() - wall_start, 1),
            "new_tokens_per_s": round(fresh_tokens / generate_time, 1) if generate_time > 0 else None,
            **({"resumed_chunks": resumed} if resumed else {}),
            **world.telemetry(),
        }
        runlog.write(log_dir, "predict", telemetry)
        result = {**metrics, "telemetry": telemetry, "new_tokens_per_s": telemetry["new_tokens_per_s"]}
    world.wait()
    return result


def _publish(cfg: PredictConfig, partial: Partial, selection: rows.Selection, world: _HfWorld | _ApiWorld,
             out_path: str | Path, metrics_path: str | Path) -> dict[str, Any]:
    """The partial file's chunks as the predictions file, and their metrics, published as one set."""
    tally = Tally(lambda row: well_formed(row["prediction"], row, row["target"]))
    relabelled = 0

    def predictions() -> Iterator[dict]:
        nonlocal relabelled
        for chunk in partial.chunks():
            relabelled += chunk["relabelled"]
            for row in chunk["rows"]:
                yield tally.add(row)

    with publish.outputs({"out": out_path, "metrics": metrics_path}) as paths:
        write_jsonl(paths["out"], predictions())
        if tally.rows != selection.count:
            raise RuntimeError(f"{partial.path}: {tally.rows} rows for {selection.count} chosen test rows")
        tail = {"constrained": cfg.constrained, "rescore_labels": cfg.rescore_labels,
                "label_prototypes": cfg.label_prototypes, "relabelled_pieces": relabelled, "processes": world.processes}
        if cfg.backend != "hf":  # absent: hf, so the default run's metrics keep their bytes
            tail["backend"] = cfg.backend
        metrics = tally.metrics({"model": portable_path(cfg.model), "target": world.target,
                                 "test_rows": selection.test_rows}, tail)
        write_json(paths["metrics"], metrics)
    return metrics


@dataclass(frozen=True)
class Extraction:
    input: str
    raw: str
    target: str
    text_label: str | None = None
    pairs: tuple[tuple[str, ...], ...] | None = None
    error: str | None = None
    dataset: str | None = None  # the sub-dataset whose format parsed the answer
    finish: str | None = None  # eos | newline | max_new_tokens


@dataclass(frozen=True)
class Request:
    """One text for ``mmm extract``. ``dataset`` None: the first sub-dataset with the task word (``NER``:
    SCNM); ``labels``: the word-level labels the answer may use (needs a constrained mode)."""

    text: str
    task: str = "NER"
    dataset: str | None = None
    labels: tuple[str, ...] | None = None
    id: str | None = None


def resolve_dataset(task: str, dataset: str | None) -> str:
    """The sub-dataset a request is parsed (and, under ``schema``, constrained) as; raises ``SequenceError``."""
    if dataset is None:
        return dataset_for_task(task)
    try:
        kind = registry.kind(dataset)
    except KeyError as exc:
        raise SequenceError(str(exc.args[0])) from None
    if task not in kind.instructions:
        words = ", ".join(repr(w) for w in kind.instructions)
        raise SequenceError(f"task {task!r} is not an instruction word of {dataset} (its words: {words})")
    return dataset


def request_spec(request: Request, constrained: str, lang: str | None, target: str = "joint") -> RowSpec | None:
    """Check ``request`` (before any model is loaded) and return its decoding constraint."""
    if not request.text.strip():
        raise SequenceError("text is empty")
    dataset = resolve_dataset(request.task, request.dataset)
    return extract_spec(request.text, request.task, dataset, constrained, lang, request.labels, target)


def extract_many(requests: Sequence[Request], generator: Generator | ApiGenerator, max_new_tokens: int | None = None,
                 constrained: str = "off", lang: str | None = None, batch_size: int = 16,
                 progress: bool = False, rescore_labels: bool = False,
                 label_prototypes: bool = True) -> list[Extraction]:
    """Answer many texts in batches (longest prompts first), results in request order.

    Each request is parsed as its own dataset and task; ``constrained``/``lang``/``rescore_labels`` apply to all.
    ``label_prototypes``: re-pick closed-set word labels by the folder's label prototypes, if it has them
    (``rescore_labels`` instead, when asked)."""
    check_rescore(rescore_labels, constrained)
    specs = [request_spec(r, constrained, lang, generator.target) for r in requests]
    inputs = [format_input(r.text, r.task) for r in requests]
    datasets = [resolve_dataset(r.task, r.dataset) for r in requests]
    generations = generator.generate(inputs, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
                                     constraints=None if all(s is None for s in specs) else specs)
    texts = [g.text for g in generations]
    if isinstance(generator, Generator):  # a server's answers: no logits, no states (check_servable refused rescoring)
        texts, _ = generator.choose_labels(inputs, texts, datasets, specs, rescore_labels, label_prototypes)
    results = []
    for request, input_, dataset, generation, text in zip(requests, inputs, datasets, generations, texts):
        common = {"input": input_, "raw": text, "target": generator.target, "dataset": dataset,
                  "finish": generation.finish}
        try:
            parsed = parse_prediction(text, dataset, request.task, generator.target)
        except FormatError as exc:
            results.append(Extraction(**common, error=str(exc)))
            continue
        results.append(Extraction(**common, text_label=parsed.text_label, pairs=parsed.pairs))
    return results


def extract(text: str, task: str, generator: Generator | ApiGenerator, max_new_tokens: int | None = None,
            constrained: str = "off", lang: str | None = None, labels: Sequence[str] | None = None,
            dataset: str | None = None, rescore_labels: bool = False, label_prototypes: bool = True) -> Extraction:
    """Run the model on one plain text with an instruction word (``NER``, ``Sentiment Adj``...).

    ``max_new_tokens`` None: the budget the model folder ships. ``constrained`` grammar/schema holds
    the answer to the MMM grammar (schema: inventories of ``lang``, all three if None; ``labels``
    restricts the word-level labels). ``dataset`` picks the sub-dataset of a shared task word
    (``NER``: SCNM by default, TCONER for open-domain text labels). ``rescore_labels`` re-picks each word
    label of a closed set by the joint probability of label and entity; ``label_prototypes`` by the folder's label
    prototypes."""
    request = Request(text, task, dataset, None if labels is None else tuple(labels))
    return extract_many([request], generator, max_new_tokens, constrained, lang, batch_size=1,
                        rescore_labels=rescore_labels, label_prototypes=label_prototypes)[0]


def extract_spec(text: str, task: str, dataset: str, constrained: str, lang: str | None,
                 labels: Sequence[str] | None, target: str) -> RowSpec | None:
    """The constraint of one ``mmm extract`` text; ``labels`` needs a constrained mode."""
    if check_mode(constrained) == "off":
        if labels is not None:
            raise ConstraintError("--labels restricts constrained decoding: add --constrained schema (or grammar)")
        return None
    return row_spec(constrained, text, task, dataset, lang, target, labels)


def load_generator(model_dir: str | Path, dtype: str = "float32", device: str | None = None) -> Generator:
    """A ``Generator`` for ``mmm extract``; a folder that transformers cannot read is a ``ModelDirError``."""
    check_model_dir(model_dir)
    try:
        return Generator(model_dir, dtype, None if device in (None, "auto") else device)
    except MMMError:
        raise
    except Exception as exc:  # noqa: BLE001 - transformers, safetensors and tokenizers each raise their own types
        raise ModelDirError(f"{model_dir}: cannot load the model ({type(exc).__name__}: {exc})") from None


def extract_from_folder(text: str, task: str, model_dir: str | Path, max_new_tokens: int | None = None,
                        constrained: str = "off", lang: str | None = None,
                        labels: Sequence[str] | None = None, dataset: str | None = None,
                        dtype: str = "float32", device: str | None = None, rescore_labels: bool = False,
                        label_prototypes: bool = True) -> Extraction:
    """``mmm extract`` with nothing but a model folder: format, budget and stop rule are the folder's."""
    # an unknown task (or a bad constraint) fails before the model is loaded
    check_rescore(rescore_labels, constrained)
    request_spec(Request(text, task, dataset, None if labels is None else tuple(labels)), constrained, lang)
    return extract(text, task, load_generator(model_dir, dtype, device), max_new_tokens, constrained, lang, labels,
                   dataset, rescore_labels, label_prototypes)
