"""A seeded sample of translation inputs per sub-dataset: stable, order-free, and every row accounted for."""

from __future__ import annotations

import random

from translate_fakes import ReferenceTranslator, mapped_rows, read_jsonl, references, write_jsonl

from mmm.records import Sample
from mmm.translate.run import translate_file
from mmm.translate.sampling import sample_rows
from mmm.translate.types import SourceRow

from test_translate_openai import SETTINGS


def _rows(n_per: dict[str, int]) -> list[SourceRow]:
    rows = []
    for dataset, n in n_per.items():
        for i in range(n):
            record = {"id": f"{dataset}-{i}", "lang": "ja", "dataset": "SCNM", "input": f"東京{i}。/NER", "output": "社会/NER/"}
            sample = Sample.from_record(record)
            rows.append(SourceRow(sample=_with_dataset(sample, dataset), labels="mapped", record=record))
    return rows


def _with_dataset(sample: Sample, dataset: str) -> Sample:
    import dataclasses

    return dataclasses.replace(sample, dataset=dataset)


def test_the_sample_is_seeded_order_free_and_leaves_other_sub_datasets_whole():
    rows = _rows({"SCPOS-N": 50, "SCNM": 7})
    chosen, left_out = sample_rows(rows, {"SCPOS-N": 10}, seed=3)
    assert left_out == {"SCPOS-N": 40}
    assert sum(r.sample.dataset == "SCPOS-N" for r in chosen) == 10 and sum(r.sample.dataset == "SCNM" for r in chosen) == 7
    assert [r.id for r in chosen] == [r.id for r in rows if r in chosen]  # input order kept
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert {r.id for r in sample_rows(shuffled, {"SCPOS-N": 10}, seed=3)[0]} == {r.id for r in chosen}
    other_seed = {r.id for r in sample_rows(rows, {"SCPOS-N": 10}, seed=4)[0]}
    assert other_seed != {r.id for r in chosen}
    more = {r.id for r in sample_rows(rows, {"SCPOS-N": 20}, seed=3)[0]}
    assert {r.id for r in chosen} < more  # a bigger sample extends the smaller one
    assert sample_rows(rows, None, seed=3) == (rows, {}) and sample_rows(rows, {"SCPOS-N": 500}, seed=3) == (rows, {})


def test_translate_sends_only_the_sample_and_counts_the_rest(fake_openai, openai_config, tmp_path, sample_dir):
    rows = mapped_rows(sample_dir, "en", per_dataset=6)
    fake_openai.answer = ReferenceTranslator(rows, references(sample_dir, "en"), "ja-en")
    source = write_jsonl(tmp_path / "en.jsonl", rows)
    out, failed = tmp_path / "out.jsonl", tmp_path / "failed.jsonl"
    metrics = translate_file(source, "en", out, failed, SETTINGS, openai_config, tmp_path / "m.json",
                             sample={"SCPOS-N": 2, "SCPOS-Adj": 4}, seed=0)
    assert metrics["not_sampled"] == {"SCPOS-Adj": 2, "SCPOS-N": 4}
    assert metrics["read_rows"] == len(rows) == metrics["input_rows"] + 6
    assert len(fake_openai.calls) == metrics["input_rows"]
    written = read_jsonl(out) + read_jsonl(failed)
    assert sorted(r["dataset"] for r in written).count("SCPOS-N") == 2
    again = translate_file(source, "en", out, failed, SETTINGS, openai_config, tmp_path / "m.json",
                           sample={"SCPOS-N": 2, "SCPOS-Adj": 4}, seed=0)
    assert again == metrics and len(fake_openai.calls) == metrics["input_rows"]  # the same rows: answered from the cache
