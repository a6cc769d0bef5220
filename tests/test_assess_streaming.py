"""An assessment decides a scan's devices one at a time and holds none of them (issue 15):
the findings and reconciliation it records are those of the whole view at once, the register's
pairing is :func:`camaudit.register.reconcile`'s over every device, and what it holds does not
grow with the number of devices.

No packet is sent: the scans here are written straight into SQLite files (their addresses,
in 10.60.0.0/16, are only text in the store).
"""

from __future__ import annotations

import gc
import io
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from camaudit.assess import evaluate, record_assessment, scan_view
from camaudit.cli.scan import print_findings
from camaudit.egress.results import Verdict
from camaudit.model import (
    Assessment,
    Finding,
    FindingSummary,
    Identity,
    SignatureHit,
    count_by_severity,
    severity_at_least,
)
from camaudit.model.findings import SEVERITIES, address_order, finding_order
from camaudit.policy import load_policy
from camaudit.register import Asset, FoundDevice, Reconciliation, reconcile
from camaudit.store import Store, open_store
from camaudit.store import observations as stored_observations
from camaudit.store import register as stored_register
from camaudit.store import verdicts as stored_verdicts
from camaudit.store.assessments import each_finding, findings_of, save_assessment
from camaudit.store.db import PAGE_CACHE_KIB, sql_address_order

VENDORS = ("hikvision", "dahua", "axis", "unknown")


def _address(i: int) -> str:
    return f"10.60.{i // 250}.{i % 250 + 1}"


def _record_scan(store: Store, n: int) -> str:
    """A scan of ``n`` hosts: cameras of several makers (covered ones with advisories), hosts
    never identified, settings that point to the internet, two hosts with one serial."""
    scan_id = store.start_scan(targets=["10.60.0.0/16"])
    store.add_services(scan_id, [(_address(i), port) for i in range(n) for port in (80, 554)])
    for i in range(n):
        vendor = VENDORS[i % len(VENDORS)]
        if vendor == "unknown":
            continue
        serial = "SHARED-0001" if i in (5, 9) else f"SN{i:06d}"
        identity = Identity(vendor, brand=vendor, device_type="camera", model=f"M-{i % 7}", firmware="V5.5.0",
                            serial=serial, confidence=0.9, covered=vendor in ("hikvision", "dahua"),
                            advisories=["CVE-2017-7921"] if i % 3 == 0 else [],
                            signatures=[SignatureHit("sig-http", "http_server", "App-webs/", 80)])
        store.add_identity(scan_id, _address(i), identity, mac=f"44:19:b6:00:{i // 256:02x}:{i % 256:02x}")
        if i % 5 == 0:
            store.add_device_settings(scan_id, {"address": _address(i), "dns": ["8.8.8.8"], "ntp": ["10.60.0.1"]})
    store.finish_scan(scan_id, "complete")
    return scan_id


def _register(n: int) -> list[Asset]:
    """Assets that pair by serial (at another address), by MAC, by address with a serial that
    contradicts the device's, one that claims the serial two hosts share, and missing ones."""
    return [
        Asset("A-serial", address="10.60.9.9", serial="sn000001", declared_maker="Hikvision", segment="pool"),
        Asset("A-mac", mac="44:19:b6:00:00:02", declared_maker="Axis"),
        Asset("A-address", address=_address(6), serial="OTHER-1", declared_maker="Dahua"),
        Asset("A-shared", serial="SHARED-0001", declared_maker="Dahua Technology"),
        Asset("A-unidentified", address=_address(3)),
        Asset("A-missing", serial="NOT-THERE", location="works yard"),
        Asset("A-last", address=_address(n - 1), declared_maker="Hikvision", declared_brand="Annke"),
    ]


def _verdicts(store: Store, scan_id: str) -> None:
    stored_verdicts.write_verdicts(store, [
        Verdict("segment", "10.60.1.0/24", "OPEN", "OPEN", False),
        Verdict("segment", "pool", "CLOSED", "CLOSED", False),
        Verdict("device", _address(260), "CLOSED", "CLOSED", False),
        Verdict("device", _address(1), "EXPOSED", "INCONCLUSIVE", True),
    ], scan_id=scan_id)


