"""The findings policy and assessment: the shipped rules on a lab database, user changes
without code, and errors that name the rule and the line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_lab import LabDb, build_lab_db

from camaudit.assess import Finding, assess_scan, scan_view, severity_at_least, stored_findings
from camaudit.errors import ConfigError, StoreError
from camaudit.policy import load_policy, parse_policy
from camaudit.resources import config_dir
from camaudit.store import assessments as stored_assessments
from camaudit.store import open_store

EXPECTED_LATEST = {
    ("covered-egress-open", "10.20.0.15", "critical"),  # the EZVIZ reports its cloud registration
    ("exposed-inbound", "10.20.0.11", "critical"),  # UPnP mapping on the Hikvision
    ("covered-maker-mismatch", "10.20.0.13", "high"),  # the "Lorex" that is a Dahua
    ("covered-unregistered", "10.20.0.15", "high"),  # the EZVIZ bought below the threshold
    ("known-cve", "10.20.0.11", "high"),
    ("known-cve", "10.20.0.12", "high"),
    ("covered-egress-unverified", "10.20.0.11", "medium"),
    ("covered-egress-unverified", "10.20.0.12", "medium"),
    ("covered-egress-unverified", "10.20.0.13", "medium"),
    ("registered-not-found", "asset:CAM-005", "medium"),
    ("segment-egress-inconclusive", "segment:10.20.0.0/24", "low"),
    ("covered-egress-closed", "10.30.0.5", "info"),
    ("segment-egress-closed", "segment:10.30.0.0/24", "info"),
}


def _copy(lab: LabDb, tmp_path: Path) -> Path:
    target = tmp_path / "copy.db"
    with open_store(lab.path) as store:
        store.db.execute(f"vacuum into '{target}'")
    return target


def test_the_shipped_policy_on_the_lab(lab_db: LabDb, tmp_path: Path) -> None:
    path = _copy(lab_db, tmp_path)
    with open_store(path) as store:
        findings = assess_scan(store, lab_db.latest)
        assert {(f.rule, f.subject, f.severity) for f in findings} == EXPECTED_LATEST
        assert [f.severity for f in findings] == sorted((f.severity for f in findings), key=["critical", "high", "medium", "low", "info"].index)
        closed = next(f for f in findings if f.rule == "covered-egress-closed")
        assert "window: 2026-11-03T09:00Z/2026-11-04T09:00Z" in closed.detail, "CLOSED is stated with its qualifiers"
        open_ = next(f for f in findings if f.rule == "covered-egress-open")
        assert open_.evidence["verdict"]["verdict"] == "OPEN"
        assert open_.evidence["signatures"][0]["value"] == "App-webs/"
        # Recorded in the store as an assessment; assessing again records a new assessment
        # beside it, and the first keeps its findings (assessments are frozen).
        first_assessment = stored_assessments.latest_assessment(store, lab_db.latest)
        assess_scan(store, lab_db.latest)
        latest = stored_assessments.latest_assessment(store, lab_db.latest)
        assert first_assessment is not None and latest is not None and latest.id != first_assessment.id
        assert {f.id for f in stored_findings(store, lab_db.latest)} == {f.id for f in findings}
        for assessment in (first_assessment, latest):
            count = store.db.execute("select count(*) from findings where assessment_id = ?", [assessment.id]).fetchone()[0]
            assert count == len(EXPECTED_LATEST)
        recon = {r["entry"]: r for r in store.db.query("select * from reconciliation where assessment_id = ?", [latest.id])}
        assert recon["asset:NVR-003"]["maker_mismatch"] == 1 and recon["asset:CAM-005"]["status"] == "missing"
        # The first scan had a CLOSED segment: no finding of the unverified kind there.
        first = {(f.rule, f.subject) for f in assess_scan(store, lab_db.first)}
        assert ("covered-egress-closed", "10.20.0.11") in first and not any(r == "covered-egress-unverified" for r, _ in first)


def test_without_verdicts_or_register_the_report_says_so(tmp_path: Path) -> None:
    lab = build_lab_db(tmp_path / "bare.db", register=False, verdicts=False)
    with open_store(lab.path) as store:
        view = scan_view(store, lab.latest)
        assert {d.verdict for d in view.devices} == {"NONE"} and not view.has_register
        findings = assess_scan(store, lab.latest)
    rules = {(f.rule, f.subject) for f in findings}
    assert ("covered-egress-unverified", "10.20.0.15") in rules
    assert not any(r in ("covered-unregistered", "unregistered-camera", "registered-not-found") for r, _ in rules)
    detail = next(f.detail for f in findings if f.rule == "covered-egress-unverified")
    # "no verdict recorded", said plainly: not the store's placeholder word NONE
    assert "NONE" not in detail and "(no verdict recorded)" in detail
    assert "Missing: an egress check of this device in this scan" in detail


def test_no_verdict_recorded_means_no_verdict_and_a_missing_table_is_damage(tmp_path: Path) -> None:
    lab = build_lab_db(tmp_path / "nov.db", register=False, verdicts=False)
    with open_store(lab.path) as store:
        assert {d.verdict for d in scan_view(store, lab.latest).devices} == {"NONE"}
        store.db.execute("drop table verdicts")
    # The verdicts table is the store's own (one table, since issue 11): without it the
    # database was damaged by hand, and the user is told so.
    with pytest.raises(StoreError, match="table verdicts is missing"):
        open_store(lab.path)


def test_users_change_severities_and_add_rules_without_code(lab_db: LabDb, tmp_path: Path) -> None:
    text = (config_dir() / "policy.yaml").read_text()
    text = text.replace("  - id: known-cve\n    severity: high", "  - id: known-cve\n    severity: critical")
    text += """
  - id: lorex-anywhere
    severity: low
    when: {brand: lorex, firmware: {not: "2.800.0000016.0.R"}}
    title: "A Lorex recorder"
    detail: "{brand} {model} at {address}, asset {asset_id}"
