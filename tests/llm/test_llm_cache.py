from __future__ import annotations

import hashlib
import multiprocessing as mp
import os

from mmm.llm import GenParams, ResponseCache, cache_key
from mmm.llm.types import Completion

FAMILY, MODEL = "local-completions", "gemma-3-270m"


def _key(prompt: str = "hello", **changes) -> str:
    args = {"family": FAMILY, "model": MODEL, "prompt": prompt, "system": None, "params": GenParams()}
    args.update(changes)
    return cache_key(**args)


def test_the_key_is_pinned_because_committed_caches_depend_on_it():
    # Changing how keys are computed orphans every committed answer; bump KEY_VERSION on purpose.
    payload = (
        '{"family":"local-completions","model":"gemma-3-270m","params":{"max_tokens":256,"stop":[],'
        '"temperature":0.0},"prompt":"hello","system":null,"v":1}'
    )
    assert _key() == hashlib.sha256(payload.encode()).hexdigest()
    assert _key() == "590b410d6afd1d5956a2295b11ea074c3ccf58ce0e360edfa5b879c35fcd8871"


def test_every_input_of_a_generation_changes_the_key_and_nothing_else_does():
    base = _key()
    assert _key() == base
    variants = [
        _key(family="openai-chat"),
        _key(model="gemma-3-1b"),
        _key(prompt="hello!"),
        _key(system="be brief"),
        _key(params=GenParams(max_tokens=255)),
        _key(params=GenParams(temperature=0.7)),
        _key(params=GenParams(stop=("\n",))),
        _key(constraint={"hook": "anchor-v1", "terms": ["Tokyo"]}),
    ]
    assert len(set(variants)) == len(variants) and base not in variants
    # the system text is not simply glued to the prompt
    assert _key(prompt="b", system="a") != _key(prompt="a\n\nb")


def test_answers_survive_a_reload_and_the_shard_holds_no_prompt(tmp_path):
    cache = ResponseCache(tmp_path, FAMILY, MODEL)
    secret_prompt = "a long prompt that must not be stored 東京"
    cache.put(_key(secret_prompt), Completion("Tokyo", 12, 3, "stop"))
    again = ResponseCache(tmp_path, FAMILY, MODEL)
    assert again.get(_key(secret_prompt)) == Completion("Tokyo", 12, 3, "stop")
    assert again.get(_key("other")) is None
    assert secret_prompt not in cache.path.read_text(encoding="utf-8")
    assert cache.path.name == "local-completions__gemma-3-270m.jsonl"
    assert (tmp_path / ".gitignore").read_text().count(".lock") == 1


def test_a_torn_last_line_is_skipped_and_sealed_by_the_next_append(tmp_path, caplog):
    cache = ResponseCache(tmp_path, FAMILY, MODEL)
    cache.put(_key("a"), Completion("A", 1, 1))
    with open(cache.path, "a", encoding="utf-8") as fh:
        fh.write('{"key":"deadbeef","text":"cut in the mid')  # a crash mid-write
    reloaded = ResponseCache(tmp_path, FAMILY, MODEL)
    assert len(reloaded) == 1 and reloaded.torn_lines == 1
    assert "unreadable" in caplog.text
    reloaded.put(_key("b"), Completion("B", 1, 1))
    final = ResponseCache(tmp_path, FAMILY, MODEL)
    assert final.get(_key("b")).text == "B" and len(final) == 2 and final.torn_lines == 1


def test_compaction_is_deterministic_whatever_the_arrival_order(tmp_path):
    answers = [(_key(str(i)), Completion(f"answer {i}", i, i)) for i in range(30)]
    first = ResponseCache(tmp_path / "one", FAMILY, MODEL)
    for item in answers:
        first.put(*item)
    second = ResponseCache(tmp_path / "two", FAMILY, MODEL)
    second.put_many(reversed(answers))
    assert first.compact() and second.compact()
    assert first.path.read_bytes() == second.path.read_bytes()
    assert not first.compact()  # already compact: the file is left alone


def _writer(directory: str, start: int, count: int) -> None:
    cache = ResponseCache(directory, FAMILY, MODEL)
    for i in range(start, start + count):
        cache.put(_key(str(i)), Completion(f"answer {i} " + "x" * 200, i, i))


