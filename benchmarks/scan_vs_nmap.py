"""Benchmark: the whole job, `camaudit scan` against `nmap -sV --version-light`, on the lab.

Starts a loopback lab of --devices emulated cameras (``python -m camaudit.lab.farm``, a process
of its own, not counted), then runs each tool as a whole process on the same addresses and the
same ports (every TCP port the lab's devices listen on), alternating which goes first:

    camaudit scan @TARGETS --ports LIST --db TMP --json -q --fail-on none
    nmap -sV --version-light -T4 -Pn -n -p LIST -iL TARGETS -oX TMP

and, with --full-subset K, ``nmap -sV`` (full version intensity) on the first K devices.

For each run: wall time, the peak resident memory of the process tree (camaudit.lab.measure:
/proc sampled, RSS of every process added up), and how many devices' makers it named correctly
against the lab's manifest. camaudit names a maker in ``hosts[].identity.vendor``; nmap is
credited when the maker (or the device's brand, or a known alias) appears in any service's
product, extra info, device type, OS type or CPE. Devices of the lab's "other" group have no
camera maker to name and are not counted. Ratios are camaudit / nmap, from the same run.

camaudit runs with its defaults (per-host concurrency, rates): nothing is tuned for the
benchmark. Loopback only (127.0.0.0/8); every run is bounded by --timeout; the lab and temporary
files are removed on exit.

    /work/main/.venv/bin/python benchmarks/scan_vs_nmap.py --devices 100
    /work/main/.venv/bin/python benchmarks/scan_vs_nmap.py --devices 100 --full-subset 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DefusedET
from looplab import camaudit_makers, loopback_lab, maker_of, require_loopback, score

from camaudit.lab.measure import Measured, run_measured

#: Other names nmap's probes may give a maker (rebrands and old company names).
ALIASES = {
    "hanwha": ("hanwha", "samsung", "wisenet", "techwin"),
    "xiongmai": ("xiongmai", "xmeye", "netsurveillance"),
    "bosch": ("bosch",),
    "axis": ("axis",),
    "hikvision": ("hikvision", "ezviz", "hikconnect"),
    "dahua": ("dahua", "amcrest", "lorex", "imou"),
}


def nmap_texts(xml_path: Path) -> dict[str, str]:
    """address -> everything nmap said about the host's services and OS, lower-cased."""
    out: dict[str, str] = {}
    root = DefusedET.parse(xml_path).getroot()
    if root is None:
        return out
    for host in root.iter("host"):
        address = next((a.get("addr") for a in host.iter("address") if a.get("addrtype") == "ipv4"), None)
        if address is None:
            continue
        words = []
        for service in host.iter("service"):
            words += [service.get(k) or "" for k in ("name", "product", "extrainfo", "devicetype", "ostype", "version")]
            words += [cpe.text or "" for cpe in service.iter("cpe")]
        out[address] = " ".join(words).lower()
    return out


def named_by_nmap(text: str, entry: dict[str, Any]) -> bool:
    maker = maker_of(entry)
    if maker is None:
        return False
    names = {maker, *ALIASES.get(maker, ()), str(entry.get("brand") or "").lower()} - {""}
    return any(name in text for name in names)


def run_camaudit(camaudit: list[str], targets: Path, ports: str, workdir: Path, n: int, timeout: float,
                 manifest: list[dict[str, Any]]) -> tuple[Measured, dict[str, Any]]:
    measured = run_measured([*camaudit, "scan", f"@{targets}", "--ports", ports, "--db", str(workdir / f"scan{n}.db"),
                             "--json", "-q", "--fail-on", "none"], timeout=timeout)
    if measured.returncode != 0:
        raise SystemExit(f"camaudit failed ({measured.returncode}): {measured.stderr[-800:]}")
    found = camaudit_makers(measured.stdout)
    named = {e["address"]: found.get(e["address"]) == maker_of(e) for e in manifest}
    return measured, score(manifest, named)


