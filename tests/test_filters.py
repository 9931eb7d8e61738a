"""The paper's three filter rules: character sets, format, entities, files, and agreement with mmm.records."""

from __future__ import annotations

import json
import random
import unicodedata

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from configs import write_params
from mmm import filters, registry, scripts
from mmm.cli import app
from mmm.errors import ParamsError
from mmm.io import InputError
from mmm.records import FormatError, Sample, text_key

REFERENCE_LANGS = ("en", "zh")


def judge(records: list[dict]) -> list[list[str]]:
    return filters.with_reasons(pl.DataFrame(records, schema={k: pl.String for k in records[0]}))["reasons"].to_list()


def record(lang="en", dataset="SCNM", input_="Tokyo Station is busy./NER", output="Society/NER/:Facility;Tokyo Station", id_="r1"):
    return {"id": id_, "lang": lang, "dataset": dataset, "input": input_, "output": output}


def reference_reasons(row: dict) -> list[str]:
    """The per-row definition of the rules, built on mmm.records (the source of truth for the format)."""
    found = set()
    if any(filters.is_residual_char(ch, row["lang"]) for ch in row["input"] + row["output"]):
        found.add("residual_japanese")
    try:
        sample = Sample.from_record(row)
    except FormatError:
        found.add("bad_format")
    else:
        if any(entity not in sample.text for entity in sample.entities()):
            found.add("entity_not_in_text")
    return [name for name in filters.REASONS if name in found]


# ----------------------------------------------------------------------------- residual Japanese


@pytest.mark.parametrize("char", list("駅込働広沢雫"))
def test_japanese_only_kanji_are_residual_in_chinese(char):
    assert filters.is_residual_char(char, "zh")
    assert judge([record("zh", input_=f"东京{char}很大/NER", output="社会/NER/")]) == [["residual_japanese"]]


@pytest.mark.parametrize("text", ["东京站", "广州", "劳动", "北京大学的学生在食堂吃饭。"])
def test_ordinary_chinese_is_not_residual(text):
    assert not any(filters.is_residual_char(ch, "zh") for ch in text)
    assert judge([record("zh", input_=f"{text}/NER", output="社会/NER/")]) == [[]]


@pytest.mark.parametrize("char", ["あ", "ア", "ー", "々", "ｶ", "ｰ", "〆", "・"])
def test_kana_and_japanese_marks_are_always_residual(char):
    for lang in REFERENCE_LANGS:
        assert filters.is_residual_char(char, lang), (char, lang)
    assert not filters.is_residual_char(char, "ja")


def test_any_han_or_kana_is_residual_in_english_and_nothing_in_japanese():
    for char in ["东", "東", "駅", "学", "\U00020000", "カ"]:
        assert filters.is_residual_char(char, "en"), char
    assert judge([record("en", input_="Tokyo 東京/NER", output="Society/NER/")]) == [["residual_japanese"]]
    assert judge([record("en", input_="Tokyo/NER", output="Society/NER/:Location;Tokyo")]) == [[]]
    ja = record("ja", input_="東京駅は混んでいる。/NER", output="社会/NER/:施設名;東京駅")
    assert judge([ja]) == [[]]


def test_residual_is_checked_in_labels_and_entities_too():
    row = record("zh", input_="东京站/NER", output="社会/NER/:施設名;东京站")  # Japanese 施 設: 設 is not GB2312
    assert judge([row]) == [["residual_japanese"]]


def test_regex_agrees_with_the_per_character_definition_on_every_relevant_code_point():
    blocks = filters._class_ranges(scripts.KANA + scripts.HAN + scripts.JAPANESE_MARKS)
    chars = [chr(c) for lo, hi in blocks for c in range(lo, hi + 1)]
    chars += [chr(c) for c in range(0x20, 0x3040)] + ["\U00020000", "\U0002a6d6", "\U000323af", "\U00032400"]
    series = pl.Series("c", chars)
    for lang in ("en", "zh", "ja"):
        vectorised = pl.select(filters.residual_japanese(pl.lit(series), lang)).to_series().to_list()
        if lang == "ja":
            assert vectorised == [False]
            continue
        expected = [filters.is_residual_char(c, lang) for c in chars]
        assert vectorised == expected, lang


