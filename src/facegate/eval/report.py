"""Reports people read: a self-contained HTML page (plots inlined) and the same figures as JSON."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG in memory
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

_CSS = (
    "body{font:15px system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}"
    "img{max-width:100%}.notes li{margin:.3em 0}"
)


def figure() -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write(
    out_dir: Path,
    name: str,
    title: str,
    summary: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
    plots: dict[str, str],
    notes: list[str],
) -> tuple[Path, Path]:
    """Write `<name>.html` and `<name>.json` into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"title": title, "summary": summary, "tables": tables, "notes": notes}
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _table([{"measure": k, "value": v} for k, v in summary.items()]),
    ]
    for heading, rows in tables.items():
        parts += [f"<h2>{html.escape(heading)}</h2>", _table(rows)]
    for heading, b64 in plots.items():
        parts += [
            f"<h2>{html.escape(heading)}</h2>",
            f"<img alt='{html.escape(heading)}' src='data:image/png;base64,{b64}'>",
        ]
    if notes:
        parts += ["<h2>Notes</h2><ul class='notes'>", *(f"<li>{html.escape(n)}</li>" for n in notes), "</ul>"]
    parts.append(f"<p><small>Figures as JSON: {html.escape(json_path.name)}</small></p></body></html>")
    html_path = out_dir / f"{name}.html"
    html_path.write_text("\n".join(parts))
    return html_path, json_path
