"""Benchmark: camaudit's discovery of 1,000 devices in the namespace lab, and nmap's multicast
WS-Discovery beside it (root).

Builds a lab (camaudit.lab.netns, design B) of --devices devices planned from the lab profiles
(the default mix: Hikvision, Dahua, Axis, Hanwha, Bosch, Uniview, Xiongmai and ordinary hosts) on
10.77.0.0/16, served by the lab farm (one process in the camera namespace, each device's sockets
bound to its own macvlan). Then, inside the scanner namespace, runs whole processes, rotating
their order from round to round:

    camaudit discover 10.77.254.1 --interface scan0 --json     # multicast (+ one empty unicast address)
    camaudit discover @TARGETS --no-multicast --json           # unicast to every device
    camaudit discover @TARGETS --json                          # both: what a scan does
    nmap -n -e scan0 --script broadcast-wsdd-discover -oX TMP  # multicast WS-Discovery only

camaudit runs with its defaults (2,000 datagrams/s, listening 2 s after the last datagram), nmap
with its default timing (-T3: its script listens until 5 s pass without an answer; --nmap-timing
changes it). ``discover`` always sends unicast to its targets; the multicast run names one
address that holds nobody (10.77.254.1), so its unicast part is three datagrams into the void.

Measured, per run:

* wall time of the whole process;
* time to the last answer, per protocol: tcpdump records every discovery datagram on scan0
  during the run; "last answer" is when the last device was first heard (the latest of the
  devices' first answers), counted from the first probe on the wire, the same clock and method
  for both tools. camaudit repeats its probes (SOAP-over-UDP Appendix I: multicast 4 times over
  about 1 s) and the lab's devices answer every repeat, so the last datagram on the wire comes
  later: it is reported too ("last_datagram");
* answers: the devices the tool reported, and those whose answers reached the wire, against the
  lab's manifest (which devices speak which protocol). camaudit's WS-Discovery Probes ask for
  camera types (dn:NetworkVideoTransmitter, tds:Device), so printers and Windows hosts of the
  lab rightly stay silent to them; nmap's Probe names no type, so every WS-Discovery device
  answers it. Each tool is judged against what its own probe asks for. A device counts for
  nmap when its address appears in the script's output (its "Address:" lines; nmap 7.93 prints
  the multicast group, not the sender, as the device's name);
* kernel neighbour-table overflows during the run (dmesg; the table is global, lab.md 2.4). The
  lab pins the scanner's MAC on every device's macvlan (``nud permanent``), so the devices'
  side adds no entries; the scanner's own side is flushed before each run and holds one entry
  per unicast target afterwards (1,000 here), under the kernel's gc_thresh3 (1,024) only while
  no other lab shares the machine: the report gives the count.

Exit code 0 when the goal is met: camaudit lost no answer in any run (every device its probes
ask reported, per protocol), no neighbour overflow happened, and, when nmap ran, camaudit's
multicast run reported at least the share of its expected WS-Discovery devices that nmap
reported of its own and ended no later than nmap (median wall ratio <= 1); 1 otherwise; 2 on a
setup error. The ratio of the times to the last answer is reported but not judged: in this lab
one farm process answers for every device, so that time measures the farm working through the
replies (camaudit's two typed Probes plus SADP and DHIP ask it for about 2,300 replies at once,
nmap's doubled untyped Probe for about 1,600) as much as the tool; on a real segment each device
answers on its own CPU. Only datagrams inside the lab namespaces; the lab
(farm, tcpdump) is torn down by PID and namespace name on any exit.

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/discovery_lab.py [--devices 1000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DefusedET
from nslab import (
    camaudit_argv,
    dump,
    flush_scanner_neighbours,
    lab,
    machine_facts,
    neighbour_overflows,
    scanner_neighbours,
    timed,
)

from camaudit.errors import CamauditError
from camaudit.lab.netns import SCANNER_ADDR, Topology
from camaudit.lab.plan import plan_devices
from camaudit.lab.profiles import load_profiles

EMPTY_ADDRESS = "10.77.254.1"  # inside the lab's /16, never given to a device by the planner
PORTS = {3702: "wsd", 37020: "sadp", 37810: "dhip"}
ANSWER_NAME = {"wsd": "onvif", "sadp": "sadp", "dhip": "dhip"}  # camaudit's "answered" names
#: the types camaudit's two Probes ask for (camaudit.discovery.udp.WSD_PROBE_TYPE_SETS)
CAMAUDIT_WSD_TYPES = {"dn:NetworkVideoTransmitter", "tds:Device"}
_ADDRESS_LINE = re.compile(r"Address:\s*https?://(\d{1,3}(?:\.\d{1,3}){3})")


def expected_answers(specs: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """tool -> protocol -> addresses whose profile answers that tool's probe (the manifest)."""
    profiles = load_profiles()
    camaudit: dict[str, set[str]] = {"wsd": set(), "sadp": set(), "dhip": set()}
    nmap: dict[str, set[str]] = {"wsd": set()}
    for spec in specs:
        profile = profiles[str(spec["profile"])]
        for proto in profile.udp:
            if proto == "wsd":
                nmap["wsd"].add(str(spec["address"]))  # no Types in nmap's Probe: any device matches
                answers = set(profile.services.get("wsd", {}).get("answers", []))
                if not answers & CAMAUDIT_WSD_TYPES:
                    continue
            camaudit[proto].add(str(spec["address"]))
    return {"camaudit": camaudit, "nmap": nmap}


