"""Run the paper profile end to end on synthetic inputs against a simulated API; check Tables 2-4.

Steps: copy the project (code, prompts, suites, params; no outputs) into a work folder, apply
``params/paper.yaml`` and then the simulation's overlay (local inputs instead of the hub, the
simulated server's URL, the split's sizes when scaled), write the synthetic inputs, start the
simulated OpenAI-compatible server (real HTTP, real ``openai`` client in the stages), then run
every data stage with ``dvc repro -s`` in pipeline order, measuring each stage's wall time, peak
memory (``wait4``'s maxrss of dvc and the stage it runs) and the requests the server received.
Training and prediction are not run (the gate, the funnel and the dataset release end the data
pipeline; the model stages have their own tests and benchmarks). Finally the released dataset, the
split and the release's Parquet files are counted from the files the run produced and compared
with the paper's tables cell by cell.

Faults: ``fault_rate`` answers that share of first attempts with 429 or 500 (the stages retry);
``kills`` sends SIGTERM to the ``translate@en`` stage that many times, evenly through its
requests, rerunning it after each; the server's per-prompt answer counts then show whether any
paid prompt was answered twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from dvc_project import copy_project
from fake_openai import Call, FakeOpenAI, Fault

from paper_sim.answers import SimAnswerer
from paper_sim.sources import PILE_NER, write_inputs
from paper_sim.spec import MRE, SimSpec, sample_params

SAMPLE_DIR = ROOT / "data" / "raw" / "sample"
RAW_SUBDIR = "data/raw/sim"
KILLED_STAGE = "translate@en"
LANGS = ("ja", "en", "zh")
DATASETS = (*MRE, "TCONER")


@dataclass
class SimOptions:
    scale: int = 1
    workdir: Path = Path("/tmp/mmm-paper-sim")
    latency: float = 0.0
    concurrency: int = 32
    fault_rate: float = 0.0
    kills: int = 0
    report: Path | None = ROOT / "reports" / "paper-sim.json"


@dataclass
class StageRun:
    name: str
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    requests: int = 0  # HTTP calls the server received (retries included)
    answered: int = 0  # distinct prompts it answered
    runs: int = 0  # 1, or more when the stage was killed and rerun
    exit_codes: list[int] = field(default_factory=list)


def overlay(spec: SimSpec, base_url: str, concurrency: int) -> dict[str, Any]:
    """The simulation's changes on top of the paper profile (a partial params file)."""
    return {
        "hub": {"allow_network": False},
        "ingest": {"hub": [{"path": f"{RAW_SUBDIR}/MMM-dataset-Trainset", "split": "train"},
                           {"path": f"{RAW_SUBDIR}/MMM-dataset-Testset", "split": "test"}]},
        "tconer": {"source_files": [f"{RAW_SUBDIR}/{PILE_NER}"], "hub_id": None, "hub_revision": None},
        "llm": {"base_url": base_url, "concurrency": concurrency, "backoff_base_s": 0.05, "backoff_max_s": 0.5,
                "progress": False, "local_model_dir": "models/base/unused"},
        "translate": {"items": {item: {"sample": sizes} for item, sizes in sample_params(spec).items()}},
        "split": {"train_size": spec.train_size_param()},
    }


def stage_order(params: dict[str, Any]) -> list[str]:
    """The data stages in pipeline order: up to the gate, then the retention funnel and the dataset release."""
    translate = [f"translate@{item}" for item in params["translate"]["items"]]
    filters = [f"filter@{item}" for item in params["filter"]["items"]]
    return ["ingest", "tconer_convert", "tconer_label", "label_map", *translate, *filters, "assemble", "split",
            "validate", "funnel", "release_data"]


