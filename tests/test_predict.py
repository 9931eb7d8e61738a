from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_model import one_torch_thread, sample_records, sample_tconer, tiny_model_dir  # noqa: F401
from typer.testing import CliRunner

from configs import make, write_params
from mmm.cli import app
from mmm.modeling.constrained import ConstraintError
from mmm.modeling.generation import Settings
from mmm.modeling.sequence import parse_prediction, target_text
from mmm.predict import Generator, cap_per_cell, extract_from_folder, run
from mmm.records import Sample
from mmm.train import Paths, train

runner = CliRunner()


def memorise(base: Path, out: Path, rows: list[dict], target: str = "joint", steps: int = 60) -> Path:
    """Full fine-tune the tiny model until it reproduces ``rows``: proves train and predict agree on the format."""
    import torch
    from accelerate.state import AcceleratorState, GradientState

    threads = torch.get_num_threads()
    train_file = out.parent / f"{out.name}.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = make("train", gate=None, base_model=str(base), target=target, method="full", epochs=1000, max_steps=steps,
                      learning_rate=1e-2, per_device_batch_size=len(rows), lr_scheduler="constant_with_warmup",
                      warmup_ratio=0.0, save_dtype="float32", threads=1)
    try:
        train(cfg, Paths(train_file, out, out.parent / f"{out.name}.json", out.parent / f"{out.name}.csv",
                         out.parent / f"{out.name}.png"))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        torch.set_num_threads(threads)
    return out


def pick(rows: list[dict]) -> list[dict]:
    """One row of a few kinds: Japanese NER, a TCREE triple, an English sentiment row, TCONER."""
    wanted = [("ja", "SCNM"), ("ja", "TCREE"), ("en", "SCPOS-RW"), ("zh", "SCPOS-N"), ("en", "TCONER")]
    return [next(r for r in rows if (r["lang"], r["dataset"]) == cell) for cell in wanted]


@pytest.fixture(scope="module")
def memorised(tmp_path_factory, tiny_model_dir) -> tuple[Path, list[dict]]:  # noqa: F811
    rows = pick(sample_records() + sample_tconer())
    return memorise(tiny_model_dir, tmp_path_factory.mktemp("memorised") / "model", rows), rows


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_predict_reproduces_what_training_taught(tmp_path, memorised):
    model, rows = memorised
    from accelerate.state import PartialState

    metrics = run(make("predict", gate=None, model=str(model), batch_size=2, max_new_tokens=80), write(tmp_path / "test.jsonl", rows),
                  tmp_path / "predictions.jsonl", tmp_path / "predict.json", log_dir=tmp_path / "logs")
    PartialState._reset_state()
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [r["id"] for r in rows]
    assert set(predictions[0]) == {"id", "lang", "dataset", "input", "output", "prediction", "target", "finish"}
    assert [p["prediction"] for p in predictions] == [r["output"] for r in rows]
    assert {p["finish"] for p in predictions} == {"eos"}
    assert metrics["well_formed"] == len(rows) and metrics["finish"] == {"eos": len(rows)}
    saved = json.loads((tmp_path / "predict.json").read_text())
    assert saved["cells"]["ja"]["TCREE"] == {"rows": 1, "well_formed": 1, "truncated": 0}
    telemetry = json.loads((tmp_path / "logs" / "predict.json").read_text())
    assert telemetry == metrics["telemetry"] and metrics["new_tokens_per_s"] == telemetry["new_tokens_per_s"] > 0
    assert saved == {k: v for k, v in metrics.items() if k not in ("telemetry", "new_tokens_per_s")}
    assert not [k for k in saved if k.endswith("_s")] and saved["model"] == model.name  # results only, no absolute path


def test_rescored_labels_keep_what_training_taught_and_are_counted(tmp_path, memorised):
    from accelerate.state import PartialState

    model, rows = memorised
    test = write(tmp_path / "test.jsonl", rows)
    with pytest.raises(ConstraintError, match="both re-pick word labels"):
        run(make("predict", gate=None, model=str(model), constrained="schema", rescore_labels=True,
                 label_prototypes=True), test, tmp_path / "p.jsonl", tmp_path / "p.json")
    metrics = run(make("predict", gate=None, model=str(model), batch_size=2, max_new_tokens=80, constrained="schema",
                       rescore_labels=True, label_prototypes=False), test, tmp_path / "predictions.jsonl",
                  tmp_path / "predict.json")
    PartialState._reset_state()
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [p["prediction"] for p in predictions] == [r["output"] for r in rows]  # the trained label scores best
    assert metrics["rescore_labels"] is True and metrics["relabelled_pieces"] == 0
    with pytest.raises(ConstraintError, match="rescore_labels needs a closed label set"):
        run(make("predict", gate=None, model=str(model), constrained="off", rescore_labels=True, label_prototypes=False),
            test, tmp_path / "p.jsonl", tmp_path / "p.json")
    assert not (tmp_path / "p.jsonl").exists()


