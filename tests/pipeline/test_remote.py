"""`dvc push` / `dvc pull` restore every output: a local-directory remote and an S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from dvc_project import copy_project, dvc

pytestmark = pytest.mark.slow
STAGES = ("ingest", "tconer_convert")
OUTPUTS = ("data/interim/ingest/sources.jsonl", "data/interim/ingest/references.jsonl", "data/interim/tconer/converted.jsonl")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory, root) -> Path:
    project = copy_project(root, tmp_path_factory.mktemp("built"), STAGES)
    dvc(project, "repro")
    return project


def round_trip(built: Path, consumer: Path, remote_args: list[list[str]]) -> None:
    """Push from ``built``, then pull into a fresh copy with no outputs and no cache; outputs must match."""
    for args in remote_args:
        dvc(built, *args)
    dvc(built, "push")
    shutil.copytree(built, consumer, ignore=shutil.ignore_patterns("interim", "cache"))
    shutil.rmtree(consumer / ".dvc" / "cache", ignore_errors=True)
    assert not (consumer / OUTPUTS[0]).exists()
    dvc(consumer, "pull")
    for out in OUTPUTS:
        assert digest(consumer / out) == digest(built / out), out
    assert "up to date" in dvc(consumer, "status").stdout.lower()


def test_push_pull_local_directory_remote(built, tmp_path):
    storage = tmp_path / "storage"
    round_trip(built, tmp_path / "consumer", [["remote", "add", "-f", "-d", "local", str(storage)]])
    assert any(storage.rglob("*")), "the remote holds no objects"


def test_push_pull_s3_compatible_remote(built, tmp_path, s3_bucket):
    s3_server, s3 = s3_bucket  # tests/fixtures_s3.py: moto on 127.0.0.1, credentials in the environment only
    round_trip(
        built,
        tmp_path / "consumer",
        [
            ["remote", "add", "-f", "-d", "s3", "s3://mmm-remote/store"],
            ["remote", "modify", "s3", "endpointurl", s3_server],
        ],
    )
    listed = s3.list_objects_v2(Bucket="mmm-remote", Prefix="store/")
    assert listed.get("KeyCount", 0) >= len(OUTPUTS)
    config = (built / ".dvc" / "config").read_text()
    assert "testing" not in config
