"""Builders for test inputs: seed articles, synthetic stories and their near-copies."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "dra", "gon", "bel", "tor"]


def seed_records() -> list[dict[str, Any]]:
    """The five seeds as ArticleIn records, from seeds/articles.jsonl."""
    lines = (SEEDS / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def seed_text(stem_prefix: str) -> str:
    (path,) = SEEDS.glob(f"{stem_prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def vocabulary(size: int = 3000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def story(rng: random.Random, words: list[str], paragraphs: int = 5, length: int = 40) -> str:
    """A synthetic article body: paragraphs of random words ending in a full stop."""
    paras = []
    for _ in range(paragraphs):
        body = " ".join(rng.choice(words) for _ in range(length))
        paras.append(body.capitalize() + ".")
    return "\n\n".join(paras)


def near_copy(text: str, rng: random.Random, edits: int = 2) -> str:
    """The same story with a few words replaced: a light edit of wire copy."""
    tokens = text.split(" ")
    for _ in range(edits):
        i = rng.randrange(len(tokens))
        tokens[i] = tokens[i] + "x"
    return " ".join(tokens)
