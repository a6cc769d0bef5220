"""Benchmark: a whole `camaudit scan` of a loopback lab, and of one host alone (issue 15 item 2).

Starts a lab of --devices emulated devices (``python -m camaudit.lab.farm``, a process of its
own, not counted) on 127.77.0.0/16 and times whole processes, with camaudit's defaults:

    camaudit scan @TARGETS --ports LIST --db TMP --json -q --fail-on none     # every lab device
    camaudit scan ADDRESS  --ports LIST --db TMP --json -q --fail-on none     # one host alone

For each: wall time, CPU time (user + system of the process and its children), the peak resident
memory of its process tree (camaudit.lab.measure), and how many devices' makers it named right
against the lab's manifest (devices of the lab's "other" group have no camera maker and are not
counted). One host alone is measured for each kind of device in the lab: the first device of
every lab profile, cameras and other hosts alike (a Hikvision's silent SDK port, a PC that
answers no discovery), --one-host-repeat runs each. With --baseline DIR (a checkout of another camaudit version, e.g. a git worktree of an
older commit), the same runs are made with that code too, alternating which goes first, and the
ratios are printed: the comparison is made in one run, on one machine at one moment.

Goals: every maker right; the whole lab (1,000 devices) in under 30 s and under 150 MB; one
host of every profile in under 1.5 s (medians). --repeat 0 skips the whole lab. Exit code 0 when they are met, 1 otherwise, 2 on a setup error.
Loopback only (127.0.0.0/8); every run is bounded by --timeout; the lab and temporary files are
removed on exit.

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/scan_throughput.py
    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/scan_throughput.py --repeat 3 --baseline /work/wt/old
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from looplab import camaudit_makers, loopback_lab, maker_of, require_loopback, score

from camaudit.lab.measure import run_measured

GOAL_LAB_SECONDS = 30.0
GOAL_LAB_MB = 150.0
GOAL_ONE_HOST_SECONDS = 1.5


def run_scan(code: Path, targets: str, ports: str, db: Path, timeout: float,
             manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """One whole `camaudit scan` process with ``code`` first on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(code))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    measured = run_measured([sys.executable, "-m", "camaudit", "scan", targets, "--ports", ports, "--db", str(db),
                             "--json", "-q", "--fail-on", "none"], timeout=timeout, env=env, cwd=str(code))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if measured.returncode != 0:
        raise SystemExit(f"camaudit ({code}) failed ({measured.returncode}): {measured.stderr[-800:]}")
    found = camaudit_makers(measured.stdout)
    named = {e["address"]: found.get(e["address"]) == maker_of(e) for e in manifest}
    return {"wall_s": round(measured.wall_s, 2),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
            "peak_rss_mb": round(measured.peak_rss_mb, 1), "makers": score(manifest, named)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"wall_s": [r["wall_s"] for r in runs], "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
            "makers_right": min(r["makers"]["named_correctly"] for r in runs),
            "makers_counted": runs[0]["makers"]["devices_with_a_maker"],
            "missed": sorted({m for r in runs for m in r["makers"]["missed"]})}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000, help="lab devices (1-5000)")
    parser.add_argument("--subnet", default="127.77.0.0/16", help="loopback block of the lab")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="runs of the whole lab per code (0-5; 0: one host only)")
    parser.add_argument("--one-host-repeat", type=int, default=3,
                        help="runs of the one-host scan per profile and code (1-20)")
    parser.add_argument("--baseline", type=Path, default=None, help="another camaudit checkout to compare with")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one run")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    require_loopback(parser, args.subnet)
    if not 1 <= args.devices <= 5000 or not 0 <= args.repeat <= 5 or not 1 <= args.one_host_repeat <= 20:
        parser.error("--devices 1-5000, --repeat 0-5, --one-host-repeat 1-20")
    if args.baseline is not None and not (args.baseline / "camaudit" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a camaudit checkout")
    codes = {"camaudit": Path(__file__).resolve().parents[1]}
    if args.baseline is not None:
        codes["baseline"] = args.baseline.resolve()

    load_start = [round(x, 2) for x in os.getloadavg()]
    lab_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    # profile -> code -> runs
    one_runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="camaudit-bench-") as tmp:
        workdir = Path(tmp)
        with loopback_lab(args.devices, args.subnet, args.seed, workdir) as running:
            manifest, ports = running.manifest, running.ports
            first_of: dict[str, dict[str, Any]] = {}
            for entry in manifest:
                first_of.setdefault(entry["profile"], entry)
            names = list(codes)
            for n in range(args.repeat):
                for name in names if n % 2 == 0 else reversed(names):
                    lab_runs[name].append(run_scan(codes[name], f"@{running.targets}", ports,
                                                   workdir / f"{name}-{n}.db", args.timeout, manifest))
            for profile, device in sorted(first_of.items()):
                one_runs[profile] = {name: [] for name in codes}
                for n in range(args.one_host_repeat):
                    for name in names if n % 2 == 0 else reversed(names):
                        one_runs[profile][name].append(run_scan(
                            codes[name], device["address"], ports, workdir / f"{name}-{profile}-{n}.db",
                            args.timeout, [device]))

    lab = {name: summary(runs) for name, runs in lab_runs.items() if runs}
    one = {profile: {"address": first_of[profile]["address"], **{name: summary(runs) for name, runs in by_code.items()}}
           for profile, by_code in one_runs.items()}  # fmt: skip
    slowest = max(one, key=lambda p: one[p]["camaudit"]["wall_s_median"])
    goals = {
        "makers_all_right": all(v["camaudit"]["makers_right"] == v["camaudit"]["makers_counted"] for v in one.values()),
        f"one_host_under_{GOAL_ONE_HOST_SECONDS:g}_s_for_every_profile":
            one[slowest]["camaudit"]["wall_s_median"] < GOAL_ONE_HOST_SECONDS,
    }  # fmt: skip
    if lab:
        mine_lab = lab["camaudit"]
        goals["makers_all_right"] = goals["makers_all_right"] and mine_lab["makers_right"] == mine_lab["makers_counted"]
        goals[f"lab_under_{GOAL_LAB_SECONDS:g}_s"] = mine_lab["wall_s_median"] < GOAL_LAB_SECONDS
        goals[f"lab_under_{GOAL_LAB_MB:g}_MB"] = mine_lab["peak_rss_mb_max"] < GOAL_LAB_MB
    result: dict[str, Any] = {
        "devices": args.devices, "ports": ports, "slowest_one_host_profile": slowest,
        "lab": lab, "one_host_runs": one, "goals": goals,
        "machine": {"cores": len(os.sched_getaffinity(0)), "load_average_start": load_start,
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip
    if "baseline" in codes:
        ratios = {f"one_host_wall_{p}": round(v["camaudit"]["wall_s_median"] / v["baseline"]["wall_s_median"], 3)
                  for p, v in one.items()}  # fmt: skip
        if lab:
            ratios["lab_wall"] = round(lab["camaudit"]["wall_s_median"] / lab["baseline"]["wall_s_median"], 3)
            ratios["lab_peak_rss"] = round(lab["camaudit"]["peak_rss_mb_max"] / lab["baseline"]["peak_rss_mb_max"], 3)
        result["ratios_camaudit_to_baseline"] = ratios
    if args.json:
        print(json.dumps(result, indent=2))  # noqa: T201
    else:
        _print(result)
    return 0 if all(goals.values()) else 1


def _print(result: dict[str, Any]) -> None:
    lines = [f"{result['devices']} lab devices, ports {result['ports']}"]
    for name, lab in result["lab"].items():
        lines.append(f"{name:9s} lab: median {lab['wall_s_median']:6.2f} s (runs {lab['wall_s']}), "
                     f"CPU {lab['cpu_s_median']:.1f} s, peak {lab['peak_rss_mb_max']:.1f} MB, "
                     f"makers {lab['makers_right']}/{lab['makers_counted']}")
    lines.append("one host alone, by profile:")
    for profile, by_code in result["one_host_runs"].items():
        for name, one in by_code.items():
            if name == "address":
                continue
            maker = f", maker {one['makers_right']}/{one['makers_counted']}" if one["makers_counted"] else ""
            lines.append(f"  {profile:26s} {name:9s} median {one['wall_s_median']:.2f} s (runs {one['wall_s']}), "
                         f"peak {one['peak_rss_mb_max']:.1f} MB{maker}")
    if "ratios_camaudit_to_baseline" in result:
        lines.append(f"ratios camaudit/baseline: {result['ratios_camaudit_to_baseline']}")
    lines.append("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))
    lines.append(f"load average {result['machine']['load_average_start']} -> {result['machine']['load_average_end']}, "
                 f"{result['machine']['cores']} cores")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
