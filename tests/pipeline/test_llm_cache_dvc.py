"""The API answer cache (data/cache/llm-api) is versioned by DVC, not git: `make cache-push` / `make cache-pull`
round trip through an S3-compatible server on 127.0.0.1, and a pulled cache takes new answers without ever
changing an object in DVC's cache, whatever `cache.type` checks the files out as."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc_project import dvc, env
from fixtures_s3 import BUCKET

from mmm.llm import GenParams, ResponseCache, cache_key
from mmm.llm.types import Completion

API_CACHE = "data/cache/llm-api"
COPIED = ("Makefile", ".dvcignore", "data/cache/.gitignore")
SHARDS = {("openai-chat", "gpt-3.5-turbo"): ["今日は", "東京", "猫"], ("openai-chat", "gpt-4o-mini"): ["犬"]}


def test_the_api_cache_is_kept_out_of_git_and_no_stage_declares_it(root):
    # its .dvc file appears with the first paid run (make cache-push): one committed for an empty folder would
    # make `dvc repro` on every fresh clone fail ("missing data source"), as no remote holds that folder
    assert not (root / f"{API_CACHE}.dvc").exists()
    assert "/llm-api" in (root / "data" / "cache" / ".gitignore").read_text().split()
    assert yaml.safe_load((root / "params" / "paper.yaml").read_text(encoding="utf-8"))["llm"]["cache_dir"] == API_CACHE
    # the default model's small cache stays in git
    assert yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["llm"]["cache_dir"] == "data/cache/llm"
    assert not (root / "data" / "cache" / "llm.dvc").exists()
    # several stages write the cache while they run: DVC forbids an output two stages share, and as a
    # dependency every new answer would invalidate the other LLM stages
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for field in ("deps", "outs"):
            for entry in body.get(field, []):
                path = entry if isinstance(entry, str) else next(iter(entry))
                assert "cache_dir" not in path and not path.startswith("data/cache"), (name, field, path)
    # DVC records the shards only: the lock and the batch bookkeeping are local state
    ignored = (root / ".dvcignore").read_text().split()
    assert {f"/{API_CACHE}/.lock", f"/{API_CACHE}/batches/", f"/{API_CACHE}/.*.tmp"} <= set(ignored)


def make(project: Path, target: str, check: bool = True) -> subprocess.CompletedProcess:
    """The project's make target in ``project``, with this interpreter's venv (never reinstalled)."""
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(["make", "-C", str(project), target, f"VENV={venv}", "-o", f"{venv}/.installed"],
                            check=False, env=env(), capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"make {target} failed:\n{result.stdout}\n{result.stderr}"
    return result


def key(family: str, model: str, prompt: str) -> str:
    return cache_key(family, model, prompt, None, GenParams(max_tokens=64))


def answer(prompt: str) -> Completion:
    return Completion(f"answer to {prompt}", 10, 4, "stop")


def object_path(project: Path, md5: str) -> Path:
    return project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def recorded(project: Path) -> dict[str, str]:
    """Shard name -> md5, as data/cache/llm-api.dvc records them (its listing in the local DVC cache)."""
    out = yaml.safe_load((project / f"{API_CACHE}.dvc").read_text(encoding="utf-8"))["outs"][0]
    listing = json.loads(object_path(project, out["md5"]).read_text(encoding="utf-8"))
    return {entry["relpath"]: entry["md5"] for entry in listing}


def assert_cache_objects_intact(project: Path) -> None:
    """Every file object in the local DVC cache still has the content its name (its md5) says."""
    objects = [p for p in (project / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file() and p.suffix != ".dir"]
    assert objects
    for path in objects:
        assert hashlib.md5(path.read_bytes()).hexdigest() == path.parent.name + path.name, path


def dvc_project(root: Path, project: Path, cache_type: str | None, remote: str, endpoint: str | None) -> None:
    """A DVC project holding only what the workflow needs: the Makefile, .dvcignore and data/cache/.gitignore."""
    project.mkdir()
    dvc(project, "init", "--no-scm", "-q")
    for name in COPIED:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, project / name)
    config = ["[core]", "    no_scm = true", "    analytics = false", "    remote = store", "['remote \"store\"']", f"    url = {remote}"]
    config += [f"    endpointurl = {endpoint}"] if endpoint else []
    config += ["[cache]", f"    type = {cache_type}"] if cache_type else []
    (project / ".dvc" / "config").write_text("\n".join(config) + "\n")  # what `dvc config` / `dvc remote add` write


# The S3-compatible server with DVC's default link type (copies on ext4, reflinks where the filesystem has them);
# a link type that points into DVC's cache, which an in-place append would corrupt, over a local-folder remote
# (hardlinks and read-only copies take the same path in ResponseCache: tests/llm/test_llm_cache.py covers all three).
@pytest.mark.slow
@pytest.mark.parametrize("cache_type", [None, "symlink"], ids=["default-s3", "symlink-local"])
def test_paid_answers_round_trip_through_the_dvc_remote(root, tmp_path, request, cache_type):
    project = tmp_path / "project"
    if cache_type is None:
        endpoint, s3 = request.getfixturevalue("s3_bucket")
        dvc_project(root, project, cache_type, f"s3://{BUCKET}/store", endpoint)
    else:
        s3 = None
        dvc_project(root, project, cache_type, str(tmp_path / "remote"), None)
    folder = project / API_CACHE

    # before the first paid run there is no .dvc file: nothing to pull, not an error
    assert "nothing to pull" in make(project, "cache-pull").stdout
    for (family, model), prompts in SHARDS.items():
        ResponseCache(folder, family, model).put_many((key(family, model, p), answer(p)) for p in prompts)
    (folder / "batches").mkdir()
    (folder / "batches" / "pending.json").write_text("{}")  # one account's batch ids: local state

    pushed = make(project, "cache-push")
    assert f"git add {API_CACHE}.dvc" in pushed.stdout
    shards = recorded(project)
    assert sorted(shards) == sorted(ResponseCache(folder, *fm).path.name for fm in SHARDS)  # no lock, no batches
    if s3 is not None:
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix="store/")["KeyCount"] == len(shards) + 1  # + the listing
    stored = {name: object_path(project, md5).read_bytes() for name, md5 in shards.items()}

    # a colleague's machine: no answers, no DVC cache
    shutil.rmtree(folder)
    shutil.rmtree(project / ".dvc" / "cache")
    make(project, "cache-pull")
    for (family, model), prompts in SHARDS.items():
        cache = ResponseCache(folder, family, model)
        assert cache.torn_lines == 0 and len(cache) == len(prompts)
        assert all(cache.get(key(family, model, p)) == answer(p) for p in prompts)

    # a rerun answers a new prompt into the pulled shard: the cached objects stay as pushed
    family, model = first = next(iter(SHARDS))
    ResponseCache(folder, family, model).put(key(family, model, "新しい"), answer("新しい"))
    for name, md5 in shards.items():
        assert object_path(project, md5).read_bytes() == stored[name], f"{name}: the DVC cache object changed"
    assert_cache_objects_intact(project)
    assert ResponseCache(folder, family, model).get(key(family, model, "新しい")) == answer("新しい")

    # pulling over answers not pushed yet is refused: the paid answer stays
    refused = make(project, "cache-pull", check=False)
    assert refused.returncode != 0 and "unsaved" in refused.stderr
    assert ResponseCache(folder, family, model).get(key(family, model, "新しい")) == answer("新しい")

    # recording them again: only the changed shard is a new object; appending after that stays safe
    make(project, "cache-push")
    again = recorded(project)
    changed = {name for name in shards if again[name] != shards[name]}
    assert changed == {ResponseCache(folder, *first).path.name}
    ResponseCache(folder, family, model).put(key(family, model, "もう一つ"), answer("もう一つ"))
    assert_cache_objects_intact(project)
