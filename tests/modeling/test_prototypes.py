"""Label prototypes (mmm.modeling.prototypes) on the tiny random Llama: batched entity vectors equal one row at a
time, the layer is chosen by leave-one-row-out accuracy, the nearest allowed prototype wins, and what cannot be
relabelled is left alone."""

from __future__ import annotations

import pytest
from tiny_model import one_torch_thread, tiny_model_dir  # noqa: F401

from mmm.modeling import prototypes as P
from mmm.modeling.generation import Engine

ROWS = [
    {"id": "a", "lang": "en", "dataset": "SCNM", "input": "Ann met Bob in Tokyo./NER",
     "output": "Society/NER/:Person;Ann:Person;Bob:Location;Tokyo"},
    {"id": "b", "lang": "ja", "dataset": "SCNM", "input": "山田さんは大阪に住む。/NER", "output": "社会/NER/:人名;山田:地名;大阪"},
    {"id": "c", "lang": "en", "dataset": "SCNM", "input": "Kyoto welcomed Carl./NER",
     "output": "Society/NER/:Location;Kyoto:Person;Carl"},
    {"id": "d", "lang": "en", "dataset": "SCPOS-RW", "input": "A fine day./Sentiment Relation Word",
     "output": "ポジティブ/Sentiment Relation Word/:ポジティブ;fine"},
]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):  # noqa: F811
    return Engine.load(tiny_model_dir)


def test_batched_right_padded_vectors_equal_one_row_at_a_time(engine, one_torch_thread):  # noqa: F811
    import torch

    items = [("Ann met Bob in Tokyo./NER", "SCNM", ["Bob", "Tokyo", "Paris"]),
             ("Kyoto welcomed Carl, who lives far from Osaka./NER", "SCNM", ["Osaka"])]
    together = P.entity_vectors(engine.model, engine.tokenizer, items, [1, 2], batch_size=2)
    alone = [P.entity_vectors(engine.model, engine.tokenizer, [item], [1, 2], batch_size=1)[0] for item in items]
    assert together[0][2] is None and alone[0][2] is None  # "Paris" is not in the text
    for row_t, row_a in zip(together, alone):
        for vec_t, vec_a in zip(row_t, row_a):
            if vec_t is None:
                continue
            for layer in (1, 2):
                assert torch.allclose(vec_t[layer], vec_a[layer], atol=1e-5)
                assert abs(float(vec_t[layer].norm()) - 1) < 1e-5


def test_an_entity_covers_the_tokens_its_characters_overlap():
    offsets = [(0, 0), (0, 3), (3, 7), (7, 8), (8, 12)]
    assert P._positions(offsets, 4, 9) == [2, 3, 4]
    assert P._positions(offsets, 0, 3) == [1]  # the BOS (empty span) is never part of an entity


def test_leave_one_row_out_scores_each_row_against_the_others_only():
    import torch

    x = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=1)
    y = torch.tensor([0, 0, 1, 1])
    assert P._loo_accuracy(x, y, torch.tensor([0, 1, 2, 3]), 2) == 1.0
    # label 1 appears in one row only: held out, it has no prototype and its entities cannot be right
    assert P._loo_accuracy(x, y, torch.tensor([0, 1, 2, 2]), 2) == 0.5


def test_build_pools_languages_by_registry_row_and_records_its_choice(engine, one_torch_thread):  # noqa: F811
    import torch

    built = P.build(engine.model, engine.tokenizer, ROWS, ["SCNM"], [2, 1])
    assert built is not None and built.meta["datasets"] == ["SCNM"]  # SCPOS-RW was not asked for
    counts = built.meta["entities"]["SCNM"]  # rows of registry SCNM: Person 0, Location 4
    assert counts[0] == 4 and counts[4] == 3 and sum(counts) == 7
    scores = built.meta["leave_one_row_out_accuracy"]
    assert set(scores) == {"1", "2"} and built.layer == max((2, 1), key=lambda k: (scores[str(k)], -(2, 1).index(k)))
    table = built.vectors["SCNM"]
    assert torch.allclose(table[[0, 4]].norm(dim=1), torch.ones(2)) and not table[1].any()
    assert P.build(engine.model, engine.tokenizer, ROWS, ["SCPOS-N"], [1]) is None  # no rows of that dataset
    with pytest.raises(ValueError, match="outside 1..2"):
        P.build(engine.model, engine.tokenizer, ROWS, ["SCNM"], [3])