"""
    policy = parse_policy(text, "mine.yaml")
    with open_store(_copy(lab_db, tmp_path)) as store:
        findings = assess_scan(store, lab_db.latest, policy)
    by_rule = {(f.rule, f.subject): f for f in findings}
    assert by_rule[("known-cve", "10.20.0.12")].severity == "critical"
    assert by_rule[("lorex-anywhere", "10.20.0.13")].detail == "lorex NR818 at 10.20.0.13, asset NVR-003"
    assert ("lorex-anywhere", "10.20.0.12") not in by_rule


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("  - id: x1\n    severity: urgent\n    title: t\n", r"line 3, rule 'x1': severity 'urgent' is not one of"),
        ("  - id: x2\n    severity: high\n    when: {colour: red}\n    title: t\n", r"line 3, rule 'x2': `when` names 'colour'"),
        ("  - id: x3\n    severity: high\n    title: t\n    detail: 'at {adress}'\n", r"line 3, rule 'x3': the detail text uses \{adress\}"),
        ("  - id: x4\n    severity: high\n    when: {confidence: {atleast: 1}}\n    title: t\n", r"line 3, rule 'x4': the condition on 'confidence'"),
        ("  - id: covered-egress-open\n    severity: high\n    title: t\n", r"line 6: rule 'covered-egress-open' is defined twice \(first at line 3\)"),
        ("  - id: x5\n    severity: high\n", r"line 3, rule 'x5': needs a `title`"),
        ("  - id: x6\n    severity: high\n    title: t\n    colour: red\n", r"line 3, rule 'x6': unknown key\(s\) colour"),
        ("  - id: X 7\n    severity: high\n    title: t\n", r"line 3, rule 'X 7': needs an `id`"),
    ],
)
def test_a_bad_policy_names_the_rule_and_the_line(rule: str, message: str) -> None:
    text = "version: 1\nrules:\n" + rule + "  - id: covered-egress-open\n    severity: high\n    title: t\n"
    with pytest.raises(ConfigError, match=message):
        parse_policy(text, "mine.yaml")


def test_a_policy_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nrules:\n  - id: a\n    title: [unclosed\n")
    with pytest.raises(ConfigError, match=r"p.yaml, line \d+: not valid YAML"):
        load_policy(path)
    with pytest.raises(ConfigError, match="no policy file at"):
        load_policy(tmp_path / "absent.yaml")


def test_severity_at_least() -> None:
    def f(severity: str) -> Finding:
        return Finding("i", "s", "r", severity, "x", "t", "d")

    assert severity_at_least([f("info"), f("high")], "high")
    assert not severity_at_least([f("medium")], "high")
    assert severity_at_least([f("critical")], "high")
    assert not severity_at_least([f("critical")], "none")
    assert not severity_at_least([], "info")


def test_the_shipped_policy_has_dutch_for_every_rule() -> None:
    for rule in load_policy().rules:
        assert "nl" in rule.title and "nl" in rule.detail, rule.id


def test_evidence_is_json(lab_db: LabDb, tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    shutil.copy(_copy(lab_db, tmp_path), path)
    with open_store(path) as store:
        assess_scan(store, lab_db.latest)
        for row in store.db.query("select evidence from findings"):
            assert isinstance(json.loads(row["evidence"]), dict)


def test_a_devices_own_verdict_speaks_before_its_segments(tmp_path: Path) -> None:
    """Egress verification decides each device from the segment check *and* the device's
    placement: a segment OPEN seen by a sensor in another policy group must not turn a device
    whose own verdict is INCONCLUSIVE into OPEN. A device without a verdict of its own takes the
    segment's."""
    from report_lab import _dahua, _hik, write_scan

    with open_store(tmp_path / "placement.db") as store:
        scan_id = write_scan(
            store,
            [_hik("V5.7.18 build 240826"), _dahua("10.20.0.12")],
            [
                {"kind": "segment", "subject": "10.20.0.0/24", "verdict": "OPEN",
                 "qualifiers": ["egress observed on tcp/443 from sensor 10.20.0.2"]},
                {"kind": "device", "subject": "10.20.0.11", "verdict": "INCONCLUSIVE",
                 "missing": ["the device's gateway differs from the sensor's: its own path is untested"]},
            ],
            ["10.20.0.0/24"],
        )  # fmt: skip
        view = scan_view(store, scan_id)
        verdicts = {d.address: (d.verdict, d.verdict_source) for d in view.devices}
        assert verdicts["10.20.0.11"] == ("INCONCLUSIVE", "device")
        assert verdicts["10.20.0.12"][0] == "OPEN" and verdicts["10.20.0.12"][1].startswith("segment")
        findings = assess_scan(store, scan_id)
    egress_subjects = {f.subject for f in findings if f.rule == "covered-egress-open"}
    assert "10.20.0.12" in egress_subjects and "10.20.0.11" not in egress_subjects