def faults_for(rate: float):
    """First attempts of a seeded ``rate`` share of prompts fail with 429 or 500 (alternately)."""
    if rate <= 0:
        return None

    def fault(call: Call) -> Fault | None:
        if call.attempt > 1:
            return None
        draw = int.from_bytes(hashlib.blake2b(call.prompt.encode("utf-8"), digest_size=8).digest(), "big") / 2**64
        if draw >= rate:
            return None
        return Fault.RATE_LIMIT if draw < rate / 2 else Fault.SERVER_ERROR

    return fault


class Simulation:
    def __init__(self, options: SimOptions):
        self.options = options
        self.spec = SimSpec(options.scale)
        self.spec.check()
        self.project = options.workdir / "project"
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "OPENAI_API_KEY": "sim-key", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(self.project / "src")}  # the copy's code, not main's
        self.env.pop("OPENAI_BASE_URL", None)
        self.stages: list[StageRun] = []
        self.server: FakeOpenAI | None = None
        self.estimate: dict[str, Any] = {}

    # Setup ---------------------------------------------------------------------------------------

    def prepare(self, base_url: str) -> dict[str, dict[str, str]]:
        if self.project.exists():
            subprocess.run(["rm", "-rf", str(self.project)], check=True)
        copy_project(ROOT, self.project)
        (self.project / "models" / "base" / "unused").mkdir(parents=True)
        (self.project / "models" / "base" / "unused" / "README").write_text("llm.backend is openai: no local model\n")
        self.mmm("profile", "apply", str(ROOT / "params" / "paper.yaml"))
        overlay_path = self.options.workdir / "sim-overlay.yaml"
        overlay_path.write_text(yaml.safe_dump(overlay(self.spec, base_url, self.options.concurrency), sort_keys=False))
        self.mmm("profile", "apply", str(overlay_path))
        params = self.params()
        return write_inputs(self.spec, SAMPLE_DIR, self.project / RAW_SUBDIR, params["translate"]["seed"])

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.project / "params.yaml").read_text(encoding="utf-8"))

    def mmm(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(Path(sys.executable).parent / "mmm"), *args], cwd=self.project, env=self.env, check=False,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mmm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    # Stages --------------------------------------------------------------------------------------

    def run_stage(self, name: str, kills: int = 0, expected_requests: int = 0) -> StageRun:
        assert self.server is not None
        record = StageRun(name)
        calls0, answered0 = self.server.completion_calls, len(self.server.answered)
        for attempt in range(kills + 1):
            kill_at = None
            if attempt < kills and expected_requests:
                # Counted from this attempt's start: an earlier run's drain may have answered more than planned.
                done = len(self.server.answered) - answered0
                kill_at = len(self.server.answered) + max(1, (expected_requests - done) // (kills - attempt + 1))
            code, wall, rss = self._dvc_repro(name, kill_at)
            record.runs += 1
            record.exit_codes.append(code)
            record.wall_s += wall
            record.peak_rss_mb = max(record.peak_rss_mb, rss)
            if code == 0:
                break
            if kill_at is None:
                raise RuntimeError(f"stage {name} failed with exit code {code}; see {self.log_path(name)}")
        else:
            raise RuntimeError(f"stage {name} did not finish after {kills} kills")
        record.requests = self.server.completion_calls - calls0
        record.answered = len(self.server.answered) - answered0
        self.stages.append(record)
        print(f"  {name:<22} {record.wall_s:8.1f} s  {record.peak_rss_mb:7.0f} MB  {record.requests:7d} requests"
              + (f"  (exit codes {record.exit_codes})" if record.runs > 1 else ""), flush=True)
        return record

    def log_path(self, name: str) -> Path:
        return self.options.workdir / "logs" / f"{name.replace('@', '_')}.log"

    def _dvc_repro(self, name: str, kill_at: int | None) -> tuple[int, float, float]:
        """Run one stage; SIGTERM its command once the server has answered ``kill_at`` prompts in all."""
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(log, "a", encoding="utf-8") as out:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "dvc"), "repro", "-s", name], cwd=self.project,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)
            killer = None
            if kill_at is not None:
                killer = threading.Thread(target=self._kill_when, args=(proc.pid, kill_at), daemon=True)
                killer.start()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024

    def _kill_when(self, dvc_pid: int, answered: int) -> None:
        """SIGTERM the stage's Python process once ``answered`` prompts are answered; retry until it is found."""
        assert self.server is not None
        while len(self.server.answered) < answered:
            if not Path(f"/proc/{dvc_pid}").exists():
                return
            time.sleep(0.01)
        while Path(f"/proc/{dvc_pid}").exists():
            stages = [pid for pid in _descendants(dvc_pid) if "stages/" in _cmdline(pid)]
            try:
                if stages:
                    os.kill(stages[-1], signal.SIGTERM)  # the deepest: the Python process, not a shell around it
                    print(f"    SIGTERM to the stage after {len(self.server.answered)} answered prompts", flush=True)
                    return
            except ProcessLookupError:
                pass
            time.sleep(0.01)

    # Results -------------------------------------------------------------------------------------

    def tables(self) -> dict[str, dict[str, dict[str, int]]]:
        """Rows per (lang, dataset) in the released dataset, train and test, counted from the run's files: the
        assembled JSONL and the split files, and the Parquet files of the dataset release (``parquet train/test``)."""
        params = self.params()
        files = {"released": params["assemble"]["out"], "train": params["split"]["train"], "test": params["split"]["test"]}
        counted = {name: _count(self.project / path) for name, path in files.items()}
        release = self.project / params["release_data"]["out_dir"]
        return {**counted, **{f"parquet {split}": _count_parquet(release, split) for split in ("train", "test")}}

    def expected(self) -> dict[str, dict[str, dict[str, int]]]:
        return {"released": self.spec.released, "train": self.spec.train, "test": self.spec.test,
                "parquet train": self.spec.train, "parquet test": self.spec.test}