def test_text_key_folds_width_and_whitespace_and_its_polars_twin_agrees_on_every_known_code_point():
    assert text_key("ＡＢＣ１２３") == text_key("ABC１２3") == "ABC123"
    assert text_key("東京 に\u3000行く\n") == text_key("東京に行く") == "東京に行く"
    assert text_key("ｶﾀｶﾅ") == "カタカナ" and text_key("A B") != text_key("A-B")
    # every code point Python's Unicode database assigns (polars may know newer ones), alone and between letters
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    texts = chars + [f"a{c}b" for c in chars if c.isspace() or unicodedata.normalize("NFKC", c) != c]
    vectorised = pl.select(filters.text_key_expr(pl.lit(pl.Series(texts)))).to_series().to_list()
    assert vectorised == [text_key(t) for t in texts]


# ----------------------------------------------------------------------------- format and entities


@pytest.mark.parametrize(
    ("dataset", "input_", "output"),
    [
        ("SCNM", "Tokyo Station is busy.", "Society/NER/"),  # no instruction in the input
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER"),  # output lacks the marker
        ("SCNM", "Tokyo Station is busy./NER", "Society/RE/:Facility;Tokyo Station"),
        ("SCNM", "Tokyo Station is busy./NER", "/NER/:Facility;Tokyo Station"),  # empty text label
        ("SCNM", "Tokyo Station is busy./NER", "Soc:iety/NER/"),
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/Facility;Tokyo Station"),  # no leading ':'
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/:Facility;Tokyo;Station"),  # two ';'
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/:Facility"),  # no ';'
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/:;Tokyo Station"),  # empty label
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/:Facility;"),  # empty entity
        ("SCNM", "Tokyo Station is busy./NER", "Society/NER/:Fac/ility;Tokyo Station"),  # '/' in label
        ("TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:A;located in"),
        ("TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:A;located in;B;C"),
        ("TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:A;loc:ated;B"),
        ("TCREE", "A is in B./Relation Extraction", "Politics/Event Extraction/:A;located in;B"),
    ],
)
def test_bad_format(dataset, input_, output):
    row = record("en", dataset, input_, output)
    assert reference_reasons(row) == ["bad_format"], "the case itself must be bad for mmm.records"
    assert judge([row]) == [["bad_format"]]


def test_good_formats_with_delimiters_inside_texts_and_entities():
    rows = [
        record(input_="At 10:30 on 2023/04/01, see https://x.org/a; ok./NER", output="Society/NER/:Event;10:30:Location;https://x.org/a"),
        record("en", "TCREE", "Acme: a firm in Osaka/Kobe./Relation Extraction", "Economy/Relation Extraction/:Acme: a firm;located in;Osaka/Kobe"),
        record("en", "TCREE", "Nothing here./Event Extraction", "Economy/Event Extraction/"),
        record("en", "SCPOS-AdjN", "very good food/Sentiment Adj and N", "positive/Sentiment Adj and N/:positive;good food"),
    ]
    assert judge(rows) == [[], [], [], []]


def test_entity_not_in_text_is_verbatim_and_case_sensitive():
    rows = [
        record(output="Society/NER/:Facility;tokyo station"),
        record("en", "TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:A;located in;C"),
        record("en", "TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:Z;located in;B"),
        record(output="Society/NER/:Facility;Tokyo Station:Location;Tokyo:Person;Kyoto"),
    ]
    assert judge(rows) == [["entity_not_in_text"]] * 4


def test_every_broken_rule_is_listed():
    row = record("zh", input_="东京駅/NER", output="社会/NER/:设施名;大阪站:人名;")
    assert judge([row]) == [["residual_japanese", "bad_format"]]
    row = record("zh", input_="东京駅/NER", output="社会/NER/:设施名;大阪站")
    assert judge([row]) == [["residual_japanese", "entity_not_in_text"]]


@pytest.mark.parametrize("path", ["ja/*.jsonl", "reference/en/*.jsonl", "reference/zh/*.jsonl"])
def test_the_clean_sample_passes(sample_dir, path):
    frames = [filters.read_frame(p) for p in sorted(sample_dir.glob(path))]
    judged = filters.with_reasons(pl.concat(frames))
    assert judged.height >= 240
    assert judged.filter(pl.col("reasons").list.len() > 0).select("id", "reasons").to_dicts() == []


# ----------------------------------------------------------------------------- agreement with mmm.records

ALPHABET = ["a", "B", " ", "/", ":", ";", "東", "京", "駅", "东", "站", "ア", "ー", "々", "ｶ", "込", "\n", "x", "1"]


