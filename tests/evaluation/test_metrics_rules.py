"""The paper's F1 rules (Section 5.2, Algorithm 1) with hand-computed expectations.

Every case is scored twice, by the one-sample reference (``algorithm1``) and by the vectorised
evaluator reading a real JSONL file, and both must give the hand-computed numbers.
"""

from __future__ import annotations

import json

import pytest

from configs import make
from mmm.evaluation import evaluate_file
from mmm.evaluation.algorithm1 import (
    WHITESPACE,
    evaluate_samples,
    normalize,
    parse_paper,
)
from mmm.records import instruction_of
from mmm.registry import kind

NER_INPUT = "In 1953 Marlon Brando starred in On the Waterfront, directed by Kazan./NER"
NER_GOLD = "Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront"
JA_INPUT = "2023/04/01から、横浜市は関内駅前の新庁舎で子育て相談の受付を始めた。/NER"
JA_GOLD = "社会/NER/:政治的組織名;横浜市:施設名;関内駅"
ZH_INPUT = "众议院议员山口惠美隶属于执政党国民协和党，并担任外交部会长。/Relation Extraction"
ZH_GOLD = "政治/Relation Extraction/:山口惠美;隶属;国民协和党"


def rows_of(dataset: str, lang: str, pairs: list[tuple[str, str, str]]) -> list[dict]:
    """``(input, gold output, prediction)`` triples as prediction records."""
    return [
        {"id": f"r{i}", "lang": lang, "dataset": dataset, "input": inp, "output": gold, "prediction": pred}
        for i, (inp, gold, pred) in enumerate(pairs)
    ]


def score(tmp_path, rows: list[dict], mode: str = "paper", target: str = "auto") -> dict:
    """Metrics of the only (lang, dataset) in ``rows`` by both implementations; asserts they agree."""
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = evaluate_file(path, make("evaluate", mode=mode, target=target, bootstrap_samples=0))
    (lang, by_dataset), = result["metrics"].items()
    (dataset, figures), = by_dataset.items()
    whole = kind(dataset).word_level == "triple"
    reference = evaluate_samples(
        [(r["output"], r["prediction"], instruction_of(r["input"]), whole) for r in rows], mode, result["target"]
    )
    for level, (precision, recall, f1) in reference.items():
        assert figures[level] == pytest.approx(f1, abs=1e-4)
        assert figures["precision"][level] == pytest.approx(precision, abs=1e-4)
        assert figures["recall"][level] == pytest.approx(recall, abs=1e-4)
    assert figures["n"] == len(rows)
    return figures


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_exact_match_is_100_everywhere(tmp_path):
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, NER_GOLD)]))
    assert (figures["TL"], figures["WL"], figures["ALL"]) == (100.0, 100.0, 100.0)


def test_reordered_pairs_are_the_same_set(tmp_path):
    swapped = "Literature/NER/:Product Name;On the Waterfront:Person;Marlon Brando"
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, swapped)]))
    assert (figures["WL"], figures["ALL"]) == (100.0, 100.0)


def test_duplicate_pairs_count_once(tmp_path):
    # generated set {(Person, Marlon Brando)}: tp 1, |G| 1, |R| 2 -> P 100, R 50; ALL: sets differ.
    doubled = "Literature/NER/:Person;Marlon Brando:Person;Marlon Brando"
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, doubled)]))
    assert figures["precision"]["WL"] == 100.0 and figures["recall"]["WL"] == 50.0
    assert figures["WL"] == pytest.approx(66.6667, abs=1e-4)
    assert figures["TL"] == 100.0 and figures["ALL"] == 0.0


def test_missing_marker_means_nothing_generated(tmp_path):
    # Row 1 right; row 2 has no "/NER/": TL tp 1 of |G| 1, |R| 2; WL tp 2 of |G| 2, |R| 3; ALL like TL.
    rows = rows_of("SCNM", "en", [
        (NER_INPUT, NER_GOLD, NER_GOLD),
        ("Kazan went home./NER", "Literature/NER/:Person;Kazan", "Literature :Person;Kazan"),
    ])
    figures = score(tmp_path, rows)
    assert figures["precision"]["TL"] == 100.0 and figures["recall"]["TL"] == 50.0
    assert figures["TL"] == pytest.approx(66.6667, abs=1e-4)
    assert figures["precision"]["WL"] == 100.0
    assert figures["recall"]["WL"] == pytest.approx(66.6667, abs=1e-4)
    assert figures["WL"] == pytest.approx(80.0)
    assert figures["ALL"] == pytest.approx(66.6667, abs=1e-4)


