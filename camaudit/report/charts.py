"""Charts as inline SVG, drawn in Python: no script, no font or file fetched, so they render the
same in a browser, offline, and in the PDF (WeasyPrint draws SVG itself).

Every label is escaped here: maker, brand and site names can come from devices or from a
register, and are hostile until shown otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

#: Colours of the severities, verdicts and the first makers (the rest cycle through a palette).
SEVERITY_COLOURS = {"critical": "#8e1b1b", "high": "#c2410c", "medium": "#a16207", "low": "#2f6f9f", "info": "#5b6474"}
VERDICT_COLOURS = {"OPEN": "#b42318", "EXPOSED": "#7a1fa2", "CLOSED": "#1f7a3a", "INCONCLUSIVE": "#a16207",
                   "NONE": "#6b7280"}
_PALETTE = ("#b42318", "#c2410c", "#2f6f9f", "#1f7a3a", "#7a1fa2", "#a16207", "#0e7490", "#6b7280", "#4d7c0f")


def _label(value: Any, width: int = 24) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _svg(chart_id: str, width: int, height: int, body: list[str], title: str) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart-svg" role="img" '
            f'aria-label="{escape(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f"<title>{escape(title)}</title>")
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every value above and in body is escaped


def palette(keys: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    fixed = fixed or {}
    free = [c for c in _PALETTE if c not in fixed.values()] or list(_PALETTE)
    colours, spare = {}, iter(free * (len(keys) // len(free) + 1))
    for key in keys:
        colours[key] = fixed.get(key) or next(spare)
    return colours


def stacked_bars(chart_id: str, title: str, rows: Sequence[tuple[str, Mapping[str, int]]], keys: Sequence[str],
                 colours: Mapping[str, str]) -> Markup:
    """One horizontal bar per row, stacked by key (devices by maker per site), with a legend."""
    label_w, bar_w, row_h = 150, 300, 24
    top = max((sum(v.get(k, 0) for k in keys) for _, v in rows), default=0)
    body: list[str] = []
    for i, (label, values) in enumerate(rows):
        y = i * row_h + 4
        body.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(_label(label, 22))}</text>')
        x = float(label_w)
        for key in keys:
            n = values.get(key, 0)
            if not n or not top:
                continue
            w = n / top * bar_w
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="17" fill="{escape(colours[key])}" '
                        f'data-key="{escape(key)}" data-value="{n}"><title>{escape(key)}: {n}</title></rect>')
            x += w
        body.append(f'<text x="{x + 5:.1f}" y="{y + 14}" font-size="12" font-weight="600">{sum(values.values())}</text>')
    legend_y = len(rows) * row_h + 10
    x = 0.0
    line = 0
    for key in keys:
        text = _label(key, 18)
        step = 16 + 7 * len(text) + 12
        if x + step > label_w + bar_w + 40:
            x, line = 0.0, line + 1
        y = legend_y + line * 18
        body.append(f'<rect x="{x:.1f}" y="{y}" width="11" height="11" fill="{escape(colours[key])}"></rect>'
                    f'<text x="{x + 15:.1f}" y="{y + 10}" font-size="11">{escape(text)}</text>')
        x += step
    height = legend_y + (line + 1) * 18 + 4
    return _svg(chart_id, label_w + bar_w + 40, height, body, title)


def bars(chart_id: str, title: str, rows: Sequence[tuple[str, int, str]]) -> Markup:
    """Simple horizontal bars: (label, value, colour)."""
    top = max((v for _, v, _ in rows), default=0)
    body: list[str] = []
    for i, (label, value, colour) in enumerate(rows):
        y = i * 24 + 4
        w = value / top * 240 if top else 0
        body.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(_label(label))}</text>'
                    f'<rect x="160" y="{y}" width="{w:.1f}" height="17" fill="{escape(colour)}" data-value="{value}">'
                    f"</rect><text x=\"{166 + w:.1f}\" y=\"{y + 14}\" font-size=\"12\" font-weight=\"600\">{value}</text>")
    return _svg(chart_id, 440, len(rows) * 24 + 8, body, title)


def findings_over_time(chart_id: str, title: str, history: Sequence[Mapping[str, Any]], severities: Sequence[str],
                       no_data: str) -> Markup:
    """One stacked column per scan (oldest left), by severity; a scan never assessed is a grey
    mark with ``no_data``, never a zero."""
    col_w, gap, plot_h, base = 34, 12, 120, 140
    counts = [h.get("findings") for h in history]
    top = max((sum(c.values()) for c in counts if c), default=0)
    body: list[str] = [f'<line x1="0" y1="{base}" x2="{max(len(history), 1) * (col_w + gap)}" y2="{base}" '
                       'stroke="#98a1b0" stroke-width="1"></line>']
    for i, entry in enumerate(history):
        x = i * (col_w + gap) + 4
        found = entry.get("findings")
        date = str(entry.get("started_at") or "")[5:10]
        body.append(f'<text x="{x}" y="{base + 14}" font-size="10">{escape(date)}</text>')
        if not found:
            body.append(f'<rect x="{x}" y="{base - 4}" width="{col_w}" height="4" fill="#d9dde4">'
                        f"<title>{escape(str(entry.get('scan_id', ''))[:8])}: {escape(no_data)}</title></rect>")
            continue
        y = float(base)
        for severity in severities:
            n = int(found.get(severity, 0))
            if not n or not top:
                continue
            h = n / top * plot_h
            y -= h
            body.append(f'<rect x="{x}" y="{y:.1f}" width="{col_w}" height="{h:.1f}" '
                        f'fill="{SEVERITY_COLOURS.get(severity, "#6b7280")}" data-key="{escape(severity)}" '
                        f'data-value="{n}"><title>{escape(severity)}: {n}</title></rect>')
        body.append(f'<text x="{x + 4}" y="{y - 4:.1f}" font-size="11" font-weight="600">{sum(found.values())}</text>')
    width = max(len(history), 1) * (col_w + gap) + 8
    return _svg(chart_id, max(width, 200), base + 22, body, title)
