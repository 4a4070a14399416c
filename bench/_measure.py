"""Measuring helpers for the benchmarks: process memory and CPU from /proc, percentiles,
an incremental SSE parser, progress lines on stderr."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def process_state(pid: int) -> str:
    """R, S, Z, ... from /proc/<pid>/stat; '' once the process is gone."""
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return ""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    tree = _children() if tree is None else tree
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def rss_mb(pids: list[int]) -> float:
    """Sum of VmRSS over the processes (shared pages count once per process)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of the processes, and of their waited-for children."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Every `interval` s: RSS (MB, process + children) of each named process, in a thread."""

    def __init__(self, pids: dict[str, int | None], interval: float = 1.0) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while True:
            tree = _children()
            reading = {n: rss_mb(process_tree(p, tree)) for n, p in self.pids.items()}
            self.samples.append((time.monotonic(), reading))
            if self._stop.wait(self.interval):
                return

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def peak(self, name: str, start: float = 0.0, end: float = float("inf")) -> float:
        values = [s[name] for t, s in self.samples if start <= t <= end and name in s]
        return max(values, default=0.0)

    def last(self, name: str) -> float:
        return self.samples[-1][1].get(name, 0.0) if self.samples else 0.0


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class SSE:
    """Incremental text/event-stream parser: feed lines, get (event, data) when one completes."""

    def __init__(self) -> None:
        self.kind = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line.startswith("event:"):
            self.kind = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].strip())
        elif not line.strip() and self.data:
            kind, raw = self.kind, "\n".join(self.data)
            self.kind, self.data = "message", []
            try:
                return kind, json.loads(raw)
            except json.JSONDecodeError:
                return kind, raw
        return None
