"""``mmm translate --estimate``: the bill before the run, with nothing sent.

The cache half is proven against real runs on the fake server: after a run, what the estimate
says remains is what a rerun would send (nothing, for a finished run).
"""

from __future__ import annotations

import json
import socket

import pytest
from translate_fakes import ReferenceTranslator, consistent_en_rows, mapped_rows, references, write_jsonl
from typer.testing import CliRunner

from configs import replace, settings, write_params
from mmm.cli import app
from mmm.llm import tokens
from mmm.llm.tokens import Tokenizer, encoding_for_model
from mmm.records import Sample
from mmm.scripts import HAN_RE, KANA_RE
from mmm.translate import estimate, one_shot
from mmm.translate.run import read_source_rows, translate_file

ONE_SHOT = settings({"templates": "prompts/translate"}, method="one_shot")


def anchored_settings(tmp_path, **options):
    return settings({"method": "anchored", "anchored": {"glossary": str(tmp_path / "no-glossary"), **options}})


def test_the_bundled_encodings_are_the_providers_and_models_map_to_them():
    assert tokens.verify("cl100k_base") == tokens.EXPECTED_SHA256["cl100k_base"]
    assert tokens.verify("o200k_base") == tokens.EXPECTED_SHA256["o200k_base"]
    assert {m: encoding_for_model(m) for m in ("gpt-3.5-turbo", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4o", "gpt-4",
                                                 "gemma-3-270m")} == {
        "gpt-3.5-turbo": "cl100k_base", "gpt-4o-mini": "o200k_base", "gpt-4.1-mini": "o200k_base",
        "gpt-4o": "o200k_base", "gpt-4": "cl100k_base", "gemma-3-270m": None}
    cl100k, o200k = Tokenizer.for_model("gpt-3.5-turbo", "chat"), Tokenizer.for_model("gpt-4o-mini", "completions")
    assert cl100k.count("hello world") == 2 and o200k.count("hello world") == 2  # [15339, 1917] / [24912, 2375]
    from mmm.llm import LLMRequest

    request = LLMRequest("x", "hello world")
    assert cl100k.count_request(request) == 2 + 7  # one user message: 3 + role + 3 reply priming
    assert o200k.count_request(request) == 2  # plain completion: the prompt alone
    assert not Tokenizer.for_model("gemma-3-270m", "completions").exact


def test_the_committed_calibration_is_what_the_sample_measures(root):
    assert estimate.load_calibration() == estimate.calibrate(root / "data/raw/sample", root / "prompts/translate")


@pytest.fixture
def en_rows(sample_dir):
    return mapped_rows(sample_dir, "en", per_dataset=6)  # 36 rows, 6 per sub-dataset


def _estimate(rows_path, config, settings_, sample=None, name="en"):
    item = estimate.estimate_item(name, read_source_rows(rows_path, "en"), "en", settings_, config, sample, seed=0)
    return estimate.new_estimate(config, [item])


def test_a_one_shot_bill_counts_the_sampled_prompts_exactly_and_prices_them(tmp_path, openai_config, en_rows):
    config = replace(openai_config, model="gpt-4o-mini", cache_dir=str(tmp_path / "empty-cache"))
    path = write_jsonl(tmp_path / "en.jsonl", en_rows)
    result = _estimate(path, config, ONE_SHOT, sample={"SCPOS-N": 2})
    item = result.items[0]
    assert (item.rows, item.not_sampled) == (32, {"SCPOS-N": 4})

    # the same prompts the method builds for the same sampled rows, counted independently
    from mmm.translate.sampling import sample_rows

    rows, _ = sample_rows(read_source_rows(path, "en"), {"SCPOS-N": 2}, 0)
    requests = one_shot.build_requests(rows, one_shot.load_template(rows, "en", ONE_SHOT), ONE_SHOT)
    counter = Tokenizer.for_model("gpt-4o-mini", "chat")
    low, high = item.whole["low"], item.whole["high"]
    assert low.requests == high.requests == 32
    assert low.prompt_tokens == high.prompt_tokens == sum(counter.count_request(r) for r in requests)
    assert high.completion_tokens == sum(r.params.max_tokens for r in requests) > low.completion_tokens > 0
    assert item.after_cache == item.whole and item.cached_requests == 0  # nothing cached yet

    bill = result.to_dict()
    price = config.prices["gpt-4o-mini"]
    for bound in ("low", "high"):
        whole = bill["items"]["en"]["whole"][bound]
        assert whole["usd"] == pytest.approx((whole["prompt_tokens"] * price.input + whole["completion_tokens"] * price.output) / 1e6)
        assert whole["usd_batch"] == pytest.approx(whole["usd"] * config.batch_price_factor)
        assert bill["total"]["whole"][bound] == whole
    assert result.batch_factor == 0.5


