"""The estate report as HTML (one self-contained file, like the scan report: inline CSS and SVG,
no script at all) and as Markdown. The JSON is the document itself."""

from __future__ import annotations

from collections import Counter
from typing import Any

from markupsafe import Markup

from .charts import VERDICT_COLOURS, findings_over_time, palette, stacked_bars
from .estate import cross_site_text
from .estate_text import assessment_line, estate_text
from .html import _environment, _template_text, history_chart, path_line, when
from .i18n import translator
from .markdown import _table, cell, statement_markdown
from .messages import render_all

_VERDICT_KEYS = ("OPEN", "CLOSED", "INCONCLUSIVE", "NONE")


def _age_text(doc: dict[str, Any]) -> str:
    seconds = doc.get("max_age")
    if not seconds:
        return ""
    from .estate import _age_words

    return _age_words(float(seconds))


def estate_charts(doc: dict[str, Any]) -> dict[str, Any]:
    """The estate's charts: devices by maker per site, verdicts per site, and per site its makers
    and its findings over time."""
    e = estate_text(doc["lang"])
    t = translator(doc["lang"])
    makers = [m["maker"] for m in doc["inventory"]["by_maker"]]
    colours = palette(makers, {"hikvision": "#b42318", "dahua": "#c2410c", "unknown": "#9ca3af"})
    by_site = [(s["site"], s["by_maker"]) for s in doc["inventory"]["by_site"]]
    verdicts = [(s["site"], dict(Counter(d["verdict"] for d in s["devices"]))) for s in doc["sites"]]
    labels = {k: (t["verdict_NONE"] if k == "NONE" else k) for k in _VERDICT_KEYS}
    verdict_rows = [(site, {labels[k]: v for k, v in counts.items() if k in labels}) for site, counts in verdicts]
    per_site = []
    for i, s in enumerate(doc["sites"], start=1):
        rows = [(m["maker"], {m["maker"]: m["devices"]}) for m in s["summary"]["by_maker"]]
        per_site.append({
            "makers": stacked_bars(f"chart-site-{i}-makers", f"{s['site']}: {t['by_maker']}", rows,
                                   [m["maker"] for m in s["summary"]["by_maker"]], colours),
            "history": history_chart(s, f"chart-site-{i}-history"),
        })
    return {
        "maker_chart": stacked_bars("chart-site-makers", e["by_site_maker"], by_site, makers, colours),
        "verdict_chart": stacked_bars("chart-site-verdicts", e["verdicts_by_site"], verdict_rows,
                                      [labels[k] for k in _VERDICT_KEYS],
                                      {labels[k]: VERDICT_COLOURS[k] for k in _VERDICT_KEYS}),
        "site_charts": per_site,
    }


def render_estate_html(doc: dict[str, Any]) -> str:
    lang = doc["lang"]
    env = _environment()
    env.filters["msg"] = lambda codes: render_all(codes, lang)
    for site in doc["sites"]:
        site["assessment_line"] = assessment_line(site)
    try:
        return env.get_template("estate.html.j2").render(
            doc=doc, t=translator(lang), e=estate_text(lang), max_age=_age_text(doc),
            css=Markup(_template_text("report.css")),  # noqa: S704 - our own file, not user data
            cross_site=[cross_site_text(item, lang) for item in doc["register_across_sites"]],
            **estate_charts(doc),
        )
    finally:
        for site in doc["sites"]:
            site.pop("assessment_line", None)


def render_estate_markdown(doc: dict[str, Any]) -> str:
    lang = doc["lang"]
    t, e = translator(lang), estate_text(lang)
    out = [f"# {e['estate_title']}", ""]
    if doc["flags_text"]:
        out += [f"> **{e['flags']}**", ">"] + [f"> - **{cell(line)}**" for line in doc["flags_text"]] + [""]
    else:
        age = _age_text(doc)
        out += [e["no_flags"].format(age=e["within_age"].format(max_age=age) if age else ""), ""]
    out += [f"- {t['generated']}: {when(doc['generated_at'])}", f"- {e['sites']}: {len(doc['sites'])}", "",
            f"## {e['conclusions']}", ""]
    out += [f"- **{s['statement']['verdict']}** {cell(s['conclusion_text'])}" for s in doc["sites"]] + [""]
    inv = doc["inventory"]
    out += [f"## {e['inventory']}", "", f"- {t['devices']}: **{inv['devices']}**",
            f"- {t['covered_devices']}: **{inv['covered']}**", ""]
    out += _table([t["maker"], t["devices"], t["covered"]], [[m["maker"], m["devices"], m["covered"]] for m in inv["by_maker"]])
    if inv["by_brand"]:
        out += _table([t["brand"], t["maker"], t["devices"]], [[b["brand"], b["maker"], b["devices"]] for b in inv["by_brand"]])
    out += _table([e["site"], t["devices"], t["covered"], t["by_maker"]],
                  [[s["site"], s["devices"], s["covered"], ", ".join(f"{m} {n}" for m, n in s["by_maker"].items())]
                   for s in inv["by_site"]])
    out += [f"## {e['register_across']}", ""]
    cross = doc["register_across_sites"]
    out += ([f"- {cell(cross_site_text(item, lang))}" for item in cross] if cross else [e["register_across_none"]]) + [""]
    for s in doc["sites"]:
        out += [f"## {e['site']}: {cell(s['site'])}", ""]
        out += [f"> **{cell(line)}**" for line in s["flags_text"]] + ([""] if s["flags_text"] else [])
        out += [f"- {e['reported_scan']}: `{s['scan']['scan_id']}` ({s['scan']['status']}, {when(s['scan']['started_at'])})",
                f"- {e['latest_scan']}: `{s['latest_scan']['scan_id']}` ({s['latest_scan']['status']})",
                f"- {e['assessment']}: {cell(assessment_line(s))}", ""]
        out += statement_markdown(s)
        if s["segments"]:
            out += [f"### {t['segments']}", ""]
            out += _table([t["segment"], t["verdict"], t["devices"], t["paths"]],
                          [[g["segment"], g["verdict"], len(g["devices"]), path_line(g["paths"])] for g in s["segments"]])
        runs = s["site_egress_runs"]
        out += [f"### {e['site_egress_runs']}", ""]
        out += _table([e["run"], e["kind"], t["segment"], e["when"]],
                      [[r["run_id"], r["kind"], r["segment"] or "", when(r["started_at"])] for r in runs]) if runs else [e["none"], ""]
        out += [f"### {t['changes']}", ""]
        changes = s["changes"]
        if changes is None:
            out += [t["changes_none"], ""]
        elif not changes["changes"]:
            out += [f"{t['changes_nothing']} (`{changes['before']['scan_id']}`).", ""]
        else:
            out += _table(["", t["address"], t["devices"], t["before"], t["after"]],
                          [[t["change_" + c["kind"]], c["address"], c["label"], c["before"], c["after"]]
                           for c in changes["changes"]])
    out += ["---", "", t["footer"].format(version=doc["camaudit_version"]), ""]
    return "\n".join(out)


__all__ = ["findings_over_time", "render_estate_html", "render_estate_markdown", "statement_markdown"]
