"""Show a cleaned document as a reader of the terminal should see it: what went, and why.

``render`` is pure: it takes the :class:`Cleaned` answer and the document's original lines and
returns the text to print. Every original line appears once, in order::

    = [title] Mayors want answers on Trump admin 'sanctuary city' policies
    - [rules:read_more] Read More
      Washington (CNN) Mayors and local police chiefs have a message ...

``=`` marks the line that became the title, ``-`` a removed line with its layer and rule,
two spaces a kept line; ``?`` a line the answer does not account for (for HTML input, text
trafilatura did not extract). With ``color`` the removed lines are dimmed and struck through.
A summary of removals per layer and rule ends the output.

Typical use (``news-ingest inspect FILE``)::

    raw = path.read_text()
    print(render(clean_text(raw), raw.splitlines(), color=sys.stdout.isatty()))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from service.clean import Cleaned
from service.clean.text import normalise_line

__all__ = ["render"]

_RESET = "\x1b[0m"
_TITLE_STYLE = "\x1b[1m"  # bold
_REMOVED_STYLE = "\x1b[2;9m"  # dim, struck through
_REASON_STYLE = "\x1b[31m"  # red
_UNKNOWN_STYLE = "\x1b[33m"  # yellow


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def render(
    cleaned: Cleaned, raw_lines: Iterable[str], *, color: bool = False, title_given: bool = False
) -> str:
    """The document line by line with its removals marked, then a count per layer and rule.

    ``raw_lines`` are the lines of the original document (``raw.splitlines()``); blank ones
    are skipped. Lines are matched to the answer after the same normalisation the cleaner
    applies, each copy of a line to one kept paragraph or one removal, in order.
    """
    kept = Counter(cleaned.paragraphs)
    removals: dict[str, list[str]] = {}
    for removed in cleaned.removed:
        removals.setdefault(removed.text, []).append(f"{removed.layer}:{removed.reason}")
    # A title read off the text is its first copy there; a title the client gave is not a line
    # of the text, whose copies of it are repeats.
    title_left = cleaned.title is not None and not title_given
    out: list[str] = []
    for raw in raw_lines:
        line = normalise_line(raw)
        if not line:
            continue
        if kept[line] > 0:
            kept[line] -= 1
            out.append(f"  {line}")
        elif title_left and line == cleaned.title:
            # The cleaner takes the first copy of a headline as the title and removes the
            # later ones as repeats, so the first copy met is the title.
            title_left = False
            out.append(_paint(f"= [title] {line}", _TITLE_STYLE, color))
        elif removals.get(line):
            reason = removals[line].pop(0)
            prefix = _paint(f"- [{reason}]", _REASON_STYLE, color)
            out.append(f"{prefix} {_paint(line, _REMOVED_STYLE, color)}")
        else:
            out.append(_paint(f"? {line}", _UNKNOWN_STYLE, color))
    out.append("")
    out.extend(_summary(cleaned))
    return "\n".join(out)


def _summary(cleaned: Cleaned) -> list[str]:
    counts = Counter((r.layer, r.reason) for r in cleaned.removed)
    lines = [
        f"kept {len(cleaned.paragraphs)} paragraph(s), removed {len(cleaned.removed)} segment(s)"
        + (f"; title: {cleaned.title}" if cleaned.title else "; no title")
    ]
    for (layer, reason), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {count:4}  {layer}:{reason}")
    return lines