# --- the capture -----------------------------------------------------------------------------


def start_capture(topo: Topology, path: Path, log: Path) -> int:
    """tcpdump of the discovery ports on scan0, in the scanner namespace; returns its PID once it
    listens (it says so on stderr)."""
    with log.open("wb") as out:
        proc = topo.popen("scan", ["tcpdump", "-Z", "root", "-i", "scan0", "-n", "-U", "-B", "16384", "-w", str(path),
                                   "udp and (port 3702 or port 37020 or port 37810)"],
                          stdout=subprocess.DEVNULL, stderr=out)
    deadline = time.monotonic() + 10
    while b"listening on" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            topo.stop_process(proc.pid)
            raise RuntimeError(f"tcpdump did not start: {log.read_text(errors='replace')[-300:]}")
        time.sleep(0.02)
    return proc.pid


def stop_capture(topo: Topology, pid: int, log: Path) -> int | None:
    """Stop tcpdump (by PID); the packets it says the kernel dropped (None: not said)."""
    time.sleep(0.2)  # let the last datagrams reach the file
    topo.stop_process(pid)
    found = re.search(rb"(\d+) packets? dropped by kernel", log.read_bytes())
    return int(found.group(1)) if found else None


def read_capture(path: Path) -> list[tuple[float, str, str, int, int]]:
    """(time, source, destination, source port, destination port) of every UDP/IPv4 datagram in
    a pcap file (Ethernet link type; microsecond or nanosecond timestamps)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    order, scale = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
                    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}.get(magic, ("", 0.0))
    if not order:
        raise ValueError(f"{path}: not a pcap file")
    out = []
    at = 24
    record = struct.Struct(order + "IIII")
    while at + record.size <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, at)
        frame = data[at + record.size: at + record.size + caplen]
        at += record.size + caplen
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        if len(frame) < 14 + ihl + 8:
            continue
        src = ".".join(str(b) for b in frame[26:30])
        dst = ".".join(str(b) for b in frame[30:34])
        sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
        out.append((sec + frac * scale, src, dst, sport, dport))
    return out


def wire_summary(packets: list[tuple[float, str, str, int, int]]) -> dict[str, Any]:
    """First probe, then per protocol: answers on the wire, distinct answering devices, and the
    time of the first and last answer after the first probe."""
    probes = [p for p in packets if p[1] == SCANNER_ADDR and p[4] in PORTS]
    if not probes:
        return {"probes": 0}
    t0 = min(p[0] for p in probes)
    summary: dict[str, Any] = {"probes": len(probes)}
    for port, proto in PORTS.items():
        answers = [p for p in packets if p[2] == SCANNER_ADDR and p[3] == port]
        if not answers:
            continue
        heard: dict[str, float] = {}
        for when, source, *_ in answers:
            heard[source] = min(when, heard.get(source, when))
        summary[proto] = {
            "datagrams": len(answers),
            "devices": sorted(heard),
            "first_answer": round(min(heard.values()) - t0, 4),
            # every device heard: the latest of the devices' first answers
            "last_answer": round(max(heard.values()) - t0, 4),
            # the last datagram at all (answers to repeated probes included)
            "last_datagram": round(max(p[0] for p in answers) - t0, 4),
        }
    return summary


# --- the tools ---------------------------------------------------------------------------------


def reported_by_camaudit(stdout: str) -> dict[str, set[str]]:
    document = json.loads(stdout)
    found: dict[str, set[str]] = {"wsd": set(), "sadp": set(), "dhip": set()}
    for device in document.get("devices", []):
        for proto, name in ANSWER_NAME.items():
            if name in device.get("answered", []):
                found[proto].add(device["address"])
    return found


def reported_by_nmap(xml_path: Path) -> dict[str, set[str]]:
    root = DefusedET.parse(str(xml_path)).getroot()
    output = " ".join(s.get("output", "") for s in root.iter("script") if s.get("id") == "broadcast-wsdd-discover")
    return {"wsd": set(_ADDRESS_LINE.findall(output))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000, help="lab devices (1-1000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the order rotates each round (1-10)")
    parser.add_argument("--seed", type=int, default=1, help="lab plan seed")
    parser.add_argument("--mix", default=None, help="lab mix, e.g. hikvision=35,dahua=30 (default: the lab's)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for one run")
    parser.add_argument("--nmap", default=shutil.which("nmap") or "nmap")
    parser.add_argument("--nmap-timing", type=int, choices=range(6), default=None, help="nmap -T (default: none, T3)")
    parser.add_argument("--no-nmap", action="store_true", help="camaudit only")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()
    if not 1 <= args.devices <= 1000 or not 1 <= args.repeat <= 10:
        print("--devices must be 1-1000, --repeat 1-10", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("this benchmark needs root (network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("tcpdump") is None:
        print("tcpdump is needed to time the answers on the wire (apt-get install tcpdump)", file=sys.stderr)
        return 2
    use_nmap = not args.no_nmap
    if use_nmap and shutil.which(args.nmap) is None:
        print(f"{args.nmap} not found (or use --no-nmap)", file=sys.stderr)
        return 2

    specs = [s.to_json() for s in plan_devices(args.devices, "10.77.0.0/16", args.mix, seed=args.seed)]
    if any(s["address"] == EMPTY_ADDRESS for s in specs):
        print(f"the lab plan uses {EMPTY_ADDRESS}, the multicast run's empty address", file=sys.stderr)
        return 2
    expected = expected_answers(specs)
    facts = machine_facts(args.nmap if use_nmap else None)
    kinds = ["camaudit multicast", "camaudit unicast", "camaudit both"] + (["nmap wsdd"] if use_nmap else [])
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    try:
        with lab(specs, farm=True) as topo, tempfile.TemporaryDirectory(prefix="camaudit-disc-") as tmp:
            targets = Path(tmp) / "targets.txt"
            targets.write_text("".join(f"{s['address']}\n" for s in specs), encoding="utf-8")
            timing = [] if args.nmap_timing is None else [f"-T{args.nmap_timing}"]
            commands = {
                "camaudit multicast": lambda i: camaudit_argv("discover", EMPTY_ADDRESS, "--interface", "scan0", "--json"),
                "camaudit unicast": lambda i: camaudit_argv("discover", f"@{targets}", "--no-multicast", "--json"),
                "camaudit both": lambda i: camaudit_argv("discover", f"@{targets}", "--json"),
                "nmap wsdd": lambda i: [args.nmap, "-n", "-e", "scan0", *timing, "--script", "broadcast-wsdd-discover",
                                        "-oX", f"{tmp}/nmap{i}.xml"],
            }  # fmt: skip
            for i in range(args.repeat):
                order = kinds[i % len(kinds):] + kinds[:i % len(kinds)]
                for kind in order:
                    flush_scanner_neighbours(topo)
                    overflows = neighbour_overflows()
                    pcap, log = Path(tmp) / f"run{i}.pcap", Path(tmp) / f"run{i}.log"
                    pid = start_capture(topo, pcap, log)
                    try:
                        cmd = commands[kind](i)
                        wall, cpu, done = timed(topo, cmd, args.timeout)
                    finally:
                        dropped = stop_capture(topo, pid, log)
                    if done.returncode != 0:
                        print(f"{kind} failed ({done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
                        return 2
                    tool = kind.split()[0]
                    reported = reported_by_camaudit(done.stdout) if tool == "camaudit" else reported_by_nmap(Path(cmd[-1]))
                    wire = wire_summary(read_capture(pcap))
                    after = neighbour_overflows()
                    entry: dict[str, Any] = {
                        "wall": round(wall, 3), "cpu": round(cpu, 3), "capture_dropped": dropped,
                        "scanner_neighbours": scanner_neighbours(topo),
                        "neighbour_overflows": None if overflows is None or after is None else after - overflows,
                        "wire": {k: ({kk: (len(vv) if kk == "devices" else vv) for kk, vv in v.items()}
                                     if isinstance(v, dict) else v) for k, v in wire.items()},
                    }  # fmt: skip
                    for proto, want in expected[tool].items():
                        got = reported.get(proto, set())
                        on_wire = set(wire.get(proto, {}).get("devices", []))
                        entry[proto] = {"expected": len(want), "reported": len(got & want),
                                        "lost": len(want - got), "lost_on_wire": len(want - on_wire),
                                        "unexpected": len(got - want),
                                        "last_answer": wire.get(proto, {}).get("last_answer")}
                    runs[kind].append(entry)
    except subprocess.TimeoutExpired as exc:
        print(f"a run took longer than {args.timeout:g} s: {exc.cmd}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the lab was removed", file=sys.stderr)
        return 130
    except (CamauditError, RuntimeError, ValueError) as exc:
        print(f"lab setup or capture failed: {exc}", file=sys.stderr)
        return 2

    def med(kind: str, key: str, proto: str | None = None) -> float | None:
        values = [r[proto][key] if proto else r[key] for r in runs[kind]]
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 4) if values else None

    summary: dict[str, Any] = {}
    for kind in kinds:
        tool = kind.split()[0]
        summary[kind] = {"wall": med(kind, "wall")}
        for proto in expected[tool]:
            summary[kind][proto] = {"last_answer": med(kind, "last_answer", proto),
                                    "lost_max": max(r[proto]["lost"] for r in runs[kind]),
                                    "reported_min": min(r[proto]["reported"] for r in runs[kind]),
                                    "expected": len(expected[tool][proto])}
    camaudit_lost = sum(r[p]["lost"] for k in kinds if k.startswith("camaudit") for r in runs[k]
                        for p in expected["camaudit"])
    overflowed = sum(r["neighbour_overflows"] or 0 for k in kinds for r in runs[k])
    ratios: dict[str, float | None] = {}
    if use_nmap:
        ours, theirs = summary["camaudit multicast"], summary["nmap wsdd"]
        ratios = {
            "wall": _ratio(ours["wall"], theirs["wall"]),
            "wsd_last_answer": _ratio(ours["wsd"]["last_answer"], theirs["wsd"]["last_answer"]),
            "wsd_devices_reported": _ratio(ours["wsd"]["reported_min"], theirs["wsd"]["reported_min"]),
        }
    judged = True
    if use_nmap:
        ours, theirs = summary["camaudit multicast"]["wsd"], summary["nmap wsdd"]["wsd"]
        share = ours["reported_min"] / max(1, ours["expected"]) >= theirs["reported_min"] / max(1, theirs["expected"])
        judged = share and ratios["wall"] is not None and ratios["wall"] <= 1.0
    met = camaudit_lost == 0 and overflowed == 0 and judged
    report = {
        "devices": len(specs),
        "expected": {tool: {p: len(a) for p, a in protos.items()} for tool, protos in expected.items()},
        "runs": runs,
        "median": summary,
        "ratios_camaudit_multicast_to_nmap": ratios,
        "camaudit_answers_lost": camaudit_lost,
        "neighbour_overflows": overflowed,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "goal": "camaudit loses no answer, no neighbour overflow, and (with nmap) its multicast run reports "
                "at least nmap's share of expected WS-Discovery devices and ends no later (median wall); "
                "the last-answer ratio is reported, not judged (the lab farm answers for every device)",
        "goal_met": met,
        "machine": facts,
    }
    if args.json:
        dump(report)
    else:
        print(f"{len(specs)} lab devices; {args.repeat} rounds; expected answers: {json.dumps(report['expected'])}")
        for kind in kinds:
            s = summary[kind]
            protos = "; ".join(f"{p}: last answer {v['last_answer']} s, reported >= {v['reported_min']}/{v['expected']}"
                               f", lost <= {v['lost_max']}" for p, v in s.items() if isinstance(v, dict))
            walls = ", ".join(f"{r['wall']:.2f}" for r in runs[kind])
            print(f"  {kind:19s} wall {s['wall']} s (runs: {walls}); {protos}")
        if ratios:
            print(f"  camaudit multicast / nmap: {json.dumps(ratios)}")
        print(f"  answers lost by camaudit: {camaudit_lost}; neighbour overflows: {overflowed}; "
              f"goal {'met' if met else 'NOT met'}")
        print(f"  machine: {json.dumps(facts)}; load average at end: {report['load_average_at_end']}")
    return 0 if met else 1


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


if __name__ == "__main__":
    sys.exit(main())
