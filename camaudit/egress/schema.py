"""The egress tables, registered on the store's one migrations registry.

    egress_runs    one `egress check` run (a segment check or a --control run): vantage, listener,
                   window, planned paths, the route found by TTL probes
    egress_tests   one row per tested path with its nonce and evidence (reference/egress.md 1.5)
    listener_log   nonces a listener saw (``egress import-log``): proof of one-way egress
    egress_flows   flows and vendor-cloud DNS lookups from captures (``egress pcap``)

``verdicts`` belongs to the assessment schema (:mod:`camaudit.assess_schema`, migration 0003);
this migration creates it with the same columns when it is missing and adds an ``evidence``
column (JSON: every piece of evidence the verdict was decided on), which assessment reads when
present. store.py imports this module, so every open store carries these tables.
"""

from __future__ import annotations

import sqlite_utils

from ..store import migrations


@migrations(name="0005_egress_runs_tests_listener_log_flows")
def _m0005(db: sqlite_utils.Database) -> None:
    db.table("egress_runs").create(
        {
            "id": str,
            "scan_id": str,
            "control": int,
            "segment": str,
            "listeners": str,  # JSON list
            "vantage": str,  # JSON: hostname, addresses, interface, mac, gateway, resolvers
            "started_at": str,
            "finished_at": str,
            "planned": str,  # JSON list of path names
            "route": str,  # JSON: TTL-stepped hops (an indicator, not a verdict)
            "notes": str,  # JSON list
            "options": str,  # JSON: ports, zone, timeouts as run
            "camaudit_version": str,
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("egress_tests").create(
        {
            "run_id": str,
            "path": str,
            "nonce": str,
            "result": str,  # allowed | blocked | unknown
            "basis": str,
            "conclusive": int,
            "proto": str,
            "dst": str,
            "port": int,
            "started_at": str,
            "ended_at": str,
            "evidence": str,  # JSON: the path's full evidence record
        },
        pk=("run_id", "path"),
        foreign_keys=[("run_id", "egress_runs", "id")],
    )
    db.table("listener_log").create(
        {
            "id": str,  # hash of the line: importing a log twice stores it once
            "nonce": str,
            "src": str,
            "dst": str,
            "proto": str,
            "port": int,
            "kind": str,
            "at": str,
            "source_file": str,
            "imported_at": str,
        },
        pk="id",
    )
    db.table("egress_flows").create(
        {
            "id": str,
            "scan_id": str,
            "capture": str,
            "kind": str,  # flow | lookup
            "device": str,
            "remote": str,
            "proto": str,
            "port": int,
            "state": str,  # attempted | established (flows); answered | unanswered (lookups)
            "first_seen": str,
            "last_seen": str,
            "detail": str,  # JSON
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("egress_tests").create_index(["nonce"])
    db.table("listener_log").create_index(["nonce"])
    db.table("egress_runs").create_index(["control", "started_at"])
    db.table("egress_flows").create_index(["scan_id", "device"])
    if not db.table("verdicts").exists():
        db.table("verdicts").create(
            {
                "scan_id": str, "subject_kind": str, "subject": str, "verdict": str,
                "qualifiers": str, "missing": str, "paths": str, "decided_at": str,
            },
            foreign_keys=[("scan_id", "scans", "id")],
        )
        db.table("verdicts").create_index(["scan_id", "subject_kind", "subject"])
    if "evidence" not in db.table("verdicts").columns_dict:
        db.table("verdicts").add_column("evidence", str)
