"""Constrained decoding (mmm.modeling.constrained): the automaton, the processor on hand-made logits,
and a tiny random Llama whose free answers are garbage, so every property below holds because of the constraint."""

from __future__ import annotations

import json

import pytest
from tiny_model import one_torch_thread, sample_records, sample_tconer, tiny_model_dir  # noqa: F401
from typer.testing import CliRunner

from configs import make
from mmm import registry
from mmm.cli import app
from mmm.modeling import constrained as C
from mmm.predict import Generator, constraints_for, run
from mmm.records import FormatError, parse_output, split_input


def spec(mode: str = "schema", text: str = "Ann met Bob in Tokyo at 07:00.", dataset: str = "SCNM", lang: str = "en", **kw):
    task = registry.kind(dataset).instructions[0]
    return C.row_spec(mode, text, task, dataset, lang, **kw)


def run_bytes(s: C.RowSpec, text: str) -> C.State | None:
    return C.advance(s, C.initial(s), text.encode())


# --- the automaton -------------------------------------------------------------------------------

def test_schema_accepts_gold_shapes_and_refuses_what_breaks_them():
    s = spec()
    assert C.can_end(s, run_bytes(s, "Society/NER/:Person;Ann:Location;Tokyo"))
    assert C.can_end(s, run_bytes(s, "Society/NER/"))  # zero pairs
    assert run_bytes(s, "Sport/") is None  # text label outside the inventory
    assert run_bytes(s, "Society/SENT") is None  # another task word
    assert run_bytes(s, "Society/NER/:Human;") is None  # word label outside the inventory
    assert run_bytes(s, "Society/NER/:Person;Paris") is None  # not a span of the text
    assert run_bytes(s, "Society/NER/:Person;Ann:Person;Ann:") is None  # a repeated pair cannot be closed
    assert not C.can_end(s, run_bytes(s, "Society/NER/:Person;Ann:Person;Ann"))
    assert not C.can_end(s, run_bytes(s, "Society/NER/:Person;"))  # empty entity
    assert not C.can_end(s, run_bytes(s, "Society/NER/:Pers"))  # inside a label
    assert not C.can_end(s, run_bytes(s, "Soc"))


def test_colon_inside_a_span_and_as_next_pair_read_like_the_parser():
    s = spec()
    for answer in ("Society/NER/:Event;07:00", "Society/NER/:Event;07:Person;Ann", "Society/NER/:Event;07:00:Person;Ann"):
        state = run_bytes(s, answer)
        assert state is not None and C.can_end(s, state), answer
        _, pairs = parse_output(answer, "SCNM", "NER")
        assert all(e in "Ann met Bob in Tokyo at 07:00." for _, e in pairs)
    assert parse_output("Society/NER/:Event;07:Person;Ann", "SCNM", "NER")[1] == (("Event", "07"), ("Person", "Ann"))


