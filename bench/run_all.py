"""Run every benchmark one after another (`make bench`), then list each one's goal line.

Benchmarks run one at a time because they share two cores; each prints its own report
with the machine it ran on. The 1M-chunk query-latency set is built once (12-25 min)
and kept in `--data-dir`, so later runs reuse it.

    .venv/bin/python bench/run_all.py [--quick] [--data-dir DIR]

`--quick` runs small sizes only (a few minutes): no 1M set, a 20 s load test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def plan(quick: bool, data_dir: Path) -> list[list[str]]:
    sizes = "10000,100000" if quick else "10000,100000,1000000"
    seconds = "20" if quick else "60"
    return [
        ["ingest_throughput.py"],
        ["small_behind_large.py", *([] if quick else ["--compare"])],  # the ingest lanes
        ["embed_backends.py", *(["--repeats", "3"] if quick else ["--modes", "hybrid,dense"])],
        ["query_latency.py", "--sizes", sizes, "--data-dir", str(data_dir / "query-latency")],
        ["packing_speed.py"],
        ["chat_overhead.py"],
        ["documents_page.py", "--documents", "2000" if quick else "20000"],
        ["load.py", "--uploads", "0", "--seconds", seconds],  # concurrency: chats only
        ["load.py", "--seconds", seconds],  # load: chats and uploads together
        ["ocr_upscale.py"],
        ["abuse.py"],  # quotas, limits and sign-in throttling under attack
        ["first_question.py"],  # the first question after `make run` against the second
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH.parent / "data" / "bench",
        help="where prepared benchmark data is kept between runs",
    )
    args = parser.parse_args()
    goals: list[tuple[str, int, list[str]]] = []
    for command in plan(args.quick, args.data_dir):
        name = " ".join(command)
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(BENCH / command[0]), *command[1:]],
            stdout=subprocess.PIPE,
            text=True,
            cwd=BENCH.parent,
        )
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip())
        code = process.wait()
        print(f"({time.monotonic() - started:.0f} s, exit {code})", flush=True)
        goals.append((name, code, [line for line in lines if "goal" in line.lower()]))
    print("\n=== Goals ===")
    for name, code, lines in goals:
        status = "ok" if code == 0 else f"exit {code}"
        print(f"{name} [{status}]")
        for line in lines:
            print(f"    {line}")
    sys.exit(0 if all(code == 0 for _, code, _ in goals) else 1)


if __name__ == "__main__":
    main()
