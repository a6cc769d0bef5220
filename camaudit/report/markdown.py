"""The Markdown report: the same content as the HTML report, for wikis, tickets and diffs.

Every device-supplied value is escaped, so a hostile banner cannot add a link, an image (a
request to another host when rendered) or a table column.
"""

from __future__ import annotations

import re
from typing import Any

from .estate_text import assessment_line, banner, estate_text, not_assessed_note
from .html import describe, path_line, when
from .i18n import localise, translator
from .messages import render, render_all, render_with_remedy

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def cell(value: Any) -> str:
    """One value, safe inside a Markdown table cell."""
    text = describe(value) if not isinstance(value, str) else value
    text = " ".join(text.split())  # newlines would end the row
    return _SPECIAL.sub(r"\\\1", text)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(doc: dict[str, Any]) -> str:
    t = translator(doc["lang"])
    scan, summary = doc["scan"], doc["summary"]

    def verdict_word(v: str) -> str:
        return t["verdict_NONE"] if v == "NONE" else v

    def tr(value: Any) -> Any:
        value = localise(value, doc["lang"])
        return " · ".join(describe(v) for v in value) if isinstance(value, list) else value

    def said(codes: Any) -> str:
        # Qualifiers and gaps are sentences with commas of their own: a middle dot keeps them apart.
        return " · ".join(render_all(codes, doc["lang"]))

    def todo(codes: Any) -> str:
        # Each gap followed by what to do about it.
        return " · ".join(render_with_remedy(c, doc["lang"]) for c in codes or [])

    def vantage(v: Any) -> str:
        if not v:
            return "—"
        return f"{v.get('host') or '—'} ({', '.join(v.get('addresses') or []) or '—'}; gateway {v.get('gateway') or '—'})"

    def egress_block(ev: dict[str, Any]) -> list[str]:
        listeners = ", ".join(f"`{cell(x['address'])}`" + (f" ({x['class']}: {cell(x['why'])})" if x.get("class") else "")
                              for x in ev["listeners"]) or "—"
        lines = [f"- {t['ev_listener']}: {listeners}", f"- {t['ev_vantage']}: {cell(vantage(ev['vantage']))}"]
        if ev.get("run_id"):
            lines.append(f"- {t['ev_run']}: `{cell(ev['run_id'])}` ({when(ev['started_at'])} – {when(ev['finished_at'])})")
        controls = "; ".join(f"`{cell(c['run_id'])}` {when(c['started_at'])}, {cell(vantage(c['vantage']))}: "
                             f"{t['ev_passed'] if c['passed'] else t['ev_failed']}" for c in ev["controls"])
        lines += [f"- {t['ev_controls']}: {controls or t['ev_no_control']}", ""]
        if ev["paths"]:
            lines += _table([t["ev_path"], t["ev_result"], t["ev_nonce"], t["ev_answer"], t["ev_detail"]],
                            [[p["path"], p["result"] + (f" ({p['basis']})" if p["basis"] else ""),
                              (t["ev_seen"] if p["nonce_seen"] else t["ev_not_seen"]) + (f" {p['nonce']}" if p["nonce"] else ""),
                              p["answer"], p["detail"]] for p in ev["paths"]])  # fmt: skip
        if ev["registrations"]:
            lines += [f"{t['ev_registrations']}: " + "; ".join(
                cell(r["service"]) + (f" ({cell(', '.join(r['servers']))})" if r["servers"] else "")
                for r in ev["registrations"]), ""]
        if ev["flows"]:
            lines += [f"{t['ev_flows']}: " + " · ".join(cell(f) for f in ev["flows"]), ""]
        return lines

    e = estate_text(doc["lang"])
    alert = banner(doc)
    out = [
        f"# {t['title']}",
        "",
        *([f"> **{alert}**", ""] if alert else []),
        f"- {t['scan']}: `{scan['scan_id']}` ({scan['status']})",
        f"- {e['site']}: {cell(scan.get('site') or 'default')}",
        f"- {e['assessment']}: {cell(assessment_line(doc))}",
        f"- {e['egress_runs']}: {cell(' '.join(doc.get('egress_runs') or []) or e['egress_runs_none'])}",
        f"- {t['started']}: {when(scan['started_at'])}; {t['finished']}: {when(scan['finished_at'])}",
        f"- {t['targets']}: {cell(scan['targets'])}",
        f"- {t['addresses_scanned']}: {scan['addresses_scanned']}",
        f"- {t['policy']}: {cell(doc['policy'])}",
        f"- {t['generated']}: {when(doc['generated_at'])}",
        "",
        f"## {t['summary']}",
        "",
        f"- {t['hosts_answered']}: **{summary['hosts']}**",
        f"- {t['identified']}: **{summary['identified']}**",
        f"- {t['covered_devices']}: **{summary['covered']}**"
        + (f" ({cell(summary['covered_makers'])})" if summary["covered_makers"] else ""),
        "- " + t["findings_by_severity"] + ": " + ", ".join(f"{t['sev_' + s]} {n}" for s, n in summary["findings"].items()),
        "- " + t["verdicts"] + ": " + ", ".join(f"{verdict_word(v)} {n}" for v, n in summary["verdicts"].items())
        + f", EXPOSED {summary['exposed']}",
        "",
    ]
    if not doc["verdict_recorded"]:
        out += [f"> {t['no_verdict_recorded']}", ""]
    if note := not_assessed_note(doc):
        out += [f"> {cell(note)}", ""]
    out += statement_markdown(doc)
    out += [f"### {t['by_maker']}", ""]
    out += _table([t["maker"], t["devices"], t["covered"]], [[m["maker"], m["devices"], m["covered"]] for m in summary["by_maker"]])
    if summary["by_brand"]:
        out += [f"### {t['by_brand']}", ""]
        out += _table([t["brand"], t["maker"], t["devices"]], [[b["brand"], b["maker"], b["devices"]] for b in summary["by_brand"]])
    out += [f"## {t['segments']}", ""]
    if doc["segments"]:
        out += _table(
            [t["segment"], t["verdict"], t["exposed"], t["devices"], t["qualifiers"], t["missing"]],
            [[s["segment"], verdict_word(s["verdict"]), t["yes"] if s["exposed"] else t["no"], len(s["devices"]),
              said(s["qualifier_codes"]), todo(s["missing_codes"])] for s in doc["segments"]],
        )  # fmt: skip
        with_evidence = [s for s in doc["segments"] if s.get("egress_evidence")]
        if with_evidence:
            out += [f"### {t['egress_evidence']}", ""]
            for s in with_evidence:
                out += [f"#### {cell(s['segment'])}: {verdict_word(s['verdict'])}", "", *egress_block(s["egress_evidence"])]
    else:
        out += [t["no_segments"], ""]
    out += [f"**{t['glossary']}**", ""]
    out += [f"- **{verdict_word(v)}**: {t['v_' + v]}" for v in ("OPEN", "EXPOSED", "CLOSED", "INCONCLUSIVE", "NONE")]
    out += ["", f"## {t['findings']} ({len(doc['findings'])})", ""]
    if doc["findings"]:
        out += _table(
            [t["severity"], t["findings"], t["subject"], t["detail"], t["rule"]],
            [[t["sev_" + f["severity"]], f["title"], f["subject"], f["detail"], f["rule"]] for f in doc["findings"]],
        )
    else:
        out += [t["no_findings"], ""]
    out += [f"## {t['device_table']}", ""]
    out += _table(
        [t["address"], t["maker"], t["brand"], t["model"], t["firmware"], t["serial"], t["covered"], t["advisories"],
         t["verdict"], t["register"], t["location"]],
        [[d["address"], d["vendor"], d["brand"] or "", d["model"] or "", d["firmware"] or "", d["serial"] or "",
          t["yes"] if d["covered"] else t["no"], d["advisories"],
          verdict_word(d["verdict"]) + (" + EXPOSED" if d["exposed"] else ""),
          t["reg_" + d["register"]] + (f" ({d['asset_id']})" if d["asset_id"] else ""), d["location"] or ""]
         for d in doc["devices"]],
    )  # fmt: skip
    out += [f"## {t['register_section']}", ""]
    register = doc["register"]
    if register:
        out += [
            f"- {t['register_assets']}: {register['assets']}",
            f"- {t['register_matched']}: {register['matched']}",
            f"- {t['register_unregistered']}: {register['unregistered']}",
            f"- {t['register_missing']}: {register['missing']}",
            f"- {t['register_mismatch']}: {register['mismatched']}",
            "",
        ]
        if register["missing_assets"]:
            out += [f"### {t['missing_assets']}", ""]
            out += _table(
                [t["asset"], t["address"], t["mac"], t["serial"], t["maker"], t["location"]],
                [[a["asset_id"], a["address"] or "", a["mac"] or "", a["serial"] or "", a["declared_maker"] or "",
                  a["location"] or ""] for a in register["missing_assets"]],
            )  # fmt: skip
    else:
        out += [t["register_none"], ""]
    out += [f"## {t['changes']}", ""]
    changes = doc["changes"]
    if changes is None:
        out += [t["changes_none"], ""]
    elif not changes["changes"]:
        out += [f"{t['changes_nothing']} (`{changes['before']['scan_id']}`).", ""]
    else:
        out += [f"{t['before']}: `{changes['before']['scan_id']}` ({when(changes['before']['started_at'])})", ""]
        out += _table(
            ["", t["address"], t["devices"], t["before"], t["after"]],
            [[t["change_" + c["kind"]], c["address"], c["label"], c["before"], c["after"]] for c in changes["changes"]],
        )
    out += [f"## {t['evidence']}", "", t["evidence_intro"], ""]
    for d in doc["devices"]:
        out += [f"### {cell(d['address'])} · {cell(d['vendor'])} {cell(d['model'] or '')}", ""]
        if d["signatures"]:
            out += _table(["signature", "kind", "port", "value"], [[s.get("id"), s.get("kind"), s.get("port") or "", (s.get("value") or "")[:300]] for s in d["signatures"]])
        else:
            out += [t["no_signatures"], ""]
        line = f"{t['verdict']}: **{verdict_word(d['verdict'])}**"
        if d["verdict_source_code"]:
            line += f" ({cell(render(d['verdict_source_code'], doc['lang']))})"
        if d["qualifier_codes"]:
            line += f"; {t['qualifiers']}: {cell(said(d['qualifier_codes']))}"
        if d["missing_codes"]:
            line += f"; {t['missing']}: {cell(todo(d['missing_codes']))}"
        if d["paths"] and not d.get("egress_evidence"):
            line += f"; {t['paths']}: {cell(path_line(d['paths']))}"
        out += [line, ""]
        if d.get("egress_evidence"):
            out += egress_block(d["egress_evidence"])
        if d["asset_id"] or d["register_detail"]:
            out += [f"{t['register']}: {cell(d['asset_id'] or '')} {cell(tr(d['register_detail']))}".rstrip(), ""]
    out += ["---", "", t["footer"].format(version=doc["camaudit_version"]), ""]
    return "\n".join(out)


def statement_markdown(doc: dict[str, Any]) -> list[str]:
    """The statement of one scan report document, as Markdown lines (scan and estate reports)."""
    e = estate_text(doc["lang"])
    st = doc["statement"]
    out = [f"### {e['statement']}", "", f"**{cell(st['conclusion_text'])}**", ""]
    out += [f"> {cell(line)}" for line in st["text"]] + ["", f"**{e['reproducibility']}**", ""]
    for key, value in st["reproducibility"].items():
        shown = " ".join(value) if isinstance(value, list) else value
        out.append(f"- {e['repro_' + key]}: `{shown or e['none']}`")
    return [*out, ""]