def test_schema_spans_start_and_end_on_word_boundaries_except_in_cjk_text():
    s = spec(text="Parisians love Paris, and Ann2 met Ann.")
    assert C.can_end(s, run_bytes(s, "Society/NER/:Location;Paris"))  # the word, after "love "
    assert C.can_end(s, run_bytes(s, "Society/NER/:Location;Paris, and"))  # a span of words
    assert not C.can_end(s, run_bytes(s, "Society/NER/:Location;Pari"))  # ends inside a word
    assert run_bytes(s, "Society/NER/:Location;arisians") is None  # starts inside a word
    assert run_bytes(s, "Society/NER/:Person;Ann:Person;Ann2") is not None
    assert run_bytes(s, "Society/NER/:Person;Pari:") is None  # cannot close "Pari" as a piece
    assert C.need(s, run_bytes(s, "Society/NER/:Location;Pari")) == 1  # the "s" of the nearest word end
    assert C.need(s, run_bytes(s, "Society/NER/:Person;Ann")) == 0
    tokyo = spec(text="東京都は都営バスを運行する。", lang="ja")
    assert run_bytes(tokyo, "社会/NER/:地名;東京都:地名;東京都は:") is None  # extends an earlier entity
    assert run_bytes(tokyo, "社会/NER/:地名;東京都:政治的組織名;東京都:") is None  # the same entity, another label
    extended = run_bytes(tokyo, "社会/NER/:地名;東京都:地名;東京都は")
    assert not C.can_end(tokyo, extended) and not C.viable(tokyo, extended)  # a dead end, not just a late end
    assert C.can_end(tokyo, run_bytes(tokyo, "社会/NER/:地名;東京都:その他の組織名;都営バス"))
    assert C.can_end(tokyo, run_bytes(tokyo, "社会/NER/:地名;東京都は:地名;東京"))  # a shorter one after is allowed
    ja_dup = spec(text="夢中になって読んだ", dataset="SCPOS-AdjN", lang="ja")
    repeat = run_bytes(ja_dup, "positive/Sentiment Adj and N/:中立;夢中:中立;夢中")
    assert not C.can_end(ja_dup, repeat)  # a repeated entity, and every span after it extends it: a dead end the
    assert C.need(ja_dup, repeat) > len("夢中になって読んだ".encode())  # token plan never lets a row enter
    t = spec(text="Ann met Bob in Tokyo.")
    assert run_bytes(t, "Society/NER/:Person;Ann :") is None  # a piece never closes on a space ("Ann" twice once stripped)
    assert C.can_end(t, run_bytes(t, "Society/NER/:Person;Ann "))  # the end of the answer is stripped
    tcree = spec(text="Ann founded Acme in Osaka.", dataset="TCREE")
    assert run_bytes(tcree, "Economy/Relation Extraction/:Acme ;") is None
    ja = spec(text="東京都の人口", lang="ja")
    assert C.can_end(ja, run_bytes(ja, "社会/NER/:地名;東京"))  # no words to align with in CJK text
    assert run_bytes(ja, "社会/NER/:地名;京都の") is not None


def test_tcree_head_and_tail_are_spans_and_one_triple_only():
    s = spec(text="Ann founded Acme in Osaka.", dataset="TCREE")
    assert C.can_end(s, run_bytes(s, "Economy/Relation Extraction/:Acme;founded by;Ann"))
    assert run_bytes(s, "Economy/Relation Extraction/:Acme;founded by;Ann:") is None
    assert run_bytes(s, "Economy/Relation Extraction/:Acme;married;Ann") is None
    assert run_bytes(s, "Economy/Relation Extraction/:Bcme;") is None


def test_grammar_is_free_but_parses_and_open_domain_labels_are_bounded():
    g = spec("grammar")
    assert C.can_end(g, run_bytes(g, "Anything/NER/:any label;any entity"))
    assert C.can_end(g, run_bytes(g, "A/NER/:x;a:b;c")) and not C.can_end(g, run_bytes(g, "A/NER/:x;a:"))
    assert run_bytes(g, "A/NER/:x;a:b:") is None  # a label holds no ":"
    assert run_bytes(g, "A/NER/:x;a;b") is None and run_bytes(g, " A/NER/") is None
    t = spec(dataset="TCONER", text="Visit Kyoto.")
    assert C.can_end(t, run_bytes(t, "travel/NER/:city;Kyoto"))
    assert run_bytes(t, "x" * C.MAX_OPEN_BYTES + "/NER/") is not None
    assert run_bytes(t, "x" * (C.MAX_OPEN_BYTES + 1)) is None


def test_labels_override_and_pair_bound():
    s = spec(labels=["Person"])
    assert run_bytes(s, "Society/NER/:Location;") is None
    assert C.can_end(s, run_bytes(s, "Society/NER/:Person;Ann"))
    small = spec(max_pieces=2)
    assert run_bytes(small, "Society/NER/:Person;Ann:Person;Bob") is not None
    assert run_bytes(small, "Society/NER/:Person;Ann:Person;Bob:") is None
    with pytest.raises(C.ConstraintError):
        spec(labels=["a;b"])
    with pytest.raises(C.ConstraintError):
        C.row_spec("loose", "t", "NER", "SCNM", "en")


def test_ablation_targets_write_only_their_part():
    text_only, word_only = spec(target="text_only"), spec(target="word_only")
    assert C.can_end(text_only, run_bytes(text_only, "Society/NER/"))
    assert run_bytes(text_only, "Society/NER/:") is None
    assert C.can_end(word_only, run_bytes(word_only, "/NER/:Person;Ann"))
    assert run_bytes(word_only, "Society/") is None


# --- the processor on hand-made logits -------------------------------------------------------------

PIECES = [None, b"Society", b"/NER/", b":", b"Person", b";", b"Ann", b"Paris", b"A", b"nn", b"\n", b"Sport"]