def test_the_marker_of_another_task_is_a_missing_marker(tmp_path):
    # SCPOS-AdjN's word is "Sentiment Adj and N"; "/Sentiment Adj/" is not its marker.
    inp = "The new phone has a big screen./Sentiment Adj and N"
    gold = "positive/Sentiment Adj and N/:neutral;phone:positive;big"
    wrong = "positive/Sentiment Adj/:neutral;phone:positive;big"
    figures = score(tmp_path, rows_of("SCPOS-AdjN", "en", [(inp, gold, wrong)]))
    assert (figures["TL"], figures["WL"], figures["ALL"]) == (0.0, 0.0, 0.0)


def test_empty_prediction_scores_zero_and_is_not_an_error(tmp_path):
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, ""), (NER_INPUT.replace("1953", "1954"), NER_GOLD, "   ")]))
    assert (figures["TL"], figures["WL"], figures["ALL"]) == (0.0, 0.0, 0.0)
    assert figures["recall"]["WL"] == 0.0


def test_garbage_prediction_is_a_miss(tmp_path):
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, "}{;;::// \u0000 /NER/ ;;")]))
    # label "}{;;::// \x00" is wrong and the one piece ";;" (the tuple ("", "", "")) too.
    assert figures["TL"] == 0.0 and figures["WL"] == 0.0 and figures["precision"]["TL"] == 0.0


def test_space_inside_a_piece_makes_a_different_tuple_in_paper_mode_only(tmp_path):
    spaced = "Literature/NER/:Person; Marlon Brando:Product Name;On the Waterfront"
    rows = rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, spaced)])
    paper = score(tmp_path, rows)
    assert paper["precision"]["WL"] == 50.0 and paper["recall"]["WL"] == 50.0 and paper["ALL"] == 0.0
    normalized = score(tmp_path, rows, mode="normalized")
    assert (normalized["WL"], normalized["ALL"]) == (100.0, 100.0)


def test_pieces_and_label_are_stripped_and_empty_pieces_dropped(tmp_path):
    padded = "  Literature /NER/ :: Person;Marlon Brando\t: :Product Name;On the Waterfront : "
    figures = score(tmp_path, rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, padded)]))
    assert (figures["TL"], figures["WL"], figures["ALL"]) == (100.0, 100.0, 100.0)


def test_micro_averaging_pools_counts_over_rows(tmp_path):
    # Row 1: 1 pair, right. Row 2: 3 gold pairs, 2 generated of which 1 right.
    # tp 2, |G| 3, |R| 4 -> P 66.67, R 50, F1 57.14 (a per-row macro average would give 83.3).
    rows = rows_of("SCNM", "en", [
        ("Kazan went home./NER", "Literature/NER/:Person;Kazan", "Literature/NER/:Person;Kazan"),
        ("Ann met Bob in Rome./NER", "Society/NER/:Person;Ann:Person;Bob:Location;Rome",
         "Society/NER/:Person;Ann:Location;Bob"),
    ])
    figures = score(tmp_path, rows)
    assert figures["precision"]["WL"] == pytest.approx(200 / 3, abs=1e-4)
    assert figures["recall"]["WL"] == 50.0
    assert figures["WL"] == pytest.approx(f1(200 / 3, 50.0), abs=1e-4)
    assert figures["ALL"] == 50.0 and figures["TL"] == 100.0


def test_every_row_is_scored_not_only_the_first(tmp_path):
    # InstructUIE's evaluator returned inside its loop: it would report 100 here.
    wrong = "Society/NER/:Person;Nobody"
    rows = rows_of("SCNM", "en", [(NER_INPUT, NER_GOLD, NER_GOLD)] + [(f"Text {i}./NER", NER_GOLD, wrong) for i in range(3)])
    figures = score(tmp_path, rows)
    assert figures["n"] == 4
    assert figures["TL"] == 25.0 and figures["ALL"] == 25.0


def test_gold_without_pairs_and_the_zero_denominator_convention(tmp_path):
    # No real and no generated pairs: WL P = R = F1 = 0 by convention, yet ALL is right.
    figures = score(tmp_path, rows_of("SCNM", "en", [("Nothing here./NER", "Society/NER/", "Society/NER/")]))
    assert figures["WL"] == 0.0 and figures["TL"] == 100.0 and figures["ALL"] == 100.0


def test_tcree_triple_is_kept_whole(tmp_path):
    # Kept whole, ":a;b;c:d;e;f" is ONE piece: no credit for the right triple inside it.
    extra = ZH_GOLD + ":山口惠美;就任;外交部会长"
    figures = score(tmp_path, rows_of("TCREE", "zh", [(ZH_INPUT, ZH_GOLD, ZH_GOLD), (ZH_INPUT, ZH_GOLD, extra)]))
    assert figures["precision"]["WL"] == 50.0 and figures["recall"]["WL"] == 50.0
    assert figures["TL"] == 100.0 and figures["ALL"] == 50.0
    label, pairs = parse_paper(ZH_GOLD, "Relation Extraction", keep_whole=True)
    assert (label, pairs) == ("政治", {(":山口惠美", "隶属", "国民协和党")})  # the leading ':' stays, on both sides


