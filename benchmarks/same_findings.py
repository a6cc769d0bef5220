"""Check: does this camaudit find what another version finds, on the same lab? (issue 15 item 2)

A speed-up must not change findings. Starts a loopback lab of --devices emulated devices
(``python -m camaudit.lab.farm``, seed --seed) on 127.77.0.0/16, runs ``camaudit scan`` with this
code and with the code in --baseline (a checkout of another version, e.g. a git worktree of an
older commit), one after the other, with the same targets, ports and defaults, and compares:

* per host: the open ports; the identity (vendor, brand, model, serial, firmware, device type);
  how many observations of each kind on each port; the gateway the device reported; its
  unverified reads;
* the findings (rule, severity, subject, title, detail), without their ids and evidence, which
  carry timestamps.

Exit code 0 when everything is the same, 1 otherwise (the differences are printed), 2 on a setup
error. Loopback only (127.0.0.0/8); every run is bounded by --timeout.

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/same_findings.py --baseline /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from looplab import loopback_lab, require_loopback


def scan(code: Path, targets: Path, ports: str, db: Path, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(code))
    done = subprocess.run([sys.executable, "-m", "camaudit", "scan", f"@{targets}", "--ports", ports, "--db", str(db),
                           "--json", "-q", "--fail-on", "none"], capture_output=True, text=True, env=env,
                          cwd=str(code), timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"camaudit ({code}) failed ({done.returncode}): {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def summary(doc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    hosts = {}
    for h in doc["hosts"]:
        identity = h.get("identity") or {}
        settings = h.get("settings") or {}
        kinds = collections.Counter((o["kind"], o.get("port")) for o in h["observations"])
        hosts[h["address"]] = {
            "ports": h["ports"],
            "identity": [identity.get(k) for k in ("vendor", "brand", "model", "serial", "firmware", "device_type")],
            "evidence": sorted([kind, port, n] for (kind, port), n in kinds.items()),
            "gateway": settings.get("gateway"),
            "not_verified": sorted(settings.get("not_verified") or []),
        }
    findings = sorted((f["rule"], f["severity"], f["subject"], f["title"], f["detail"]) for f in doc["findings"])
    return hosts, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other camaudit checkout")
    parser.add_argument("--devices", type=int, default=100, help="lab devices (1-5000)")
    parser.add_argument("--subnet", default="127.77.0.0/16", help="loopback block of the lab")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one scan")
    args = parser.parse_args()
    require_loopback(parser, args.subnet)
    if not 1 <= args.devices <= 5000:
        parser.error("--devices 1-5000")
    if not (args.baseline / "camaudit" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a camaudit checkout")
    codes = {"this": Path(__file__).resolve().parents[1], "baseline": args.baseline.resolve()}
    with tempfile.TemporaryDirectory(prefix="camaudit-same-") as tmp:
        workdir = Path(tmp)
        with loopback_lab(args.devices, args.subnet, args.seed, workdir) as lab:
            docs = {name: scan(code, lab.targets, lab.ports, workdir / f"{name}.db", args.timeout)
                    for name, code in codes.items()}
    (hosts, findings), (base_hosts, base_findings) = summary(docs["this"]), summary(docs["baseline"])
    differing = sorted(a for a in set(hosts) | set(base_hosts) if hosts.get(a) != base_hosts.get(a))
    lines = [f"{args.devices} lab devices (seed {args.seed}): hosts {len(hosts)} here, {len(base_hosts)} in the baseline; "
             f"findings {len(findings)} here, {len(base_findings)} in the baseline"]
    for address in differing[:10]:
        lines += [f"  {address} differs", f"    here:     {hosts.get(address)}", f"    baseline: {base_hosts.get(address)}"]
    for finding in sorted(set(findings) ^ set(base_findings))[:10]:
        lines.append(f"  finding only {'here' if finding in findings else 'in the baseline'}: {finding}")
    same = not differing and findings == base_findings
    lines.append("the same hosts, evidence and findings" if same else f"{len(differing)} host(s) differ")
    print("\n".join(lines))  # noqa: T201
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
