"""A self-contained HTML report: every figure is embedded as a PNG data URI, so the one
file can be opened, mailed or archived without the folders beside it."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from PIL import Image

from imgclf.reporting.tables import display_value

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: .4em 0; }
nav a { margin-right: 1em; }
details { margin: .6em 0; }
summary { cursor: pointer; font-weight: 600; }
.note { color: #555; font-size: 13px; }
.warning { background: #fff4d6; border: 1px solid #d9a400; border-radius: 4px;
           padding: .5em 1em; margin: 1em 0; }
code { background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }
"""


PNG_LIMIT = 150_000
"""Images whose PNG is larger than this many bytes are embedded as JPEG."""


def escape(value: Any) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value))


def image_tag(image: Image.Image, alt: str) -> str:
    """An ``<img>`` holding ``image`` embedded as a PNG, or as a JPEG (quality 88) when
    the PNG would be over :data:`PNG_LIMIT` bytes: galleries of photos, whose PNG is
    several times larger, keep the report small enough to mail."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    kind = "png"
    if buffer.tell() > PNG_LIMIT:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=88)
        kind = "jpeg"
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/{kind};base64,{data}">'


def table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table, floats rounded to ``digits``, missing cells "—"; a
    table wider than the page scrolls inside it, never the page."""

    head = "".join(f"<th>{escape(column)}</th>" for column in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(display_value(value, digits))}</td>" for value in row)
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values (lists and mappings as ``key: value``)."""
    return table(pd.DataFrame(list(pairs), columns=["", "value"], dtype=object))


def details(summary: str, body: str) -> str:
    """A collapsed block that opens on a click on ``summary``."""
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"


def markdown_lines(text: str) -> str:
    """The simple Markdown the leaderboard summary uses (``##`` headings, ``-`` bullets,
    two-space nested bullets, ``**bold**``, backquoted code) as HTML."""
    parts: list[str] = []
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts += ["</ul>"] * depth
            depth = 0
            parts.append(f"<h3>{inline(stripped.lstrip('#').strip())}</h3>")
            continue
        level = (len(line) - len(line.lstrip())) // 2 + 1 if stripped.startswith("- ") else 0
        while depth < level:
            parts.append("<ul>")
            depth += 1
        while depth > level:
            parts.append("</ul>")
            depth -= 1
        item = inline(stripped[2:] if level else stripped)
        # an open <li> (its end tag is optional) holds a nested list that follows it
        parts.append(f"<li>{item}" if level else f"<p>{item}</p>")
    parts += ["</ul>"] * depth
    return "\n".join(parts)


def page(title: str, sections: Sequence[tuple[str, str, str]], notices: Sequence[str] = ()) -> str:
    """The whole page: ``sections`` are ``(anchor, heading, body HTML)``, linked from a
    navigation bar at the top; each of ``notices`` (simple Markdown, see :func:`inline`)
    stands out above them."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    navigation = "".join(
        f'<a href="#{escape(anchor)}">{escape(heading)}</a>' for anchor, heading, _ in sections
    )
    warnings = "".join(f'<p class="warning">{inline(notice)}</p>\n' for notice in notices)
    body = "\n".join(
        f'<section id="{escape(anchor)}"><h2>{escape(heading)}</h2>\n{content}\n</section>'
        for anchor, heading, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="note">Generated {generated} by imgclf.</p>'
        f"<nav>{navigation}</nav>\n{warnings}{body}\n</body></html>\n"
    )


def figures(
    images: Mapping[str, Callable[[], Image.Image] | Image.Image], order: Sequence[str]
) -> str:
    """The images of a partitioned dataset (loaders or images, by name), those named in
    ``order`` first and the rest after them alphabetically, each under its name."""
    names = [name for name in order if name in images]
    names += sorted(name for name in images if name not in order)
    parts = []
    for name in names:
        value = images[name]
        image = value() if callable(value) else value
        parts.append(f"<h4>{escape(name.replace('_', ' '))}</h4>{image_tag(image, name)}")
    return "\n".join(parts)


def inline(text: str) -> str:
    """``text`` as HTML, with its ``**bold**`` and backquoted code spans."""
    spans = escape(text).split("`")
    return "".join(f"<code>{span}</code>" if i % 2 else _bold(span) for i, span in enumerate(spans))


def _bold(escaped: str) -> str:
    pieces = escaped.split("**")
    return "".join(f"<b>{piece}</b>" if i % 2 else piece for i, piece in enumerate(pieces))
