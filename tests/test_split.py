from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from tiny_model import sample_records, sample_tconer
from typer.testing import CliRunner

from configs import make, write_params
from mmm import registry
from mmm.cli import app
from mmm.records import split_input, text_key
from mmm.split import split_records

runner = CliRunner()


@pytest.fixture(scope="module")
def mix() -> list[dict]:
    return sample_records() + sample_tconer()


def cells(rows: list[dict]) -> Counter:
    return Counter((r["lang"], r["dataset"]) for r in rows)


def test_default_split_leaves_a_test_set_in_every_cell(mix):
    result = split_records(mix, make("split"))
    present = set(cells(mix))
    assert set(cells(result.test)) == present and set(cells(result.train)) == present
    for (lang, dataset), counts in result.cells.items():
        assert counts.train + counts.test + counts.duplicates == counts.rows
        assert counts.train == min(24, int(0.6 * (counts.rows - counts.duplicates)))
    assert len(result.train) + len(result.test) == len(mix)


def test_filtered_small_cells_still_get_test_rows():
    rows = [r for r in sample_records() if r["lang"] == "ja"]
    small = [r for r in rows if r["dataset"] == "SCNM"][:1] + [r for r in rows if r["dataset"] == "TCREE"][:2]
    result = split_records(small, make("split"))
    assert result.cells[("ja", "SCNM")].test == 1 and result.cells[("ja", "SCNM")].train == 0
    assert result.cells[("ja", "TCREE")].test == 1 and result.cells[("ja", "TCREE")].train == 1


def test_no_text_is_in_both_train_and_test(mix):
    result = split_records(mix, make("split"))
    key = lambda r: (r["lang"], r["dataset"], split_input(r["input"], r["dataset"])[0])  # noqa: E731
    assert not {key(r) for r in result.train} & {key(r) for r in result.test}


def test_split_is_seeded_and_independent_of_row_order(mix):
    shuffled = list(mix)
    random.Random(3).shuffle(shuffled)
    ids = lambda rows: {(r["lang"], r["dataset"], r["id"]) for r in rows}  # noqa: E731
    first, again = split_records(mix, make("split", seed=1)), split_records(shuffled, make("split", seed=1))
    assert ids(first.train) == ids(again.train)
    assert ids(first.train) != ids(split_records(mix, make("split", seed=2)).train)
    # outputs keep the input's row order
    positions = {id(r): i for i, r in enumerate(mix)}
    assert [positions[id(r)] for r in first.test] == sorted(positions[id(r)] for r in first.test)


def test_duplicates_are_dropped_counted_and_conflicts_flagged(mix):
    ja_scnm = [r for r in mix if r["lang"] == "ja" and r["dataset"] == "SCNM"]
    copy = dict(ja_scnm[0], id="dup-1")
    conflict = dict(ja_scnm[1], id="dup-2", output=ja_scnm[2]["output"])
    result = split_records(ja_scnm + [copy, conflict], make("split"))
    counts = result.cells[("ja", "SCNM")]
    assert (counts.rows, counts.duplicates, counts.conflicting_duplicates) == (len(ja_scnm) + 2, 2, 1)
    assert counts.train + counts.test == len(ja_scnm)


def test_an_id_naming_two_texts_in_one_cell_is_an_error(mix):
    rows = [r for r in mix if r["lang"] == "en" and r["dataset"] == "TCREE"][:3]
    rows.append(dict(rows[1], id=rows[0]["id"]))
    rows[-1]["input"] = "A different text./" + split_input(rows[1]["input"], "TCREE")[1]
    with pytest.raises(ValueError, match=rf"en/TCREE/{rows[0]['id']}"):
        split_records(rows, make("split"))


def test_cross_lingual_leaks_are_counted(mix):
    # English keeps only some SCNM ids (as filtering would): count test rows trained on elsewhere by brute force
    keep = {f"scnm-{i:03d}" for i in range(1, 43, 3)}
    rows = [r for r in mix if r["dataset"] == "SCNM" and (r["lang"] == "ja" or r["id"] in keep)]
    result = split_records(rows, make("split", train_size=6))
    trained = {(r["lang"], r["id"]) for r in result.train}
    expected = sum(1 for r in result.test for lang in ("ja", "en") if lang != r["lang"] and (lang, r["id"]) in trained)
    assert result.cross_lingual_leaks == expected


def test_paper_profile_reproduces_table_4_from_table_2():
    """Rows generated with Table 2's counts split with Table 3's sizes give Table 4 exactly."""
    rows = []
    for lang, sizes in registry.paper_sizes("translated").items():
        for dataset, n in sizes.items():
            suffix = "/" + registry.kind(dataset).instructions[0]
            rows.extend({"id": f"{dataset}-{i}", "lang": lang, "dataset": dataset, "input": f"{lang}-{dataset}-{i}{suffix}", "output": ""}
                        for i in range(n))
    result = split_records(rows, make("split", train_size="paper", max_train_fraction=1.0))
    got_train = {lang: {d: result.cells[(lang, d)].train for d in registry.DATASETS} for lang in registry.LANGS}
    got_test = {lang: {d: result.cells[(lang, d)].test for d in registry.DATASETS} for lang in registry.LANGS}
    assert got_train == registry.paper_sizes("train")
    assert got_test == registry.paper_sizes("test")
    assert result.cells[("ja", "SCPOS-N")].test == 186528


