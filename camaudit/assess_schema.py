"""The assessment tables: the declared asset register, its reconciliation with each scan, the
findings policy produces, and the egress verdicts (DESIGN.md section 6).

Registered on the store's one migrations registry (``camaudit.store.migrations``); store.py
imports this module so that every open store carries these tables.

``verdicts`` is written by egress verification (DESIGN.md section 5) and read by assessment and
reports. This migration creates it only when it is missing, with the columns both sides agree
on; one row per subject and verdict, so an ``EXPOSED`` row sits beside the egress verdict
(``OPEN``/``CLOSED``/``INCONCLUSIVE``) of the same subject:

    scan_id       the scan the verdict belongs to
    subject_kind  ``device`` (subject = the address in that scan, or the device id) or
                  ``segment`` (subject = a CIDR network, or a segment name as in the register)
    subject       see subject_kind
    verdict       OPEN | EXPOSED | CLOSED | INCONCLUSIVE
    qualifiers    JSON: what a verdict is stated with (paths, vantage, window, ...)
    missing       JSON list: what coverage was missing (for INCONCLUSIVE)
    paths         JSON list: the paths tested, each with its result
    decided_at    ISO 8601 UTC
"""

from __future__ import annotations

import sqlite_utils

from .store import migrations

VERDICT_VALUES = ("OPEN", "EXPOSED", "CLOSED", "INCONCLUSIVE")


@migrations(name="0003_register_reconciliation_findings")
def _m0003(db: sqlite_utils.Database) -> None:
    db.table("register").create(
        {
            "asset_id": str,
            "address": str,
            "mac": str,
            "serial": str,
            "declared_maker": str,
            "declared_brand": str,
            "declared_model": str,
            "location": str,
            "purpose": str,
            "department": str,
            "segment": str,
            "dpia_ref": str,
            "procurement_ref": str,
            "source_file": str,
            "imported_at": str,
        },
        pk="asset_id",
    )
    db.table("reconciliation").create(
        {
            "scan_id": str,
            "entry": str,  # asset:<asset_id> or device:<device_id>: one row per asset or found device
            "status": str,  # matched | unregistered | missing
            "asset_id": str,
            "device_id": str,
            "address": str,
            "matched_by": str,  # serial | mac | address (for matched rows)
            "declared_maker": str,
            "declared_brand": str,
            "identified_vendor": str,
            "identified_brand": str,
            "maker_mismatch": int,
            "detail": str,
        },
        pk=("scan_id", "entry"),
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("findings").create(
        {
            "id": str,  # stable: hash of scan, rule and subject
            "scan_id": str,
            "rule": str,
            "severity": str,  # critical | high | medium | low | info
            "subject": str,  # an address, asset:<id> or segment:<name>
            "title": str,
            "detail": str,
            "evidence": str,  # JSON
            "assessed_at": str,
        },
        pk="id",
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("reconciliation").create_index(["scan_id", "status"])
    db.table("findings").create_index(["scan_id", "severity"])
    if not db.table("verdicts").exists():
        db.table("verdicts").create(
            {
                "scan_id": str,
                "subject_kind": str,
                "subject": str,
                "verdict": str,
                "qualifiers": str,
                "missing": str,
                "paths": str,
                "decided_at": str,
            },
            foreign_keys=[("scan_id", "scans", "id")],
        )
        db.table("verdicts").create_index(["scan_id", "subject_kind", "subject"])
