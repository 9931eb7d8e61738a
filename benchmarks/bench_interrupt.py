"""Benchmark how fast Ctrl-C stops `mmm filter` / `mmm evaluate` on a big input, and what it leaves.

Builds ROWS generated en rows (the filter benchmark's generator), runs the command once to make
the "previous outputs", then REPEAT times: starts it again on a changed input, sends SIGINT after
AFTER seconds, and reports the time from the signal to the process's exit, its exit code, whether
every previous output is byte-identical, and whether any hidden temporary was left.
Target: under a second from Ctrl-C to exit, exit 130, outputs unchanged, no temporaries.

    .venv/bin/python benchmarks/bench_interrupt.py [--command filter|evaluate] [--rows 1200000] [--after 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_filter import generate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MMM = str(Path(sys.executable).parent / "mmm")


def write_input(path: Path, rows: int, seed: int, predictions: bool) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in generate(rows, seed):
            row["lang"] = "en"  # one language per filter input
            if predictions:
                row["prediction"] = row["output"]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def command(name: str, folder: Path) -> list[str]:
    if name == "filter":
        return [MMM, "filter", "in.jsonl", "--lang", "en", "--kept", "kept.jsonl", "--rejected", "rejected.jsonl",
                "--metrics", "filter.json", "--params", str(ROOT / "params.yaml")]
    return [MMM, "evaluate", "in.jsonl", "--out", "evaluate.json", "--report", "table1.md", "--plot", "f1.png",
            "--params", str(ROOT / "params.yaml")]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "in.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--command", choices=["filter", "evaluate"], default="filter")
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--after", type=float, default=2.0, help="seconds between start and Ctrl-C")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_input(folder / "in.jsonl", args.rows, 7, args.command == "evaluate")
        size = (folder / "in.jsonl").stat().st_size / 1e6
        start = time.perf_counter()
        subprocess.run(command(args.command, folder), cwd=folder, env=env, check=True, capture_output=True)
        print(f"{args.command}: {args.rows:,} rows ({size:.0f} MB), full run {time.perf_counter() - start:.1f} s")
        previous = digests(folder)
        write_input(folder / "in.jsonl", args.rows, 8, args.command == "evaluate")  # new input, new outputs
        for n in range(args.repeat):
            proc = subprocess.Popen(command(args.command, folder), cwd=folder, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(args.after)
            if proc.poll() is not None:
                raise SystemExit(f"the command finished within {args.after} s: use more --rows or a shorter --after")
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate()
            stopped = time.perf_counter() - sent
            leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
            print(f"run {n + 1}: Ctrl-C -> exit in {stopped:.3f} s, exit {proc.returncode}, previous outputs "
                  f"{'unchanged' if digests(folder) == previous else 'CHANGED'}, temporaries left: {leftovers or 'none'}; "
                  f"stderr: {err.strip().splitlines()[-1] if err.strip() else ''}")


if __name__ == "__main__":
    main()