def run_nmap(nmap: str, targets: Path, ports: str, workdir: Path, tag: str, timeout: float,
             manifest: list[dict[str, Any]], light: bool) -> tuple[Measured, dict[str, Any]]:
    xml = workdir / f"nmap-{tag}.xml"
    argv = [nmap, "-sV", *(["--version-light"] if light else []), "-T4", "-Pn", "-n", "-p", ports,
            "-iL", str(targets), "-oX", str(xml)]
    measured = run_measured(argv, timeout=timeout)
    if measured.returncode != 0:
        raise SystemExit(f"nmap failed ({measured.returncode}): {measured.stderr[-800:]}")
    texts = nmap_texts(xml)
    named = {e["address"]: named_by_nmap(texts.get(e["address"], ""), e) for e in manifest}
    return measured, score(manifest, named)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100, help="lab devices (1-5000)")
    parser.add_argument("--subnet", default="127.77.0.0/16", help="loopback block of the lab")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool, alternating order (1-5)")
    parser.add_argument("--full-subset", type=int, default=0, metavar="K",
                        help="also nmap -sV (full intensity) and camaudit on the first K devices")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed for one run")
    parser.add_argument("--camaudit", default=None, help="camaudit command (default: this Python -m camaudit)")
    parser.add_argument("--nmap", default=shutil.which("nmap") or "nmap")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    require_loopback(parser, args.subnet)
    if not 1 <= args.devices <= 5000 or not 1 <= args.repeat <= 5 or not 0 <= args.full_subset <= args.devices:
        parser.error("--devices 1-5000, --repeat 1-5, --full-subset 0..devices")
    if shutil.which(args.nmap) is None:
        parser.error(f"nmap not found ({args.nmap}); apt-get install nmap")
    camaudit = args.camaudit.split() if args.camaudit else [sys.executable, "-m", "camaudit"]

    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="camaudit-bench-") as tmp:
        workdir = Path(tmp)
        with loopback_lab(args.devices, args.subnet, args.seed, workdir) as lab:
            manifest, ports, targets = lab.manifest, lab.ports, lab.targets
            runs: dict[str, list[tuple[Measured, dict[str, Any]]]] = {"camaudit": [], "nmap": []}
            for n in range(args.repeat):
                order = ("camaudit", "nmap") if n % 2 == 0 else ("nmap", "camaudit")
                for tool in order:
                    if tool == "camaudit":
                        runs[tool].append(run_camaudit(camaudit, targets, ports, workdir, n, args.timeout, manifest))
                    else:
                        runs[tool].append(run_nmap(args.nmap, targets, ports, workdir, f"light{n}", args.timeout,
                                                   manifest, light=True))
            subset: dict[str, Any] = {}
            if args.full_subset:
                part = manifest[: args.full_subset]
                part_targets = workdir / "subset.txt"
                part_targets.write_text("\n".join(e["address"] for e in part) + "\n")
                c = run_camaudit(camaudit, part_targets, ports, workdir, 99, args.timeout, part)
                m = run_nmap(args.nmap, part_targets, ports, workdir, "full", args.timeout, part, light=False)
                subset = {"devices": len(part), "camaudit": _summary([c]), "nmap_sV": _summary([m]),
                          "wall_ratio": round(c[0].wall_s / m[0].wall_s, 3),
                          "memory_ratio": round(c[0].peak_rss_mb / m[0].peak_rss_mb, 3)}
    nmap_version = subprocess.run([args.nmap, "--version"], capture_output=True, text=True, timeout=10).stdout
    cam, nm = _summary(runs["camaudit"]), _summary(runs["nmap"])
    result = {
        "devices": args.devices, "ports": ports, "repeat": args.repeat,
        "camaudit": cam, "nmap_sV_version_light": nm,
        "wall_ratio": round(cam["wall_s_median"] / nm["wall_s_median"], 3),
        "memory_ratio": round(cam["peak_rss_mb_max"] / nm["peak_rss_mb_max"], 3),
        "full_subset": subset or None,
        "machine": {"cores": len(os.sched_getaffinity(0)), "load_average_start": load_start,
                    "load_average_end": [round(x, 2) for x in os.getloadavg()],
                    "nmap": nmap_version.splitlines()[0] if nmap_version else "?"},
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))  # noqa: T201
    else:
        _print(result)
    return 0


def _summary(runs: list[tuple[Measured, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "wall_s": [round(m.wall_s, 2) for m, _ in runs],
        "wall_s_median": round(statistics.median(m.wall_s for m, _ in runs), 2),
        "peak_rss_mb_max": round(max(m.peak_rss_mb for m, _ in runs), 1),
        "makers": runs[-1][1],
    }


def _print(result: dict[str, Any]) -> None:
    cam, nm = result["camaudit"], result["nmap_sV_version_light"]
    lines = [
        f"{result['devices']} lab devices, ports {result['ports']}, {result['repeat']} run(s) each",
        f"camaudit scan          wall {cam['wall_s_median']:7.1f} s  peak {cam['peak_rss_mb_max']:6.1f} MB  "
        f"makers {cam['makers']['named_correctly']}/{cam['makers']['devices_with_a_maker']}",
        f"nmap -sV version-light wall {nm['wall_s_median']:7.1f} s  peak {nm['peak_rss_mb_max']:6.1f} MB  "
        f"makers {nm['makers']['named_correctly']}/{nm['makers']['devices_with_a_maker']}",
        f"ratios camaudit/nmap: wall {result['wall_ratio']}, memory {result['memory_ratio']}",
    ]
    if result["full_subset"]:
        sub = result["full_subset"]
        lines.append(f"subset of {sub['devices']}: camaudit {sub['camaudit']['wall_s_median']} s, "
                     f"{sub['camaudit']['makers']['named_correctly']}/{sub['camaudit']['makers']['devices_with_a_maker']}; "
                     f"nmap -sV {sub['nmap_sV']['wall_s_median']} s, "
                     f"{sub['nmap_sV']['makers']['named_correctly']}/{sub['nmap_sV']['makers']['devices_with_a_maker']}; "
                     f"ratios wall {sub['wall_ratio']}, memory {sub['memory_ratio']}")
    lines.append(f"load average {result['machine']['load_average_start']} -> {result['machine']['load_average_end']}, "
                 f"{result['machine']['cores']} cores, {result['machine']['nmap']}")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
