"""A self-contained HTML page from a study's numbers and figures (images inlined as data URIs, no scripts,
no external resources), so that the file can be mailed, archived or opened offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

__all__ = ["render_study_html"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f4f4f4; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.muted { color: #666; font-size: 0.9em; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
.look { border: 2px solid #d08a00; background: #fff7e6; padding: 0.4em 1em; margin: 1em 0; }
.look.ok { border-color: #5a9a5a; background: #f1f8f1; } .look h2 { border: none; margin-top: 0.4em; }
.how { background: #f6f8fb; border-left: 4px solid #8aa4c8; padding: 0.4em 1em; margin: 1em 0; }
"""

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".svg": "image/svg+xml"}


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot inline {path}: unsupported image type {path.suffix!r}")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:{mime};base64,{data}" alt="{html.escape(path.stem)}">'


def render_study_html(*, title: str, summary: str, sections: list[tuple[str, str]], figures: list[tuple[Path, str]],
                      config_yaml: str, provenance: dict, top: str = "") -> str:
    """The report page.

    Parameters
    ----------
    title, summary : str
        The page title and a one-paragraph description of the study (plain text, escaped here).
    sections : list of (heading, html)
        Tables and text in order, already rendered (use :func:`table_html`).
    figures : list of (path, caption)
        Images to inline with a one-line caption that says how to read them.
    config_yaml : str
        The resolved configuration, shown verbatim.
    provenance : dict
        Versions, seed, device, date.
    top : str
        HTML shown right under the summary, before the sections (the study's "what to look at" box and
        how to read the page), already rendered.
    """
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(summary)}</p>", top]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    if figures:
        parts.append("<h2>Figures</h2>")
        for path, caption in figures:
            parts.append(f"<figure>{_image(Path(path))}<figcaption><b>{html.escape(Path(path).name)}</b> — "
                         f"{html.escape(caption)}</figcaption></figure>")
    versions = provenance.get("versions", {})
    rows = [[html.escape(k), html.escape(str(v))] for k, v in versions.items()]
    rows += [[html.escape(k), html.escape(str(provenance.get(k)))]
             for k in ("seed", "device", "torch_threads", "platform", "date", "command")]
    parts.append("<h2>Provenance</h2>" + _table(["", "value"], rows))
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_yaml)}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def table_html(header: list[str], rows: list[list], digits: int = 3) -> str:
    """An HTML table; floats are printed with ``digits`` decimals, None as a dash, strings escaped."""
    return _table(header, [[_number(cell, digits) for cell in row] for row in rows])