def _piece(rng: random.Random, longest: int = 6) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def _word_part(rng: random.Random, dataset: str, text: str) -> str:
    def field() -> str:
        roll = rng.random()
        if roll < 0.45 and text:
            start = rng.randrange(len(text))
            return text[start : start + rng.randint(1, 5)]
        return _piece(rng, 4) if roll < 0.9 else ""

    kind = registry.kind(dataset)
    roll = rng.random()
    if roll < 0.1:
        return ""
    if roll < 0.2:
        return _piece(rng, 12)
    if kind.word_level == "triple":
        fields = [field() for _ in range(rng.choice([3, 3, 3, 2, 4]))]
        return ":" + ";".join(fields)
    pairs = [(rng.choice(["Person", "地名", "a:b", "", "x/y", field()]), field()) for _ in range(rng.randint(1, 4))]
    return "".join(":" + label + ";" + entity for label, entity in pairs)


def random_record(rng: random.Random, number: int) -> dict:
    dataset = rng.choice(registry.DATASETS)
    instructions = registry.kind(dataset).instructions
    instruct = rng.choice([*instructions, *instructions, "NER", "Relation Extraction", "Sentiment Adj"])
    text = _piece(rng, 14)
    input_ = text + rng.choice(["/" + instruct, "/" + instruct, "/" + instruct, "", "/" + instruct + " "])
    label = rng.choice(["Society", "社会", "", "a:b", "x;y", _piece(rng, 3)])
    marker = rng.choice([f"/{instruct}/"] * 6 + ["/", f"/{instruct}", "/NER/"])
    output = label + marker + _word_part(rng, dataset, text)
    return record(rng.choice(registry.LANGS), dataset, input_, output, id_=f"g{number}")


def test_vectorised_verdicts_equal_the_per_row_reference_on_generated_rows():
    rng = random.Random(20240605)
    rows = [random_record(rng, n) for n in range(6000)]
    expected = [reference_reasons(r) for r in rows]
    assert judge(rows) == expected
    seen = {name for reasons in expected for name in reasons} | {"ok" for reasons in expected if not reasons}
    assert seen == {*filters.REASONS, "ok"}, "the generator must exercise every verdict"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=40))
def test_vectorised_verdicts_equal_the_reference_hypothesis(seeds):
    rows = [random_record(random.Random(seed), n) for n, seed in enumerate(seeds)]
    assert judge(rows) == [reference_reasons(r) for r in rows]


# ----------------------------------------------------------------------------- files, metrics, CLI