def _compactor(directory: str, rounds: int) -> None:
    for _ in range(rounds):
        ResponseCache(directory, FAMILY, MODEL).compact()


def test_two_processes_sharing_a_cache_lose_nothing_even_while_it_is_compacted(tmp_path):
    ctx = mp.get_context("fork")
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), 0, 300)),
        ctx.Process(target=_writer, args=(str(tmp_path), 300, 300)),
        ctx.Process(target=_compactor, args=(str(tmp_path), 40)),
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    cache = ResponseCache(tmp_path, FAMILY, MODEL)
    assert len(cache) == 600 and cache.torn_lines == 0
    assert all(cache.get(_key(str(i))).text.startswith(f"answer {i} ") for i in range(600))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


WRITER = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the kernel default kills the process
from mmm.llm import ResponseCache
from mmm.llm.types import Completion
cache = ResponseCache(sys.argv[1], "local-completions", "gemma-3-270m")
cache.put_many([("k0", Completion("first " * 100, 1, 1)), ("k1", Completion("second " * 100, 1, 1))])
limit = cache.path.stat().st_size + 300  # the next line is ~800 bytes: the kernel stops the write at the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
cache.put("k2", Completion("third " * 130, 1, 1))  # the rest of the line raises SIGXFSZ, which kills the process
print("still alive")
"""


def test_a_writer_killed_mid_line_leaves_a_readable_cache(tmp_path):
    """A real kill inside the append: RLIMIT_FSIZE cuts the write after 300 bytes and the kernel's
    SIGXFSZ ends the process there (no handler, no cleanup, like SIGKILL)."""
    import signal
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == -signal.SIGXFSZ and "still alive" not in proc.stdout, proc.stderr
    cache = ResponseCache(tmp_path, FAMILY, MODEL)
    lines = cache.path.read_bytes().split(b"\n")
    assert len(lines) == 3 and len(lines[2]) == 300  # two whole lines, then 300 bytes of the third
    assert (len(cache), cache.torn_lines) == (2, 1) and cache.get("k1").text == "second " * 100
    cache.put("k3", Completion("after", 1, 1))  # the next writer seals the torn line first
    final = ResponseCache(tmp_path, FAMILY, MODEL)
    assert (len(final), final.torn_lines) == (3, 1) and final.get("k3").text == "after" and "k2" not in final


def _linked_shards(tmp_path):
    """A filled shard, then the same bytes checked out three ways as DVC does: hardlink, symlink, read-only copy."""
    store = tmp_path / "store"
    first = ResponseCache(store, FAMILY, MODEL)
    first.put(_key("a"), Completion("A", 1, 1, "stop"))
    stored = first.path.read_bytes()
    links = {}
    for name, make in (("hardlink", os.link), ("symlink", os.symlink), ("readonly", None)):
        folder = tmp_path / name
        folder.mkdir()
        shard = folder / first.path.name
        if make is None:
            shard.write_bytes(stored)
        else:
            make(first.path, shard)
        links[name] = folder
    first.path.chmod(0o444)  # DVC's cache objects are read-only
    (tmp_path / "readonly" / first.path.name).chmod(0o444)
    return first.path, stored, links


def test_an_append_to_a_linked_or_read_only_shard_never_changes_the_linked_file(tmp_path):
    # DVC's hardlink/symlink checkouts point into its cache: appending in place would corrupt the object
    # (root may write a read-only file), so the writer first replaces such a shard by its own copy.
    target, stored, links = _linked_shards(tmp_path)
    for name, folder in links.items():
        cache = ResponseCache(folder, FAMILY, MODEL)
        assert cache.get(_key("a")) == Completion("A", 1, 1, "stop"), name
        cache.put(_key("b"), Completion("B", 1, 1, "stop"))
        assert target.read_bytes() == stored, f"{name}: the linked file changed"
        shard = os.lstat(cache.path)
        assert shard.st_nlink == 1 and not os.path.islink(cache.path) and shard.st_mode & 0o200, name
        again = ResponseCache(folder, FAMILY, MODEL)
        assert [again.get(_key(p)).text for p in "ab"] == ["A", "B"], name
        assert not list(folder.glob(".*.tmp")), name