def test_a_translated_item_costs_nothing_after_the_cache(tmp_path, fake_openai, openai_config, en_rows, sample_dir):
    config = replace(openai_config, model="gpt-3.5-turbo")
    path = write_jsonl(tmp_path / "en.jsonl", en_rows)
    fake_openai.answer = ReferenceTranslator(en_rows, references(sample_dir, "en"), "ja-en")
    before = _estimate(path, config, ONE_SHOT).items[0]

    # half the rows translated: the rest is what remains
    translate_file(path, "en", tmp_path / "o.jsonl", tmp_path / "f.jsonl", ONE_SHOT, config, sample={"SCPOS-N": 1}, seed=0)
    sent = fake_openai.completion_calls
    half = _estimate(path, config, ONE_SHOT).items[0]
    assert half.whole == before.whole and half.cached_requests == sent == 31
    assert half.after_cache["low"].requests == half.after_cache["high"].requests == 36 - sent == 5
    assert half.after_cache["high"].prompt_tokens < half.whole["high"].prompt_tokens

    translate_file(path, "en", tmp_path / "o.jsonl", tmp_path / "f.jsonl", ONE_SHOT, config)
    done = _estimate(path, config, ONE_SHOT).items[0]
    assert done.whole == before.whole and done.cached_requests == 36
    assert all((t.requests, t.prompt_tokens, t.completion_tokens) == (0, 0, 0) for t in done.after_cache.values())
    assert fake_openai.completion_calls == 36  # estimating sent nothing


def test_anchored_bounds_hold_the_real_run_and_become_exact_once_answered(tmp_path, fake_openai, openai_config, sample_dir):
    from test_translate_anchored import AnchoredReference

    rows = consistent_en_rows(sample_dir)
    path = write_jsonl(tmp_path / "en.jsonl", rows)
    settings_ = anchored_settings(tmp_path)
    config = replace(openai_config, model="gpt-4o-mini")
    translator = fake_openai.answer = AnchoredReference(rows, references(sample_dir, "en"))
    ref = {r["id"]: Sample.from_record(r) for r in references(sample_dir, "en")}
    dropped = Sample.from_record(rows[0])
    translator.drop = {dropped.text: ref[dropped.id].entities()[0]}  # one first answer misses a term: one re-ask

    before = _estimate(path, config, settings_).items[0]
    entities = {e for r in rows for e in Sample.from_record(r).entities()}
    as_is = {e for e in entities if not KANA_RE.search(e) and not HAN_RE.search(e)}  # kept as written: no request
    assert before.whole["low"].requests == len(entities - as_is) + len(rows)
    assert before.whole["high"].requests == len(entities - as_is) + 2 * len(rows)
    assert before.whole["low"].prompt_tokens < before.whole["high"].prompt_tokens

    translate_file(path, "en", tmp_path / "o.jsonl", tmp_path / "f.jsonl", settings_, config)
    sent = fake_openai.completion_calls
    assert before.whole["low"].requests < sent == before.whole["low"].requests + 1 <= before.whole["high"].requests

    after = _estimate(path, config, settings_).items[0]
    low, high = after.whole["low"], after.whole["high"]  # every prompt known: only the answer lengths stay bounds
    assert (low.requests, low.prompt_tokens) == (high.requests, high.prompt_tokens) and low.requests == sent
    assert after.cached_requests == sent and after.after_cache["high"].requests == 0
    assert before.whole["low"].prompt_tokens <= after.whole["low"].prompt_tokens <= before.whole["high"].prompt_tokens