def write_rows(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def mixed_rows() -> list[dict]:
    return [
        {**record(id_="ok1"), "source_id": "s1"},
        {**record("en", "TCREE", "A is in B./Relation Extraction", "Politics/Relation Extraction/:A;located in;B", "ok2"), "source_id": "s2"},
        {**record(input_="Tokyo 駅./NER", output="Society/NER/", id_="bad1"), "source_id": "s3"},
        {**record(output="Society/NER/:Facility;Osaka", id_="bad2"), "source_id": "s4"},
        {**record(output="Society/NER/Facility", id_="bad3"), "source_id": "s5"},
    ]


def test_filter_file_sends_every_row_to_exactly_one_output(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, mixed_rows())
    result = filters.filter_file(src, "en", tmp_path / "kept.jsonl", tmp_path / "rej.jsonl", tmp_path / "m.json")
    kept = [json.loads(line) for line in open(tmp_path / "kept.jsonl", encoding="utf-8")]
    rejected = [json.loads(line) for line in open(tmp_path / "rej.jsonl", encoding="utf-8")]
    assert [r["id"] for r in kept] == ["ok1", "ok2"]
    assert {r["id"]: r["reasons"] for r in rejected} == {
        "bad1": ["residual_japanese"],
        "bad2": ["entity_not_in_text"],
        "bad3": ["bad_format"],
    }
    originals = {r["id"]: r for r in mixed_rows()}
    for row in kept:
        assert row == originals[row["id"]] and list(row)[:5] == ["id", "lang", "dataset", "input", "output"]
    for row in rejected:
        assert {k: v for k, v in row.items() if k != "reasons"} == originals[row["id"]]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert (metrics["input"], metrics["kept"], metrics["rejected"], metrics["kept_pct"]) == (5, 2, 3, 40.0)
    assert metrics["reasons"] == {"residual_japanese": 1, "entity_not_in_text": 1, "bad_format": 1}
    assert metrics["datasets"]["TCREE"] == {
        "input": 1, "kept": 1, "kept_pct": 100.0, "rejected": 0,
        "reasons": {"residual_japanese": 0, "entity_not_in_text": 0, "bad_format": 0}, "waived": {},
    }
    assert metrics["datasets"]["SCNM"]["kept"] == 1 and metrics["datasets"]["SCNM"]["input"] == 4
    assert result.summary("en").startswith("filter en: 5 rows -> 2 kept (40.0%), 3 rejected")


def ja_rows() -> list[dict]:
    """Japanese originals: one clean, one whose entity is not in its text (the paper keeps it), one that does not parse."""
    text = "東京駅は混んでいる。/NER"
    return [
        record("ja", input_=text, output="社会/NER/:施設;東京駅", id_="ok"),
        record("ja", input_=text, output="社会/NER/:施設;大阪駅", id_="missing"),
        record("ja", input_=text, output="社会/NER/施設", id_="unparsed"),
    ]


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("rules", "kept", "rejected", "waived"),
    [
        (filters.CONTENT_RULES, ["ok"], {"missing": ["entity_not_in_text"], "unparsed": ["bad_format"]}, {}),
        ((), ["ok", "missing"], {"unparsed": ["bad_format"]}, {"residual_japanese": 0, "entity_not_in_text": 1}),
    ],
    ids=["default", "waived"],
)
def test_a_waived_rule_keeps_the_rows_it_would_reject_and_counts_them(tmp_path, rules, kept, rejected, waived):
    src = tmp_path / "in.jsonl"
    write_rows(src, ja_rows())
    result = filters.filter_file(src, "ja", tmp_path / "k.jsonl", tmp_path / "r.jsonl", tmp_path / "m.json", rules)
    originals = {r["id"]: r for r in ja_rows()}
    assert read_rows(tmp_path / "k.jsonl") == [originals[i] for i in kept]  # kept rows come out unchanged
    assert {r["id"]: r["reasons"] for r in read_rows(tmp_path / "r.jsonl")} == rejected
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert (metrics["kept"], metrics["waived"], metrics["datasets"]["SCNM"]["waived"]) == (len(kept), waived, waived)
    assert metrics["reasons"]["entity_not_in_text"] == (0 if waived else 1)
    assert result.summary("ja").endswith("; kept under waived rules: residual_japanese 0, entity_not_in_text 1" if waived else "bad_format 1)")


def test_a_row_rejected_by_a_chosen_rule_lists_only_that_rule_and_is_not_counted_as_waived(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, [record(input_="Tokyo 駅./NER", output="Society/NER/:Facility;Osaka", id_="both")])
    filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl", tmp_path / "m.json", ["residual_japanese"])
    assert [r["reasons"] for r in read_rows(tmp_path / "r.jsonl")] == [["residual_japanese"]]
    assert json.loads((tmp_path / "m.json").read_text())["waived"] == {"entity_not_in_text": 0}
    with pytest.raises(ParamsError, match="unknown filter rule.*entity_in_text"):
        filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl", rules=["entity_in_text"])


