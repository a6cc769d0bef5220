"""A scan holds no host's evidence (issue 15 item 1): evidence goes to the store as it comes
(discovery's answers in batches), and each host is identified from what the store holds for it
once its evidence is in. Its findings are recorded as they are made and read back whole. Addresses: 127.78.82.0/24, inside this area's
test block (127.78.0.0/16)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from camaudit.assess import evaluate, scan_view
from camaudit.audit import _DiscoveryWriter, run_scan, scan_findings, scan_hosts
from camaudit.config import load_config
from camaudit.errors import StoreError
from camaudit.fingerprint import engine as fingerprint_engine
from camaudit.fingerprint import identify
from camaudit.lab import plan_devices
from camaudit.lab.runner import LabThread
from camaudit.model import FindingSummary, Observation, count_by_severity
from camaudit.policy import load_policy
from camaudit.store import open_store
from camaudit.store.observations import host_evidence, identity_record

PROFILES = "hikvision-ipc=1,dahua-ipc=1,uniview-camera=1"


def test_each_host_is_identified_from_the_store_and_none_of_its_evidence_held(tmp_path: Path) -> None:
    specs = plan_devices(3, "127.78.82.0/24", PROFILES, seed=15)
    with LabThread(specs) as lab:
        ports = tuple(sorted({p for d in lab.manifest for p in d["ports"]["tcp"]}))
        db = tmp_path / "s.db"
        config = load_config(None, targets=[d["address"] for d in lab.manifest], db_path=str(db), ports=ports)
        result = run_scan(config)
    assert result.status == "complete"
    # The scan result keeps no host: it counts what answered, which the store holds.
    assert result.hosts == []
    recorded = {h.address: h for h in scan_hosts(str(db), result.scan_id)}
    assert set(recorded) == {d["address"] for d in lab.manifest}
    assert result.hosts_found == 3
    assert result.open_ports == sum(len(h.ports) for h in recorded.values()) > 3
    for device in lab.manifest:
        host = recorded[device["address"]]
        assert host.identity is not None and host.identity.vendor == device["vendor"], device["profile"]
    with open_store(db, create=False) as store:
        for address in recorded:
            row = next(store.db.query("select * from identities where scan_id = ? and address = ?",
                                      [result.scan_id, address]))
            # The identity recorded is the one the store's evidence gives, in its order: the
            # same a scan finalised after an interruption would record.
            assert identity_record(row).to_json() == identify(host_evidence(store, result.scan_id, address)).to_json()
    hikvision = next(d["address"] for d in lab.manifest if d["vendor"] == "hikvision")
    assert "sadp" in {o.kind for o in recorded[hikvision].observations}, "discovery's answer was recorded"
    # The findings: recorded as made, summarised in the result (counts and the most severe, as
    # headlines), read whole from the store; and the same as assessing the whole view at once
    # (with every identity's signatures) makes them.
    whole = list(scan_findings(str(db), result.scan_id))
    assert result.findings == [] and whole
    assert result.finding_summary.total == len(whole)
    assert result.finding_summary.counts == count_by_severity(whole)
    assert [f.id for f in result.finding_summary.most_severe()] == [f.id for f in whole][:FindingSummary.TOP]
    assert all(f.evidence == {} for f in result.finding_summary.most_severe())
    assert all(f.evidence for f in whole)
    with open_store(db, create=False) as store:
        at_once = evaluate(scan_view(store, result.scan_id), load_policy())
    assert [f.to_json() for f in at_once] == [f.to_json() for f in whole]
    assert any(f.evidence.get("signatures") for f in whole), "the evidence names what matched"


def test_scan_json_is_what_the_store_holds(tmp_path: Path) -> None:
    specs = plan_devices(2, "127.78.82.64/26", "hikvision-ipc=1,axis-camera=1", seed=16)
    with LabThread(specs) as lab:
        ports = sorted({p for d in lab.manifest for p in d["ports"]["tcp"]})
        db = tmp_path / "j.db"
        done = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", *[d["address"] for d in lab.manifest], "--db", str(db),
             "--json", "-q", "--ports", ",".join(map(str, ports))],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    stored = [h.to_json() for h in scan_hosts(str(db), doc["scan_id"])]
    assert doc["hosts"] == stored
    assert {h["identity"]["vendor"] for h in doc["hosts"]} == {"hikvision", "axis"}
    assert all(h["observations"] for h in doc["hosts"]), "each host's evidence is in the output"
    assert doc["findings"] and doc["findings"] == [f.to_json() for f in scan_findings(str(db), doc["scan_id"])]
    assert all(f["evidence"] for f in doc["findings"]), "each finding's evidence is in the output"


def _observation(address: str, n: int, kind: str = "sadp") -> Observation:
    return Observation(address, kind, f"answer {n}", 37020, "sadp", f"2026-12-04T10:00:{n % 60:02d}.000000+00:00")


def test_discovery_answers_are_recorded_in_batches_as_they_come(tmp_path: Path) -> None:
    with open_store(tmp_path / "d.db") as store:
        scan_id = store.start_scan(targets=["127.78.82.0/24"], exclude=[], config={}, config_hash="x", addresses=2)
        store.add_services(scan_id, [("127.78.82.1", 80)])  # swept; 127.78.82.2 only discovery finds
        writer = _DiscoveryWriter(store, scan_id)
        for n in range(_DiscoveryWriter.BATCH + 10):
            writer(_observation(["127.78.82.1", "127.78.82.2"][n % 2], n))
        writer(Observation("127.78.82.1", "mac", "bc:ba:c2:3e:3d:57", None, "sadp"))

        def recorded() -> int:
            return int(store.db.execute("select count(*) from observations where scan_id = ?", [scan_id]).fetchone()[0])

        assert recorded() == _DiscoveryWriter.BATCH, "a full batch is written at once, while discovery listens"
        writer.check()
        assert recorded() == _DiscoveryWriter.BATCH + 11
        # The answers are read from the store (the maker, the identity), never held in memory;
        # the store names the MAC and records the host only discovery found.
        assert len([o for o in host_evidence(store, scan_id, "127.78.82.1") if o.kind == "sadp"]) == 133
        macs = dict(store.db.execute("select address, mac from hosts where scan_id = ?", [scan_id]).fetchall())
    assert macs == {"127.78.82.1": "bc:ba:c2:3e:3d:57", "127.78.82.2": None}


def test_a_store_that_fails_under_discovery_fails_the_scan_not_the_socket(tmp_path: Path) -> None:
    store = open_store(tmp_path / "f.db")
    scan_id = store.start_scan(targets=["127.78.82.0/24"], exclude=[], config={}, config_hash="x", addresses=1)
    writer = _DiscoveryWriter(store, scan_id)
    store.db.conn.close()  # the database cannot take more
    for n in range(_DiscoveryWriter.BATCH + 1):
        writer(_observation("127.78.82.9", n))  # in the datagram callback: must not raise there
    with pytest.raises(StoreError):
        writer.check()


def test_the_identification_cache_does_not_grow_with_the_devices() -> None:
    engine = fingerprint_engine.Engine()
    banner = "HTTP/1.1 200 OK\r\nServer: App-webs/\r\n"
    for n in range(3_000):
        # Values never seen twice (a Date header, a nonce), as a scan of thousands of devices
        # has, and one that every device repeats.
        engine.matches("http_headers", f"{banner}Date: {n:08d}" + "x" * 900)
        engine.matches("http_server", "App-webs/")
        held = sum(len(value) for _kind, value in [*engine._cache, *engine._older])
        assert held <= 2 * fingerprint_engine._CACHE_CHARS + 1_000
    assert len(engine._cache) + len(engine._older) < 3_000
    assert ("http_server", "App-webs/") in engine._cache, "what repeats stays cached"
    assert engine.matches("http_server", "App-webs/"), "and is still matched"


def test_the_per_host_stages_read_the_swept_hosts_a_page_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from camaudit.store.observations import count_hosts, each_swept_host

    with open_store(tmp_path / "p.db") as store:
        scan_id = store.start_scan(targets=["127.78.83.0/24"], exclude=[], config={}, config_hash="x", addresses=9)
        swept = {f"127.78.83.{n}": sorted({80, 554, 8000 + n}) for n in range(1, 8)}
        store.add_services(scan_id, [(address, port) for address, ports in swept.items() for port in ports])
        store.add_services(scan_id, [("127.78.83.99", 3702)], proto="udp")  # not the sweep's
        other = store.start_scan(targets=["127.78.83.0/24"], exclude=[], config={}, config_hash="x", addresses=1)
        store.add_services(other, [("127.78.83.50", 80)])  # another scan's
        pages: list[int] = []
        real_execute = store.db.execute

        def counting(sql: str, *args: Any) -> Any:
            if "group_concat(port)" in sql:
                pages.append(1)
            return real_execute(sql, *args)

        with monkeypatch.context() as patched:
            patched.setattr(store.db, "execute", counting)
            read = {h.address: h.ports for h in each_swept_host(store, scan_id, page=3)}
        assert read == swept
        assert len(pages) == 3, "seven hosts in pages of three: three reads"
        assert count_hosts(store, scan_id) == (8, 21)  # the UDP answerer is a host, its port no TCP port


def test_texts_that_repeat_across_hosts_are_held_once_in_a_view_of_every_host(tmp_path: Path) -> None:
    from camaudit.model import Identity
    from camaudit.store.observations import hosts

    def fresh(text: str) -> str:
        return "".join(list(text))  # a string of its own, as each row read from SQLite gives

    with open_store(tmp_path / "v.db") as store:
        scan_id = store.start_scan(targets=["127.78.84.0/24"], exclude=[], config={}, config_hash="x", addresses=2)
        for n in (1, 2):
            address = f"127.78.84.{n}"
            store.add_problems(scan_id, address, [fresh("no device service answered on port 80")])
            store.add_identity(scan_id, address, Identity(vendor=fresh("hikvision"), model=fresh("DS-2CD2042WD-I"),
                                                          firmware=fresh("V5.4.5 build 170124"), confidence=0.9))
        first, second = (host for host, _ in hosts(store, scan_id, settings=False))
    assert first.identity is not None and second.identity is not None
    assert first.identity.model == "DS-2CD2042WD-I"
    assert first.identity.model is second.identity.model
    assert first.identity.firmware is second.identity.firmware
    assert first.problems[0] is second.problems[0]
