"""The terminal view of a cleaned document: every line once, removals marked with their reason."""

from __future__ import annotations

from pathlib import Path

from service.clean import Cleaned, Removed
from service.clean.text import clean_text
from service.inspect import render

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_every_line_is_shown_once_with_its_mark() -> None:
    raw = "A Headline For Tests\n\nRead more\n\nThe body of the story is this sentence.\n"
    out = render(clean_text(raw), raw.splitlines()).splitlines()
    assert out[:3] == [
        "= [title] A Headline For Tests",
        "- [rules:read_more] Read more",
        "  The body of the story is this sentence.",
    ]
    assert out[4] == "kept 1 paragraph(s), removed 1 segment(s); title: A Headline For Tests"
    assert out[5] == "     1  rules:read_more"


def test_copies_of_a_line_are_matched_one_to_one() -> None:
    cleaned = Cleaned(
        title=None,
        paragraphs=("Same line.",),
        removed=(Removed("Same line.", "document", "duplicate_line"),),
    )
    out = render(cleaned, ["Same line.", "Same line.", "Unaccounted"]).splitlines()
    assert out[:3] == [
        "  Same line.",
        "- [document:duplicate_line] Same line.",
        "? Unaccounted",
    ]


def test_color_marks_removed_lines_and_plain_output_has_no_escapes() -> None:
    raw = "A Headline For Tests\nShare this article\nThe body of the story is this sentence."
    cleaned = clean_text(raw)
    plain = render(cleaned, raw.splitlines())
    colored = render(cleaned, raw.splitlines(), color=True)
    assert "\x1b[" not in plain
    assert "\x1b[2;9mShare this article\x1b[0m" in colored
    assert "  The body of the story is this sentence." in colored.splitlines()


def test_seed_summary_counts_each_layer_and_rule() -> None:
    (path,) = SEEDS.glob("000_*.txt")
    raw = path.read_text(encoding="utf-8")
    cleaned = clean_text(raw)
    out = render(cleaned, raw.splitlines())
    shown = [line for line in out.split("\n\n")[0].splitlines()]
    assert len(shown) == len([line for line in raw.splitlines() if line.strip()])
    assert not any(line.startswith("?") for line in shown)
    assert "     2  rules:story_highlights" in out
    assert out.count("- [") == len(cleaned.removed)