def vocab() -> C.Vocab:
    pieces = list(PIECES)
    return C.Vocab(pieces=pieces, ends={10: b""}, eos=frozenset({0}),
                   byte_tokens={p[0]: i for i, p in enumerate(pieces) if p is not None and len(p) == 1 and i != 10})


def test_processor_keeps_only_the_best_allowed_token_per_row():
    import torch

    s = spec(text="Ann went home.")
    rows = [s, s, None]
    processor = C.MMMGrammarProcessor(vocab(), rows, prompt_width=2, max_new_tokens=20)
    ids = torch.tensor([[5, 5, 1, 2, 3, 4, 5], [5, 5, 1, 2, 3, 4, 5], [5, 5, 7, 7, 7, 7, 7]])  # row 0/1: "Society/NER/:Person;"
    scores = torch.zeros(3, len(PIECES))
    scores[0, 7] = 9.0  # "Paris" is not in the text
    scores[0, 0] = 8.0  # EOS right after ';' would leave an empty entity
    scores[0, 8] = 5.0  # "A" starts the span "Ann"
    scores[0, 6] = 4.0
    scores[1, 6] = 1.0
    scores[2, 7] = 3.0
    out = processor(ids, scores)
    assert out[0].argmax() == 8 and torch.isinf(out[0]).sum() == len(PIECES) - 1
    assert out[1].argmax() == 6 and out[1, 6] == 1.0
    assert torch.equal(out[2], scores[2])  # an unconstrained row is left alone
    # next step: row 0 wrote "A" (a span: it may end or grow to "Ann"), row 1 wrote "Ann"
    scores2 = torch.zeros(3, len(PIECES))
    scores2[:, 7] = 9.0  # "Paris" is still no span
    scores2[0, 9], scores2[0, 0] = 2.0, 1.0
    scores2[1, 9], scores2[1, 0] = 2.0, 1.0  # "Annnn" is no span either
    out2 = processor(torch.cat([ids, torch.tensor([[8], [6], [7]])], dim=1), scores2)
    assert out2[0].argmax() == 9 and out2[1].argmax() == 0
    assert processor.states[0].buf == b"A" and processor.states[1].buf == b"Ann"


def test_processor_recomputes_state_when_steps_do_not_follow_and_forces_the_end_on_the_last_token():
    import torch

    s = spec(text="Ann went home.")
    processor = C.MMMGrammarProcessor(vocab(), [s], prompt_width=1, max_new_tokens=6)
    ids = torch.tensor([[5, 1, 2, 3, 4, 5, 6]])  # 6 tokens in one go: "Society/NER/:Person;Ann"
    scores = torch.zeros(1, len(PIECES))
    scores[0, 3] = 5.0  # ':' another pair, but the budget is spent
    out = processor(ids[:, :-1], scores)  # 5 generated, the last token now
    assert out[0].argmax() != 3
    assert processor.states[0].buf == b""
    with_budget = C.MMMGrammarProcessor(vocab(), [s], prompt_width=1, max_new_tokens=40)
    assert with_budget(ids, scores)[0].argmax() == 3


