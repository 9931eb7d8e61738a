"""The partial predictions file: fingerprinted, appended chunk by chunk, a torn chunk cut, a stale file never read."""

from __future__ import annotations

import json

from configs import make

from mmm.prediction.partial import Partial, fingerprint, weights_sha256


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"r{i}", "prediction": f"p{i}", "_new_tokens": i} for i in range(start, start + n)]


def test_chunks_come_back_in_order_and_a_torn_one_is_cut(tmp_path):
    fp = fingerprint(make("predict"), "w" * 64, "t" * 64, tmp_path / "out.jsonl", 1)
    partial = Partial(tmp_path, fp)
    partial.append(0, rows(2), 0)
    partial.append(1, rows(2, 2), 3)
    with open(partial.path, "ab") as fh:
        fh.write(b'{"chunk": 2, "rows": [{"id": "r4"')  # a kill inside the third write
    again = Partial(tmp_path, fp)
    assert sorted(again.done) == [0, 1]
    assert [c["relabelled"] for c in again.chunks()] == [0, 3]
    assert [r["id"] for c in again.chunks() for r in c["rows"]] == ["r0", "r1", "r2", "r3"]
    again.append(2, rows(1, 4), 0)
    assert [r["id"] for c in Partial(tmp_path, fp).chunks() for r in c["rows"]][-1] == "r4"
    header = json.loads(partial.path.read_text().splitlines()[0])
    assert header["fingerprint"]["test_sha256"] == "t" * 64


def test_another_model_params_or_test_file_gets_a_partial_of_its_own(tmp_path, caplog):
    base = fingerprint(make("predict"), "w" * 64, "t" * 64, tmp_path / "out.jsonl", 1)
    Partial(tmp_path, base).append(0, rows(1), 0)
    others = [
        fingerprint(make("predict"), "v" * 64, "t" * 64, tmp_path / "out.jsonl", 1),  # retrained weights
        fingerprint(make("predict"), "w" * 64, "u" * 64, tmp_path / "out.jsonl", 1),  # another test file
        fingerprint(make("predict", max_new_tokens=7), "w" * 64, "t" * 64, tmp_path / "out.jsonl", 1),
        fingerprint(make("predict"), "w" * 64, "t" * 64, tmp_path / "out.jsonl", 2),  # another world size
    ]
    for fp in others:
        assert Partial(tmp_path, fp).done == {}
    assert "ignored: another model, test file, output or params" in caplog.text
    # settings that change no answer keep the partial
    same = fingerprint(make("predict", concurrency=3, base_url="http://x", checkpoints=str(tmp_path)), "w" * 64,
                       "t" * 64, tmp_path / "out.jsonl", 1)
    assert Partial(tmp_path, same).done == {0: len(Partial(tmp_path, base).header.encode())}


def test_the_weights_hash_follows_the_weights_not_the_model_card(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    (tmp_path / "config.json").write_text("{}")
    first = weights_sha256(tmp_path)
    (tmp_path / "README.md").write_text("a model card")
    assert weights_sha256(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 63 + b"\1")
    assert weights_sha256(tmp_path) != first
