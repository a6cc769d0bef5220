"""Merge throughput at the centre: bundles per second and rows per second into the central store.

Builds an agent store with N synthetic scans of one site (H hosts each, K observations per host,
two open ports per host), exports each as a signed bundle (in memory), then times, into a fresh
central store on disk:

- ``merge``: verify + merge (one transaction with the ledger row), as the merger does before it
  acknowledges;
- ``merge+finalise``: the same, then identification and assessment of each merged scan at the
  centre (what `bundle import` and `central serve` do in full).

No network: the merge is what is measured. Run by hand:

    python benchmarks/merge_throughput.py                      # 50 bundles of 20 hosts x 8 observations
    python benchmarks/merge_throughput.py --bundles 200 --hosts 50 --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from camaudit.fleet.bundle import verify_bundle_bytes
from camaudit.fleet.export import export_bundle
from camaudit.fleet.keys import load_or_create_key
from camaudit.fleet.merge import finalise_merged, merge_verified
from camaudit.model import Observation
from camaudit.store import open_store


def build_agent_store(path: Path, *, bundles: int, hosts: int, observations: int) -> list[str]:
    scan_ids = []
    with open_store(path) as store:
        for n in range(bundles):
            scan_id = store.start_scan(targets=["10.1.0.0/24"], site="pool", config={"bench": n})
            addresses = [f"10.1.{n % 250}.{h + 1}" for h in range(hosts)]
            store.add_services(scan_id, [(a, p) for a in addresses for p in (80, 554)])
            store.add_observations(scan_id, [
                Observation(a, kind, f"{kind} value {n}-{h}-{k}", 80, "bench")
                for h, a in enumerate(addresses)
                for k, kind in enumerate(["http_server", "http_title", "http_headers", "rtsp_server",
                                          "http_www_authenticate", "tls_cert", "http_body", "favicon_md5"]
                                         [:observations])])
            store.finish_scan(scan_id, "complete")
            scan_ids.append(scan_id)
    return scan_ids


def run(bundles: int, hosts: int, observations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="camaudit-merge-bench-") as tmp:
        root = Path(tmp)
        key = load_or_create_key(root / "agent.key")
        scan_ids = build_agent_store(root / "agent.db", bundles=bundles, hosts=hosts, observations=observations)
        with open_store(root / "agent.db") as store:
            made = [export_bundle(store, key, scan_ref=s, site="pool") for s in scan_ids]
        trusted = {"pool": (key.public_key,)}
        rows = sum(sum(b.counts.values()) for b in made)
        size = sum(len(b.bundle) for b in made)
        results: dict[str, Any] = {"bundles": bundles, "hosts_per_scan": hosts, "observations_per_host": observations,
                                   "rows": rows, "bytes": size}
        for label, finalise in (("merge", False), ("merge+finalise", True)):
            central = root / f"central-{label}.db"
            with open_store(central) as store:
                started = time.perf_counter()
                for b in made:
                    merge_verified(store, verify_bundle_bytes(b.bundle, trusted))
                    if finalise:
                        finalise_merged(store)
                elapsed = time.perf_counter() - started
            results[label] = {"seconds": round(elapsed, 3), "bundles_per_second": round(bundles / elapsed, 1),
                              "rows_per_second": round(rows / elapsed)}
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--observations", type=int, default=8, choices=range(1, 9))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.bundles, args.hosts, args.observations)
    result["load_average"] = [round(x, 1) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['bundles']} bundles, {result['rows']} rows, {result['bytes'] / 1e6:.1f} MB "
          f"(load {result['load_average']})")
    for label in ("merge", "merge+finalise"):
        r = result[label]
        print(f"  {label:<15} {r['seconds']:>7.2f} s  {r['bundles_per_second']:>7.1f} bundles/s  "
              f"{r['rows_per_second']:>8} rows/s")


if __name__ == "__main__":
    main()
