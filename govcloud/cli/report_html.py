"""One self-contained HTML page of a report: its charts as inline SVG (drawn here; no font, script or file
from the network, so it opens offline and prints as it shows), then every section as a table.

A few lines of inline script only *report* what the browser drew: each chart's figure gets
``data-rendered="W×H"`` (the bounding box of its drawn marks), which is how a headless browser test tells
a drawn chart from markup that never rendered. The page reads the same without it.
"""

from __future__ import annotations

from html import escape

from govcloud.cli.report_output import cell
from govcloud.planner.reports import Chart, Report, Section

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 860, 320, 70, 170, 20, 40

STYLE = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f0f3f7}td.n{text-align:right}
figure{margin:12px 0}figcaption{font-weight:bold;margin-bottom:4px}
svg text{font-size:11px;fill:#333}.note{color:#555;font-size:13px}
"""


def _scale(top: float) -> float:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(((int(top) // step) + 1) * step)


def _axes(chart: Chart, top: float) -> list[str]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{LEFT + inner_w}" y2="{TOP + inner_h}" stroke="#888"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}" stroke="#888"/>']
    for i in range(5):
        value, y = top * i / 4, TOP + inner_h - inner_h * i / 4
        label = f"{value:,.0f}" if top >= 20 else f"{value:g}"
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + inner_w}" y2="{y:.1f}" stroke="#eee"/>')
    every = max(1, len(chart.x) // 10)
    for i, label in enumerate(chart.x):
        if i % every == 0:
            x = LEFT + inner_w * (i + 0.5) / max(1, len(chart.x))
            parts.append(f'<text x="{x:.1f}" y="{TOP + inner_h + 16}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP - 6}" text-anchor="end">{escape(chart.unit)}</text>')
    return parts


def _lines(chart: Chart) -> list[str]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _scale(max((v for s in chart.series for v in s.values), default=0))
    parts = _axes(chart, top)
    for n, series in enumerate(chart.series):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(f"{LEFT + inner_w * (i + 0.5) / max(1, len(series.values)):.1f},{TOP + inner_h - inner_h * v / top:.1f}"
                          for i, v in enumerate(series.values))
        parts.append(f'<polyline class="series" data-name="{escape(series.name)}" fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(f'<rect x="{WIDTH - RIGHT + 12}" y="{TOP + 16 * n}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{WIDTH - RIGHT + 26}" y="{TOP + 16 * n + 9}">{escape(series.name)}</text>')
    return parts


def _bars(chart: Chart) -> list[str]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = chart.series[0].values if chart.series else []
    top = _scale(max(values, default=0))
    parts = _axes(chart, top)
    slot = inner_w / max(1, len(values))
    for i, v in enumerate(values):
        h = inner_h * v / top
        parts.append(f'<rect class="bar" x="{LEFT + slot * i + slot * 0.15:.1f}" y="{TOP + inner_h - h:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(chart.x[i])}: {v:,.2f}</title></rect>')
    return parts


def chart_svg(chart: Chart) -> str:
    body = _lines(chart) if chart.kind == "lines" else _bars(chart)
    empty = not any(v for s in chart.series for v in s.values)
    if empty:
        body.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">（本期无数据）</text>')
    return (f'<figure class="chart" data-chart="{escape(chart.key)}"><figcaption>{escape(chart.title)}</figcaption>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
            + "".join(body) + "</svg></figure>")


def section_html(section: Section) -> str:
    head = "".join(f"<th>{escape(c.title)}</th>" for c in section.columns)
    rows = "".join("<tr>" + "".join(f'<td{"" if c.kind == "text" else " class=n"}>{escape(cell(c, row.get(c.key)))}</td>'
                                    for c in section.columns) + "</tr>" for row in section.rows)
    return (f'<section data-section="{escape(section.key)}"><h2>{escape(section.title)}（{len(section.rows)} 行）</h2>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>")


PROBE = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("figure.chart").forEach(function (figure) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    figure.querySelectorAll(".series, .bar").forEach(function (mark) {
      var b = mark.getBBox();
      if (b.width > 0 || b.height > 0) {
        x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y); x1 = Math.max(x1, b.x + b.width); y1 = Math.max(y1, b.y + b.height);
      }
    });
    figure.setAttribute("data-rendered", x1 > x0 ? Math.round(x1 - x0) + "x" + Math.round(y1 - y0) : "0x0");
  });
  document.body.setAttribute("data-ready", "1");
});
</script>"""


def render_html(report: Report) -> str:
    title = escape(report.title)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>{notes}"
            + "".join(chart_svg(c) for c in report.charts) + "".join(section_html(s) for s in report.sections) + PROBE + "</body></html>\n")
