"""Every table of the store, created and restructured by numbered migrations applied in their
true order (DESIGN.md section 6). Readable by Datasette as it is (config/datasette-metadata.json
describes every table and column).

Migrations 0001-0006 are camaudit 0.1's, under the names 0.1 recorded in ``_sqlite_migrations``
(0.1 applied them in the order their modules were imported: 0001, 0002, 0004, 0006, 0003, 0005;
each is independent of the others' order, so a 0.1 store is simply up to date with them).
0007 onwards build the estate model over them:

    0007  sites and segments; scans gain site and heartbeat_at; the register is per site
    0008  egress runs apart from scans: 0.1's egress pseudo-scans become egress runs
    0009  one verdicts table: one row per verdict with its JSON document
    0010  devices per site, stable across scans: sightings with first/last seen, aliases
    0011  frozen assessments: findings and reconciliation belong to an assessment
    0012  evidence bundles: the centre's ledger of merged bundles, an agent's outbox
    0013  identities keep their per-field evidence (the signatures and observations behind each field)
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ..model import utc_now

DEFAULT_SITE = "default"

migrations = Migrations("camaudit")

#: Tables the migrations create and commands read: a database whose migrations are recorded
#: but that lacks one was damaged by hand.
REQUIRED_TABLES = ("scans", "hosts", "services", "observations", "devices", "identities", "sightings",
                   "device_settings", "register", "reconciliation", "findings", "verdicts", "egress_runs",
                   "egress_tests", "listener_log", "egress_flows", "sites", "segments", "device_aliases",
                   "assessments", "bundles", "outbox")


@migrations(name="0001_scans_hosts_services_observations")
def _m0001(db: sqlite_utils.Database) -> None:
    db.table("scans").create(
        {
            "id": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "targets": str,  # JSON list, as given
            "exclude": str,  # JSON list
            "config_hash": str,
            "config": str,  # JSON of the effective configuration
            "camaudit_version": str,
            "host": str,  # the machine the scan ran on
            "addresses_scanned": int,
            "notes": str,  # JSON list of plain-language notes
            "error": str,
        },
        pk="id",
    )
    db.table("hosts").create(
        {"scan_id": str, "address": str, "mac": str, "first_seen": str, "last_seen": str},
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("services").create(
        {"scan_id": str, "address": str, "proto": str, "port": int, "state": str, "seen_at": str},
        pk=("scan_id", "address", "proto", "port"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("observations").create(
        {
            "id": str,  # content hash: the same evidence in the same scan is stored once
            "scan_id": str,
            "address": str,
            "port": int,
            "kind": str,
            "value": str,
            "source": str,
            "observed_at": str,
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("observations").create_index(["scan_id", "address"])
    db.table("observations").create_index(["address"])
    db.table("services").create_index(["address"])
    db.table("hosts").create_index(["address"])


@migrations(name="0002_devices_identities_sightings")
def _m0002(db: sqlite_utils.Database) -> None:
    db.table("devices").create(
        {"id": str, "first_seen": str, "last_seen": str, "serial": str, "mac": str, "vendor": str, "brand": str,
         "model": str},
        pk="id",
    )
    db.table("identities").create(
        {
            "scan_id": str,
            "address": str,
            "device_id": str,
            "vendor": str,
            "brand": str,
            "device_type": str,
            "model": str,
            "firmware": str,
            "serial": str,
            "confidence": float,
            "covered": int,
            "advisories": str,  # JSON list of CVE ids
            "signatures": str,  # JSON list of {id, kind, value, port}
            "conflicts": str,  # JSON list
            "identified_at": str,
        },
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("sightings").create(
        {"scan_id": str, "device_id": str, "address": str, "seen_at": str},
        pk=("scan_id", "device_id", "address"),
        foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")],
    )
    db.table("identities").create_index(["device_id"])
    db.table("sightings").create_index(["device_id"])


def _old_verdicts_table(db: sqlite_utils.Database) -> None:
    # 0.1's verdicts table, created by whichever of 0003 and 0005 ran first.
    if not db.table("verdicts").exists():
        db.table("verdicts").create(
            {"scan_id": str, "subject_kind": str, "subject": str, "verdict": str, "qualifiers": str, "missing": str,
             "paths": str, "decided_at": str},
            foreign_keys=[("scan_id", "scans", "id")],
        )
        db.table("verdicts").create_index(["scan_id", "subject_kind", "subject"])


@migrations(name="0003_register_reconciliation_findings")
def _m0003(db: sqlite_utils.Database) -> None:
    db.table("register").create(
        {
            "asset_id": str, "address": str, "mac": str, "serial": str, "declared_maker": str, "declared_brand": str,
            "declared_model": str, "location": str, "purpose": str, "department": str, "segment": str,
            "dpia_ref": str, "procurement_ref": str, "source_file": str, "imported_at": str,
        },
        pk="asset_id",
    )  # fmt: skip
    db.table("reconciliation").create(
        {
            "scan_id": str, "entry": str, "status": str, "asset_id": str, "device_id": str, "address": str,
            "matched_by": str, "declared_maker": str, "declared_brand": str, "identified_vendor": str,
            "identified_brand": str, "maker_mismatch": int, "detail": str,
        },
        pk=("scan_id", "entry"),
        foreign_keys=[("scan_id", "scans", "id")],
    )  # fmt: skip
    db.table("findings").create(
        {"id": str, "scan_id": str, "rule": str, "severity": str, "subject": str, "title": str, "detail": str,
         "evidence": str, "assessed_at": str},
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("reconciliation").create_index(["scan_id", "status"])
    db.table("findings").create_index(["scan_id", "severity"])
    _old_verdicts_table(db)


@migrations(name="0004_device_settings")
def _m0004(db: sqlite_utils.Database) -> None:
    # What each device says about its own network and cloud (interrogation; redacted before it
    # is written). JSON null inside means "not verified", never "off" (egress.md section 2).
    db.table("device_settings").create(
        {"scan_id": str, "address": str, "gateway": str, "dns": str, "ntp": str, "cloud": str, "upnp_mappings": str,
         "not_verified": str, "details": str, "read_at": str},
        pk=("scan_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )


@migrations(name="0005_egress_runs_tests_listener_log_flows")
def _m0005(db: sqlite_utils.Database) -> None:
    db.table("egress_runs").create(
        {
            "id": str, "scan_id": str, "control": int, "segment": str, "listeners": str, "vantage": str,
            "started_at": str, "finished_at": str, "planned": str, "route": str, "notes": str, "options": str,
            "camaudit_version": str,
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )  # fmt: skip
    db.table("egress_tests").create(
        {"run_id": str, "path": str, "nonce": str, "result": str, "basis": str, "conclusive": int, "proto": str,
         "dst": str, "port": int, "started_at": str, "ended_at": str, "evidence": str},
        pk=("run_id", "path"),
        foreign_keys=[("run_id", "egress_runs", "id")],
    )
    db.table("listener_log").create(
        {"id": str, "nonce": str, "src": str, "dst": str, "proto": str, "port": int, "kind": str, "at": str,
         "source_file": str, "imported_at": str},
        pk="id",
    )
    db.table("egress_flows").create(
        {"id": str, "scan_id": str, "capture": str, "kind": str, "device": str, "remote": str, "proto": str,
         "port": int, "state": str, "first_seen": str, "last_seen": str, "detail": str},
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("egress_tests").create_index(["nonce"])
    db.table("listener_log").create_index(["nonce"])
    db.table("egress_runs").create_index(["control", "started_at"])
    db.table("egress_flows").create_index(["scan_id", "device"])
    _old_verdicts_table(db)
    if "evidence" not in db.table("verdicts").columns_dict:
        db.table("verdicts").add_column("evidence", str)


@migrations(name="0006_host_problems")
def _m0006(db: sqlite_utils.Database) -> None:
    # What a scan could not do for a host, in plain language: an auditor must see what was not
    # verified, not only what was.
    db.table("hosts").add_column("problems", str)


# -- the estate model (issue 11) ---------------------------------------------------------------


@migrations(name="0007_sites_segments_scan_site")
def _m0007(db: sqlite_utils.Database) -> None:
    db.table("sites").create({"name": str, "created_at": str}, pk="name")
    db.table("segments").create(
        {"site": str, "cidr": str, "first_seen": str, "last_seen": str},
        pk=("site", "cidr"),
        foreign_keys=[("site", "sites", "name")],
    )
    db.table("scans").add_column("site", str)
    db.table("scans").add_column("heartbeat_at", str)
    db.execute("update scans set site = ?", [DEFAULT_SITE])
    if db.execute("select count(*) from scans").fetchone()[0]:
        first = db.execute("select min(started_at) from scans").fetchone()[0] or utc_now()
        db.table("sites").insert({"name": DEFAULT_SITE, "created_at": first})
    db.table("scans").create_index(["site", "started_at"])
    # The register is per site too: a site's scans are reconciled with its own assets.
    rows = [dict(r) for r in db.query("select * from register")]
    db.table("register").drop()
    db.table("register").create(
        {
            "site": str, "asset_id": str, "address": str, "mac": str, "serial": str, "declared_maker": str,
            "declared_brand": str, "declared_model": str, "location": str, "purpose": str, "department": str,
            "segment": str, "dpia_ref": str, "procurement_ref": str, "source_file": str, "imported_at": str,
        },
        pk=("site", "asset_id"),
    )  # fmt: skip
    if rows:
        db.table("sites").insert({"name": DEFAULT_SITE, "created_at": utc_now()}, ignore=True)
        db.table("register").insert_all([r | {"site": DEFAULT_SITE} for r in rows])


def _is_egress_pseudo_scan(config_text: str | None) -> str | None:
    """0.1 recorded each standalone ``egress check``/``pcap`` as a scan whose configuration
    names the egress command; returns that command."""
    try:
        config = json.loads(config_text or "{}")
    except ValueError:
        return None
    what = config.get("egress") if isinstance(config, dict) else None
    return str(what) if isinstance(what, str) else None


@migrations(name="0008_egress_runs_apart_from_scans")
def _m0008(db: sqlite_utils.Database) -> None:
    runs = db.table("egress_runs")
    runs.add_column("site", str)
    runs.add_column("kind", str)
    db.table("egress_flows").add_column("run_id", str)
    db.execute("update egress_runs set site = ?, kind = case when control = 1 then 'control' else 'check' end",
               [DEFAULT_SITE])
    db.table("egress_flows").create_index(["run_id", "device"])
    runs.create_index(["site", "kind", "started_at"])
    # A verdict decided by an egress run (not inside a scan) names the run; added here so
    # that 0.1's pseudo-scan verdicts can be moved to their run before 0009 restructures.
    db.table("verdicts").add_column("egress_run_id", str)
    pseudo = [(r[0], r[1], r[2], r[3], r[4]) for r in db.execute(
        "select id, config, started_at, finished_at, notes from scans where targets = '[]'").fetchall()]
    for scan_id, config_text, started_at, finished_at, _notes in pseudo:
        what = _is_egress_pseudo_scan(config_text)
        if what is None:
            continue
        run_ids = [r[0] for r in db.execute("select id from egress_runs where scan_id = ?", [scan_id]).fetchall()]
        if what == "pcap":
            # The capture's flows and verdicts become a passive evidence run of their own.
            config = json.loads(config_text or "{}")
            runs.insert({
                "id": scan_id, "site": DEFAULT_SITE, "kind": "pcap", "control": 0, "segment": None,
                "listeners": "[]", "vantage": "{}", "started_at": started_at, "finished_at": finished_at,
                "planned": "[]", "route": "null", "notes": "[]",
                "options": json.dumps({k: v for k, v in config.items() if k != "egress"}), "camaudit_version": None,
            })  # fmt: skip
            run_ids = [scan_id]
            db.execute("update egress_flows set run_id = ?, scan_id = null where scan_id = ?", [scan_id, scan_id])
        db.execute("update egress_runs set scan_id = null where scan_id = ?", [scan_id])
        if run_ids:
            db.execute("update verdicts set egress_run_id = ?, scan_id = null where scan_id = ?", [run_ids[0], scan_id])
        for table in ("findings", "reconciliation", "identities", "sightings", "device_settings", "observations",
                      "services", "hosts"):
            db.execute(f"delete from {table} where scan_id = ?", [scan_id])  # noqa: S608 - fixed names
        db.execute("delete from scans where id = ?", [scan_id])
    db.execute("update egress_flows set run_id = scan_id where run_id is null")


def _verdict_document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One verdict document from 0.1's rows for one subject (an egress row, and an EXPOSED row
    beside it when exposed)."""
    egress_rows = [r for r in rows if r["verdict"] != "EXPOSED"]
    exposed = any(r["verdict"] == "EXPOSED" for r in rows)
    main = egress_rows[-1] if egress_rows else rows[-1]
    egress = str(main["verdict"]) if egress_rows else ""

    def load(text: Any, default: Any) -> Any:
        if text in (None, ""):
            return default
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text

    missing = load(main.get("missing"), [])
    paths = load(main.get("paths"), [])
    evidence = load(main.get("evidence"), [])
    return {
        "verdict": "EXPOSED" if exposed and egress != "OPEN" else egress,
        "egress": egress,
        "exposed": exposed,
        "subject_kind": main["subject_kind"],
        "subject": main["subject"],
        "qualifiers": load(main.get("qualifiers"), []),
        "missing": missing if isinstance(missing, list) else [missing],
        "paths": paths if isinstance(paths, list) else [paths],
        "evidence": evidence if isinstance(evidence, list) else [evidence],
        "decided_at": main.get("decided_at") or utc_now(),
    }


