"""``python benchmarks/paper_sim`` (or ``make paper-sim``): the simulated paper run; see runner.py.

    python benchmarks/paper_sim [--scale 1] [--workdir /tmp/mmm-paper-sim] [--latency 0]
        [--concurrency 32] [--fault-rate 0] [--kills 0] [--report reports/paper-sim.json]

Exit 0 when Tables 2, 3 and 4 come out exactly, 1 when a cell differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: the paper_sim package

from paper_sim.runner import SimOptions, run


def main() -> int:
    defaults = SimOptions()
    parser = argparse.ArgumentParser(prog="paper_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=defaults.scale, help="divide every count by this (1: the paper's)")
    parser.add_argument("--workdir", type=Path, default=defaults.workdir, help="where the project copy runs")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds before each answer")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="llm.concurrency")
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate, help="share of prompts failing once (429/500)")
    parser.add_argument("--kills", type=int, default=defaults.kills, help="SIGTERMs sent to translate@en")
    parser.add_argument("--report", type=Path, default=defaults.report, help="the JSON report")
    args = parser.parse_args()
    report = run(SimOptions(scale=args.scale, workdir=args.workdir, latency=args.latency, concurrency=args.concurrency,
                            fault_rate=args.fault_rate, kills=args.kills, report=args.report))
    return 0 if report["tables_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
