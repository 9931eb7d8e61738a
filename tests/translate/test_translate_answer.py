"""Reading answers back (strict), the structural checks, the per-row token cap and the quality scores."""

from __future__ import annotations

import pytest
from translate_fakes import TEMPLATES

from configs import make, settings
from mmm.records import Sample
from mmm.translate import quality
from mmm.translate import template as templates
from mmm.translate.answer import AnswerError, parse_answer, split_answer
from mmm.translate.checks import check_translation

EN = templates.load(TEMPLATES / "ja-en.txt")


def sample(dataset: str, input_: str, output: str, lang: str = "ja", id_: str = "r1") -> Sample:
    return Sample.from_record({"id": id_, "lang": lang, "dataset": dataset, "input": input_, "output": output})


SOURCE = sample("SCNM", "大阪城で花火大会が開かれた。/NER", "Society/NER/:Facility;大阪城:Event;花火大会")
GOOD = "A fireworks show was held at Osaka Castle./NER\nEnglish output:\nSociety/NER/:Facility;Osaka Castle:Event;fireworks show"


def test_a_good_answer_becomes_a_target_language_record():
    translated, repairs = parse_answer(GOOD, EN, SOURCE, "stop")
    assert translated.to_record() == {"id": "r1", "lang": "en", "dataset": "SCNM",
                                      "input": "A fireworks show was held at Osaka Castle./NER",
                                      "output": "Society/NER/:Facility;Osaka Castle:Event;fireworks show"}
    assert repairs == []
    # what follows the output line (another example the model went on with) is not part of the answer
    assert parse_answer(" " + GOOD + "\n\nJapanese input:\n...", EN, SOURCE, "length") == (translated, [])


def test_a_missing_task_word_is_restored_and_counted_but_a_different_one_is_kept():
    translated, repairs = parse_answer(GOOD.replace("Castle./NER", "Castle."), EN, SOURCE, "stop")
    assert translated.input == "A fireworks show was held at Osaka Castle./NER" and repairs == ["task_word_added"]
    source = sample("TCREE", "AがBを買収した。/Event Extraction", "Economy/Event Extraction/:A;acquisition;B")
    answer = "A acquired B./Relation Extraction\nEnglish output:\nEconomy/Event Extraction/:A;acquisition;B"
    with pytest.raises(AnswerError, match="output lacks the instruction marker '/Relation Extraction/'"):
        parse_answer(answer, EN, source)


@pytest.mark.parametrize(
    "answer, finish, reason, detail",
    [
        ("A show./NER", "stop", "unparseable", "no 'English output:' line"),
        ("A show./NER\nA second line.\nEnglish output:\nSociety/NER/", "stop", "unparseable", "one input line"),
        ("A show./NER\nEnglish output:\n", "stop", "unparseable", "nothing after"),
        ("A show./NER\nEnglish output:\nSociety/NER/:Facility;", "stop", "unparseable", "empty field"),
        ("A show./NER\nEnglish output:\nSociety:NER:Facility", "stop", "unparseable", "instruction marker"),
        ("A fireworks show was held at Osaka", "length", "truncated", "no 'English output:' line"),
        ("A show./NER\nEnglish output:\nSociety/NER/:Facility;Osaka", "length", "truncated", "max_tokens"),
        ("A show./NER\nEnglish output:", "length", "truncated", "nothing after"),
    ],
)
def test_bad_answers_fail_with_a_reason(answer, finish, reason, detail):
    with pytest.raises(AnswerError) as error:
        parse_answer(answer, EN, SOURCE, finish)
    assert error.value.reason == reason and detail in error.value.detail


def test_an_output_line_cut_by_the_cap_but_followed_by_a_newline_is_complete():
    assert split_answer(GOOD + "\n", EN, "length")[1].endswith("fireworks show")
    assert split_answer(GOOD, EN, None)[0].startswith("A fireworks")  # unknown finish reason: taken as complete


@pytest.mark.parametrize(
    "output, labels, reasons",
    [
        ("Society/NER/:Facility;Osaka Castle:Event;fireworks show", "mapped", []),
        ("Culture/NER/:Facility;Osaka Castle:Event;fireworks show", "mapped", ["label_changed"]),
        ("Society/NER/:Location;Osaka Castle:Event;fireworks show", "mapped", ["label_changed"]),
        ("Society/NER/:Facility;Osaka Castle", "mapped", ["pair_count_changed"]),
        ("Culture/NER/:Facility;Osaka Castle", "mapped", ["pair_count_changed", "label_changed"]),
        ("Culture/NER/:Place;Osaka Castle:Show;fireworks show", "translate", []),  # open domain: labels may change
        ("Culture/NER/:Place;Osaka Castle", "translate", ["pair_count_changed"]),
    ],
)
def test_structure_checks(output, labels, reasons):
    translated = sample("SCNM", "A fireworks show was held at Osaka Castle./NER", output, lang="en")
    assert check_translation(SOURCE, translated, labels) == reasons