def test_predicting_twice_writes_the_same_bytes(tmp_path, memorised):
    from accelerate.state import PartialState

    model, rows = memorised
    test = write(tmp_path / "test.jsonl", sample_records()[::30] + rows)
    outputs = []
    for name in ("first", "second"):
        run(make("predict", gate=None, model=str(model), batch_size=3, max_new_tokens=12, threads=1), test,
            tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json")
        PartialState._reset_state()
        outputs.append([(tmp_path / f"{name}.{ext}").read_bytes() for ext in ("jsonl", "json")])
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0].splitlines()) == len(rows) + len(sample_records()[::30])


def test_extract_needs_only_the_model_folder(tmp_path, memorised):
    import shutil

    model, rows = memorised
    ner = Sample.from_record(rows[0])
    assert Generator(model).settings == Settings(max_new_tokens=128, stop_strings=("\n",))  # the budget training wrote; the newline rule
    result = extract_from_folder(ner.text, "NER", model)
    assert (result.text_label, result.pairs, result.error) == (ner.text_label, ner.pairs, None)
    short = tmp_path / "short"
    shutil.copytree(model, short)
    config = json.loads((short / "generation_config.json").read_text())
    (short / "generation_config.json").write_text(json.dumps({**config, "max_new_tokens": 2}))
    truncated = extract_from_folder(ner.text, "NER", short)
    assert len(Generator(short).tokenizer(truncated.raw, add_special_tokens=False)["input_ids"]) <= 2
    assert truncated.raw and ner.output.startswith(truncated.raw) and truncated.error


def test_batched_generation_matches_one_by_one(tiny_model_dir):  # noqa: F811
    generator = Generator(tiny_model_dir)
    inputs = [r["input"] for r in sample_records()[::25]]
    one_by_one = generator.generate(inputs, max_new_tokens=12, batch_size=1)
    batched = generator.generate(inputs, max_new_tokens=12, batch_size=len(inputs))
    assert len({len(generator.tokenizer(x)["input_ids"]) for x in inputs}) > 1  # padding really happens
    assert [g.text for g in batched] == [g.text for g in one_by_one]
    assert all(g.new_tokens <= 12 for g in batched)


def test_generation_stops_at_a_newline_token(tiny_model_dir, monkeypatch):  # noqa: F811
    import torch

    generator = Generator(tiny_model_dir)
    assert generator.settings.stop_strings == ("\n",)  # a plain folder: the format's separator rule
    tok = generator.tokenizer
    newline = tok("\n", add_special_tokens=False)["input_ids"]
    answer = tok("Society/NER/", add_special_tokens=False)["input_ids"]
    after = tok("junk", add_special_tokens=False)["input_ids"]

    def fake_generate(input_ids, attention_mask, **kwargs):
        assert kwargs["stop_strings"] == ["\n"] and kwargs["tokenizer"] is tok  # the real stop criterion
        tail = torch.tensor([answer + newline + after] * input_ids.shape[0])
        return torch.cat([input_ids, tail], dim=1)

    monkeypatch.setattr(generator.engine.model, "generate", fake_generate)
    [result] = generator.generate(["text/NER"], max_new_tokens=40)
    assert (result.text, result.finish, result.new_tokens) == ("Society/NER/", "newline", len(answer) + 1)


def test_cap_per_cell_is_a_seeded_subset_in_file_order():
    rows = sample_records()
    capped = cap_per_cell(rows, 2, seed=1)
    cells = {(r["lang"], r["dataset"]) for r in rows}
    assert len(capped) == 2 * len(cells)
    key = lambda rs: sorted((r["lang"], r["dataset"], r["id"]) for r in rs)  # noqa: E731
    assert key(capped) == key(cap_per_cell(list(reversed(rows)), 2, seed=1))  # the choice ignores file order
    positions = [rows.index(r) for r in capped]
    assert positions == sorted(positions)
    assert cap_per_cell(rows, None, seed=1) == rows
    assert {r["id"] for r in capped} != {r["id"] for r in cap_per_cell(rows, 2, seed=2)}


def test_text_only_target_round_trip(tmp_path, tiny_model_dir):  # noqa: F811
    rows = pick(sample_records() + sample_tconer())[:3]
    model = memorise(tiny_model_dir, tmp_path / "text-only", rows, target="text_only", steps=40)
    generator = Generator(model)
    assert generator.target == "text_only"
    for row, generation in zip(rows, generator.generate([r["input"] for r in rows], max_new_tokens=30)):
        sample = Sample.from_record(row)
        assert generation.text == target_text(sample, "text_only")
        assert parse_prediction(generation.text, sample.dataset, sample.instruct, "text_only").text_label == sample.text_label


def test_extract_prints_label_and_pairs(memorised):
    model, rows = memorised
    ner = Sample.from_record(rows[0])
    result = runner.invoke(app, ["extract", ner.text, "--task", "NER", "--model-dir", str(model)])
    assert result.exit_code == 0, result.output
    assert f"label: {ner.text_label}" in result.output
    for label, entity in ner.pairs:
        assert f"  {label}: {entity}" in result.output
    triple = Sample.from_record(rows[1])
    result = runner.invoke(app, ["extract", triple.text, "--task", triple.instruct, "--model-dir", str(model), "--json"])
    data = json.loads(result.stdout)
    assert data["pairs"] == [list(p) for p in triple.pairs] and data["error"] is None


