"""Passive evidence from captures built with scapy (no packet is sent: they are written to files).

Addresses in these files are data, never destinations: the camera segment is 10.20.0.0/24, the
"internet" is public addresses that only exist inside the capture files.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, wrpcap

from camaudit.egress.passive import analyse_pcap
from camaudit.egress.verdict import device_verdict

CAM, CAM2, RESOLVER = "10.20.0.5", "10.20.0.6", "10.20.0.1"
CLOUD = "8.8.4.4"  # stands for a vendor cloud address; only ever written into a file
NETS = [__import__("ipaddress").ip_network("10.20.0.0/24")]


def _eth(pkt: object) -> Ether:
    return Ether(src="44:19:b6:00:00:05", dst="02:00:00:00:00:01") / pkt  # type: ignore[no-any-return,operator]


def _at(pkts: list[Ether], t0: float = 1_767_607_200.0) -> list[Ether]:
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.5
    return pkts


def test_a_camera_that_only_tries(tmp_path: Path) -> None:
    pkts = _at([_eth(IP(src=CAM, dst=CLOUD) / TCP(sport=40000 + i, dport=8555, flags="S")) for i in range(3)]
               + [_eth(IP(src=CAM, dst=CLOUD) / TCP(sport=40010, dport=8666, flags="S")),
                  _eth(IP(src=CLOUD, dst=CAM) / TCP(sport=8666, dport=40010, flags="RA")),  # a reject: not an answer
                  _eth(IP(src=CAM, dst="10.20.0.9") / TCP(sport=1, dport=80, flags="S"))])  # internal: ignored
    path = tmp_path / "tries.pcap"
    wrpcap(str(path), pkts)
    res = analyse_pcap(path, NETS)
    states = {(f.remote, f.port): f.state for f in res.flows}
    assert states == {(CLOUD, 8555): "attempted", (CLOUD, 8666): "attempted"}
    assert res.packets == 6 and res.start is not None and res.start.startswith("2026-01-05")
    v = device_verdict(None, None, res, address=CAM)
    assert v.verdict == "INCONCLUSIVE" and any("unanswered egress attempt" in q for q in v.qualifier_text)


def test_a_camera_that_talks(tmp_path: Path) -> None:
    pkts = _at([
        _eth(IP(src=CAM, dst=CLOUD) / TCP(sport=40000, dport=8555, flags="S")),
        _eth(IP(src=CLOUD, dst=CAM) / TCP(sport=8555, dport=40000, flags="SA")),
        _eth(IP(src=CAM, dst=CLOUD) / TCP(sport=40000, dport=8555, flags="A") / b"hello"),
        _eth(IP(src=CAM2, dst="203.0.113.200") / UDP(sport=5000, dport=8800) / b"DHGET"),
        _eth(IP(src="203.0.113.200", dst=CAM2) / UDP(sport=8800, dport=5000) / b"DHOK"),
        _eth(IP(src=CAM, dst=CLOUD) / ICMP(type=8) / b"x"),
        _eth(IP(src=CLOUD, dst=CAM) / ICMP(type=0) / b"x"),
    ])
    path = tmp_path / "talks.pcapng"
    with PcapNgWriter(str(path)) as w:  # pcapng too
        for p in pkts:
            w.write(p)
    res = analyse_pcap(path, NETS)
    states = {(f.device, f.remote, f.proto, f.port): f.state for f in res.flows}
    assert states[(CAM, CLOUD, "tcp", 8555)] == "established"
    assert states[(CAM, CLOUD, "icmp", None)] == "established"
    assert states[(CAM2, "203.0.113.200", "udp", 8800)] == "established"
    assert next(f for f in res.flows if f.remote == "203.0.113.200").remote_class == "anomaly"
    v = device_verdict(None, None, res, address=CAM)
    assert v.verdict == "OPEN" and "established tcp flow with 8.8.4.4:8555" in v.qualifier_text[0]
    # documentation space is non-internal but not the internet: noted, never OPEN on its own
    assert device_verdict(None, None, res, address=CAM2).verdict == "INCONCLUSIVE"


def test_dns_lookups_of_vendor_clouds(tmp_path: Path) -> None:
    q1 = DNS(id=11, rd=1, qd=DNSQR(qname="dev.hik-connect.com"))
    a1 = DNS(id=11, qr=1, ra=1, qd=DNSQR(qname="dev.hik-connect.com"),
             an=DNSRR(rrname="dev.hik-connect.com", type="A", rdata="52.77.1.2"))
    q2 = DNS(id=12, rd=1, qd=DNSQR(qname="www.easy4ipcloud.com"))
    q3 = DNS(id=13, rd=1, qd=DNSQR(qname="printer.corp.example"))
    q4 = DNS(id=14, rd=1, qd=DNSQR(qname="apiieu.hik-connect.com"))
    a4 = DNS(id=14, qr=1, rcode=3, qd=DNSQR(qname="apiieu.hik-connect.com"))
    pkts = _at([_eth(IP(src=CAM, dst=RESOLVER) / UDP(sport=5353 + i, dport=53) / q) for i, q in enumerate((q1, q2, q3, q4))]
               + [_eth(IP(src=RESOLVER, dst=CAM) / UDP(sport=53, dport=5353) / a1),
                  _eth(IP(src=RESOLVER, dst=CAM) / UDP(sport=53, dport=5356) / a4)])
    path = tmp_path / "dns.pcap"
    wrpcap(str(path), pkts)
    res = analyse_pcap(path, NETS)
    got = {q.qname: q for q in res.lookups}
    assert set(got) == {"dev.hik-connect.com", "www.easy4ipcloud.com", "apiieu.hik-connect.com"}
    assert got["dev.hik-connect.com"].vendor == "hikvision" and got["dev.hik-connect.com"].external_answers == ["52.77.1.2"]
    assert got["www.easy4ipcloud.com"].vendor == "dahua" and not got["www.easy4ipcloud.com"].answered
    assert got["apiieu.hik-connect.com"].cloud == "*.hik-connect.com" and got["apiieu.hik-connect.com"].answered
    assert got["apiieu.hik-connect.com"].external_answers == []
    assert res.flows == []  # the resolver is internal: no external flow
    v = device_verdict(None, None, res, address=CAM)
    # An internal resolver answering a vendor-cloud name is egress.md 1.4 row 3: a strong indicator
    # of recursion (a split-horizon zone gives the same answer), not the conclusive positive OPEN needs.
    assert v.verdict == "INCONCLUSIVE"
    assert any("DNS recursion" in m and "52.77.1.2" in m and "not proof" in m for m in v.missing_text)


def _raw_pcap(path: Path, frames: list[bytes], repeat: int) -> None:
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_767_607_200
        for i in range(repeat):
            for f in frames:
                fh.write(struct.pack("<IIII", t + i, 0, len(f), len(f)) + f)


def test_memory_stays_flat(tmp_path: Path) -> None:
    # Many packets of few flows: the tables stay the same size however long the capture is.
    frames = [bytes(_eth(IP(src=CAM, dst=CLOUD) / TCP(sport=40000, dport=443, flags="A") / (b"x" * 900))),
              bytes(_eth(IP(src=CLOUD, dst=CAM) / TCP(sport=443, dport=40000, flags="A") / (b"y" * 900)))]
    peaks = []
    for n in (2_000, 40_000):
        path = tmp_path / f"big{n}.pcap"
        _raw_pcap(path, frames, n // 2)
        tracemalloc.start()
        res = analyse_pcap(path, NETS)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert res.packets == n and len(res.flows) == 1
    assert peaks[1] < peaks[0] * 1.5 + 256 * 1024, peaks  # 20x the packets, no growth to speak of


def test_damaged_and_foreign_files(tmp_path: Path) -> None:
    from camaudit.errors import InputError

    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture")
    with pytest.raises(InputError):
        analyse_pcap(bad, NETS)
    frames = [bytes(_eth(IP(src=CAM, dst=CLOUD) / TCP(sport=1, dport=443, flags="S")))]
    cut = tmp_path / "cut.pcap"
    _raw_pcap(cut, frames, 3)
    cut.write_bytes(cut.read_bytes()[:-10])  # truncated last record
    res = analyse_pcap(cut, NETS)
    assert res.packets >= 2


def test_cli_pcap_json_and_store(tmp_path: Path) -> None:
    path = tmp_path / "talks.pcap"
    wrpcap(str(path), _at([_eth(IP(src=CAM, dst=CLOUD) / TCP(sport=4, dport=8555, flags="S")),
                           _eth(IP(src=CLOUD, dst=CAM) / TCP(sport=8555, dport=4, flags="SA"))]))
    db = tmp_path / "eg.db"
    res = subprocess.run([sys.executable, "-m", "camaudit", "egress", "pcap", str(path), "--devices", "10.20.0.0/24",
                          "--db", str(db), "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr  # OPEN: exit 1
    doc = json.loads(res.stdout)
    assert doc["flows"][0]["state"] == "established" and doc["verdicts"][0]["verdict"] == "OPEN"
    from camaudit.store import open_store

    with open_store(db) as store:
        assert store.db.table("egress_flows").count == 1
        assert [r["verdict"] for r in store.db.query("select verdict from verdicts")] == ["OPEN"]
        # a capture is a passive egress run, never a scan (issue 11)
        assert store.scans() == [] and store.db.table("egress_runs").count == 1
    usage = subprocess.run([sys.executable, "-m", "camaudit", "egress", "pcap", str(path), "--db", str(db)],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "--devices" in usage.stderr and "Traceback" not in usage.stderr
