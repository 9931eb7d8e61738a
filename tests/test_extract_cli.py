"""``mmm extract`` for real use: many texts from a file or stdin, batched, JSON Lines out, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_model import one_torch_thread, tiny_model_dir  # noqa: F401
from typer.testing import CliRunner

from mmm.cli import app

runner = CliRunner()
TEXTS = ["Ann met Bob in Tokyo.", "The Zorblatt 3000 phone was sold in Lisbon and Oslo.", "Rain fell."]
FAST = ["--max-new-tokens", "10"]


def rows_of(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def invoke(model: Path, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["extract", "--model-dir", str(model), *args], input=stdin)


def test_a_text_file_stdin_and_jsonl_give_the_same_answers_as_single_texts(tmp_path, tiny_model_dir):  # noqa: F811
    lines = tmp_path / "texts.txt"
    lines.write_text(TEXTS[0] + "\n\n" + TEXTS[1] + "\r\n" + TEXTS[2] + "\n", encoding="utf-8")
    from_file = invoke(tiny_model_dir, "--input", str(lines), *FAST, "--batch-size", "3")
    assert from_file.exit_code == 0, from_file.output
    rows = rows_of(from_file.stdout)
    assert [r["line"] for r in rows] == [1, 3, 4] and all(r["id"] is None for r in rows)
    assert {r["dataset"] for r in rows} == {"SCNM"} and all(r["task"] == "NER" for r in rows)
    assert set(rows[0]) == {"id", "line", "task", "dataset", "text_label", "pairs", "raw", "finish", "error"}

    from_stdin = invoke(tiny_model_dir, "--input", "-", *FAST, "--batch-size", "1", stdin="\n".join(TEXTS) + "\n")
    assert from_stdin.exit_code == 0, from_stdin.output
    assert [r["raw"] for r in rows_of(from_stdin.stdout)] == [r["raw"] for r in rows]  # batched == one by one

    for text, row in zip(TEXTS, rows):
        single = invoke(tiny_model_dir, text, *FAST, "--json")
        assert single.exit_code == 0, single.output
        assert json.loads(single.stdout)["raw"] == row["raw"]

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "text": TEXTS[0]},
        {"id": 7, "text": TEXTS[1], "dataset": "TCONER"},
        {"text": TEXTS[2], "task": "Relation Extraction"},
    ]) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "answers.jsonl"
    out.parent.mkdir()
    written = invoke(tiny_model_dir, "-i", str(jsonl), "--out", str(out), *FAST)
    assert written.exit_code == 0, written.output
    assert written.stdout == "" and "3 texts" in written.stderr
    got = rows_of(out.read_text(encoding="utf-8"))
    assert [(r["id"], r["line"], r["task"], r["dataset"]) for r in got] == [
        ("a", 1, "NER", "SCNM"), ("7", 2, "NER", "TCONER"), (None, 3, "Relation Extraction", "TCREE")]
    assert got[0]["raw"] == rows[0]["raw"]


def test_jsonl_from_stdin_is_detected_and_the_lines_format_can_be_forced(tiny_model_dir):  # noqa: F811
    stdin = json.dumps({"text": TEXTS[0], "id": "x"}) + "\n"
    auto = invoke(tiny_model_dir, "-i", "-", *FAST, stdin=stdin)
    assert auto.exit_code == 0, auto.output
    assert [r["id"] for r in rows_of(auto.stdout)] == ["x"]
    forced = invoke(tiny_model_dir, "-i", "-", "--input-format", "lines", *FAST, stdin=stdin)
    assert forced.exit_code == 0, forced.output
    assert rows_of(forced.stdout)[0]["id"] is None  # the JSON line itself was the text


def test_labels_restrict_the_word_level_types(tmp_path, tiny_model_dir):  # noqa: F811
    """Own synthetic texts: free (grammar) answers use other labels; with labels + schema only those appear."""
    texts = ["Mira Ostrava sold the Zorblatt 3000 phone in Lisbon and Oslo last winter.",
             "Kenji Arata flew from Nairobi to Quito with a Ventra tablet."]
    wanted = {"gadget", "city"}
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t, "labels": sorted(wanted)}) + "\n" for t in texts), encoding="utf-8")
    common = ["--dataset", "TCONER", "--max-new-tokens", "48"]
    schema = invoke(tiny_model_dir, "-i", str(path), "--constrained", "schema", *common)
    assert schema.exit_code == 0, schema.output
    rows = rows_of(schema.stdout)
    pairs = [(p, text) for row, text in zip(rows, texts) for p in row["pairs"]]
    assert pairs, "the tiny model wrote no pair: the restriction was not exercised"
    assert all(label in wanted and entity in text for (label, entity), text in pairs)
    free = invoke(tiny_model_dir, "-i", "-", "--constrained", "grammar", *common, stdin="\n".join(texts))
    assert free.exit_code == 0, free.output
    assert {p[0] for row in rows_of(free.stdout) for p in row["pairs"]} - wanted  # other labels without the list
    flag = invoke(tiny_model_dir, "-i", "-", "--constrained", "schema", "--labels", "city", *common, stdin=texts[0])
    assert flag.exit_code == 0, flag.output
    assert {p[0] for p in rows_of(flag.stdout)[0]["pairs"]} <= {"city"}
    rescored = invoke(tiny_model_dir, "-i", str(path), "--constrained", "schema", "--rescore-labels", *common)
    assert rescored.exit_code == 0, rescored.output
    again = rows_of(rescored.stdout)
    assert [{p[1] for p in r["pairs"]} for r in again] == [{p[1] for p in r["pairs"]} for r in rows]  # same entities
    assert all(p[0] in wanted for r in again for p in r["pairs"])
    refused = invoke(tiny_model_dir, "x", "--rescore-labels")
    assert refused.exit_code == 1 and "rescore_labels needs a closed label set" in refused.output


@pytest.mark.parametrize(("content", "message"), [
    ('{"text": "ok"}\n{"text": "broken"\n', "in.jsonl:2: invalid JSON"),
    ('{"text": "ok"}\n\n["a list"]\n', "in.jsonl:3: expected a JSON object, got list"),
    ('{"id": "no text"}\n', "in.jsonl:1: missing 'text'"),
    ('{"text": "  "}\n', "in.jsonl:1: text is empty"),
    ('{"text": "a", "label": ["x"]}\n', "in.jsonl:1: unknown key(s) 'label'"),
    ('{"text": "a", "task": "POS"}\n', "in.jsonl:1: unknown task 'POS'"),
    ('{"text": "a", "dataset": "TCREE"}\n', "in.jsonl:1: task 'NER' is not an instruction word of TCREE"),
    ('{"text": "a", "labels": ["city"]}\n', "in.jsonl:1: --labels restricts constrained decoding"),
    ('{"text": "a", "labels": "city"}\n', "in.jsonl:1: 'labels' must be a list of strings"),
])
def test_a_bad_input_line_is_named_before_any_model_loads(tmp_path, content, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content, encoding="utf-8")
    result = invoke(tmp_path / "no-model", "--input", str(path))  # the model folder is never reached
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_bad_model_folders_and_usage(tmp_path, tiny_model_dir):  # noqa: F811
    text = tmp_path / "t.txt"
    text.write_text("Ann met Bob.\n", encoding="utf-8")
    missing = invoke(tmp_path / "nowhere", "-i", str(text))
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and "no such model folder" in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    result = invoke(broken, "-i", str(text))
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "cannot load the model" in result.stderr and "Traceback" not in result.output
    absent = invoke(tiny_model_dir, "-i", str(tmp_path / "absent.txt"))
    assert absent.exit_code == 1 and "absent.txt" in absent.stderr
    both = invoke(tiny_model_dir, "Ann.", "-i", str(text))
    neither = invoke(tiny_model_dir)
    assert both.exit_code == 2 and neither.exit_code == 2 and "TEXT or --input" in both.output
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfAnn met Bob.\n")
    assert "byte order mark" in invoke(tiny_model_dir, "-i", str(bom)).stderr