@pytest.mark.parametrize(
    "target, input_, output, reasons",
    [
        ("ja", "Bach lived in Leipzig./NER", "音楽/NER/:作曲家;バッハ:都市;ライプツィヒ", ["untranslated"]),  # copied text
        ("ja", "Bach wohnte in Leipzig./NER", "音楽/NER/:作曲家;Bach:都市;Leipzig", ["untranslated"]),  # no kana or Han
        ("zh", "バッハはライプツィヒに住んだ。/NER", "音乐/NER/:作曲家;巴赫:城市;莱比锡", []),  # zh text with kana: the filter's job
        ("ja", "バッハはライプツィヒに住んだ。/NER", "music/NER/:作曲家;バッハ:都市;ライプツィヒ", ["label_untranslated"]),
        ("zh", "巴赫住在莱比锡。/NER", "音乐/NER/:作曲家;巴赫:city;莱比锡", ["label_untranslated"]),
        ("ja", "バッハはライプツィヒに住んだ。/NER", "音楽/NER/:作曲家;バッハ:IT企業;ライプツィヒ", []),  # translated, with Latin
        ("ja", "バッハはライプツィヒに住んだ。/NER", "音楽/NER/:作曲家;バッハ", ["pair_count_changed"]),
    ],
)
def test_open_domain_rows_must_be_translated_labels_included(target, input_, output, reasons):
    source = sample("TCONER", "Bach lived in Leipzig./NER", "music/NER/:composer;Bach:city;Leipzig", lang="en")
    translated = sample("TCONER", input_, output, lang=target)
    assert check_translation(source, translated, "translate") == reasons


def test_a_copied_source_is_untranslated_even_with_mapped_labels():
    copied = sample("SCNM", SOURCE.input, "社会/NER/:设施名;大阪城:事件名;花火大会", lang="zh")
    source = sample("SCNM", SOURCE.input, "社会/NER/:设施名;大阪城:事件名;花火大会")
    assert check_translation(source, copied, "mapped") == ["untranslated"]
    japanese = sample("SCNM", "大阪城で花火。/NER", "Society/NER/:Facility;大阪城:Event;花火", lang="en")
    assert check_translation(SOURCE, japanese, "mapped") == ["untranslated"]


def test_an_empty_text_is_named():
    translated = sample("SCNM", " /NER", "Society/NER/:Facility;Osaka Castle:Event;fireworks show", lang="en")
    assert check_translation(SOURCE, translated, "mapped") == ["empty_text"]


def test_a_changed_task_word_is_named():
    source = sample("TCREE", "AがBを買収した。/Event Extraction", "Economy/Event Extraction/:A;acquisition;B")
    answer = sample("TCREE", "A acquired B./Relation Extraction", "Economy/Relation Extraction/:A;acquisition;B", "en")
    assert check_translation(source, answer, "mapped") == ["instruction_changed"]


def test_token_cap_scales_with_the_source_in_buckets():
    cap = make("translate.max_tokens", per_source_char=0.5, by_direction={"en-ja": 1.0}, min=32, max=96, step=16)
    short = sample("SCNM", "雪。/NER", "Nature/NER/")
    long = sample("SCNM", "あ" * 100 + "/NER", "Nature/NER/")
    assert cap.for_sample(short, "en") == 32
    assert cap.for_sample(sample("SCNM", "あ" * 60 + "/NER", "Nature/NER/"), "en") == 48  # 76 chars * 0.5 = 38 -> 48
    assert cap.for_sample(long, "en") == 64 and cap.for_sample(long, "zh") == 64
    english = sample("SCNM", "a" * 100 + "/NER", "Nature/NER/", lang="en")
    assert cap.for_sample(english, "ja") == 96  # 116 chars * 1.0, capped
    with pytest.raises(ValueError, match="translate.max_tokens.step"):
        make("translate.max_tokens", step=0)


def test_settings_from_params_validate_their_keys():
    made = settings({"method": "one_shot", "max_tokens": {"per_source_char": 0.7, "max": 64}})
    assert made.max_tokens.per_source_char == 0.7 and made.max_tokens.maximum == 64 and made.options is None
    assert settings({}, method="anchored").options.term_max_tokens == 16
    with pytest.raises(ValueError, match="translate.method: Input should be 'one_shot' or 'anchored'"):
        settings({"method": "magic"})
    with pytest.raises(ValueError, match="unknown key"):
        settings({"max_token": 3})
    with pytest.raises(ValueError, match="unknown key"):
        settings({"max_tokens": {"ratio": 3}})


def test_quality_scores_per_sub_dataset_and_overall():
    refs = {
        "a": sample("SCNM", "Taro met Hanako in Kyoto./NER", "Society/NER/:Person;Taro:Location;Kyoto", "en", "a"),
        "b": sample("SCNM", "Rain fell on Nara./NER", "Nature/NER/:Location;Nara", "en", "b"),
        "c": sample("TCREE", "X bought Y./Event Extraction", "Economy/Event Extraction/:X;acquisition;Y", "en", "c"),
    }
    hyps = {
        "a": sample("SCNM", "Taro saw Hanako in Kyoto./NER", "Society/NER/:Person;Hanako:Location;Kyoto", "en", "a"),
        "c": refs["c"],
    }
    attempted = [refs["a"], refs["b"], refs["c"], sample("SCNM", "no reference/NER", "Nature/NER/", "ja", "d")]
    scores = quality.score(hyps, refs, attempted)
    assert list(scores) == ["SCNM", "TCREE", "all"]
    scnm = scores["SCNM"]
    assert (scnm["rows_with_reference"], scnm["rows_scored"]) == (2, 1)
    assert 50 < scnm["chrf"] < 100 and scnm["chrf_with_failures"] < scnm["chrf"]
    assert (scnm["entity_match"], scnm["entity_in_reference_text"]) == (0.5, 1.0)  # Hanako is not Taro, but is in the text
    assert scores["TCREE"] == {"rows_with_reference": 1, "rows_scored": 1, "chrf": 100.0, "chrf_with_failures": 100.0,
                               "entity_match": 1.0, "entity_in_reference_text": 1.0}
    assert scores["all"]["rows_scored"] == 2
    nothing = quality.score({}, refs, [refs["b"]])["SCNM"]
    assert (nothing["chrf"], nothing["entity_match"], nothing["chrf_with_failures"]) == (None, None, 0.0)
