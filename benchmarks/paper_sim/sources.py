"""Synthetic inputs of the simulated paper run, and the fate of every row the simulated model sees.

Japanese originals: every row is a variant of one of the embedded sample's Japanese rows (same
labels and entities), its text made unique by the row id in brackets (``... [adjn-000123]``),
written in the published layout (``input``/``output``/``id``, no ``lang``/``dataset`` columns:
ingest infers them) across a train and a test repository, as the authors published them.
Pile-NER-type: variants of the sample's conversations, text made unique the same way.

Fates: which translated rows the simulated model spoils, chosen among the rows the pipeline's
own sampler (``mmm.translate.sampling.sample_rows``) will send, so each cell keeps exactly
Table 2's count. Half the spoiled answers fail the translate stage's checks (``untranslated``),
half the filter (``residual_japanese`` for en/zh, ``entity_not_in_text`` for ja): both ways the
paper's pipeline loses rows. One Pile-NER text gets an overlong topic and fails labelling.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from mmm.records import Sample, format_input
from mmm.split import rank_key
from mmm.translate.sampling import sample_rows
from paper_sim.spec import MRE, SimSpec, sample_params, translated_cells

SHORT = {"SCNM": "scnm", "SCPOS-RW": "rw", "SCPOS-AdjN": "adjn", "SCPOS-Adj": "adj", "SCPOS-N": "n", "TCREE": "tcree",
         "TCONER": "tc"}
TRAIN_REPO, TEST_REPO = "MMM-dataset-Trainset", "MMM-dataset-Testset"
TRAIN_SHARE = 0.8  # how the originals are divided between the two published repositories
LOSS_SEED = 7919  # which of the translated rows are spoiled: independent of the sampler's seed
PILE_NER = "pile-ner-type.json"
UNTRANSLATED, RESIDUAL, MISSING_ENTITY, OVERLONG = "untranslated", "residual", "missing_entity", "overlong"


def marked(text: str, row_id: str) -> str:
    """A sample text made unique by its row id (kept through translation by the simulated model)."""
    return f"{text} [{row_id}]"


def load_sample_rows(sample_dir: Path) -> dict[str, list[Sample]]:
    """The embedded sample's Japanese rows per sub-dataset (the bases of the synthetic originals)."""
    rows: dict[str, list[Sample]] = {}
    for path in sorted((sample_dir / "ja").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                sample = Sample.from_record(json.loads(line))
                rows.setdefault(sample.dataset, []).append(sample)
    return rows


def write_originals(spec: SimSpec, sample_dir: Path, out_dir: Path) -> dict[str, list[str]]:
    """Write the Japanese originals (train and test repositories); return the ids per sub-dataset."""
    bases = load_sample_rows(sample_dir)
    ids: dict[str, list[str]] = {}
    (out_dir / TRAIN_REPO).mkdir(parents=True, exist_ok=True)
    (out_dir / TEST_REPO).mkdir(parents=True, exist_ok=True)
    with open(out_dir / TRAIN_REPO / "train.jsonl", "w", encoding="utf-8") as train, \
            open(out_dir / TEST_REPO / "test.jsonl", "w", encoding="utf-8") as test:
        for dataset in MRE:
            size, pool = spec.originals(dataset), bases[dataset]
            cut = round(size * TRAIN_SHARE)
            ids[dataset] = []
            for n in range(size):
                base = pool[n % len(pool)]
                row_id = f"{SHORT[dataset]}-{n:06d}"
                row = {"id": row_id, "input": format_input(marked(base.text, row_id), base.instruct),
                       "output": base.output}
                (train if n < cut else test).write(json.dumps(row, ensure_ascii=False) + "\n")
                ids[dataset].append(row_id)
    return ids


def write_pile_ner(spec: SimSpec, sample_dir: Path, path: Path) -> list[str]:
    """Write Pile-NER-type conversations (``spec.tconer_texts`` of them); return their ids."""
    pool = json.loads((sample_dir / "pile-ner" / "tconer.json").read_text(encoding="utf-8"))
    ids = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[\n")
        for n in range(spec.tconer_texts):
            base = pool[n % len(pool)]
            row_id = f"{SHORT['TCONER']}-{n:06d}"
            turns = [dict(turn) for turn in base["conversations"]]
            turns[0]["value"] = marked(turns[0]["value"], row_id)
            fh.write(("" if n == 0 else ",\n") + json.dumps({"id": row_id, "conversations": turns}, ensure_ascii=False))
            ids.append(row_id)
        fh.write("\n]\n")
    return ids


def _sampled(ids_by_dataset: dict[str, list[str]], sizes: dict[str, int], seed: int) -> dict[str, list[str]]:
    """The ids the translate stage will send, by the pipeline's own sampler."""
    rows = [SimpleNamespace(id=row_id, sample=SimpleNamespace(dataset=ds))
            for ds, ids in ids_by_dataset.items() for row_id in ids]
    chosen, _ = sample_rows(rows, sizes, seed)  # type: ignore[arg-type]
    out: dict[str, list[str]] = {ds: [] for ds in ids_by_dataset}
    for row in chosen:
        out[row.sample.dataset].append(row.id)
    return out


def _spoil(ids: list[str], n: int, salt: str, filter_kind: str) -> dict[str, str]:
    """``n`` of ``ids`` (a seeded choice), alternately failing the translate checks and the filter."""
    ranked = sorted(ids, key=lambda row_id: rank_key(LOSS_SEED, f"{salt}/{row_id}"))[:n]
    return {row_id: (UNTRANSLATED if i % 2 == 0 else filter_kind) for i, row_id in enumerate(ranked)}


def fates(spec: SimSpec, original_ids: dict[str, list[str]], tconer_ids: list[str], seed: int) -> dict[str, dict[str, str]]:
    """``{target: {row id: how the answer is spoiled}}``; target ``label`` is TCONER labelling."""
    samples = sample_params(spec)
    result: dict[str, dict[str, str]] = {}
    for target in ("en", "zh"):
        sent = _sampled(original_ids, samples[target], seed)
        result[target] = {}
        for dataset in MRE:
            result[target].update(_spoil(sent[dataset], spec.lost(target, dataset), f"{target}/{dataset}", RESIDUAL))
    label_lost = _spoil(tconer_ids, 1, "label", OVERLONG)
    result["label"] = {row_id: OVERLONG for row_id in label_lost}
    labelled = {"TCONER": [row_id for row_id in tconer_ids if row_id not in label_lost]}
    for target in ("ja", "zh"):
        sent = _sampled(labelled, samples[f"tconer_{target}"], seed)["TCONER"]
        kind = MISSING_ENTITY if target == "ja" else RESIDUAL
        result[f"tconer_{target}"] = _spoil(sent, spec.lost(target, "TCONER"), f"tconer/{target}", kind)
    expected = {cell: spec.lost(*cell) for cell in translated_cells()}
    spoiled = sum(len(v) for k, v in result.items() if k != "label")
    assert spoiled == sum(expected.values()), (spoiled, expected)
    return result


def write_inputs(spec: SimSpec, sample_dir: Path, raw_dir: Path, seed: int) -> dict[str, dict[str, str]]:
    """Write the originals and ``PILE_NER`` under ``raw_dir``; return the fates (``seed``: ``translate.seed``)."""
    original_ids = write_originals(spec, sample_dir, raw_dir)
    tconer_ids = write_pile_ner(spec, sample_dir, raw_dir / PILE_NER)
    return fates(spec, original_ids, tconer_ids, seed)
