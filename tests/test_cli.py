"""The `mmm` command as a user meets it: the installed console script, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs import write_params
from mmm.cli import app

runner = CliRunner()
MMM = str(Path(sys.executable).parent / "mmm")  # the console script pip installed, not `python -m`


def run_mmm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MMM, *args], capture_output=True, text=True, cwd=cwd)


def test_the_console_script_lists_commands_in_pipeline_order_and_prints_its_version():
    result = run_mmm("--help")
    assert result.returncode == 0
    order = ["ingest", "tconer", "label-map", "translate", "filter", "assemble", "validate", "split",
             "convert-base", "train", "predict", "evaluate", "extract", "params", "profile"]
    positions = [result.stdout.index(f"  {name} ") for name in order]
    assert positions == sorted(positions)
    version = run_mmm("--version")
    assert version.returncode == 0 and version.stdout.strip() == "mmm 0.1.0"
    module = subprocess.run([sys.executable, "-m", "mmm", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout == version.stdout  # `python -m mmm` is the same command


def test_an_unknown_flag_is_a_usage_error():
    assert run_mmm("filter", "--bogus").returncode == 2


def test_a_missing_file_or_a_folder_is_one_line_and_exit_1(tmp_path):
    for command in (["check"], ["filter", "--lang", "en", "--kept", "k", "--rejected", "r"], ["split"], ["evaluate"]):
        for target in (tmp_path / "missing.jsonl", tmp_path):
            args = [*command, str(target), "--params", str(Path.cwd() / "params.yaml")] if command != ["check"] else [*command, str(target)]
            result = run_mmm(*args, cwd=tmp_path)
            assert result.returncode == 1, (command, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: {target}") and "Traceback" not in result.stderr


def test_an_empty_file_is_an_empty_result(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    result = run_mmm("check", str(empty))
    assert result.returncode == 0 and "ok: 0 records in 1 file(s)" in result.stdout


def test_params_check_lists_every_problem_of_the_file_at_once(tmp_path, root):
    assert run_mmm("params", "check", "--params", str(root / "params.yaml")).returncode == 0
    text = (root / "params.yaml").read_text(encoding="utf-8")
    for old, new in [("  langs: [ja] ", "  lang: [ja] "), ("  seed: 42\n  # Training", "  seed: 42.0\n  # Training"),
                     ("  reask: true", "  reask: yes"), ("  mode: paper ", "  mode: papr "), ("  batch_size: 16 ", "  batch_sise: 16 ")]:
        assert old in text, old
        text = text.replace(old, new)
    bad = tmp_path / "params.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run_mmm("params", "check", "--params", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for key in ("ingest.lang: unknown key", "split.seed: Input should be a valid integer, got 42.0",
                "translate.anchored.reask: Input should be a valid boolean, got 'yes'", "evaluate.mode:",
                "predict.batch_sise: unknown key"):
        assert f"error: {bad}: {key}" in result.stderr, key
    other = run_mmm("split", "--params", str(bad))
    assert other.returncode == 1 and "Traceback" not in other.stderr and other.stderr.startswith("error: ")


def test_ingest_works_from_another_folder(tmp_path):
    params = write_params(tmp_path / "params.yaml", ingest={"sources": str(tmp_path / "out" / "sources.jsonl"),
                                                           "references": str(tmp_path / "out" / "references.jsonl"),
                                                           "metrics": str(tmp_path / "m.json")})
    result = run_mmm("ingest", "--params", str(params), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["sources"]["ja"]["total"] == sum(1 for _ in open(tmp_path / "out" / "sources.jsonl"))
    assert set(metrics["references"]) == {"en", "zh"}


def test_check_reports_bad_rows_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "lang": "en", "dataset": "SCNM", "input": "x/NER", "output": "Society/NER"}\n')
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1:" in result.output and "marker" in result.output
    assert "Traceback" not in result.output


def test_stage_scripts_name_an_unknown_item_and_the_wrong_interpreter(root):
    result = subprocess.run([sys.executable, "stages/filter.py", "nope"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: filter.items has no 'nope' (items: ja, en, zh, tconer_ja, tconer_zh, tconer_en)" in result.stderr
    # -S: no site-packages, as when DVC finds a `python` outside the project's environment
    bare = subprocess.run([sys.executable, "-S", "stages/filter.py", "en"], cwd=root, capture_output=True, text=True)
    assert bare.returncode == 1 and "cannot import the mmm package" in bare.stderr and "Traceback" not in bare.stderr


# ----------------------------------------------------------------------------- the reader contract

CONTRACT_COMMANDS = ("check", "filter", "assemble", "split", "validate", "tconer convert", "evaluate")
BOM_LINE = "starts with a UTF-8 byte order mark; save the file as UTF-8 without BOM"


def _contract_rows(command: str) -> list[dict]:
    """Three good rows for ``command``'s reader: MMM records with a prediction, or Pile-NER-type conversations."""
    if command == "tconer convert":
        turns = lambda text: [{"from": "human", "value": f"Text: {text}"}, {"from": "gpt", "value": "I've read this text."}]  # noqa: E731
        return [{"id": f"c{i}", "conversations": turns(f"Text number {i} about Tokyo.")} for i in range(1, 4)]
    record = {"lang": "en", "dataset": "SCNM", "output": "Society/NER/:Location;Tokyo"}
    return [{"id": f"r{i}", **record, "input": f"Tokyo is big ({i})./NER", "prediction": record["output"]} for i in range(1, 4)]