@pytest.mark.parametrize(
    "section, message",
    [
        ({"train_size": "table3"}, "split.train_size: .*Input should be 'paper', got 'table3'"),
        ({"max_train_fraction": 0}, "split.max_train_fraction: Input should be greater than 0"),
        ({"train_size": {"xx": {"SCNM": 3}}}, r"split.train_size.xx: Input should be 'en', 'ja' or 'zh'"),
        ({"train_size": {"en": {"SCNM": -1}}}, "split.train_size.en.SCNM: Input should be greater than or equal to 0"),
        ({"seeed": 1}, "split.seeed: unknown key"),
        ({"seed": 42.0}, "split.seed: Input should be a valid integer, got 42.0"),
        ({"seed": "abc"}, "split.seed: Input should be a valid integer"),
    ],
)
def test_bad_split_params_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        make("split", **section)


def test_a_size_map_must_cover_every_cell_in_the_data(mix):
    with pytest.raises(ValueError, match="no size for en/SCNM"):
        split_records([r for r in mix if r["dataset"] == "SCNM"], make("split", train_size={"ja": {"SCNM": 3}}))


def test_cli_writes_files_and_metrics(tmp_path, mix):
    source = tmp_path / "mmm.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mix), encoding="utf-8")
    params = write_params(tmp_path / "params.yaml", split={"seed": 7, "train_size": 10, "max_train_fraction": 0.5})
    out, metrics = tmp_path / "split", tmp_path / "split.json"
    result = runner.invoke(app, ["split", str(source), "--train", str(out / "train.jsonl"), "--test", str(out / "test.jsonl"),
                                 "--params", str(params), "--metrics", str(metrics)])
    assert result.exit_code == 0, result.output
    data = json.loads(metrics.read_text())
    train = (out / "train.jsonl").read_text().splitlines()
    test = (out / "test.jsonl").read_text().splitlines()
    assert (data["train"], data["test"]) == (len(train), len(test)) == (21 * 10, len(mix) - 21 * 10)
    assert data["cells"]["zh"]["TCONER"] == {"rows": 64, "duplicates": 0, "conflicting_duplicates": 0,
                                              "requested": 10, "train": 10, "test": 54,
                                              "test_text_in_train": 0, "dev": 4}
    fit = (out / "fit.jsonl").read_text().splitlines()
    dev = (out / "dev.jsonl").read_text().splitlines()
    assert sorted(fit + dev) == sorted(train) and (data["fit"], data["dev"]) == (len(fit), len(dev))
    assert f"{len(train)} train ({len(fit)} fit + {len(dev)} dev)" in result.output


