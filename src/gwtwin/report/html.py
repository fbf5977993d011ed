"""A static HTML page builder: sections, tables (sortable), figures and links, no server needed.

The page is one ``index.html`` with its figures copied beside it (``assets/``) and referenced by
relative paths, so the directory can be opened from disk (``file://``), copied, or served by any
web server. Tables sort by clicking a header (a few lines of inline JavaScript, no library);
numbers sort numerically.
"""

from __future__ import annotations

import html
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from gwtwin.errors import GwtwinError

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;
background:#f6f7f9}
header{background:#14324a;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.8;font-size:13px}
nav{background:#fff;border-bottom:1px solid #dde2e8;padding:8px 32px;font-size:14px}
nav a{margin-right:16px;color:#14324a;text-decoration:none}
main{padding:8px 32px 48px;max-width:1300px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:18px 0;
padding:4px 20px 16px}
h2{font-size:18px;border-bottom:1px solid #eef0f3;padding-bottom:6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #dde2e8;padding:4px 8px;text-align:right}
th{background:#eef2f6;cursor:pointer;user-select:none;position:sticky;top:0}
td.text,th.text{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
.scroll{max-height:480px;overflow:auto;display:inline-block}
figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}
figure img{max-width:620px;border:1px solid #dde2e8}
figcaption{font-size:12px;color:#52606d;max-width:620px}
.metrics{display:flex;flex-wrap:wrap;gap:12px}
.metric{border:1px solid #dde2e8;border-radius:6px;padding:8px 14px;min-width:150px}
.metric b{display:block;font-size:20px} .metric span{font-size:12px;color:#52606d}
.pass{color:#1a7f37} .fail{color:#c62828}
"""

_SORT = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click', function(){
    var col = th.cellIndex;
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-order') !== 'asc';
    table.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-order');});
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
    rows.sort(function(a, b){
      var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  });
});
"""


def _fmt(value) -> tuple[str, str]:
    """(display text, sort key) of a cell."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        value = value.item()
    if isinstance(value, bool) or value is None:
        text = "" if value is None else ("yes" if value else "no")
        return text, text
    if isinstance(value, int):
        return f"{value:d}", str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "", ""
        mag = abs(value)
        text = f"{value:.4g}" if (mag < 1e-3 or mag >= 1e6) and value != 0 else f"{value:.4f}"
        text = text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text
        if mag >= 1e8:  # GPS times: keep the decimals that matter
            text = f"{value:.3f}"
        return text, repr(value)
    return str(value), str(value)


class Report:
    """Build one static HTML page in ``directory`` (``index.html`` + ``assets/``)."""

    def __init__(self, directory: str | os.PathLike, title: str, subtitle: str = ""):
        self.directory = Path(directory)
        self.assets = self.directory / "assets"
        self.title = title
        self.subtitle = subtitle
        self._sections: list[tuple[str, str, list[str]]] = []
        self._used: set[str] = set()

    def section(self, title: str) -> str:
        """Start a section; returns its anchor."""
        anchor = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
        base, k = anchor, 1
        while anchor in {a for a, _, _ in self._sections}:
            k += 1
            anchor = f"{base}-{k}"
        self._sections.append((anchor, title, []))
        return anchor

    def _add(self, text: str) -> None:
        if not self._sections:
            raise GwtwinError("start a section before adding content to the report")
        self._sections[-1][2].append(text)

    def paragraph(self, text: str) -> None:
        self._add(f"<p>{html.escape(text)}</p>")

    def metrics(self, items: Mapping[str, object], passed: Mapping[str, bool] | None = None):
        """A row of headline numbers; ``passed`` colours those with a target."""
        cells = []
        for label, value in items.items():
            cls = ""
            if passed and label in passed:
                cls = ' class="pass"' if passed[label] else ' class="fail"'
            text, _ = _fmt(value)
            cells.append(
                f'<div class="metric"><b{cls}>{html.escape(text)}</b>'
                f"<span>{html.escape(label)}</span></div>"
            )
        self._add(f'<div class="metrics">{"".join(cells)}</div>')

    def table(
        self,
        rows: Iterable[Mapping[str, object]] | Iterable[Sequence[object]],
        columns: Sequence[str],
        *,
        caption: str = "",
        max_rows: int | None = None,
        table_id: str | None = None,
    ) -> None:
        """A sortable table; ``rows`` are mappings (by column name) or sequences."""
        rows = list(rows)
        shown = rows if max_rows is None else rows[:max_rows]
        head = []
        body = []
        text_cols = set()
        for r in shown:
            vals = [r.get(c) for c in columns] if isinstance(r, Mapping) else list(r)
            if len(vals) != len(columns):
                raise GwtwinError(
                    f"table row has {len(vals)} values for {len(columns)} columns: {vals}"
                )
            cells = []
            for c, v in zip(columns, vals, strict=True):
                text, key = _fmt(v)
                is_text = isinstance(v, str)
                if is_text:
                    text_cols.add(c)
                cls = ' class="text"' if is_text else ""
                cells.append(f'<td{cls} data-v="{html.escape(key)}">{html.escape(text)}</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
        for c in columns:
            cls = ' class="text"' if c in text_cols else ""
            head.append(f"<th{cls}>{html.escape(c)}</th>")
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        note = ""
        if max_rows is not None and len(rows) > max_rows:
            note = f"<p>showing {max_rows} of {len(rows)} rows (the full table is in the files)</p>"
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._add(
            f'<div class="scroll"><table class="sortable"{ident}>{cap}<thead><tr>'
            f"{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}"
        )

    def figure(self, path: str | os.PathLike, caption: str = "") -> None:
        """Copy an image into ``assets/`` and show it."""
        path = Path(path)
        if not path.is_file():
            raise GwtwinError(f"figure {path} does not exist")
        self.assets.mkdir(parents=True, exist_ok=True)
        name = path.name
        stem, k = path.stem, 1
        while name in self._used:
            k += 1
            name = f"{stem}-{k}{path.suffix}"
        self._used.add(name)
        shutil.copyfile(path, self.assets / name)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._add(
            f'<figure><img src="assets/{html.escape(name)}" alt="{html.escape(caption or name)}">'
            f"{cap}</figure>"
        )

    def links(self, items: Mapping[str, str]) -> None:
        """A list of links (relative paths from the report directory, or URLs)."""
        lis = "".join(
            f'<li><a href="{html.escape(href)}">{html.escape(label)}</a></li>'
            for label, href in items.items()
        )
        self._add(f"<ul>{lis}</ul>")

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the report directory (for links to run files)."""
        return os.path.relpath(Path(path).resolve(), self.directory.resolve())

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t, _ in self._sections)
        body = "".join(
            f'<section id="{a}"><h2>{html.escape(t)}</h2>{"".join(parts)}</section>'
            for a, t, parts in self._sections
        )
        sub = html.escape(self.subtitle + (" · " if self.subtitle else "") + f"written {stamp}")
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_STYLE}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1><p>{sub}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main><script>{_SORT}</script></body></html>\n"
        )
        out = self.directory / "index.html"
        out.write_text(page, encoding="utf-8")
        return out