def test_vocab_bytes_spell_the_tokenizer_s_text(tiny_model_dir):  # noqa: F811
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    v = C.vocab_bytes(tokenizer, len(tokenizer), ("\n",), [tokenizer.eos_token_id])
    for record in sample_records()[::40]:
        text = record["input"] + "\n" + record["output"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert b"".join(v.ends.get(i, v.pieces[i]) if i in v.ends else v.pieces[i] for i in ids).startswith(
            record["input"].encode())
        assert b"".join(v.pieces[i] for i in ids) == text.encode()
    assert v.pieces[tokenizer.eos_token_id] is None and v.pieces[tokenizer.pad_token_id] is None


# --- a tiny random model ---------------------------------------------------------------------------

def mixed_rows() -> list[dict]:
    rows = sample_records() + sample_tconer()
    cells = [("ja", "SCNM"), ("en", "SCNM"), ("zh", "TCREE"), ("ja", "TCREE"), ("en", "SCPOS-RW"), ("zh", "SCPOS-N"),
             ("ja", "SCPOS-AdjN"), ("en", "TCONER"), ("zh", "TCONER"), ("en", "TCREE")]
    return [next(r for r in rows if (r["lang"], r["dataset"]) == cell) for cell in cells]


@pytest.fixture(scope="module")
def generator(tiny_model_dir):  # noqa: F811
    return Generator(tiny_model_dir, device="cpu")


def answers(generator, rows, mode, batch_size=5, max_new_tokens=48):
    return generator.generate([r["input"] for r in rows], max_new_tokens, batch_size,
                              constraints=constraints_for(rows, mode, "joint"))


def parsed(rows, gens):
    out = []
    for r, g in zip(rows, gens):
        _, task = split_input(r["input"], r["dataset"])
        out.append(parse_output(g.text, r["dataset"], task))
    return out


def test_the_free_tiny_model_writes_garbage(generator):
    rows = mixed_rows()
    bad = 0
    for r, g in zip(rows, answers(generator, rows, "off")):
        try:
            parsed([r], [g])
        except FormatError:
            bad += 1
    assert bad == len(rows)


def test_grammar_answers_always_parse(generator):
    rows = mixed_rows()
    gens = answers(generator, rows, "grammar")
    assert len(parsed(rows, gens)) == len(rows)
    short = answers(generator, rows, "grammar", max_new_tokens=12)  # the budget cannot cut a piece
    assert len(parsed(rows, short)) == len(rows)


def test_schema_answers_keep_inventories_spans_and_bounds(generator):
    rows = mixed_rows()
    gens = answers(generator, rows, "schema", max_new_tokens=64)
    pieces_seen = 0
    for r, g, (label, pairs) in zip(rows, gens, parsed(rows, gens)):
        kind = registry.kind(r["dataset"])
        text, _ = split_input(r["input"], r["dataset"])
        if not kind.open_domain:
            assert label in kind.text_inventory(r["lang"])
        fields = kind.entity_fields()
        for piece in pairs:
            if not kind.open_domain:
                assert piece[kind.label_field] in kind.word_inventory(r["lang"])
            assert all(piece[i] in text for i in fields), (piece, text)
        assert len(set(pairs)) == len(pairs) <= (1 if kind.word_level == "triple" else C.MAX_PIECES)
        assert g.finish in ("eos", "newline", "max_new_tokens")
        pieces_seen += len(pairs)
    assert pieces_seen > 0  # the constraint was exercised beyond the marker


def test_schema_with_a_labels_override(generator):
    rows = [r for r in mixed_rows() if r["dataset"] in ("SCNM", "TCONER")]
    rows = [{**r, "labels": ["Person", "city"]} for r in rows]
    gens = answers(generator, rows, "schema", max_new_tokens=64)
    labels = {piece[0] for _, pairs in parsed(rows, gens) for piece in pairs}
    assert labels <= {"Person", "city"}


def test_batched_equals_one_by_one(generator):
    rows = mixed_rows()
    for mode in ("grammar", "schema"):
        together = [g.text for g in answers(generator, rows, mode, batch_size=len(rows))]
        alone = [g.text for g in answers(generator, rows, mode, batch_size=1)]
        assert together == alone, mode


def test_predict_stage_with_schema(tmp_path, tiny_model_dir):  # noqa: F811
    from accelerate.state import PartialState

    rows = mixed_rows()
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    metrics = run(make("predict", gate=None, model=str(tiny_model_dir), batch_size=4, max_new_tokens=40, constrained="schema"),
                  test, tmp_path / "p.jsonl", tmp_path / "m.json", log_dir=tmp_path / "logs")
    PartialState._reset_state()
    assert metrics["well_formed"] == len(rows) and metrics["constrained"] == "schema"


def test_params_refuse_an_unknown_mode():
    from mmm.errors import ParamsError

    with pytest.raises(ParamsError):
        make("predict", constrained="loose")
    with pytest.raises(ParamsError):
        make("predict", constrained=False)


def test_extract_cli_with_schema_and_labels(tiny_model_dir):  # noqa: F811
    result = CliRunner().invoke(app, ["extract", "Ann met Bob in Tokyo.", "--model-dir", str(tiny_model_dir),
                                      "--constrained", "schema", "--lang", "en", "--labels", "Person,Location", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["error"] is None and out["text_label"] in registry.kind("SCNM").text_inventory("en")
    assert all(p[0] in ("Person", "Location") and p[1] in "Ann met Bob in Tokyo." for p in out["pairs"])
    refused = CliRunner().invoke(app, ["extract", "Ann.", "--model-dir", str(tiny_model_dir), "--labels", "Person"])
    assert refused.exit_code != 0 and "--constrained" in refused.output