def unit(*values: float):
    import torch

    return torch.nn.functional.normalize(torch.tensor(values, dtype=torch.float32), dim=0)


def test_choose_takes_the_nearest_allowed_label_of_the_language():
    import torch

    table = torch.zeros(8, 2)
    table[0], table[4] = unit(1, 0), unit(0, 1)  # Person, Location
    protos = P.Prototypes(1, {"SCNM": table}, {})
    assert protos.choose("SCNM", "en", unit(0.2, 1), ["Location", "Person"]) == "Location"
    assert protos.choose("SCNM", "ja", unit(1, 0.2), ["地名", "人名"]) == "人名"
    assert protos.choose("SCNM", "en", unit(0.2, 1), ["Person"]) == "Person"  # only what is allowed
    assert protos.choose("SCNM", "en", unit(1, 0), ["Person", "Company"]) is None  # Company has no prototype
    assert protos.choose("SCNM", "en", unit(1, 0), ["Person", "人名"]) is None  # not all of one language
    assert protos.choose("SCPOS-N", "ja", unit(1, 0), ["ポジティブ"]) is None
    assert protos.choose("SCNM", "en", unit(1, 0), []) is None


def test_relabel_repicks_by_the_entities_own_vectors_and_leaves_the_rest(engine, one_torch_thread, tmp_path):  # noqa: F811
    import torch

    input_ = "Ann met Bob in Tokyo./NER"
    layer = 2
    bob, tokyo = P.entity_vectors(engine.model, engine.tokenizer, [(input_, "SCNM", ["Bob", "Tokyo"])], [layer])[0]
    table = torch.zeros(8, bob[layer].shape[0])
    table[0], table[4] = bob[layer], tokyo[layer]  # Person is Bob's own vector, Location Tokyo's
    protos = P.Prototypes(layer, {"SCNM": table}, {"layer": layer})
    allowed = ["Location", "Person"]
    answers = ["Society/NER/:Location;Bob:Location;Tokyo", "Society/NER/:Person;Tokyo:Location;Tokyo", "not an answer",
               "Society/NER/:Location;Bob"]
    out, changed = P.relabel(engine.model, engine.tokenizer, protos, [input_] * 4, answers, ["SCNM"] * 4,
                             [allowed, allowed, allowed, None], "joint")
    assert out == ["Society/NER/:Person;Bob:Location;Tokyo", "Society/NER/:Location;Tokyo",  # a repeat kept once
                   "not an answer", "Society/NER/:Location;Bob"]  # unparseable; no closed set
    assert changed == 2

    P.save(protos, tmp_path)
    loaded = P.load(tmp_path)
    assert loaded is not None and loaded.layer == layer and torch.equal(loaded.vectors["SCNM"], table)
    assert P.load(tmp_path / "elsewhere") is None


@pytest.mark.parametrize("text, generated, expected", [
    ("山田さんは大阪に住む。", ["人名", "地名"], ("ja", ["人名", "地名", "法人名"])),  # 人名, 地名: ja and zh; kana says ja
    ("李明住在北京。", ["人名"], ("zh", ["人名", "地名", "公司名"])),  # Han without kana: zh
    ("Ann lives in Osaka.", ["Person"], ("en", ["Person", "Location", "Company"])),
    ("山田さんは大阪に住む。", ["法人名"], ("ja", ["人名", "地名", "法人名"])),  # only Japanese has 法人名
])
def test_relabelling_keeps_the_language_the_answer_is_written_in(text, generated, expected):
    allowed = ["Company", "Location", "Person", "人名", "公司名", "地名", "法人名"]  # three languages' labels (no --lang)
    lang, labels = P.row_labels("SCNM", text, generated, allowed)
    assert (lang, sorted(labels)) == (expected[0], sorted(expected[1]))
    assert P.row_labels("SCNM", text, ["club"], ["club", "Person"]) is None  # a label of no inventory: kept as generated
    assert P.row_labels("SCNM", text, generated, [*allowed, "club"]) is None
