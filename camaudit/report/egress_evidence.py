"""Egress evidence an auditor can check: per segment and per device, from the verdict's own record.

For a verdict this gives the listener (with its address class, decided by camaudit's own table
in camaudit.scope), the sensor's run and vantage, the control runs that speak for it (id, time,
vantage, passed or not), a table of paths (path, result, whether the listener saw the nonce, and
the answer or the silence), the device's own reports of cloud registrations and the flows a
capture saw. Pure: a verdict in, a JSON-ready document out; missing parts are simply absent (a
verdict recorded by an older camaudit, or by hand, carries less).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from ..model.verdicts import Reason, Verdict
from ..scope import classify
from .messages import remedy, render, render_with_remedy

#: Bases that mean the listener itself saw the probe's nonce (egress/verdict.py).
NONCE_SEEN_BASES = ("echo", "listener-log")
#: Longest answer text kept per path in a report (the JSON of the verdict keeps the record).
ANSWER_CHARS = 160


def _listener(address: str) -> dict[str, Any]:
    try:
        ip = ipaddress.ip_address(str(address).strip().strip("[]"))
    except ValueError:
        return {"address": address, "class": None, "why": None}
    c = classify(ip)
    return {"address": str(ip), "class": str(c.cls), "why": c.reason}


def _vantage(vantage: Any) -> dict[str, Any] | None:
    if not isinstance(vantage, Mapping):
        return None
    return {"host": vantage.get("hostname"), "addresses": list(vantage.get("addresses") or []),
            "gateway": vantage.get("gateway")}


def path_row(path: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the paths table: what was sent where, what came back, and whether the
    listener saw the probe's nonce (the one proof of egress an active probe gives)."""
    ev = path.get("evidence") if isinstance(path.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    basis = str(ev.get("basis") or "")
    received = ev.get("received")
    if received:
        answer = str(received)
    elif basis in ("timeout", "negative", "absent", "not-tested"):
        answer = {"timeout": "timeout: no answer", "negative": "no nonce in the answer",
                  "absent": "not present from this vantage", "not-tested": "not tested"}[basis]
    else:
        answer = basis or "—"
    detail = str(ev.get("detail") or "")
    destination = str(ev.get("dst") or "")
    if destination and ev.get("port"):
        destination += f":{ev.get('port')}"
    return {
        "path": str(path.get("path", "?")),
        "result": str(path.get("result", "?")),
        "basis": basis or None,
        "conclusive": bool(ev.get("conclusive", False)),
        "destination": destination or None,
        "nonce": ev.get("nonce"),
        "nonce_seen": basis in NONCE_SEEN_BASES,
        "answer": answer[:ANSWER_CHARS] + ("…" if len(answer) > ANSWER_CHARS else ""),
        "detail": detail[:ANSWER_CHARS] + ("…" if len(detail) > ANSWER_CHARS else ""),
        "at": ev.get("started_at"),
    }


def egress_evidence(row: Verdict | None, lang: str = "en") -> dict[str, Any] | None:
    """The auditable egress evidence of one verdict (segment or device), or None without one."""
    if row is None:
        return None
    evidence = [e for e in row.evidence if isinstance(e, Mapping)]
    run = next((e for e in evidence if e.get("kind") == "active"), None)
    controls = [e for e in evidence if e.get("kind") == "control"]
    doc: dict[str, Any] = {
        "run_id": run.get("run_id") if run else None,
        "control_run": bool(run.get("control")) if run else False,
        "started_at": run.get("started_at") if run else None,
        "finished_at": run.get("finished_at") if run else None,
        "listeners": [_listener(a) for a in (run.get("listeners") or [])] if run else [],
        "vantage": _vantage(run.get("vantage")) if run else None,
        "controls": [{"run_id": c.get("run_id"), "started_at": c.get("started_at"), "passed": bool(c.get("passed")),
                      "vantage": _vantage(c.get("vantage")), "reached": list(c.get("allowed") or [])}
                     for c in controls],
        "paths": [path_row(p) for p in row.paths if isinstance(p, Mapping)],
        "registrations": [
            {"service": e.get("setting"), "registered": bool(e.get("registered")),
             "servers": list(e.get("servers") or []), "source": e.get("source")}
            for e in evidence if e.get("kind") == "device_config"
        ],
        "flows": [f for e in evidence if e.get("kind") == "passive" for f in (e.get("flows") or [])][:50],
        "captures": [{"source": e.get("source"), "start": e.get("start"), "end": e.get("end")}
                     for e in evidence if e.get("kind") == "passive"],
        "missing": [{"text": render(m, lang), "remedy": remedy(m, lang)} for m in row.missing],
    }
    return doc


def missing_with_remedies(reasons: Sequence[Reason | Mapping[str, Any]] | None, lang: str = "en") -> list[str]:
    """Each gap followed by what to do about it, in ``lang``."""
    return [render_with_remedy(r, lang) for r in reasons or []]
