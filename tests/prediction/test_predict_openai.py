"""``predict.backend: openai`` against the fake OpenAI-compatible server over real HTTP, with the real client:
the same predictions file as hf, the evaluator accepts it, a stopped run re-sends only unanswered rows, the cache
follows the weights, constrained decoding is refused before anything is sent; ``mmm extract --backend openai``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tiny_model import one_torch_thread, sample_records, tiny_model_dir  # noqa: F401
from typer.testing import CliRunner

from configs import write_params
from mmm.cli import app

runner = CliRunner()
CELLS = [("ja", "SCNM"), ("en", "SCPOS-RW"), ("zh", "TCREE"), ("en", "SCNM")]


def pick_rows(per_cell: int = 3) -> list[dict]:
    rows = sample_records()
    return [r for cell in CELLS for r in [r for r in rows if (r["lang"], r["dataset"]) == cell][:per_cell]]


def gold_answers(rows: list[dict], long: int, eos: int):
    """A server that answers each training prompt with the gold output, then a newline and junk (so the stop
    string cuts it); row ``eos`` without a newline (an EOS ending), row ``long`` far past the budget."""
    by_prompt = {r["input"] + "\n": i for i, r in enumerate(rows)}
    assert len(by_prompt) == len(rows)

    def answer(prompt: str) -> str:
        i = by_prompt[prompt]
        if i == long:
            return " ".join(["word"] * 500)
        return rows[i]["output"] + ("" if i == eos else "\nnext/NER")
    return answer


@pytest.fixture
def project(tmp_path, fake_openai, openai_env, tiny_model_dir):  # noqa: F811
    """A params file for backend openai on the fake server, a test file and a copy of the tiny model folder."""
    import shutil

    rows = pick_rows()
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    params = write_params(
        tmp_path / "params.yaml", logs={"dir": str(tmp_path / "logs")},
        llm={"cache_dir": str(tmp_path / "cache"), "max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
             "timeout_s": 10, "progress": False},
        predict={"backend": "openai", "base_url": fake_openai.base_url, "constrained": "off", "gate": None,
                 "max_rows_per_cell": None, "chunk_rows": 4, "concurrency": 2, "max_new_tokens": 40,
                 "model": str(model), "test": str(test), "out": str(tmp_path / "predictions.jsonl"),
                 "metrics": str(tmp_path / "predict.json"), "checkpoints": str(tmp_path / "checkpoints")},
        evaluate={"predictions": str(tmp_path / "predictions.jsonl"), "out": str(tmp_path / "evaluate.json"),
                  "report": str(tmp_path / "table1.md"), "plot": str(tmp_path / "f1.png"),
                  "plot_data": str(tmp_path / "plots"), "bootstrap_samples": 0})
    fake_openai.answer = gold_answers(rows, long=5, eos=2)
    return params, rows, tmp_path


def sent(server) -> Counter:
    return Counter(c.prompt for c in server.calls_to("/v1/completions"))


def test_openai_backend_writes_predictions_that_evaluate_scores(project, fake_openai):
    params, rows, tmp = project
    result = runner.invoke(app, ["predict", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert f"predict: {len(rows)} of {len(rows)} test rows (openai)" in result.output
    predictions = [json.loads(line) for line in (tmp / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [r["id"] for r in rows]
    assert set(predictions[0]) == {"id", "lang", "dataset", "input", "output", "prediction", "target", "finish"}
    finish = [p["finish"] for p in predictions]
    assert finish[2] == "eos" and finish[5] == "max_new_tokens"
    assert Counter(finish) == {"newline": len(rows) - 2, "eos": 1, "max_new_tokens": 1}
    assert [p["prediction"] for p in predictions] == [r["output"] if i != 5 else " ".join(["word"] * 40)
                                                      for i, r in enumerate(rows)]
    first = fake_openai.calls_to("/v1/completions")[0].body
    assert first["model"] == "oiellm" and first["stop"] == ["\n"] and first["max_tokens"] == 40
    assert first["temperature"] == 0 and sent(fake_openai) == Counter({r["input"] + "\n": 1 for r in rows})
    metrics = json.loads((tmp / "predict.json").read_text())
    assert metrics["backend"] == "openai" and metrics["constrained"] == "off" and metrics["processes"] == 1
    assert metrics["predicted_rows"] == len(rows) and metrics["finish"] == {"newline": 10, "eos": 1, "max_new_tokens": 1}
    assert metrics["well_formed"] == len(rows) - 1 and metrics["new_tokens"] > 0
    assert not (tmp / "checkpoints").exists() or not list((tmp / "checkpoints").iterdir())  # the partial is gone
    telemetry = json.loads((tmp / "logs" / "predict.json").read_text())
    assert telemetry["llm"]["sent"] == len(rows) and telemetry["llm"]["calls"] == 3  # 12 rows, chunks of 4
    scored = runner.invoke(app, ["evaluate", "--params", str(params)])
    assert scored.exit_code == 0, scored.output
    evaluation = json.loads((tmp / "evaluate.json").read_text())
    assert sum(evaluation["metrics"][lang][dataset]["n"] for lang, dataset in CELLS) == len(rows)
    assert evaluation["metrics"]["ja"]["SCNM"]["ALL"] == 100.0


def test_one_cache_shard_serves_every_chunk_and_is_compacted_once(project, fake_openai, monkeypatch):
    """Chunk after chunk the run reuses one loaded shard; it is rewritten once at the end, not once per chunk
    (which would read and rewrite the whole shard ~160 times at Table 4's size)."""
    from mmm.llm import ResponseCache

    params, rows, tmp = project
    loads, compactions = [], []
    real_init, real_compact = ResponseCache.__init__, ResponseCache.compact
    monkeypatch.setattr(ResponseCache, "__init__", lambda self, *a: (loads.append(a), real_init(self, *a))[1])
    monkeypatch.setattr(ResponseCache, "compact", lambda self: (compactions.append(self.path), real_compact(self))[1])
    result = runner.invoke(app, ["predict", "--params", str(params)])
    assert result.exit_code == 0, result.output
    telemetry = json.loads((tmp / "logs" / "predict.json").read_text())
    assert telemetry["llm"]["calls"] == 3 and len(loads) == 1 and len(compactions) == 1  # 3 chunks, 1 shard
    [shard] = (tmp / "cache").glob("openai-completions__weights-sha256-*.jsonl")
    keys = [json.loads(line)["key"] for line in shard.read_text(encoding="utf-8").splitlines()]
    assert keys == sorted(set(keys)) and len(keys) == len(rows)  # compacted: sorted, one line per prompt


def test_cached_answers_follow_the_weights_not_the_served_name(project, fake_openai):
    params, rows, tmp = project
    assert runner.invoke(app, ["predict", "--params", str(params)]).exit_code == 0
    before = (tmp / "predictions.jsonl").read_bytes()
    again = runner.invoke(app, ["predict", "--params", str(params)])
    assert again.exit_code == 0 and sum(sent(fake_openai).values()) == len(rows)  # all from the cache
    telemetry = json.loads((tmp / "logs" / "predict.json").read_text())
    assert telemetry["llm"]["cache_hits"] == len(rows) and telemetry["new_tokens_per_s"] == 0
    assert (tmp / "predictions.jsonl").read_bytes() == before  # finish newline/eos kept by the cache
    weights = tmp / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # "retrained": same name on the server, other weights
    weights.write_bytes(bytes(data))
    assert runner.invoke(app, ["predict", "--params", str(params)]).exit_code == 0
    assert sent(fake_openai) == Counter({r["input"] + "\n": 2 for r in rows})  # no cache hit
    (tmp / "model" / "README.md").write_text("a new model card")  # not the weights: still cached
    assert runner.invoke(app, ["predict", "--params", str(params), "--model", "other-name"]).exit_code == 0
    assert sum(sent(fake_openai).values()) == 2 * len(rows)


def test_a_budget_stop_exits_75_and_the_rerun_sends_only_unanswered_rows(project, fake_openai):
    params, rows, tmp = project
    budget = write_params(tmp / "budget.yaml", **{k: v for k, v in _sections(params).items()})
    _set(budget, "llm", max_requests=6)
    stopped = runner.invoke(app, ["predict", "--params", str(budget)])
    assert stopped.exit_code == 75, stopped.output
    assert stopped.output.splitlines()[:2] == [
        f"incomplete: predict: 4 of 12 rows saved in {next((tmp / 'checkpoints').glob('predict-*.jsonl'))}, nothing published",
        "incomplete: 2 of 4 rows pending: 2 not sent, the budget (llm.max_requests=6) was reached; the answers so far "
        "are cached: rerun to continue"]
    assert not (tmp / "predictions.jsonl").exists()  # nothing published
    assert len(list((tmp / "checkpoints").glob("predict-*.jsonl"))) == 1  # the first chunk is saved
    assert sum(sent(fake_openai).values()) == 6
    resumed = runner.invoke(app, ["predict", "--params", str(params)])
    assert resumed.exit_code == 0, resumed.output
    assert "1 chunk(s) resumed" in resumed.output
    assert sent(fake_openai) == Counter({r["input"] + "\n": 1 for r in rows})  # every prompt sent exactly once
    assert len((tmp / "predictions.jsonl").read_text().splitlines()) == len(rows)


def test_killed_and_rerun_it_resends_no_answered_prompt(project, fake_openai):
    params, rows, tmp = project
    fake_openai.latency = 0.15
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "mmm.cli", "predict", "--params", str(params)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while sum(fake_openai.answered.values()) < 6 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL and not (tmp / "predictions.jsonl").exists()
    before = sent(fake_openai)
    assert 6 <= sum(before.values()) < len(rows)
    fake_openai.latency = 0.0
    result = runner.invoke(app, ["predict", "--params", str(params)])
    assert result.exit_code == 0, result.output
    twice = [p for p, n in sent(fake_openai).items() if n > 1]
    assert len(twice) <= 2  # at most the requests in flight at the kill (concurrency 2) are sent again
    assert set(sent(fake_openai)) == {r["input"] + "\n" for r in rows}
    assert len((tmp / "predictions.jsonl").read_text().splitlines()) == len(rows)


def test_constrained_decoding_is_refused_before_anything_is_sent(project, fake_openai):
    params, _, tmp = project
    result = runner.invoke(app, ["predict", "--params", str(params), "--constrained", "schema"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: predict.constrained 'schema' needs the model's logits, which an OpenAI-compatible server does not "
        "give: set predict.constrained: off for backend openai (params.yaml's default is schema)"]
    result = runner.invoke(app, ["extract", "some text", "--model-dir", str(tmp / "model"), "--backend", "openai",
                                 "--constrained", "grammar", "--params", str(params)])
    assert result.exit_code == 1 and "--constrained 'grammar' needs the model's logits" in result.output
    assert fake_openai.completion_calls == 0


def test_extract_asks_the_same_server(project, fake_openai):
    params, rows, tmp = project
    fake_openai.answer = lambda prompt: "自然/NER/:地名;四国\njunk" if prompt == "台風が四国に近づく。/NER\n" else "x"
    result = runner.invoke(app, ["extract", "台風が四国に近づく。", "--model-dir", str(tmp / "model"), "--backend", "openai",
                                 "--params", str(params), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["text_label"], data["pairs"], data["finish"]) == ("自然", [["地名", "四国"]], "newline")
    many = tmp / "texts.txt"
    many.write_text("台風が四国に近づく。\nOther text.\n", encoding="utf-8")
    result = runner.invoke(app, ["extract", "--input", str(many), "--model-dir", str(tmp / "model"), "--backend",
                                 "openai", "--params", str(params), "--base-url", fake_openai.base_url, "--model", "m2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["error"] is None for x in lines] == [True, False]
    assert [c.model for c in fake_openai.calls_to("/v1/completions")][-1] == "m2"


def _sections(params: Path) -> dict:
    import yaml

    return yaml.safe_load(params.read_text(encoding="utf-8"))


def _set(params: Path, section: str, **values) -> None:
    import yaml

    data = _sections(params)
    data[section].update(values)
    params.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_an_empty_answer_is_an_empty_prediction_after_the_retries(project, fake_openai):
    params, rows, tmp = project
    gold = fake_openai.answer
    fake_openai.answer = lambda prompt: "\nthe model ended at once" if prompt == rows[0]["input"] + "\n" else gold(prompt)
    result = runner.invoke(app, ["predict", "--params", str(params)])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp / "predictions.jsonl").read_text().splitlines()[0])
    assert (first["prediction"], first["finish"]) == ("", "eos")
    assert sent(fake_openai)[rows[0]["input"] + "\n"] == 2  # llm.max_retries 1: an empty answer is retried, then kept
    assert json.loads((tmp / "predict.json").read_text())["well_formed"] == len(rows) - 2
