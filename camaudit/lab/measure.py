"""Measure a command against the lab: its wall time and the peak resident memory of its whole
process tree (the scan forks sweep workers, so one process's figure is not the scan's).

For tests and benchmarks (issue 15). The tree is sampled from /proc (Linux): every
``interval`` seconds the resident set sizes of the process and all its descendants are added
up, and the largest sum is the peak. Adding RSS counts pages a forked worker shares with its
parent twice, so the figure errs on the high side, which is the safe side for a memory bound.
A sample can miss a peak shorter than ``interval``; each process's own high-water mark (VmHWM)
is read too, and the peak reported is the larger of the sampled tree sum and the largest
single-process high-water mark.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def _status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process ended between listing and reading
        return 0
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0  # a zombie has no memory lines


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants (through /proc/PID/task/*/children)."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        seen.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children if int(c) not in seen)
    return seen


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants now, in KiB."""
    return sum(_status_kib(p, "VmRSS:") for p in process_tree(pid))


@dataclass(slots=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    #: peak of the summed resident memory of the process tree, MiB
    peak_rss_mb: float
    #: how many processes the tree had at most (the scan and its sweep workers)
    max_processes: int


def run_measured(argv: Sequence[str], *, timeout: float, interval: float = 0.02,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> Measured:
    """Run ``argv`` to its end (killed after ``timeout`` seconds: then returncode is negative),
    sampling its process tree's memory every ``interval`` seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(env) if env is not None else None, cwd=cwd)
    peak_kib = 0
    max_processes = 0
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak_kib, max_processes
        while not finished.is_set():
            pids = process_tree(proc.pid)
            max_processes = max(max_processes, len(pids))
            total = 0
            for pid in pids:
                total += _status_kib(pid, "VmRSS:")
                # A worker's own high-water mark catches a peak shorter than the interval.
                peak_kib = max(peak_kib, _status_kib(pid, "VmHWM:"))
            peak_kib = max(peak_kib, total)
            finished.wait(interval)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # this process only: its workers die with their parent's pipe
        stdout, stderr = proc.communicate()
    finally:
        finished.set()
        sampler.join(5)
    return Measured(proc.returncode, stdout, stderr, time.monotonic() - started, peak_kib / 1024, max_processes)