def _reconciliation_rows(store: Store, assessment_id: str) -> list[dict[str, Any]]:
    rows = store.db.query("select * from reconciliation where assessment_id = ? order by entry", [assessment_id])
    return [{k: v for k, v in row.items() if k != "assessment_id"} for row in rows]


def _one_row_an_entry(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as recorded: one an entry, the first host's in the store's order of addresses when
    two hosts resolve to one device (the shared serial)."""
    kept: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["address"] or ""):
        kept.setdefault(row["entry"], row)
    return sorted(kept.values(), key=lambda r: r["entry"])


def test_a_streamed_assessment_records_what_the_whole_view_gives(tmp_path: Path) -> None:
    # 600 hosts: three pages of hosts, a register, segment and device verdicts.
    n = 600
    with open_store(tmp_path / "s.db") as store:
        scan_id = _record_scan(store, n)
        stored_register.save_register(store, _register(n), source_file="register.csv")
        _verdicts(store, scan_id)
        policy = load_policy()
        assessment, summary = record_assessment(store, scan_id, policy)
        recorded = findings_of(store, assessment.id)
        view = scan_view(store, scan_id)
        at_once = evaluate(view, policy)
        assert [f.to_json() for f in recorded] == [f.to_json() for f in at_once]
        rules = {f.rule for f in recorded}
        assert rules >= {"covered-egress-open", "registered-not-found", "known-cve", "covered-unregistered",
                         "covered-maker-mismatch", "device-configured-for-internet", "segment-egress-open"}, rules
        assert any(f.subject == "segment:10.60.1.0/24" for f in recorded), "the segment rolled up"
        # The reconciliation recorded is the view's, which is reconcile() over every device.
        rows = _reconciliation_rows(store, assessment.id)
        expected = [d.reconciled.to_row(scan_id) for d in view.devices if d.reconciled]
        expected += [m.to_row(scan_id) for m in view.missing_assets]
        assert rows == _one_row_an_entry(expected)
        found = [FoundDevice(d.address, d.device_id, d.mac, d.identity.serial if d.identity else None, d.vendor,
                             d.identity.brand if d.identity else None, d.identity.model if d.identity else None)
                 for d in view.devices]
        direct = [r.to_row(scan_id) for r in reconcile(found, _register(n))]
        assert rows == _one_row_an_entry(direct)
        shared = [r for r in direct if r["asset_id"] == "A-shared"]
        assert [r["address"] for r in shared] == [_address(5), _address(9)], "both hosts with the serial pair"
        statuses = {r["asset_id"]: r["status"] for r in rows if r["asset_id"]}
        assert statuses["A-serial"] == statuses["A-mac"] == statuses["A-shared"] == "matched"
        assert statuses["A-missing"] == statuses["A-address"] == "missing", "a contradicting serial does not pair"
        # The summary counts what was recorded and heads it with the most severe.
        assert summary.total == len(recorded) and summary.counts == count_by_severity(recorded)
        assert [f.id for f in summary.most_severe()] == [f.id for f in recorded[:FindingSummary.TOP]]
        # The segment's evidence lists its devices in address order, across pages.
        segment = next(f for f in recorded if f.subject == "segment:10.60.1.0/24")
        listed = segment.evidence["devices"]
        assert listed == sorted(listed, key=address_order) and len(listed) == 250


def _assessment_peak(store: Store, scan_id: str) -> int:
    gc.collect()  # from the same start each time: no garbage, Python's free lists emptied
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        record_assessment(store, scan_id, load_policy())
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_what_an_assessment_holds_does_not_grow_with_the_devices(tmp_path: Path) -> None:
    with open_store(tmp_path / "m.db") as store:
        small, large = _record_scan(store, 2000), _record_scan(store, 4000)
        stored_register.save_register(store, _register(2000), source_file="register.csv")
        record_assessment(store, small, load_policy())  # what is loaded once (policy, messages) is loaded
        small_peak, large_peak = _assessment_peak(store, small), _assessment_peak(store, large)
    # A view of every device held about 1.5 KB a device, so 2,000 more devices about 3 MB.
    # Pages of 256 hosts and a bounded summary hold the same at 2,000 devices as at 4,000.
    # (Below about 2,000 devices the peak still rises as Python's free lists of small objects
    # fill, to a bound of their own: that is not the scan's.)
    grown = large_peak - small_peak
    assert grown < 100_000, f"{grown / 2000:.0f} bytes a device ({small_peak} at 2,000, {large_peak} at 4,000)"


def _found(entries: list[tuple[int, int | None, int | None, bool]]) -> list[FoundDevice]:
    devices = []
    for number, (host, serial, mac, identified) in enumerate(entries):
        devices.append(FoundDevice(f"10.60.0.{host}", f"dev-{number}", f"02:00:00:00:00:{mac:02x}" if mac else None,
                                   f"S-{serial}" if serial is not None else None,
                                   "hikvision" if identified else "unknown"))
    return devices


_DEVICE = st.tuples(st.integers(1, 12), st.none() | st.integers(0, 6), st.none() | st.integers(1, 6), st.booleans())
_ASSET = st.tuples(st.none() | st.integers(1, 12), st.none() | st.integers(0, 6), st.none() | st.integers(1, 6))


@settings(max_examples=300, deadline=None)
@given(st.lists(_DEVICE, max_size=12, unique_by=lambda d: d[0]), st.lists(_ASSET, max_size=8))
def test_reconciliation_of_devices_one_at_a_time_is_reconcile_over_them_all(
        devices: list[tuple[int, int | None, int | None, bool]], assets: list[tuple[int | None, int | None, int | None]]
) -> None:
    found = _found(devices)
    register = [Asset(f"A{i}", address=f"10.60.0.{a}" if a else None, serial=f"s{s}" if s is not None else None,
                      mac=f"02:00:00:00:00:{m:02x}" if m else None) for i, (a, s, m) in enumerate(assets)]
    in_order = sorted(found, key=lambda d: address_order(d.address))
    whole = reconcile(in_order, register)
    streamed = Reconciliation(register)
    streamed.settle(reversed(found))  # in any order: it pairs in address order, as a scan lists
    one_at_a_time = [r for r in (streamed.of(d) for d in in_order) if r is not None] + streamed.missing
    assert one_at_a_time == whole


_FINDING = st.tuples(st.sampled_from(SEVERITIES), st.sampled_from(("rule-a", "rule-b", "rule-c")),
                     st.integers(1, 40))


@settings(max_examples=200, deadline=None)
@given(st.lists(_FINDING, max_size=60), st.sampled_from((*SEVERITIES, "none")))
def test_a_summary_counts_every_finding_and_heads_it_with_the_most_severe(
        made: list[tuple[str, str, int]], threshold: str) -> None:
    findings = [Finding(f"f{n}", "s", rule, severity, f"10.60.0.{host}", f"title {n}", "detail", {"big": "x" * 100})
                for n, (severity, rule, host) in enumerate(made)]
    summary = FindingSummary.of(findings)
    assert summary.total == len(findings)
    assert summary.counts == count_by_severity(findings)
    expected = sorted(findings, key=finding_order)[:FindingSummary.TOP]
    assert [finding_order(f) for f in summary.most_severe()] == [finding_order(f) for f in expected]
    assert all(f.evidence == {} for f in summary.most_severe()), "headlines only"
    assert summary.at_least(threshold) == severity_at_least(findings, threshold)
    assert len(summary.top) <= 4 * FindingSummary.TOP, "a bounded number of headlines is held"


def test_the_scan_prints_the_counts_and_the_most_severe_headlines() -> None:
    findings = [Finding(f"f{n}", "s", "covered-vendor", "low" if n % 2 else "high", _address(n), f"[title] {n}", "")
                for n in range(13)]
    out = io.StringIO()
    print_findings(Console(file=out, width=200), FindingSummary.of(findings), "audit.db")
    lines = out.getvalue().splitlines()
    assert lines[0] == "findings: 7 high, 6 low"
    assert [line.split()[1] for line in lines[1:11]] == [f.subject for f in sorted(findings, key=finding_order)[:10]]
    assert lines[1].endswith("[title] 0"), "a title is printed as it is, not as markup"
    assert lines[11] == "  ... 3 more: camaudit report --db audit.db -o report.html"
    out = io.StringIO()
    print_findings(Console(file=out, width=200), FindingSummary(), "audit.db")
    assert out.getvalue() == ""


def test_host_pages_hold_every_host_once_in_pages(tmp_path: Path) -> None:
    with open_store(tmp_path / "p.db") as store:
        scan_id = _record_scan(store, 11)
        store.add_problems(scan_id, "10.60.7.7", ["no answer on 80"])  # a host row without a port
        pages = list(stored_observations.host_pages(store, scan_id, page=4))
        whole = stored_observations.hosts(store, scan_id)
    assert [len(p) for p in pages] == [4, 4, 4]
    listed = [host.address for page in pages for host, _ in page]
    assert listed == sorted(listed) and len(set(listed)) == 12
    with open_store(tmp_path / "p.db") as store:
        assert list(stored_observations.each_address(store, scan_id)) == listed, "a host row alone counts too"
    assert sorted(json.dumps(h.to_json(), sort_keys=True) for page in pages for h, _ in page) == sorted(
        json.dumps(h.to_json(), sort_keys=True) for h, _ in whole)
    by_address = {h.address: (h, device) for page in pages for h, device in page}
    assert by_address["10.60.7.7"][0].problems == ["no answer on 80"] and by_address["10.60.7.7"][1] is None
    assert by_address[_address(0)][0].ports == [80, 554] and by_address[_address(0)][1]


_SUBJECTS = st.sampled_from(("10.60.0.9", "10.60.0.10", "10.60.1.1", "9.1.1.1", "2001:db8::1", "::1",
                             "segment:10.60.0.0/24", "segment:pool", "asset:A-1", "asset:A-10"))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SEVERITIES), st.sampled_from(("rule-b", "rule-a", "rule-é")), _SUBJECTS),
                max_size=30, unique=True))
def test_the_store_orders_findings_as_finding_order_does(made: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "o.db") as store:
        scan_id = store.start_scan(targets=["10.60.0.0/16"])
        findings = [Finding(f"f{n}", scan_id, rule, severity, subject, "t", "d", {"n": n})
                    for n, (severity, rule, subject) in enumerate(made)]
        assessment = Assessment(id="a-1", scan_id=scan_id, site="default", created_at="2026-12-04T00:00:00Z",
                                policy_hash="", policy_source="", register_hash="", register_imported_at=None,
                                signatures_hash="", camaudit_version="", reason="test")
        save_assessment(store, assessment, reversed(findings), [])
        read = list(each_finding(store, "a-1"))
    assert [f.id for f in read] == [f.id for f in sorted(findings, key=finding_order)]
    assert [f.evidence for f in read] == [f.evidence for f in sorted(findings, key=finding_order)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=8)), max_size=12))
def test_the_stores_address_order_is_camaudits(texts: list[str]) -> None:
    by_sql = sorted(texts, key=lambda t: (sql_address_order(t), t))
    assert by_sql == sorted(texts, key=lambda t: (address_order(t), t))


def test_a_scans_hosts_are_read_in_numeric_order_and_the_unidentified_a_page_at_a_time(tmp_path: Path) -> None:
    with open_store(tmp_path / "u.db") as store:
        scan_id = store.start_scan(targets=["10.60.0.0/16"])
        addresses = ["10.60.0.10", "10.60.0.9", "10.60.0.100", "10.60.1.2", "10.60.0.11"]
        store.add_services(scan_id, [(a, 80) for a in addresses])
        store.add_identity(scan_id, "10.60.0.100", Identity("axis", confidence=0.9))
        assert [h.address for h in stored_observations.each_host(store, scan_id)] == [
            "10.60.0.9", "10.60.0.10", "10.60.0.11", "10.60.0.100", "10.60.1.2"]
        seen = []
        for address in stored_observations.each_unidentified(store, scan_id, page=2):
            seen.append(address)
            store.add_identity(scan_id, address, Identity("unknown"))  # as identification records each
        assert seen == sorted(set(addresses) - {"10.60.0.100"})
        assert list(stored_observations.each_unidentified(store, scan_id)) == []
        assert store.db.execute("pragma cache_size").fetchone()[0] == -PAGE_CACHE_KIB