def _invoke_on(command: str, path: Path, tmp_path: Path):
    """Run ``command`` through the CLI with ``path`` as its only JSONL input (outputs under ``tmp_path``)."""
    out = tmp_path / "out"
    params = str(write_params(
        tmp_path / "params.yaml",
        ingest={"raw_dir": str(tmp_path), "sample_dir": str(tmp_path)},
        tconer={"source_files": [str(path)], "converted": str(out / "c.jsonl"), "convert_metrics": str(out / "c.json")},
        validate={"checks": {"x": {"files": {"mmm": str(path)}, "suites": ["mmm_records"]}}, "reports": str(out / "v"),
                  "data_docs": str(out / "docs"), "metrics": str(out / "v.json"), "gate": str(out / "gate.json")},
        train={"gate": str(out / "gate.json")}, predict={"gate": str(out / "gate.json")},  # never the repository's gate
        release_data={"gate": str(out / "gate.json")},
        split={"train": str(out / "train.jsonl"), "test": str(out / "test.jsonl"), "metrics": str(out / "s.json")},
        assemble={"out": str(out / "a.jsonl"), "metrics": str(out / "a.json"), "report": str(out / "a.md")},
        evaluate={"out": str(out / "e.json"), "report": str(out / "e.md"), "plot": str(out / "e.png"),
                  "plot_data": str(out / "f1")},
    ))
    args = {
        "check": ["check", str(path)],
        "filter": ["filter", str(path), "--lang", "en", "--kept", str(out / "k.jsonl"), "--rejected", str(out / "r.jsonl"),
                   "--metrics", str(out / "f.json"), "--params", params],
        "validate": ["validate", "--params", params],
        "tconer convert": ["tconer", "convert", "--params", params],
    }.get(command, [command, str(path), "--params", params])
    return runner.invoke(app, args)


def _errors(result) -> list[str]:
    """The ``error:`` lines of a run that exited 1 through the CLI's handler (no exception escaped)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.exception
    return [line for line in result.output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", CONTRACT_COMMANDS)
def test_every_reader_refuses_non_string_ids_naming_each_line(command, tmp_path):
    rows = _contract_rows(command)
    rows[1]["id"], rows[2]["id"] = 7, 8.5
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert _errors(_invoke_on(command, path, tmp_path)) == [
        f"error: {path}:2: field 'id' must be a string, got int",
        f"error: {path}:3: field 'id' must be a string, got float",
    ]
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("command", CONTRACT_COMMANDS)
def test_every_reader_names_a_bom_and_invalid_utf8_in_one_line(command, tmp_path):
    lines = [json.dumps(r).encode() + b"\n" for r in _contract_rows(command)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    assert _errors(_invoke_on(command, path, tmp_path)) == [f"error: {path}:1: {BOM_LINE}"]
    lines[1] = lines[1].replace(b"Tokyo", b"T\xffkyo", 1)  # a Latin-1 byte in an otherwise ASCII line
    path.write_bytes(b"".join(lines))
    column = lines[1].index(b"\xff") + 1
    assert _errors(_invoke_on(command, path, tmp_path)) == [f"error: {path}:2: invalid UTF-8 (byte 0xff at column {column})"]


# ----------------------------------------------------------------------------- silent wrong configuration

def _seed_float(p: dict) -> None:
    p["split"]["seed"] = 42.0


def _seed_text(p: dict) -> None:
    p["split"]["seed"] = "abc"


def _renamed(section: str, old: str, new: str):
    def change(p: dict) -> None:
        p[section][new] = p[section].pop(old)
    return change


# issue 14, point 5: wrong configuration that would otherwise run silently; (change, stage command, error lines)
SILENT = {
    "seed_float": (_seed_float, "split", ["split.seed: Input should be a valid integer, got 42.0"]),
    "seed_text": (_seed_text, "split", ["split.seed: Input should be a valid integer, got 'abc'"]),
    "validate_unknown": (lambda p: p["validate"].update(first_id=5), "validate", ["validate.first_id: unknown key (a typo?)"]),
    "assemble_unknown": (lambda p: p["assemble"].update(item=["ja"]), "assemble", ["assemble.item: unknown key (a typo?)"]),
    "label_map_unknown": (lambda p: p["label_map"].update(out_dirs="x"), "label-map",
                          ["label_map.out_dirs: unknown key (a typo?)"]),
    "label_map_typo": (_renamed("label_map", "out_dir", "outdir"), "label-map",
                       ["label_map.out_dir: missing (params.yaml sets every key; copy it from the repository's params.yaml)",
                        "label_map.outdir: unknown key (a typo?)"]),
    "no_split": (lambda p: p.pop("split"), "split",
                 ["split: missing (params.yaml sets every key; copy it from the repository's params.yaml)"]),
    "no_label_map": (lambda p: p.pop("label_map"), "label-map",
                     ["label_map: missing (params.yaml sets every key; copy it from the repository's params.yaml)"]),
    "items_string": (lambda p: p["assemble"].update(items="ja"), "assemble",
                     ["assemble.items: Input should be a valid list, got 'ja'"]),
}


@pytest.mark.parametrize("case", list(SILENT))
def test_silent_wrong_configuration_is_refused_naming_the_key(tmp_path, root, case):
    """`mmm params check` and the stage's own command exit 1 with one line per problem, each naming its key."""
    import yaml

    from mmm import config

    change, stage, problems = SILENT[case]
    data = config.read_yaml(root / "params.yaml")
    change(data)
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for command in (["params", "check"], [stage]):
        result = runner.invoke(app, [*command, "--params", str(bad)])
        assert result.exit_code == 1, (command, result.output)
        assert result.output.splitlines() == [f"error: {bad}: {problem}" for problem in problems], (command, result.output)
