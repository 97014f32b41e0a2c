"""The timeline chart's vocabulary: escaped SVG elements, each mark's symbol and style, the key.

One concept: how the chart looks, apart from where things are
(``_timeline_svg`` places them). :func:`el` is the only way an element is
made: its tag and attribute names are literals of the chart's modules, and
every attribute value and plain-text child goes through
:func:`markupsafe.escape`, so a value from the store (a step's name, a
reason, an error message) is always text, never markup, and the SVG is
well-formed XML. The styles are minimal defaults (classes ``tl-*``) that
the dashboard's stylesheet may override; the legend names every mark
kind the chart draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from markupsafe import Markup, escape

#: Marks drawn as a vertical line through every row (an instant the whole run lives through).
LINES: Final = frozenset(
    {"cancel-requested", "cancel-delivered", "terminate-requested", "terminal"}
)
#: Each mark kind's symbol, a path around (0, 0) in a 12 x 12 box.
SYMBOLS: Final[dict[str, str]] = {
    "cancel-requested": "M-5,-6 L5,-6 L0,2 Z",
    "cancel-delivered": "M-5,6 L5,6 L0,-2 Z",
    "cancel-buffered": "M0,-6 L6,0 L0,6 L-6,0 Z",
    "terminate-requested": "M-5,-5 L5,5 M5,-5 L-5,5",
    "terminal": "M-1,-7 L-1,7 M-1,-7 L6,-4 L-1,-1",
    "timeout": "M0,-6 A6,6 0 1 1 -0.1,-6 M0,-3 L0,0 L3,2",
    "shield-exited": "M-4,-6 L0,-6 L0,6 L-4,6",
    "created": "M-4,0 A4,4 0 1 1 4,0 A4,4 0 1 1 -4,0 Z",
    "started": "M-3,-5 L3,0 L-3,5 Z",
    "claimed": "M-4,-4 L4,-4 L4,4 L-4,4 Z M-4,4 L4,-4",
    "resumed": "M-4,-5 L2,0 L-4,5 M1,-5 L7,0 L1,5",
    "reexecuted": "M1,-5 L-5,0 L1,5 Z M7,-5 L1,0 L7,5 Z",
    "signal-sent": "M-4,-4 L4,-4 L4,3 L-4,3 Z",
    "call-cancel-requested": "M-4,-6 L4,-6 L0,0 Z",
    "scope-cancelled": "M-4,-6 L4,-6 L0,0 Z",
    "defect": "M0,-6 L6,5 L-6,5 Z M0,-2 L0,2",
}
STYLE: Final = Markup(
    "#timeline{font:11px sans-serif;background:#fff;min-width:900px}"
    "#timeline .tl-label{fill:#222}#timeline .tl-axis{stroke:#999}"
    "#timeline .tl-grid{stroke:#eee}#timeline .tl-tick-label{fill:#555}"
    "#timeline .tl-completed{fill:#3a9a4a}#timeline .tl-failed{fill:#d04030}"
    "#timeline .tl-cancelled{fill:#e08a1e}#timeline .tl-timed_out{fill:#a02060}"
    "#timeline .tl-abandoned{fill:#777}#timeline .tl-running{fill:#3a78d0}"
    "#timeline .tl-waiting{fill:#b8cbe8}#timeline .tl-other{fill:#6a8aa8}"
    "#timeline .tl-ignored{fill:none;stroke:#d00;stroke-width:2}"
    "#timeline .tl-backoff{fill:url(#tl-hatch);stroke:#888;stroke-dasharray:3 2}"
    "#timeline .tl-heartbeat{stroke:#111;stroke-width:3}"
    "#timeline .tl-shield{fill:#7a5cc0;fill-opacity:.14}"
    "#timeline .tl-shield.tl-over{fill-opacity:.3;stroke:#7a5cc0;stroke-width:1.5}"
    "#timeline .tl-owner-gone{fill:url(#tl-gone);stroke:#b03060;stroke-dasharray:2 2}"
    "#timeline .tl-stretched{fill:#f0b000;fill-opacity:.6}"
    "#timeline .tl-scope{fill:none;stroke:#7a5cc0;stroke-dasharray:4 3}"
    "#timeline .tl-line{stroke-width:1.5}"
    "#timeline .tl-cancel-requested{stroke:#d00;fill:#d00;stroke-dasharray:5 3}"
    "#timeline .tl-cancel-delivered{stroke:#00a8c0;fill:#00a8c0}"
    "#timeline .tl-cancel-buffered{fill:#fff;stroke:#7a5cc0;stroke-width:2}"
    "#timeline .tl-terminate-requested{stroke:#600;fill:none;stroke-width:2}"
    "#timeline .tl-terminal{stroke:#111;fill:#111;stroke-width:2}"
    "#timeline .tl-timeout{stroke:#a02060;fill:none;stroke-width:1.5}"
    "#timeline .tl-symbol{stroke:#444;fill:#444}#timeline .tl-defect{fill:#ff0;stroke:#d00}"
    "#timeline .tl-hidden{fill:#bbb}"
)


OUTCOMES: Final = frozenset(
    {"completed", "failed", "cancelled", "timed_out", "abandoned", "running"}
)
STYLED: Final = frozenset(
    {
        "cancel-requested",
        "cancel-delivered",
        "cancel-buffered",
        "terminate-requested",
        "terminal",
        "timeout",
        "defect",
    }
)
LEGEND: Final[tuple[tuple[str, str, str], ...]] = (
    ("rect", "tl-completed", "completed"),
    ("rect", "tl-failed", "failed"),
    ("rect", "tl-cancelled", "cancelled"),
    ("rect", "tl-timed_out", "timed out"),
    ("rect", "tl-abandoned", "abandoned"),
    ("rect", "tl-running", "running"),
    ("rect", "tl-backoff", "back-off"),
    ("rect", "tl-shield", "shield"),
    ("ignored", "tl-ignored", "ran past cancel"),
    ("rect", "tl-scope", "cancel scope"),
    ("rect", "tl-owner-gone", "owner gone"),
    ("heartbeat", "tl-heartbeat", "last heartbeat"),
    ("cancel-requested", "tl-cancel-requested", "cancel requested"),
    ("cancel-buffered", "tl-cancel-buffered", "cancel buffered"),
    ("cancel-delivered", "tl-cancel-delivered", "cancel delivered"),
    ("shield-exited", "tl-symbol", "shield exited"),
    ("terminate-requested", "tl-terminate-requested", "terminate"),
    ("timeout", "tl-timeout", "timeout"),
    ("terminal", "tl-terminal", "run ended"),
    ("created", "tl-symbol", "created"),
    ("claimed", "tl-symbol", "claimed"),
    ("started", "tl-symbol", "started"),
    ("resumed", "tl-symbol", "resumed"),
    ("reexecuted", "tl-symbol", "re-executed"),
)


def legend(y: float) -> Markup:
    """The key, in rows of eight columns: each shape, and what it means (one
    ``g.tl-key`` per entry, ``data-key`` its class or mark kind)."""
    items = []
    for i, (shape, cls, label) in enumerate(LEGEND):
        x, row_y = 10 + (i % 8) * 124, y + (i // 8) * 20
        if shape in ("rect", "ignored"):
            icon = el("rect", {"class": cls, "x": x, "y": row_y, "width": 18, "height": 10})
            if shape == "ignored":  # a bar outlined from the cancel request on
                bar = {"class": "tl-running", "x": x, "y": row_y, "width": 18, "height": 10}
                box = {"class": cls, "x": x + 8, "y": row_y, "width": 10, "height": 10}
                icon = el("rect", bar) + el("rect", box)
        elif shape == "heartbeat":
            icon = el(
                "line", {"class": cls, "x1": x + 9, "x2": x + 9, "y1": row_y - 2, "y2": row_y + 12}
            )
        else:
            icon = el(
                "path",
                {
                    "class": cls,
                    "d": SYMBOLS[shape],
                    "transform": f"translate({x + 9},{row_y + 5})",
                },
            )
        key = shape if shape not in ("rect", "heartbeat") else cls
        text = text_el(x + 24, row_y + 9, label, cls="tl-label")
        items.append(el("g", {"class": "tl-key", "data-key": key}, icon, text))
    note = (
        "time is stretched where records are dense (a yellow band on the axis; hover a"
        " mark for its exact time); a heartbeat tick is the latest one the store keeps"
    )
    items.append(text_el(10, y + 64, note, cls="tl-tick-label"))
    return el("g", {"class": "tl-legend"}, *items)


def defs() -> Markup:
    hatch = Markup(
        '<pattern id="tl-hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4f4f4"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern>'
    )
    gone = Markup(
        '<pattern id="tl-gone" width="5" height="5" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(-45)"><rect width="5" height="5" fill="#fbe8ee"/>'
        '<line x1="0" y1="0" x2="0" y2="5" stroke="#b03060" stroke-width="1.5"/></pattern>'
    )
    return el("defs", {}, hatch, gone)


def text_el(x: float, y: float, text: str, *, cls: str, anchor: str | None = None) -> Markup:
    return el("text", {"class": cls, "x": num(x), "y": num(y), "text-anchor": anchor}, text)


def el(tag: str, attrs: Mapping[str, object], *children: Markup | str) -> Markup:
    """One element: ``tag`` and the attribute names are this module's literals;
    every attribute value and every plain-text child goes through ``escape``
    (a ``Markup`` child, an element made here, passes as it is; None: left out)."""
    head = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items() if v is not None)
    if not children:
        return Markup(f"<{tag}{head}/>")  # noqa: S704 - its values are escaped above
    body = "".join(escape(c) for c in children)
    return Markup(f"<{tag}{head}>{body}</{tag}>")  # noqa: S704 - escaped above


def num(v: float) -> str:
    return f"{v:.1f}"