def _count(path: Path) -> dict[str, dict[str, int]]:
    import polars as pl

    frame = pl.read_ndjson(path, schema={"lang": pl.String, "dataset": pl.String})
    counts = frame.group_by("lang", "dataset").len()
    table: dict[str, dict[str, int]] = {}
    for lang, dataset, n in counts.iter_rows():
        table.setdefault(lang, {})[dataset] = n
    return table


def _count_parquet(release: Path, split: str) -> dict[str, dict[str, int]]:
    """Rows per (lang, dataset) of one split of the release, from each cell configuration's Parquet file."""
    import polars as pl

    table: dict[str, dict[str, int]] = {}
    for path in sorted(release.glob(f"*/{split}.parquet")):
        for lang, dataset, n in pl.read_parquet(path, columns=["lang", "dataset"]).group_by("lang", "dataset").len().iter_rows():
            table.setdefault(lang, {})[dataset] = table.get(lang, {}).get(dataset, 0) + n
    return table


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def compare(actual: dict, expected: dict) -> list[str]:
    """One line per cell that differs (empty when every cell of every table matches)."""
    problems = []
    for table, cells in expected.items():
        for lang in LANGS:
            for dataset in DATASETS:
                want, got = cells[lang][dataset], actual[table].get(lang, {}).get(dataset, 0)
                if want != got:
                    problems.append(f"{table} {lang}/{dataset}: expected {want}, counted {got}")
    return problems


def format_tables(actual: dict, expected: dict) -> str:
    lines = []
    for table, title in (("released", "Table 2 (released)"), ("train", "Table 3 (train)"), ("test", "Table 4 (test)")):
        lines.append(f"{title:<22}" + "".join(f"{d:>12}" for d in DATASETS))
        for lang in LANGS:
            cells = []
            for dataset in DATASETS:
                got, want = actual[table].get(lang, {}).get(dataset, 0), expected[table][lang][dataset]
                cells.append(f"{got:>11}{' ' if got == want else '!'}")
            lines.append(f"  {lang:<20}" + "".join(cells))
    return "\n".join(lines)