@migrations(name="0009_one_verdicts_table")
def _m0009(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA defer_foreign_keys = ON")
    old = [dict(r) for r in db.query("select rowid as _rowid, * from verdicts order by rowid")]
    db.table("verdicts").drop()
    db.table("verdicts").create(
        {
            "id": int,
            "scan_id": str,  # the scan it belongs to, or null
            "egress_run_id": str,  # the egress run that decided it, or null
            "site": str,
            "subject_kind": str,  # device | segment
            "subject": str,  # an address or device id, or a segment (CIDR or name)
            "device_id": str,  # the device's key (subject_kind device), when known
            "verdict": str,  # OPEN | EXPOSED | CLOSED | INCONCLUSIVE
            "egress": str,  # the egress axis alone: OPEN | CLOSED | INCONCLUSIVE ('' when not judged)
            "exposed": int,
            "current": int,  # 0 once a later decision on the same subject replaced it
            "decided_at": str,
            "document": str,  # JSON: the Verdict, as Verdict.to_json() writes it
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id"), ("egress_run_id", "egress_runs", "id")],
    )
    db.table("verdicts").create_index(["scan_id", "subject_kind", "subject"])
    db.table("verdicts").create_index(["egress_run_id"])
    groups: dict[tuple[Any, Any, Any, Any], list[dict[str, Any]]] = {}
    for row in old:
        key = (row.get("scan_id"), row.get("egress_run_id"), row.get("subject_kind"), row.get("subject"))
        groups.setdefault(key, []).append(row)
    for (scan_id, run_id, _kind, _subject), rows in groups.items():
        doc = _verdict_document(rows)
        db.table("verdicts").insert({
            "scan_id": scan_id, "egress_run_id": run_id, "site": DEFAULT_SITE, "subject_kind": doc["subject_kind"],
            "subject": doc["subject"], "device_id": None, "verdict": doc["verdict"], "egress": doc["egress"],
            "exposed": int(doc["exposed"]), "current": 1, "decided_at": doc["decided_at"],
            "document": json.dumps(doc, default=str),
        })  # fmt: skip


@migrations(name="0010_devices_per_site_sightings_aliases")
def _m0010(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA defer_foreign_keys = ON")
    old_sightings = [dict(r) for r in db.query(
        "select g.scan_id, g.device_id, g.address, g.seen_at, coalesce(s.site, ?) as site "
        "from sightings g left join scans s on s.id = g.scan_id", [DEFAULT_SITE])]
    old_devices = [dict(r) for r in db.query("select * from devices")]
    db.table("sightings").drop()
    db.table("devices").drop()
    db.table("devices").create(
        {
            "site": str,
            "id": str,  # the device key: serial:<serial>, else mac:<mac>, else addr:<address>
            "key_kind": str,  # serial | mac | addr
            "first_seen": str,
            "last_seen": str,
            "serial": str,
            "mac": str,
            "vendor": str,
            "brand": str,
            "model": str,
        },
        pk=("site", "id"),
        foreign_keys=[("site", "sites", "name")],
    )
    db.table("sightings").create(
        {"site": str, "scan_id": str, "device_id": str, "address": str, "first_seen": str, "last_seen": str},
        pk=("scan_id", "device_id", "address"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("sightings").create_index(["site", "device_id"])
    db.table("sightings").create_index(["site", "address"])
    db.table("device_aliases").create(
        {"site": str, "alias": str, "device_id": str, "scan_id": str, "merged_at": str},
        pk=("site", "alias"),
        foreign_keys=[("site", "sites", "name")],
    )
    sites = {r["site"] for r in old_sightings} or ({DEFAULT_SITE} if old_devices else set())
    for site in sites:
        db.table("sites").insert({"name": site, "created_at": utc_now()}, ignore=True)
    site_of = {r["device_id"]: r["site"] for r in old_sightings}
    for d in old_devices:
        db.table("devices").insert(d | {"site": site_of.get(d["id"], DEFAULT_SITE),
                                        "key_kind": str(d["id"]).split(":", 1)[0]}, ignore=True)
    for s in old_sightings:
        db.table("sightings").insert({"site": s["site"], "scan_id": s["scan_id"], "device_id": s["device_id"],
                                      "address": s["address"], "first_seen": s["seen_at"], "last_seen": s["seen_at"]},
                                     ignore=True)


@migrations(name="0011_assessments")
def _m0011(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA defer_foreign_keys = ON")
    db.table("assessments").create(
        {
            "id": str,
            "scan_id": str,
            "site": str,
            "created_at": str,
            "policy_hash": str,  # sha256 of the policy text
            "policy_source": str,
            "register_hash": str,  # sha256 of the register as it was
            "register_imported_at": str,
            "register": str,  # JSON: the register as it was (the assessment's reconciliation input)
            "signatures_hash": str,  # sha256 of the signature files loaded
            "camaudit_version": str,
            "reason": str,  # first report | assess | scan | migrated from 0.1
            "verdict_ids": str,  # JSON list: the verdict rows it was assessed on
            "egress_runs": str,  # JSON list: the egress runs whose verdicts it used
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("assessments").create_index(["scan_id", "created_at"])
    findings = [dict(r) for r in db.query("select * from findings")]
    recon = [dict(r) for r in db.query("select * from reconciliation")]
    db.table("findings").drop()
    db.table("reconciliation").drop()
    db.table("findings").create(
        {"assessment_id": str, "id": str, "scan_id": str, "rule": str, "severity": str, "subject": str, "title": str,
         "detail": str, "evidence": str, "assessed_at": str},
        pk=("assessment_id", "id"),
        foreign_keys=[("assessment_id", "assessments", "id"), ("scan_id", "scans", "id")],
    )
    db.table("findings").create_index(["scan_id", "severity"])
    db.table("reconciliation").create(
        {"assessment_id": str, "scan_id": str, "entry": str, "status": str, "asset_id": str, "device_id": str,
         "address": str, "matched_by": str, "declared_maker": str, "declared_brand": str, "identified_vendor": str,
         "identified_brand": str, "maker_mismatch": int, "detail": str},
        pk=("assessment_id", "entry"),
        foreign_keys=[("assessment_id", "assessments", "id"), ("scan_id", "scans", "id")],
    )
    db.table("reconciliation").create_index(["scan_id", "status"])
    # 0.1 kept one assessment per scan (the last report's): it becomes that scan's first.
    scan_ids = sorted({r["scan_id"] for r in findings} | {r["scan_id"] for r in recon})
    for scan_id in scan_ids:
        when = next((r["assessed_at"] for r in findings if r["scan_id"] == scan_id and r.get("assessed_at")), None)
        assessment_id = f"migrated-{scan_id}"
        db.table("assessments").insert({
            "id": assessment_id, "scan_id": scan_id, "site": DEFAULT_SITE, "created_at": when or utc_now(),
            "policy_hash": "", "policy_source": "unknown (assessed by camaudit 0.1)", "register_hash": "",
            "register_imported_at": None, "register": None, "signatures_hash": "", "camaudit_version": "0.1",
            "reason": "migrated from 0.1", "verdict_ids": None, "egress_runs": "[]",
        })  # fmt: skip
        for r in findings:
            if r["scan_id"] == scan_id:
                db.table("findings").insert(r | {"assessment_id": assessment_id})
        for r in recon:
            if r["scan_id"] == scan_id:
                db.table("reconciliation").insert(r | {"assessment_id": assessment_id})


@migrations(name="0012_bundles")
def _m0012(db: sqlite_utils.Database) -> None:
    # The centre's ledger: one row per merged bundle (its id is the SHA-256 of its database), so
    # a bundle merged twice changes nothing. finalised_at is set once the merged scan has been
    # identified and assessed here; a merger killed between the two finishes it on its next start.
    db.table("bundles").create(
        {
            "bundle_id": str,
            "site": str,
            "kind": str,  # scan | egress
            "run_id": str,  # the scan's or the egress run's id
            "agent_id": str,
            "agent_version": str,
            "job_id": str,
            "signer": str,  # fingerprint of the key that signed it
            "size": int,
            "counts": str,  # JSON: rows per table
            "merged_at": str,
            "finalised_at": str,
        },
        pk="bundle_id",
    )
    db.table("bundles").create_index(["site", "merged_at"])
    # An agent's outbox: each bundle it made, kept until the centre has it (pending -> uploaded
    # -> merged), so nothing is lost while the server is unreachable.
    db.table("outbox").create(
        {
            "bundle_id": str,
            "site": str,
            "kind": str,
            "run_id": str,
            "job_id": str,
            "state": str,  # pending | uploaded | merged
            "bundle": bytes,
            "created_at": str,
            "updated_at": str,
            "attempts": int,
            "last_error": str,
        },
        pk="bundle_id",
    )
    db.table("outbox").create_index(["state", "created_at"])


@migrations(name="0013_identity_fields")
def _m0013(db: sqlite_utils.Database) -> None:
    # Per identity field, its value and the signatures and observations behind it (issue 14):
    # a report built from the store explains each field as the scan's own JSON does.
    db.table("identities").add_column("fields", str)