def test_extract_shows_raw_output_that_does_not_parse(tiny_model_dir):  # noqa: F811
    result = runner.invoke(app, ["extract", "Some text.", "--task", "NER", "--model-dir", str(tiny_model_dir),
                                 "--max-new-tokens", "5"])
    assert result.exit_code == 0, result.output
    assert "raw output:" in result.output and "does not parse strictly as joint" in result.output


def test_extract_and_predict_name_bad_arguments(tmp_path, tiny_model_dir):  # noqa: F811
    result = runner.invoke(app, ["extract", "x", "--task", "POS", "--model-dir", str(tiny_model_dir)])
    assert result.exit_code == 1 and "unknown task 'POS'" in result.output
    result = runner.invoke(app, ["extract", "x", "--model-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such model folder" in result.output and "Traceback" not in result.output
    write_params(tmp_path / "p.yaml", predict={"batch_size": 0})
    result = runner.invoke(app, ["predict", "--params", str(tmp_path / "p.yaml")])
    assert result.exit_code == 1 and "batch_size" in result.output


def test_label_prototypes_repick_closed_set_labels_and_are_counted(tmp_path, memorised):
    """A copy of the memorised model whose SCNM prototypes all point away from its entities but one (地名):
    predict relabels every SCNM piece to it, counts the changes, and leaves the other datasets alone."""
    import shutil

    import torch
    from accelerate.state import PartialState

    from mmm.modeling import prototypes as P
    from mmm.modeling.loading import load_model, load_tokenizer

    model, rows = memorised
    folder = shutil.copytree(model, tmp_path / "model")
    scnm = next(r for r in rows if r["dataset"] == "SCNM")
    pieces = parse_prediction(scnm["output"], "SCNM", "NER").pairs
    built = P.load(folder)
    assert built is not None and built.meta["datasets"] == ["SCNM"]  # train wrote them
    vectors = P.entity_vectors(load_model(folder).eval(), load_tokenizer(folder), [(scnm["input"], "SCNM", [e for _, e in pieces])],
                               [built.layer])[0]
    mean = torch.nn.functional.normalize(torch.stack([v[built.layer] for v in vectors]).mean(0), dim=0)
    assert all(float(v[built.layer] @ mean) > 0 for v in vectors)  # the premise of the forced choice
    table = -mean.expand(8, -1).clone()
    table[4] = mean  # registry row 4: 地名
    P.save(P.Prototypes(built.layer, {"SCNM": table}, built.meta), folder)

    test = write(tmp_path / "test.jsonl", rows)
    metrics = run(make("predict", gate=None, model=str(folder), batch_size=2, max_new_tokens=80, constrained="schema"),
                  test, tmp_path / "predictions.jsonl", tmp_path / "predict.json")
    PartialState._reset_state()
    predictions = {p["id"]: p["prediction"] for p in map(json.loads, (tmp_path / "predictions.jsonl").read_text().splitlines())}
    relabelled = parse_prediction(predictions[scnm["id"]], "SCNM", "NER").pairs
    assert [e for _, e in relabelled] == [e for _, e in pieces] and {label for label, _ in relabelled} == {"地名"}
    assert metrics["label_prototypes"] is True and metrics["relabelled_pieces"] == sum(label != "地名" for label, _ in pieces)
    assert [predictions[r["id"]] for r in rows if r is not scnm] == [r["output"] for r in rows if r is not scnm]
    text = scnm["input"].removesuffix("/NER")
    for use, expected in ((True, {"地名"}), (False, {label for label, _ in pieces})):
        found = extract_from_folder(text, "NER", folder, 80, "schema", "ja", label_prototypes=use)
        assert {label for label, _ in found.pairs} == expected
    result = runner.invoke(app, ["extract", text, "--model-dir", str(folder), "--constrained", "schema", "--lang", "ja",
                                 "--json", "--no-label-prototypes"])
    assert result.exit_code == 0, result.output
    assert {label for label, _ in json.loads(result.stdout)["pairs"]} == {label for label, _ in pieces}


def test_a_folder_without_prototypes_keeps_generated_labels_and_says_so(tmp_path, memorised, caplog):
    import shutil

    from accelerate.state import PartialState

    from mmm.modeling import prototypes as P

    model, rows = memorised
    folder = shutil.copytree(model, tmp_path / "model")
    for name in (P.WEIGHTS, P.META):
        (folder / name).unlink()
    with caplog.at_level("WARNING", logger="mmm.predict"):
        metrics = run(make("predict", gate=None, model=str(folder), batch_size=2, max_new_tokens=80, constrained="schema"),
                      write(tmp_path / "test.jsonl", rows), tmp_path / "predictions.jsonl", tmp_path / "predict.json")
    PartialState._reset_state()
    assert "has no label prototypes" in caplog.text and metrics["relabelled_pieces"] == 0
    predictions = [json.loads(line)["prediction"] for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert predictions == [r["output"] for r in rows]
