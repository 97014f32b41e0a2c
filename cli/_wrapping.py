"""Lines broken only where a reader may break them: never inside a value to copy.

A value a user copies back into a command (a run id, a listing's cursor, a
runtime id) must reach the terminal as one unbroken run of characters: a
cursor folded over two lines gives half a cursor to whoever copies one line.
So the CLI's lines are wrapped here, not by rich.

Invariants:

- A line breaks at a space, and a word longer than the width folds (as
  rich does); but never inside a span marked :func:`whole`, not even at an
  inner space (a run id may hold spaces).
- A whole span longer than the width is printed whole on a line of its
  own, past the width (the terminal folds it for the eye; a copy of it is
  one line). Nothing is ever cut: :class:`Console` never crops.
- Text is kept character for character: wrapping only chooses where the
  line ends, and drops the spaces it breaks at.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from cli._text import clean

#: The style that marks a span to be kept on one line.
WHOLE: Final = Style(meta={"whole": True})


def whole(value: str, style: str | Style = "") -> Text:
    """``value`` as text no line break is ever put into (a run id, a cursor)."""
    text = Text(value, style=style)
    text.stylize(WHOLE)
    return text


def copyable(value: str, style: str = "") -> Text:
    """A value a user copies back (a run id), escaped as user text, kept whole."""
    return whole(clean(value), style=style)


def _protected(text: Text) -> list[bool]:
    marks = [False] * len(text.plain)
    for span in text.spans:
        if isinstance(span.style, Style) and span.style.meta.get("whole"):
            for i in range(span.start, min(span.end, len(marks))):
                marks[i] = True
    return marks


def wrap(text: Text, width: int) -> list[Text]:
    """``text`` as lines of at most ``width`` cells, broken only at free spaces."""
    lines: list[Text] = []
    for part in text.split("\n", allow_blank=True):
        lines.extend(_wrap_one(part, max(width, 1)))
    return lines


def _wrap_one(text: Text, width: int) -> list[Text]:
    plain = text.plain
    protected = _protected(text)
    offsets: list[int] = []
    line_start = 0
    last_break: int | None = None  # index of the free space after the line's last word
    for i, char in enumerate(plain):
        if char == " " and not protected[i]:
            last_break = i
        if i - line_start < width:
            continue
        if last_break is not None and last_break > line_start:
            line_start = last_break + 1  # at the last free space
        elif not protected[i]:
            line_start = i  # inside a word too long for a line: fold it, as rich does
        else:
            continue  # inside a whole value: it goes on past the width
        offsets.append(line_start)
        last_break = None
    pieces = text.divide(offsets) if offsets else [text]
    out = []
    for piece in pieces:
        piece.rstrip()
        out.append(piece)
    for i in range(1, len(out)):
        # The free spaces a line broke at go with the break.
        while out[i].plain.startswith(" ") and not _protected(out[i])[0]:
            out[i] = out[i][1:]
    return out


class Wrapped:
    """A renderable: ``text`` wrapped by :func:`wrap` to the room it is given."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        for line in wrap(self.text, options.max_width):
            line.no_wrap = True
            line.overflow = "ignore"
            yield line


class Labelled:
    """``label  value`` lines; a value wraps (by :func:`wrap`) under itself."""

    def __init__(self, rows: Iterable[tuple[str, Text]], label_width: int | None = None) -> None:
        self.rows = list(rows)
        self.label_width = (
            label_width
            if label_width is not None
            else max((len(label) for label, _ in self.rows), default=0)
        )

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        room = max(options.max_width - self.label_width - 2, 1)
        for label, value in self.rows:
            for i, line in enumerate(wrap(value, room) or [Text()]):
                out = Text(no_wrap=True, overflow="ignore")
                if i == 0:
                    out.append(label.ljust(self.label_width), style="bold")
                else:
                    out.append(" " * self.label_width)
                out.append("  ")
                out.append_text(line)
                yield out


class Console(RichConsole):
    """rich's console that never crops a line and wraps plain text by :func:`wrap`."""

    def print(self, *objects: Any, **options: Any) -> None:
        options.setdefault("crop", False)
        super().print(*_wrapped(objects), **options)


def _wrapped(objects: Iterable[Any]) -> Iterator[Any]:
    for obj in objects:
        yield Wrapped(obj) if isinstance(obj, Text) else obj
