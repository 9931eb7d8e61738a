"""The streaming test-file reader: the same capped rows as the whole-list reference, in file order, in chunks."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_model import sample_records

from mmm.io import InputError
from mmm.predict import cap_per_cell
from mmm.prediction.rows import chunks, select

ROWS = sample_records()


def write(path, rows, blank_every: int = 0):
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
    if blank_every:
        lines = [line + ("\n" if i % blank_every == 0 else "") for i, line in enumerate(lines)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


@settings(max_examples=12, deadline=None)
@given(cap=st.one_of(st.none(), st.integers(1, 12)), seed=st.integers(0, 5), size=st.integers(1, 40),
       order=st.randoms(use_true_random=False))
def test_streamed_selection_equals_the_whole_list_reference(tmp_path_factory, cap, seed, size, order):
    rows = list(ROWS)
    order.shuffle(rows)
    path = write(tmp_path_factory.mktemp("rows") / "test.jsonl", rows, blank_every=7)
    selection = select(path, cap, seed)
    expected = cap_per_cell(rows, cap, seed)
    got = [r for chunk in chunks(path, selection, size) for r in chunk]
    assert [r["id"] + r["lang"] for r in got] == [r["id"] + r["lang"] for r in expected]
    sizes = [len(c) for c in chunks(path, selection, size)]
    assert all(n == size for n in sizes[:-1]) and 0 < sizes[-1] <= size
    assert selection.test_rows == len(rows) and selection.count == len(expected)
    assert selection.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_bad_line_is_named_before_any_row_is_used(tmp_path):
    path = tmp_path / "test.jsonl"
    good = json.dumps(ROWS[0], ensure_ascii=False)
    path.write_text(f"{good}\n{{not json\n{good}\n{json.dumps({'id': 'x'})}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        select(path, None, 0)
    lines = caught.value.lines()
    assert lines[0].startswith(f"{path}:2: invalid JSON") and lines[1].startswith(f"{path}:4: missing field")
    assert len(lines) == 2
