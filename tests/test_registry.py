from mmm import registry


def test_seven_kinds_with_instruction_words():
    assert [k.name for k in registry.kinds()] == list(registry.DATASETS)
    assert registry.kind("SCNM").instructions == ("NER",)
    assert registry.kind("TCREE").instructions == ("Relation Extraction", "Event Extraction")
    assert registry.kind("SCPOS-AdjN").instructions == ("Sentiment Adj and N",)


def test_inventories_align_across_languages():
    for k in registry.kinds():
        if k.open_domain:
            assert k.text_inventory("en") is None
            continue
        for table in (k.text_labels, k.word_labels):
            assert set(table) == set(registry.LANGS), k.name
            sizes = {len(v) for v in table.values()}
            assert len(sizes) == 1, f"{k.name}: inventories differ in length {sizes}"
            for labels in table.values():
                assert len(set(labels)) == len(labels), f"{k.name}: duplicate label"


def test_scnm_inventory_is_the_papers():
    scnm = registry.kind("SCNM")
    assert scnm.text_labels["ja"] == ("社会", "文芸", "学問", "技術", "自然")
    assert scnm.text_labels["en"] == ("Society", "Literature", "Academic", "Technology", "Nature")
    assert "人名" in scnm.word_labels["ja"] and "Person" in scnm.word_labels["en"]


def test_paper_tables_are_consistent():
    """Table 4 (test) = Table 2 (translated) - Table 3 (train) for every language and sub-dataset."""
    translated, train, test = (registry.paper_sizes(t) for t in ("translated", "train", "test"))
    for lang in registry.LANGS:
        assert set(translated[lang]) == set(registry.DATASETS)
        for ds in registry.DATASETS:
            assert translated[lang][ds] - train[lang][ds] == test[lang][ds], (lang, ds)


def test_label_maps_are_the_rule_based_translation():
    scpos = registry.kind("SCPOS-Adj")
    assert scpos.label_map("word", "ja", "en") == {"ポジティブ": "positive", "中立": "neutral", "ネガティブ": "negative"}
    assert scpos.label_map("word", "ja", "zh")["ポジティブ"] == "积极"
    assert registry.kind("SCNM").label_map("text", "ja", "en")["文芸"] == "Literature"
    assert registry.kind("TCONER").label_map("text", "en", "ja") == {}
    for k in registry.kinds():
        for level in ("text", "word"):
            mapping = k.label_map(level, "ja", "en")
            assert len(set(mapping.values())) == len(mapping), f"{k.name} {level}: two labels map to one"
