import json

import pytest

from mmm.assemble import assemble, table2_markdown
from mmm.io import InputError


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


EN = {"id": "scnm-001", "lang": "en", "dataset": "SCNM", "input": "Tokyo./NER", "output": "Nature/NER/:Location;Tokyo"}
JA = {"id": "scnm-001", "lang": "ja", "dataset": "SCNM", "input": "東京。/NER", "output": "自然/NER/:地名;東京"}


def test_assemble_keeps_record_fields_and_counts_table2(tmp_path):
    a = write(tmp_path / "a.jsonl", [{**EN, "reasons": []}])
    b = write(tmp_path / "b.jsonl", [JA])
    rows, metrics = assemble([a, b])
    assert rows == [EN, JA]
    assert metrics["table2"]["en"]["SCNM"] == 1 and metrics["table2"]["en"]["total"] == 1
    assert metrics["table2"]["zh"]["total"] == 0
    md = table2_markdown(metrics["table2"])
    assert "| en (this build) | 1 | 0 |" in md and "| en (paper) | 4449 | 1312 |" in md


def test_repeated_language_and_id_is_an_error_naming_both_files(tmp_path):
    a = write(tmp_path / "a.jsonl", [EN])
    b = write(tmp_path / "b.jsonl", [JA, EN])
    with pytest.raises(InputError, match=r"b.jsonl:2: en id 'scnm-001' already came from .*a.jsonl"):
        assemble([a, b])