def test_cli_reports_bad_rows_with_file_and_line(tmp_path):
    source = tmp_path / "mmm.jsonl"
    source.write_text('{"id": "a", "lang": "en", "dataset": "SCNM", "input": "x/NER", "output": "Society/NER/"}\n'
                      '{"id": "b", "lang": "en", "dataset": "SCNM", "input": "y", "output": "Society/NER/"}\n', encoding="utf-8")
    outputs = ["--train", str(tmp_path / "o" / "train.jsonl"), "--test", str(tmp_path / "o" / "test.jsonl"),
               "--metrics", str(tmp_path / "m.json")]
    result = runner.invoke(app, ["split", str(source), *outputs, "--params", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "none.yaml: no such params file" in result.output  # missing params file is named
    result = runner.invoke(app, ["split", str(source), *outputs, "--params", str(write_params(tmp_path / "p.yaml"))])
    assert result.exit_code == 1 and f"{source}:2:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "train.jsonl").exists()


def shared_texts(ja_prefix: str, n: int = 40) -> list[dict]:
    """``n`` TCONER texts present in both en and ja (ja ids start with ``ja_prefix``; ``t`` gives the same ids)."""
    rows = []
    for i in range(n):
        text = f"Shared text number {i} about music./NER"
        rows.append({"id": f"t{i}", "lang": "en", "dataset": "TCONER", "input": text, "output": "music/NER/"})
        rows.append({"id": f"{ja_prefix}{i}", "lang": "ja", "dataset": "TCONER", "input": text, "output": "music/NER/"})
    return rows


def test_a_text_in_two_cells_never_lands_on_both_sides():
    """An untranslated TCONER row (same text in en and ja) must not be trained in one language and tested in the other."""
    rows = shared_texts("t")
    rows += [{"id": f"j{i}", "lang": "ja", "dataset": "TCONER", "input": f"音楽の話{i}。/NER", "output": "音楽/NER/"} for i in range(30)]
    result = split_records(rows, make("split", train_size=10, max_train_fraction=0.6))
    train_texts = {r["input"] for r in result.train}
    assert not train_texts & {r["input"] for r in result.test}
    dropped = sum(c.test_text_in_train for c in result.cells.values())
    assert dropped > 0
    assert len(result.train) + len(result.test) + dropped == len(rows)


def test_near_duplicates_by_width_or_whitespace_are_one_text():
    """``ＡＢＣ１２３`` is ``ABC123`` and ``東京 に`` is ``東京に``: deduplicated in a cell, never on both sides across cells."""
    base = [f"東京に{i}回行く。" for i in range(20)] + [f"ABC123 model {i}" for i in range(20)]
    variant = lambda t: t.replace("東京に", "東京 に").replace("ABC123", "ＡＢＣ１２３").replace(" model", "\u3000model")  # noqa: E731
    row = lambda rid, lang, text: {"id": rid, "lang": lang, "dataset": "TCONER", "input": f"{text}/NER", "output": "x/NER/"}  # noqa: E731
    cfg = make("split", train_size=10, max_train_fraction=0.6)
    same_cell = [row(f"a{i}", "ja", t) for i, t in enumerate(base)] + [row(f"b{i}", "ja", variant(t)) for i, t in enumerate(base)]
    counts = split_records(same_cell, cfg).cells[("ja", "TCONER")]
    assert counts.duplicates == len(base) and counts.train + counts.test == len(base)
    # the variants under other ids in another cell: ranked apart, so some land in test while trained on in ja
    other_cell = [row(f"a{i}", "ja", t) for i, t in enumerate(base)] + [row(f"e{i}", "en", variant(t)) for i, t in enumerate(base)]
    result = split_records(other_cell, cfg)
    key = lambda r: text_key(split_input(r["input"], "TCONER")[0])  # noqa: E731
    assert not {key(r) for r in result.train} & {key(r) for r in result.test}
    assert sum(c.test_text_in_train for c in result.cells.values()) > 0


def test_leakage_keep_leaves_a_text_trained_in_another_cell_in_test_and_counts_it():
    """The paper's Table 4 counts every non-train row; ``keep`` does too, and the overlap is still reported."""
    rows = shared_texts("u")  # other ids: ranked apart, so some texts are trained in one cell and tested in the other
    drop = split_records(rows, make("split", train_size=10, max_train_fraction=0.6, leakage="drop"))
    keep = split_records(rows, make("split", train_size=10, max_train_fraction=0.6, leakage="keep"))
    overlap = sum(c.test_text_in_train for c in keep.cells.values())
    assert overlap == sum(c.test_text_in_train for c in drop.cells.values()) > 0
    assert len(keep.train) == len(drop.train) and len(keep.test) == len(drop.test) + overlap
    assert len(keep.train) + len(keep.test) == len(rows)  # nothing dropped: every row is train or test
    shared = {r["input"] for r in keep.train} & {r["input"] for r in keep.test}
    assert len(shared) == overlap
    for result in (keep, drop):  # within a cell, train and test never share a text in either mode
        by_cell = lambda rows_: {(r["lang"], r["dataset"], r["input"]) for r in rows_}  # noqa: E731
        assert not by_cell(result.train) & by_cell(result.test)
    metrics = keep.metrics(make("split", train_size=10, max_train_fraction=0.6, leakage="keep"))
    assert metrics["leakage"] == {"mode": "keep", "test_text_in_train": overlap}


def test_dev_is_carved_from_train_and_fit_plus_dev_is_train(mix):
    result = split_records(mix, make("split", dev_size=4))
    ids = lambda rows: Counter((r["lang"], r["dataset"], r["id"]) for r in rows)  # noqa: E731
    assert ids(result.fit) + ids(result.dev) == ids(result.train)
    assert not set(ids(result.dev)) & set(ids(result.test))
    for cell, counts in result.cells.items():
        assert counts.dev == cells(result.dev)[cell] <= min(4, counts.train // 2)
    assert sum(c.dev for c in result.cells.values()) > 3 * len(result.cells)  # most cells give their 4 rows
    fitted = {text_key(split_input(r["input"], r["dataset"])[0]) for r in result.fit}
    assert not [r["id"] for r in result.dev if text_key(split_input(r["input"], r["dataset"])[0]) in fitted]


def test_dev_size_zero_fits_on_all_of_train_and_dev_rows_rank_alike_across_languages(mix):
    none = split_records(mix, make("split", dev_size=0))
    assert none.dev == [] and none.fit == none.train
    dev = split_records(mix, make("split", dev_size=4)).dev
    by_id: dict[tuple[str, str], set[str]] = {}
    for row in dev:
        by_id.setdefault((row["dataset"], row["id"]), set()).add(row["lang"])
    # a text and its translations share an id, hence a rank: most dev ids are dev in several languages
    assert sum(len(langs) > 1 for langs in by_id.values()) > len(by_id) // 2


def test_a_dev_size_above_half_of_train_leaves_half_to_fit():
    assert make("split", dev_size=10).dev_count(6) == 3
    assert make("split", dev_size=2).dev_count(6) == 2
    assert make("split", dev_size=3).dev_count(1) == 0