def test_cli_filter_takes_the_item_s_rules_from_params_and_rules_from_the_command_line(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, ja_rows())
    item = {"input": str(src), "lang": "ja", "rules": [], "kept": str(tmp_path / "k.jsonl"),
            "rejected": str(tmp_path / "r.jsonl"), "metrics": str(tmp_path / "m.json")}
    params = write_params(tmp_path / "params.yaml", filter={"items": {"ja": item}}, assemble={"items": ["ja"]})
    result = CliRunner().invoke(app, ["filter", "--item", "ja", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert "3 rows -> 2 kept" in result.output and "kept under waived rules: residual_japanese 0, entity_not_in_text 1" in result.output
    strict = CliRunner().invoke(app, ["filter", "--item", "ja", "--rules", "residual_japanese,entity_not_in_text", "--params", str(params)])
    assert strict.exit_code == 0 and "3 rows -> 1 kept" in strict.output and "waived" not in strict.output, strict.output
    wrong = CliRunner().invoke(app, ["filter", "--item", "ja", "--rules", "bad_format", "--params", str(params)])
    assert wrong.exit_code == 1 and "rules: Value error, bad_format always runs" in wrong.output, wrong.output


def test_filter_file_on_an_empty_file(tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    result = filters.filter_file(tmp_path / "in.jsonl", "zh", tmp_path / "k.jsonl", tmp_path / "r.jsonl")
    assert (result.kept, result.rejected) == (0, 0)
    assert (tmp_path / "k.jsonl").read_text() == "" and (tmp_path / "r.jsonl").read_text() == ""


def test_structural_problems_stop_the_filter_naming_every_line(tmp_path):
    src = tmp_path / "in.jsonl"
    good = json.dumps(record())
    missing = json.dumps({k: v for k, v in record().items() if k != "output"})
    other_lang = json.dumps(record("zh", input_="东京/NER", output="社会/NER/"))
    unknown = json.dumps(record(dataset="NOPE"))
    src.write_text("\n".join([good, "", missing, other_lang, unknown]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl")
    text = str(info.value)
    assert f"{src}:3: missing field 'output'" in text
    assert f"{src}:4: lang differs from --lang en (got 'zh')" in text
    assert f"{src}:5: unknown dataset 'NOPE'" in text
    assert len(info.value.problems) == 3
    assert not (tmp_path / "k.jsonl").exists() and not (tmp_path / "r.jsonl").exists()


def test_invalid_json_lines_are_listed(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(record()) + "\n{oops\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl")
    assert [p.line for p in info.value.problems] == [2, 3]
    assert "invalid JSON" in info.value.problems[0].message


def test_cli_filter(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, mixed_rows())
    runner = CliRunner()
    args = ["filter", str(src), "--lang", "en", "--kept", str(tmp_path / "k.jsonl"), "--rejected", str(tmp_path / "r.jsonl")]
    result = runner.invoke(app, [*args, "--metrics", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "5 rows -> 2 kept (40.0%), 3 rejected (residual_japanese 1, entity_not_in_text 1, bad_format 1)" in result.output
    bad = runner.invoke(app, [*args[:3], "xx", *args[4:]])
    assert bad.exit_code == 2 and "Invalid value for '--lang'" in bad.output and "Traceback" not in bad.output


def test_non_string_fields_and_unknown_langs_are_input_errors(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, [{**record(), "id": 7}, {**record(), "id": 8}])
    with pytest.raises(InputError) as caught:
        filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl")
    assert [str(p) for p in caught.value.problems] == [f"{src}:{n}: field 'id' must be a string, got int" for n in (1, 2)]
    write_rows(src, [record(), record("fr")])
    with pytest.raises(InputError, match=r"in.jsonl:2: unknown lang \(got 'fr'\)$"):
        filters.filter_file(src, "en", tmp_path / "k.jsonl", tmp_path / "r.jsonl")


def test_read_frame_tells_strings_that_look_like_json_values_from_the_values_polars_turned_into_strings(tmp_path):
    """polars reads ``7`` in a string column as ``"7"``: the suspects are settled from the file, line by line."""
    src = tmp_path / "in.jsonl"
    looks = [{**record(), "id": v} for v in ("7", "-1.5e3", "true", "[1]", '{"a": 1}')]
    write_rows(src, [record(), *looks])
    assert filters.read_frame(src)["id"].to_list() == ["r1", "7", "-1.5e3", "true", "[1]", '{"a": 1}']
    src.write_text("\n".join(json.dumps(r) for r in [record(), {**record(), "lang": True, "output": [1]}, {}, {**record(), "input": {"a": 1}}]) + "\n")
    with pytest.raises(InputError) as caught:
        filters.read_frame(src)
    assert [str(p) for p in caught.value.problems] == [
        f"{src}:2: field 'lang' must be a string, got bool; field 'output' must be a string, got list",
        f"{src}:4: field 'input' must be a string, got dict",
    ]
    src.write_text('{"id": 1}\n{"id": 2\n', encoding="utf-8")  # polars refuses the file: both kinds listed at once
    with pytest.raises(InputError) as caught:
        filters.read_frame(src)
    assert [str(p).split(" (")[0] for p in caught.value.problems] == [f"{src}:1: field 'id' must be a string, got int", f"{src}:2: invalid JSON"]


def test_invalid_utf8_names_the_character_column_after_multibyte_text(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "a"}\n\n{"id": "\xe6\x9d\xb1\xe4\xba\xac\xff"}\n')  # 東京 then a stray byte, after a blank line
    with pytest.raises(InputError, match=r"in.jsonl:3: invalid UTF-8 \(byte 0xff at column 11\)$"):
        filters.read_frame(src)
