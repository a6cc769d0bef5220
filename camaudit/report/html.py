"""The HTML report: one self-contained file (inline CSS, inline SVG charts, one inline script),
so it can be mailed, archived with the audit file and opened offline.

No request leaves the page: nothing in it refers to another file or host, and a
Content-Security-Policy (``default-src 'none'``, the script admitted by its hash) makes the
browser refuse any request that device-supplied text might still try to cause. Every value
comes through Jinja2's autoescaping: banners, models and titles are written by devices and are
hostile until shown otherwise.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import ipaddress
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from .charts import findings_over_time
from .estate_text import assessment_line, banner, estate_text, not_assessed_note
from .i18n import localise, translator
from .messages import render, render_all, render_with_remedy

_MAKER_COLOURS = {"hikvision": "#b42318", "dahua": "#c2410c"}
_VERDICT_COLOURS = {"OPEN": "#b42318", "EXPOSED": "#7a1fa2", "CLOSED": "#1f7a3a", "INCONCLUSIVE": "#a16207", "NONE": "#6b7280"}
_SEVERITY_COLOURS = {"critical": "#8e1b1b", "high": "#c2410c", "medium": "#a16207", "low": "#2f6f9f", "info": "#5b6474"}


def _template_text(name: str) -> str:
    return (resources.files("camaudit.report") / "templates" / name).read_text(encoding="utf-8")


def describe(value: Any) -> str:
    """A verdict's qualifiers, missing list or paths, as one readable line."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(describe(v) for v in value)
    return str(value)


def path_line(paths: Any) -> str:
    """Tested paths as ``tcp/443 blocked (timeout); udp/8800 allowed (echo)``: what each path
    showed and on what basis, without the raw evidence (the JSON report keeps that)."""
    if not isinstance(paths, list):
        return describe(paths)
    parts = []
    for p in paths:
        if not isinstance(p, dict):
            parts.append(describe(p))
            continue
        basis = (p.get("evidence") or {}).get("basis") if isinstance(p.get("evidence"), dict) else None
        parts.append(f"{p.get('path', '?')} {p.get('result', '?')}" + (f" ({basis})" if basis else ""))
    return "; ".join(parts)


def when(value: Any) -> str:
    """An ISO timestamp as ``2026-11-29 14:20:03 UTC``."""
    if not value:
        return "—"
    try:
        moment = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def address_key(value: str) -> str:
    """A string that sorts addresses numerically (IPv4 before IPv6)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return "9" + value
    return f"{ip.version}{int(ip):039d}"


def history_chart(doc: dict[str, Any], chart_id: str) -> Markup:
    """The "findings over time" chart of a report document's ``history``."""
    e = estate_text(doc["lang"])
    return findings_over_time(chart_id, e["findings_over_time"], doc.get("history") or [],
                              list(doc["summary"]["findings"]), e["not_assessed_scan"])


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _template_text(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters.update(describe=describe, when=when, address_key=address_key, paths=path_line)
    return env


def render_html(doc: dict[str, Any]) -> str:
    """Render a report document (:func:`camaudit.report.data.build_report`) as HTML."""
    t = translator(doc["lang"])
    script = _template_text("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    summary = doc["summary"]
    verdict_rows = [
        {"label": t["verdict_NONE"] if v == "NONE" else v, "key": v, "devices": n}
        for v, n in summary["verdicts"].items()
    ] + [{"label": "EXPOSED", "key": "EXPOSED", "devices": summary["exposed"]}]
    severity_rows = [{"label": t[f"sev_{s}"], "key": s, "findings": n} for s, n in summary["findings"].items()]
    brand_rows = [
        {"label": b["brand"] if b["brand"] == b["maker"] else f"{b['brand']} ({b['maker']})", "devices": b["devices"]}
        for b in summary["by_brand"]
    ]
    covered = set(summary["covered_makers"])
    env = _environment()
    env.filters["tr"] = lambda value: localise(value, doc["lang"])
    # reasons (flat code objects) in the report's language, through the message catalogue
    env.filters["msg"] = lambda codes: render_all(codes, doc["lang"])
    env.filters["msg1"] = lambda code: render(code, doc["lang"]) if code else ""
    # gaps, each followed by what to do about it
    env.filters["todo"] = lambda codes: [render_with_remedy(c, doc["lang"]) for c in codes or []]
    template = env.get_template("report.html.j2")
    return template.render(
        doc=doc,
        t=t,
        e=estate_text(doc["lang"]),
        banner=banner(doc),
        assessment_line=assessment_line(doc),
        not_assessed=not_assessed_note(doc),
        css=Markup(_template_text("report.css")),  # noqa: S704 - our own file, not user data
        script=Markup(script),  # noqa: S704 - our own file, not user data
        script_hash=f"sha256-{digest}",
        history_chart=history_chart(doc, "chart-history"),
        verdict_rows=verdict_rows,
        severity_rows=severity_rows,
        brand_rows=brand_rows,
        device_anchors={d["address"]: i for i, d in enumerate(doc["devices"], start=1)},
        maker_color=lambda row: _MAKER_COLOURS.get(row["maker"], "#b42318" if row["maker"] in covered else "#2f6f9f"),
        plain_color=lambda row: "#2f6f9f",
        verdict_color=lambda row: _VERDICT_COLOURS[row["key"]],
        severity_color=lambda row: _SEVERITY_COLOURS[row["key"]],
    )