def test_tcree_without_a_triple_generates_nothing(tmp_path):
    figures = score(tmp_path, rows_of("TCREE", "zh", [(ZH_INPUT, ZH_GOLD, "政治/Relation Extraction/  ")]))
    assert figures["precision"]["WL"] == 0.0 and figures["TL"] == 100.0 and figures["ALL"] == 0.0


def test_non_tcree_splits_every_colon(tmp_path):
    # The same string under SCNM splits into pieces, so the right pair inside gets credit.
    assert parse_paper("L/NER/:a;b:c;d", "NER", keep_whole=False) == ("L", {("a", "b"), ("c", "d")})
    assert parse_paper("L/NER/:a;b:c;d", "NER", keep_whole=True) == ("L", {(":a", "b:c", "d")})


def test_japanese_sample_and_full_width_delimiters(tmp_path):
    # Full-width ：； (older Japanese data) are not delimiters in paper mode: one piece, no match.
    wide = "社会/NER/：政治的組織名；横浜市：施設名；関内駅"
    half_right = "社会/NER/:政治的組織名;横浜市:施設名;関内"
    rows = rows_of("SCNM", "ja", [(JA_INPUT, JA_GOLD, wide), (JA_INPUT, JA_GOLD, half_right)])
    paper = score(tmp_path, rows)
    # Generated: {"：政治…関内駅"} + {政治的組織名;横浜市, 施設名;関内} -> tp 1, |G| 3, |R| 4.
    assert paper["precision"]["WL"] == pytest.approx(100 / 3, abs=1e-4) and paper["recall"]["WL"] == 25.0
    assert paper["TL"] == 100.0 and paper["ALL"] == 0.0
    normalized = score(tmp_path, rows, mode="normalized")
    assert normalized["precision"]["WL"] == 75.0 and normalized["recall"]["WL"] == 75.0
    assert normalized["ALL"] == 50.0


def test_chinese_labels_compare_exactly(tmp_path):
    other = "经济/Relation Extraction/:山口惠美;隶属;国民协和党"
    figures = score(tmp_path, rows_of("TCREE", "zh", [(ZH_INPUT, ZH_GOLD, other)]))
    assert figures["TL"] == 0.0 and figures["WL"] == 100.0 and figures["ALL"] == 0.0


def test_the_instruction_word_is_the_one_the_input_ends_with(tmp_path):
    # The text mentions "/Sentiment N/" but the input ends with /NER: the marker is "/NER/".
    inp = "The tag /Sentiment N/ appeared in Kazan's notes./NER"
    gold = "Literature/NER/:Person;Kazan"
    rows = rows_of("SCNM", "en", [(inp, gold, "Literature/NER/:Person;Kazan"), (inp, gold, "Literature/Sentiment N/:Person;Kazan")])
    figures = score(tmp_path, rows)
    assert figures["precision"]["TL"] == 100.0 and figures["recall"]["TL"] == 50.0


def test_the_label_is_what_precedes_the_first_marker(tmp_path):
    twice = "Literature/NER/:Person;Kazan/NER/:Person;Kazan"
    label, pairs = parse_paper(twice, "NER", keep_whole=False)
    assert label == "Literature" and pairs == {("Person", "Kazan/NER/"), ("Person", "Kazan")}
    figures = score(tmp_path, rows_of("SCNM", "en", [("Kazan went home./NER", "Literature/NER/:Person;Kazan", twice)]))
    assert figures["precision"]["WL"] == 50.0 and figures["recall"]["WL"] == 100.0


def test_an_empty_label_is_nothing_generated_for_tl_and_all(tmp_path):
    # "/NER/:Person;Kazan": pairs right, label empty -> TL and ALL have nothing generated.
    figures = score(tmp_path, rows_of("SCNM", "en", [("Kazan went home./NER", "Literature/NER/:Person;Kazan", " /NER/:Person;Kazan")]))
    assert figures["precision"]["TL"] == 0.0 and figures["recall"]["TL"] == 0.0
    assert figures["WL"] == 100.0 and figures["ALL"] == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("社会/NER/：人名；森 川", "社会/NER/:人名;森 川"),
        ("a \u3000\t b", "a b"),
        ("Person ; Kazan : Location ;Rome", "Person;Kazan:Location;Rome"),
        ("Literature / NER / :x", "Literature/NER/:x"),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_whitespace_is_exactly_what_str_strip_removes():
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