class _Listener:
    """A socket on 127.0.0.1 that records whether anything connected to it."""

    def __enter__(self) -> _Listener:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def connected(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def _closed_port_url() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("where", ["listening", "closed"])
def test_the_cli_prints_every_item_and_opens_no_connection_without_a_key(tmp_path, sample_dir, monkeypatch, where):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(self, address):  # any connection attempt from this process is recorded (and still made)
        attempts.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    items = {}
    for lang in ("en", "zh"):
        source = write_jsonl(tmp_path / "labels" / f"{lang}.jsonl", mapped_rows(sample_dir, lang, per_dataset=4))
        items[lang] = {"input": str(source), "to": lang, "out": str(tmp_path / f"{lang}.out.jsonl"),
                       "failed": str(tmp_path / f"{lang}.failed.jsonl"), "references": None, "metrics": None,
                       "sample": {"SCPOS-N": 1} if lang == "zh" else None, "overrides": None, "review_sheet": None}
    with _Listener() as listener:
        url = listener.url if where == "listening" else _closed_port_url()
        params = write_params(tmp_path / "params.yaml", translate={"method": "one_shot", "items": items},
                              llm={"backend": "openai", "model": "gpt-3.5-turbo", "api": "chat", "base_url": url,
                                   "cache_dir": str(tmp_path / "cache"), "progress": False})
        out = tmp_path / "estimate.json"
        result = CliRunner().invoke(app, ["translate", "--estimate", "--all-items", "--json", str(out),
                                          "--params", str(params)])
        assert result.exit_code == 0, result.output
        assert not listener.connected() and attempts == []
    assert "nothing sent" in result.output and "cl100k_base" in result.output and "$0.5 in / $1.5 out" in result.output
    assert "zh 3 rows" in result.output  # not sampled, never sent
    bill = json.loads(out.read_text(encoding="utf-8"))
    assert list(bill["items"]) == ["en", "zh"] and bill["items"]["zh"]["rows"] == 21
    for which in ("whole", "after_cache"):
        for bound in ("low", "high"):
            for key in ("requests", "prompt_tokens", "completion_tokens"):
                assert bill["total"][which][bound][key] == sum(i[which][bound][key] for i in bill["items"].values())
            assert bill["total"][which][bound]["usd_batch"] == pytest.approx(bill["total"][which][bound]["usd"] * 0.5)
    assert (tmp_path / "cache").exists() is False  # estimating writes nothing to the cache

    one = CliRunner().invoke(app, ["translate", "--estimate", "--item", "en", "--params", str(params)])
    assert one.exit_code == 0 and "zh" not in one.output.split("\n", 2)[2].split("total")[0]
    wrong = CliRunner().invoke(app, ["translate", "--all-items", "--params", str(params)])
    assert wrong.exit_code != 0 and "--estimate" in wrong.output


def test_a_missing_input_is_named_before_anything_is_printed(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    params = write_params(tmp_path / "params.yaml", llm={"backend": "openai", "model": "gpt-4o-mini"},
                          translate={"items": {"en": {"input": str(tmp_path / "nope.jsonl"), "to": "en",
                                                      "out": "o.jsonl", "failed": "f.jsonl", "references": None,
                                                      "metrics": None, "sample": None, "overrides": None,
                                                      "review_sheet": None}}})
    result = CliRunner().invoke(app, ["translate", "--estimate", "--all-items", "--params", str(params)])
    assert result.exit_code != 0 and "nope.jsonl" in result.output and "input not found" in result.output