def run(options: SimOptions) -> dict[str, Any]:
    """The whole simulation; returns the report (also written to ``options.report``)."""
    options.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sim = Simulation(options)
    with FakeOpenAI(latency=options.latency, faults=faults_for(options.fault_rate), retry_after=0.05) as server:
        sim.server = server
        t0 = time.perf_counter()
        fates = sim.prepare(server.base_url)
        setup_s = time.perf_counter() - t0
        server.answer = SimAnswerer(SAMPLE_DIR, fates)
        params = sim.params()
        print(f"paper-sim: scale {options.scale}, inputs written in {setup_s:.1f} s to {sim.project}", flush=True)
        for name in stage_order(params):
            if name.startswith("translate@") and not sim.estimate:
                est = options.workdir / "estimate.json"
                sim.mmm("translate", "--estimate", "--all-items", "--json", str(est))
                sim.estimate = json.loads(est.read_text(encoding="utf-8"))
            kills = options.kills if name == KILLED_STAGE else 0
            expected_requests = sum(sim.spec.translated(dataset) for dataset in MRE) if kills else 0  # translate@en
            sim.run_stage(name, kills, expected_requests)
        answered_twice = sum(1 for n in server.answered.values() if n > 1)
        requests = server.completion_calls
    actual, expected = sim.tables(), sim.expected()
    problems = compare(actual, expected)
    report = {
        "scale": options.scale,
        "options": {"latency_s": options.latency, "concurrency": options.concurrency, "fault_rate": options.fault_rate,
                    "kills": options.kills},
        "tables_match": not problems,
        "mismatches": problems,
        "tables": actual,
        "expected": expected,
        "stages": [vars(s) for s in sim.stages],
        "server": {"requests": requests, "prompts_answered_twice": answered_twice},
        "estimate": _estimate_summary(sim.estimate, sim.stages),
        "setup_s": round(setup_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(max((s.peak_rss_mb for s in sim.stages), default=0.0)),
    }
    print(format_tables(actual, expected))
    parquet = [line for line in problems if line.startswith("parquet")]
    print(f"data/release Parquet train/test: {'every cell equals Tables 3 and 4' if not parquet else f'{len(parquet)} cells differ'}")
    for item, values in report["estimate"].items():
        low, high = values["requests_estimated"]
        print(f"estimate {item}: {low if low == high else f'{low}-{high}'} requests, "
              f"${values['usd_estimated'][0]}-${values['usd_estimated'][1]}; "
              f"the server answered {values['distinct_prompts_answered']} distinct prompts")
    print(f"paper-sim: {'all cells match' if not problems else f'{len(problems)} cells differ'}; "
          f"{requests} requests, {answered_twice} prompts answered twice; total {report['total_s']} s, "
          f"peak {report['peak_rss_mb']} MB")
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _estimate_summary(estimate: dict[str, Any], stages: list[StageRun]) -> dict[str, Any]:
    """Per translate item: what ``mmm translate --estimate`` predicted before the run, beside what the server saw."""
    sent = {stage.name.removeprefix("translate@"): stage for stage in stages if stage.name.startswith("translate@")}
    summary = {}
    for item, values in (estimate.get("items") or {}).items():
        low, high = values["whole"]["low"], values["whole"]["high"]
        stage = sent.get(item)
        summary[item] = {"requests_estimated": [low["requests"], high["requests"]],
                         "prompt_tokens_estimated": [low["prompt_tokens"], high["prompt_tokens"]],
                         "completion_tokens_estimated": [low["completion_tokens"], high["completion_tokens"]],
                         "usd_estimated": [round(low["usd"], 2), round(high["usd"], 2)],
                         "distinct_prompts_answered": stage.answered if stage else None,
                         "http_requests_received": stage.requests if stage else None}
    return summary