def test_weak_evidence_of_a_covered_maker_is_a_lead_not_a_finding(tmp_path: Path) -> None:
    """A lone MAC prefix names a maker at under 0.5: the report says "possibly", at low severity,
    and claims neither "covered maker not in the register" nor "covered maker with egress"."""
    from report_lab import LabDevice, write_scan

    from camaudit.model import Identity

    weak = LabDevice("10.20.0.60", "44:19:b6:00:00:60",
                     Identity(vendor="hikvision", device_type=None, confidence=0.3, covered=True),
                     (("mac", "44:19:b6:00:00:60", None),), (80,))  # fmt: skip
    strong = LabDevice("10.20.0.61", "44:19:b6:00:00:61",
                       Identity(vendor="hikvision", device_type="camera", confidence=0.97, covered=True),
                       (("http_server", "App-webs/", 80),), (80,))  # fmt: skip
    with open_store(tmp_path / "weak.db") as store:
        scan_id = write_scan(store, [weak, strong], [], ["10.20.0.0/24"])
        findings = assess_scan(store, scan_id)
    by_subject: dict[str, set[str]] = {}
    for finding in findings:
        by_subject.setdefault(finding.subject, set()).add(finding.rule)
    assert by_subject["10.20.0.60"] == {"covered-maker-weak-evidence"}
    assert "covered-egress-unverified" in by_subject["10.20.0.61"]
    assert "covered-maker-weak-evidence" not in by_subject["10.20.0.61"]
    assert next(f for f in findings if f.subject == "10.20.0.60").severity == "low"
