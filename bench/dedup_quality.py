"""Duplicate-detection quality of news-ingest beside a plain MinHash LSH, in one run (issue 4, 5).

What it measures. A labelled syndication set (``bench/_syndication.py``: real stories from the
trafilatura-eval pages and the five seeds; per story an exact copy, a copy in another site's
boilerplate, ~10% edited sentences, a new headline and lede, shuffled paragraphs, 2% typos, a
combination, two excerpts and a superset; plus hard negatives) is posted in stream order to
``POST /v1/articles/batch`` of a real ``news-ingest serve`` (fresh key prefix, free port, keys
deleted at the end; a batch answered 503 because the shared Redis was slow is posted again, and
replays what it had decided). An article's predicted cluster is its ``duplicate_of`` when set,
else its own id; its true cluster is its story's original.

Scores, for the service and for datasketch's ``MinHashLSH`` (in memory, ``num_perm`` 128,
threshold 0.8 and 0.5) on the raw uncleaned text with lowercased word 5-shingles, each article
queried then inserted in the same order and put in the cluster of its earliest match:

* pairwise precision, recall and F1 over pairs of articles in the same predicted vs true
  cluster, and the adjusted Rand index; overall and per kind, where a kind's row scores the
  originals together with the variants of that kind (so a variant linked to another story
  counts against precision);
* relation accuracy per kind (service only): the share of a kind's articles decided with an
  expected relation (``exact`` for exact copies, ``exact``/``near_duplicate`` for the other
  near-duplicate kinds, ``excerpt``, ``superset``) and pointing at the right cluster;
* hard negatives: links between different seed stories, between the corpus stories of highest
  content-word overlap, and from the template negatives (different bodies, one site template);
* the issue's bars, each printed PASS or FAIL. The exit status is 0 either way.

``--sweep`` measures the tunables instead: the same set through the service once per setting
of ``SWEEP`` (threshold, shingle size, num_perm and containment threshold around the defaults,
and the old word 5-shingles at 0.8; one start each under a fresh prefix, every tunable passed as
a flag), one table row per setting: near-duplicate pairwise P/R, excerpt and superset relation
recall, seeds linked, other false links, copies published again, the LSH bands x rows
(``service.fingerprint.lsh_params``) and decisions per second in the batch requests.

Usage::

    python bench/dedup_quality.py [--quick] [--stories N] [--redis-url URL] [--show N]
    python bench/dedup_quality.py --sweep [--quick]

Against ``--redis-url`` (default ``$REDIS_URL`` or redis://127.0.0.1:6379) when it answers,
otherwise the service's embedded server in a temporary directory. About two minutes on a busy
2-core machine, most of it extracting the corpus pages; ``--quick`` (40 stories) about one.
``--sweep`` starts the service ten times: about eight minutes on the full set, three with
``--quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import _syndication as syn
import redis
from _service import (
    Service,
    delete_keys,
    git_commit,
    redis_answers,
    start_service,
    step,
    stop_service,
)
from datasketch import MinHash, MinHashLSH

from service.fingerprint import lsh_params
from service.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
READY_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 600.0
# The Redis here is shared with other work and can take seconds to answer: the service's
# socket timeout is raised from its 2 s default (it changes no decision, only when it gives
# up), and a batch answered 503 all the same is posted again, up to this many times.
REDIS_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 6

# Quick runs extract only this many pages (sorted by name): stories and donors for 40 stories.
QUICK_PAGES = 120

BASELINE_NUM_PERM = 128
BASELINE_SHINGLE_WORDS = 5
BASELINE_THRESHOLDS = (0.8, 0.5)

SERVICE = "news-ingest"
SYSTEMS = (SERVICE, *(f"MinHashLSH {t}" for t in BASELINE_THRESHOLDS))

# The bars.
NEAR_DUP_MIN_PRECISION = 0.99
NEAR_DUP_MIN_RECALL = 0.95
CONTAINMENT_MIN_RECALL = 0.9


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    stories: int
    pages: int | None  # corpus pages to extract (None: all)
    overlap_pairs: int
    template_negatives: int
    redis_url: str
    workers: int
    batch_size: int
    show: int
    corpus: Path
    seeds: Path
    sweep: bool
    quick: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"40 stories from the first {QUICK_PAGES} corpus pages instead of 150 from all",
    )
    parser.add_argument("--stories", type=int, help="corpus stories (default 150, quick 40)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to run against (default: $REDIS_URL or %(default)s); when it does not "
        "answer, the service starts its embedded server in a temporary directory",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="service worker processes"
    )
    parser.add_argument("--batch-size", type=int, default=250, help="articles per batch request")
    parser.add_argument(
        "--show", type=int, default=0, help="print up to N wrong service decisions per kind"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="instead of the report: the same set through the service under each setting of "
        "SWEEP (one start each), a table of the scores per setting",
    )
    parser.add_argument("--corpus", type=Path, default=syn.CORPUS, help="trafilatura-eval dir")
    parser.add_argument("--seeds", type=Path, default=syn.SEEDS, help="the five seed articles")
    args = parser.parse_args(argv)
    stories = args.stories if args.stories is not None else (40 if args.quick else 150)
    if stories < 2:
        parser.error("--stories must be at least 2")
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be 1-1000 (the service's max_batch_items)")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return Config(
        stories=stories,
        pages=QUICK_PAGES if args.quick else None,
        overlap_pairs=5 if args.quick else 10,
        template_negatives=6 if args.quick else 12,
        redis_url=args.redis_url,
        workers=args.workers,
        batch_size=args.batch_size,
        show=max(0, args.show),
        corpus=args.corpus,
        seeds=args.seeds,
        sweep=args.sweep,
        quick=args.quick,
    )


# --- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairScore:
    """Pairwise counts of one clustering against the truth, and the adjusted Rand index."""

    tp: int
    fp: int
    fn: int
    ari: float

    @property
    def precision(self) -> float:
        """1.0 when nothing was linked: no false link was made."""
        linked = self.tp + self.fp
        return self.tp / linked if linked else 1.0

    @property
    def recall(self) -> float:
        true = self.tp + self.fn
        return self.tp / true if true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pair_score(truth: Sequence[str], predicted: Sequence[str]) -> PairScore:
    """Pairwise P/R/F1 counts and ARI (Hubert and Arabie) from the contingency table."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted ones")
    both = sum(comb(n, 2) for n in Counter(zip(truth, predicted, strict=True)).values())
    true_pairs = sum(comb(n, 2) for n in Counter(truth).values())
    predicted_pairs = sum(comb(n, 2) for n in Counter(predicted).values())
    total = comb(len(truth), 2)
    expected = true_pairs * predicted_pairs / total if total else 0.0
    ceiling = (true_pairs + predicted_pairs) / 2
    # Both clusterings all singletons (or one item): they agree perfectly.
    ari = (both - expected) / (ceiling - expected) if ceiling != expected else 1.0
    return PairScore(both, predicted_pairs - both, true_pairs - both, ari)


def score_subset(
    items: Sequence[syn.Labelled], predicted: Mapping[str, str], keep: Iterable[str]
) -> PairScore:
    """Scores over the articles whose kind is in ``keep``."""
    kinds = set(keep)
    chosen = [item for item in items if item.kind in kinds]
    return pair_score([i.cluster for i in chosen], [predicted[i.id] for i in chosen])


def linked_across(predicted: Mapping[str, str], groups: Sequence[Sequence[str]]) -> int:
    """How many pairs of articles from different groups share a predicted cluster."""
    per_cluster: dict[str, Counter[int]] = defaultdict(Counter)
    for index, group in enumerate(groups):
        for article_id in group:
            per_cluster[predicted[article_id]][index] += 1
    links = 0
    for counts in per_cluster.values():
        sizes = list(counts.values())
        links += (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
    return links


# --- the baseline -----------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def raw_shingles(text: str, size: int = BASELINE_SHINGLE_WORDS) -> set[bytes]:
    """Lowercased word ``size``-grams of the raw text; a shorter text is one shingle."""
    tokens = _WORD.findall(text.lower())
    if len(tokens) <= size:
        return {" ".join(tokens).encode()}
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}


def minhash_of(shingles: set[bytes], num_perm: int = BASELINE_NUM_PERM) -> MinHash:
    mh = MinHash(num_perm=num_perm)
    mh.update_batch(list(shingles))
    return mh


def baseline_clusters(
    ids: Sequence[str], signatures: Sequence[MinHash], threshold: float
) -> dict[str, str]:
    """Query, then insert, each article in stream order; a match puts it in the cluster of the
    earliest matching article. No candidate is verified: this is LSH as datasketch ships it."""
    lsh = MinHashLSH(threshold=threshold, num_perm=BASELINE_NUM_PERM)
    position = {article_id: n for n, article_id in enumerate(ids)}
    cluster: dict[str, str] = {}
    for article_id, signature in zip(ids, signatures, strict=True):
        matches = lsh.query(signature)
        first = min(matches, key=position.__getitem__) if matches else None
        cluster[article_id] = cluster[first] if first is not None else article_id
        lsh.insert(article_id, signature)
    return cluster


# --- the service ------------------------------------------------------------------------------


def request(
    service: Service, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """One plain HTTP request to the service: the set is posted one batch at a time."""
    host, _, port = service.base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/x-ndjson"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(service: Service, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Poll /readyz until 200; answers the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"the service exited with status {service.process.returncode}:\n"
                + service.log_tail()
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(service, "GET", "/readyz")[0] == 200:
                return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError(f"the service was not ready after {timeout_s:.0f} s:\n{service.log_tail()}")


def ndjson(articles: Iterable[dict[str, Any]]) -> bytes:
    # ASCII escapes keep U+2028, U+0085 and friends out of the body: the service splits NDJSON
    # with str.splitlines(), which would end a line at each of them.
    return b"".join(json.dumps(a, ensure_ascii=True).encode() + b"\n" for a in articles)


@dataclass(slots=True)
class Posted:
    """The service's answers by id (a Decision, or ``{"error": {...}}``), and what it took."""

    results: dict[str, Any]
    seconds: float  # in requests that were answered 200, retried ones left out
    retries: int  # batches answered 503 (a busy shared Redis) and posted again


def post_all(service: Service, items: Sequence[syn.Labelled], batch_size: int) -> Posted:
    """Post the set in order, one batch at a time.

    A batch answered 503 (Redis did not answer within the service's timeout) is posted again
    after a pause: the articles it had decided replay their decision (same id and request),
    the others are decided now. Any other failure is every article's error.
    """
    posted = Posted({}, 0.0, 0)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        body = ndjson(i.article for i in chunk)
        for attempt in range(MAX_ATTEMPTS):
            started = time.perf_counter()
            status, payload = request(service, "POST", "/v1/articles/batch", body)
            if status != 503 or attempt == MAX_ATTEMPTS - 1:
                break
            posted.retries += 1
            time.sleep(min(2.0**attempt, 15.0))
        if status == 200:
            posted.seconds += time.perf_counter() - started
        answers: Any = None
        with contextlib.suppress(ValueError):
            answers = json.loads(payload).get("results")
        if status != 200 or not isinstance(answers, list) or len(answers) != len(chunk):
            failure = {"error": {"code": f"http_{status}", "message": payload[:200].decode()}}
            answers = [failure] * len(chunk)
        for item, answer in zip(chunk, answers, strict=True):
            posted.results[item.id] = answer
    return posted


def service_clusters(items: Sequence[syn.Labelled], results: Mapping[str, Any]) -> dict[str, str]:
    """duplicate_of when set, else the article's own id (also for an item that failed)."""
    return {i.id: results[i.id].get("duplicate_of") or i.id for i in items}


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    dataset: syn.SyndicationSet
    predicted: dict[str, dict[str, str]] = field(default_factory=dict)  # system -> id -> cluster
    results: dict[str, Any] = field(default_factory=dict)  # the service's answers by id
    raw_similarity: dict[str, float] = field(default_factory=dict)  # id -> Jaccard to original
    timings: dict[str, float] = field(default_factory=dict)
    retries: int = 0  # batches posted again after a 503


def run_baselines(run: Run) -> None:
    items = run.dataset.items
    started = time.perf_counter()
    shingles = {i.id: raw_shingles(i.text) for i in items}
    signatures = [minhash_of(shingles[i.id]) for i in items]
    ids = [i.id for i in items]
    for threshold, system in zip(BASELINE_THRESHOLDS, SYSTEMS[1:], strict=True):
        run.predicted[system] = baseline_clusters(ids, signatures, threshold)
    run.timings["baselines"] = time.perf_counter() - started
    for item in items:
        if item.kind in syn.VARIANT_KINDS:
            mine, original = shingles[item.id], shingles[item.cluster]
            run.raw_similarity[item.id] = len(mine & original) / len(mine | original)


def choose_redis(config: Config) -> str | None:
    """The Redis to run against, or None for the service's embedded server."""
    if redis_answers(config.redis_url):
        step(f"Redis {config.redis_url} (keys under a fresh prefix each start, deleted after it)")
        return config.redis_url
    step(f"{config.redis_url} does not answer: the embedded server, in a temporary directory")
    return None


def decide_all(
    config: Config,
    redis_url: str | None,
    items: Sequence[syn.Labelled],
    flags: Sequence[str] = (),
) -> Posted:
    """One service start (with ``flags``) under a fresh prefix: post ``items``, stop, clean."""
    with tempfile.TemporaryDirectory(prefix="news-ingest-dedup-") as scratch:
        service = start_service(
            redis_url,
            config.workers,
            Path(scratch),
            flags=["--redis-timeout-s", str(REDIS_TIMEOUT_S), *flags],
            label="dq-bench",
        )
        try:
            ready_s = wait_ready(service)
            step(f"service ready after {ready_s:.1f} s at {service.base_url}, {service.prefix}")
            return post_all(service, items, config.batch_size)
        finally:
            # Stopped first, so that nothing writes under the prefix while it is deleted. The
            # embedded server stops with the service and its data leaves with the scratch dir.
            code = stop_service(service)
            if code not in (0, -signal.SIGTERM):
                print(f"warning: the service exited with status {code}:\n{service.log_tail()}")
            if redis_url is not None:
                try:
                    count = delete_keys(redis_url, service.prefix)
                    step(f"deleted {count} keys under {service.prefix}:*")
                except redis.RedisError as exc:
                    print(f"warning: could not delete the keys under {service.prefix}:*: {exc}")


def run_service(config: Config, run: Run) -> None:
    posted = decide_all(config, choose_redis(config), run.dataset.items)
    run.results = posted.results
    run.timings["service"] = posted.seconds
    run.retries = posted.retries
    run.predicted[SERVICE] = service_clusters(run.dataset.items, run.results)


def build(config: Config) -> syn.SyndicationSet:
    started = time.perf_counter()
    pages = syn.extract_pages(config.corpus, workers=os.cpu_count() or 1, limit=config.pages)
    step(f"extracted {len(pages)} corpus pages in {time.perf_counter() - started:.1f} s")
    return syn.build_set(
        pages,
        syn.load_seeds(config.seeds),
        stories=config.stories,
        overlap_pair_count=config.overlap_pairs,
        template_negatives=config.template_negatives,
    )


# --- report -----------------------------------------------------------------------------------

KIND_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((kind, (kind,)) for kind in syn.NEAR_DUPLICATE_KINDS),
    ("near-dup kinds", syn.NEAR_DUPLICATE_KINDS),
    ("excerpt", ("excerpt",)),
    ("superset", ("superset",)),
    ("all articles", (*syn.VARIANT_KINDS, syn.TEMPLATE_NEGATIVE)),
)


def relation_correct(item: syn.Labelled, result: Mapping[str, Any], cluster: str) -> bool:
    """The expected relation for the kind, and the right cluster."""
    if "error" in result:
        return False
    return result.get("relation") in syn.EXPECTED_RELATIONS[item.kind] and cluster == item.cluster


def outcome(
    item: syn.Labelled, result: Mapping[str, Any], cluster: str, truth: Mapping[str, str]
) -> str:
    """A short name for what the service answered, for the per-kind breakdown: the relation,
    and whether ``duplicate_of`` names another story or a copy of this one taken for new."""
    if "error" in result:
        return f"error {result['error'].get('code')}"
    name = str(result.get("relation") or result.get("status"))
    if truth.get(cluster) != item.cluster:
        name += " (other story)"
    elif cluster not in (item.id, item.cluster):
        name += " (to a copy)"
    return name


def print_set(dataset: syn.SyndicationSet) -> None:
    kinds = dataset.kinds()
    corpus = sum(s.key.startswith("corpus:") for s in dataset.stories)
    languages = Counter(s.language for s in dataset.stories)
    words = sum(s.word_count for s in dataset.stories) / len(dataset.stories)
    print(
        f"  set         {len(dataset.items)} articles: {len(dataset.stories)} stories "
        f"({corpus} corpus, {len(dataset.seed_clusters)} seeds; "
        + ", ".join(f"{lang} {n}" for lang, n in languages.most_common())
        + f"; {words:.0f} words on average)"
    )
    print("              " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    for note in dataset.notes:
        print(f"              {note}")


def _cell(value: float) -> str:
    return f"{value:6.3f}"


def print_scores(run: Run) -> None:
    items = run.dataset.items
    base = (syn.ORIGINAL,)
    widths = "  {:<16}{:>5} "
    head = widths.format("kind", "n") + "".join(f"| {s:<24} " for s in SYSTEMS) + "| raw J"
    metrics = "|" + "".join(f"{m:>6}" for m in ("P", "R", "F1", "ARI")) + " "
    print()
    print("Pairwise precision / recall / F1 and adjusted Rand index. A row scores the originals")
    print("with the articles of its kinds (n of them); raw J is their mean Jaccard to their")
    print("original over raw lowercased word 5-shingles")
    print(head)
    print(widths.format("", "") + metrics * len(SYSTEMS) + "|")
    for label, kinds in KIND_ROWS:
        n = sum(1 for i in items if i.kind in kinds)
        cells = ""
        for system in SYSTEMS:
            score = score_subset(items, run.predicted[system], (*base, *kinds))
            cells += "|" + "".join(
                _cell(v) for v in (score.precision, score.recall, score.f1, score.ari)
            )
            cells += " "
        similar = [run.raw_similarity.get(i.id) for i in items if i.kind in kinds]
        known = [j for j in similar if j is not None]
        raw = f"{sum(known) / len(known):.2f}" if known else ""
        print(widths.format(label, n) + cells + f"| {raw}")
        if label in ("combined", "superset"):
            print("  " + "-" * (len(head) - 2))


_SHOWN = ("status", "relation", "duplicate_of", "similarity", "error")


def print_relations(run: Run, show: int) -> dict[str, float]:
    """The service's relation accuracy per kind; answers the share per kind."""
    items, results = run.dataset.items, run.results
    predicted = run.predicted[SERVICE]
    truth = {i.id: i.cluster for i in items}
    print()
    print(f"{SERVICE} decisions per kind: right relation and cluster, and what it answered")
    print("(to a copy: duplicate_of names a copy of the same story that was itself taken for new)")
    shares: dict[str, float] = {}
    kinds = (syn.ORIGINAL, *syn.VARIANT_KINDS, syn.TEMPLATE_NEGATIVE)
    for kind in kinds:
        chosen = [i for i in items if i.kind == kind]
        right = [relation_correct(i, results[i.id], predicted[i.id]) for i in chosen]
        shares[kind] = sum(right) / len(chosen) if chosen else 0.0
        answers = Counter(outcome(i, results[i.id], predicted[i.id], truth) for i in chosen)
        expected = "/".join(sorted(r or "unique" for r in syn.EXPECTED_RELATIONS[kind]))
        similar = [
            float(results[i.id]["similarity"])
            for i in chosen
            if isinstance(results[i.id].get("similarity"), int | float)
        ]
        mean = f"; mean similarity {sum(similar) / len(similar):.2f}" if similar else ""
        print(
            f"  {kind:<18} {expected:<22} {sum(right):>4}/{len(chosen):<4} {shares[kind]:6.3f}"
            f"   " + ", ".join(f"{k} {n}" for k, n in answers.most_common()) + mean
        )
        wrong = [i for i, ok in zip(chosen, right, strict=True) if not ok][:show]
        for item in wrong:
            result = results[item.id]
            shown = {k: result[k] for k in _SHOWN if k in result}
            raw_j = run.raw_similarity.get(item.id)
            about = item.detail or kind
            if raw_j is not None:
                about += f", raw J {raw_j:.2f}"
            print(f"      {item.id} ({about}): {json.dumps(shown)}")
    return shares


@dataclass(frozen=True, slots=True)
class Negatives:
    seed_originals: int  # links among the five seed originals (of 10 pairs)
    seed_clusters: int  # links between articles of different seed stories
    overlap_links: int  # links between articles of the high-overlap story pairs
    overlap_pairs_linked: int  # how many of those story pairs have any link
    template_linked: int  # template negatives in a predicted cluster of two or more


def negatives(dataset: syn.SyndicationSet, predicted: Mapping[str, str]) -> Negatives:
    members: dict[str, list[str]] = defaultdict(list)
    for item in dataset.items:
        members[item.cluster].append(item.id)
    seeds = dataset.seed_clusters
    overlap = [
        linked_across(predicted, [members[a], members[b]]) for a, b, _ in dataset.overlap_pairs
    ]
    size = Counter(predicted.values())
    template = [i for i in dataset.items if i.kind == syn.TEMPLATE_NEGATIVE]
    return Negatives(
        seed_originals=linked_across(predicted, [[s] for s in seeds]),
        seed_clusters=linked_across(predicted, [members[s] for s in seeds]),
        overlap_links=sum(overlap),
        overlap_pairs_linked=sum(1 for n in overlap if n),
        template_linked=sum(1 for i in template if size[predicted[i.id]] > 1),
    )


def print_negatives(run: Run) -> dict[str, Negatives]:
    dataset = run.dataset
    found = {system: negatives(dataset, run.predicted[system]) for system in SYSTEMS}
    template = sum(1 for i in dataset.items if i.kind == syn.TEMPLATE_NEGATIVE)
    pairs = len(dataset.overlap_pairs)
    rows = (
        ("seed originals linked (pairs of 10)", "seed_originals"),
        ("article pairs linked across seed stories", "seed_clusters"),
        (f"high-overlap story pairs linked (of {pairs})", "overlap_pairs_linked"),
        ("  article pairs linked across them", "overlap_links"),
        (f"template negatives linked (of {template})", "template_linked"),
    )
    print()
    print("Hard negatives: false links (0 is right)")
    print("  " + " " * 44 + "".join(f"{s:>18}" for s in SYSTEMS))
    for label, attribute in rows:
        counts = "".join(f"{getattr(found[s], attribute):>18}" for s in SYSTEMS)
        print(f"  {label:<44}{counts}")
    jaccards = ", ".join(f"{j:.3f}" for _, _, j in dataset.overlap_pairs)
    print(f"  (content-word Jaccard of the high-overlap pairs: {jaccards})")
    return found


def print_bars(run: Run, shares: Mapping[str, float], found: Mapping[str, Negatives]) -> None:
    items = run.dataset.items
    near = score_subset(items, run.predicted[SERVICE], (syn.ORIGINAL, *syn.NEAR_DUPLICATE_KINDS))
    seeds = found[SERVICE]
    excerpt, superset = shares["excerpt"], shares["superset"]
    seed_links = f"{seeds.seed_originals} original pairs, {seeds.seed_clusters} article pairs"
    bars = (
        (
            f"near-dup kinds: pairwise precision >= {NEAR_DUP_MIN_PRECISION}",
            near.precision >= NEAR_DUP_MIN_PRECISION,
            f"{near.precision:.4f}",
        ),
        (
            f"near-dup kinds: pairwise recall >= {NEAR_DUP_MIN_RECALL}",
            near.recall >= NEAR_DUP_MIN_RECALL,
            f"{near.recall:.4f}",
        ),
        (
            f"excerpts decided as excerpt >= {CONTAINMENT_MIN_RECALL}",
            excerpt >= CONTAINMENT_MIN_RECALL,
            f"{excerpt:.4f}",
        ),
        (
            f"supersets decided as superset >= {CONTAINMENT_MIN_RECALL}",
            superset >= CONTAINMENT_MIN_RECALL,
            f"{superset:.4f}",
        ),
        ("the five seeds never linked to each other", seeds.seed_clusters == 0, seed_links),
    )
    print()
    print(f"Bars of issue 4 ({SERVICE})")
    for label, ok, value in bars:
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<48} {value}")


# --- the sweep --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """The dedup tunables of one service start, passed as flags of ``news-ingest serve``."""

    unit: str = "chars"
    size: int = 7
    threshold: float = 0.5
    num_perm: int = 128
    containment: float = 0.8

    def flags(self) -> list[str]:
        # Every tunable explicitly, so a row means the same whatever the defaults become.
        return [
            "--shingle-unit", self.unit, "--shingle-size", str(self.size),
            "--dedup-threshold", str(self.threshold), "--num-perm", str(self.num_perm),
            "--containment-threshold", str(self.containment),
        ]  # fmt: skip

    def label(self) -> str:
        return (
            f"{self.unit} {self.size}, J {self.threshold}, {self.num_perm} perm, "
            f"C {self.containment}"
        )


def service_defaults() -> Setting:
    """The service's own defaults, from its settings class."""
    fields = Settings.model_fields
    return Setting(
        unit=str(fields["shingle_unit"].default),
        size=int(fields["shingle_size"].default),
        threshold=float(fields["dedup_threshold"].default),
        num_perm=int(fields["num_perm"].default),
        containment=float(fields["containment_threshold"].default),
    )


# Each group varies one tunable around chars 7 / 0.5 / 128 / 0.8 (the defaults when this was
# written); the old default, word 5-shingles at 0.8, has a row of its own.
SWEEP: tuple[tuple[str, tuple[Setting, ...]], ...] = (
    ("dedup_threshold", tuple(Setting(threshold=t) for t in (0.4, 0.5, 0.6))),
    ("shingle_size", tuple(Setting(size=n) for n in (5, 7, 9))),
    ("num_perm", tuple(Setting(num_perm=n) for n in (64, 128, 256))),
    ("old default", (Setting(unit="words", size=5, threshold=0.8),)),
    ("containment_threshold", tuple(Setting(containment=c) for c in (0.7, 0.8, 0.9))),
)


@dataclass(frozen=True, slots=True)
class SweepRow:
    near: PairScore  # pairwise, originals with the near-duplicate kinds
    excerpt: float  # share of excerpts decided excerpt, in the right cluster
    superset: float  # likewise for supersets
    seeds_linked: int  # article pairs linked across the five seed stories
    other_links: int  # false links among the other hard negatives
    published: int  # near-duplicate copies published (unique, or updated as a superset)
    errors: int
    per_s: float  # decisions per second in the batch requests
    retries: int


def sweep_row(dataset: syn.SyndicationSet, posted: Posted) -> SweepRow:
    items, results = dataset.items, posted.results
    predicted = service_clusters(items, results)
    near = score_subset(items, predicted, (syn.ORIGINAL, *syn.NEAR_DUPLICATE_KINDS))

    def share(kind: str) -> float:
        chosen = [i for i in items if i.kind == kind]
        right = sum(relation_correct(i, results[i.id], predicted[i.id]) for i in chosen)
        return right / len(chosen) if chosen else 0.0

    found = negatives(dataset, predicted)
    published = sum(
        1
        for i in items
        if i.kind in syn.NEAR_DUPLICATE_KINDS and results[i.id].get("status") in PUBLISHED
    )
    return SweepRow(
        near=near,
        excerpt=share("excerpt"),
        superset=share("superset"),
        seeds_linked=found.seed_clusters,
        other_links=found.overlap_links + found.template_linked,
        published=published,
        errors=sum(1 for r in results.values() if "error" in r),
        per_s=len(items) / posted.seconds if posted.seconds else 0.0,
        retries=posted.retries,
    )


PUBLISHED = ("unique", "updated")


def failed_bars(row: SweepRow) -> str:
    """The issue's bars this row misses, by letter: P, R, E(xcerpt), S(uperset), seeds."""
    missed = [
        name
        for name, ok in (
            ("P", row.near.precision >= NEAR_DUP_MIN_PRECISION),
            ("R", row.near.recall >= NEAR_DUP_MIN_RECALL),
            ("E", row.excerpt >= CONTAINMENT_MIN_RECALL),
            ("S", row.superset >= CONTAINMENT_MIN_RECALL),
            ("seeds", row.seeds_linked == 0),
        )
        if not ok
    ]
    return "all met" if not missed else "miss " + ",".join(missed)


def run_sweep(config: Config, dataset: syn.SyndicationSet) -> None:
    defaults = service_defaults()
    # The defaults first: the row the others are read against, measured on a fresh machine state.
    settings = list(dict.fromkeys([defaults, *(s for _, group in SWEEP for s in group)]))
    redis_url = choose_redis(config)
    rows: dict[Setting, SweepRow] = {}
    for n, setting in enumerate(settings, start=1):
        step(f"setting {n}/{len(settings)}: {setting.label()}")
        posted = decide_all(config, redis_url, dataset.items, setting.flags())
        rows[setting] = sweep_row(dataset, posted)
        step(f"decided in {posted.seconds:.1f} s, {posted.retries} batches posted again")

    near_n = sum(1 for i in dataset.items if i.kind in syn.NEAR_DUPLICATE_KINDS)
    negative_n = sum(1 for i in dataset.items if i.kind == syn.TEMPLATE_NEGATIVE)
    which = "the --quick set" if config.quick else "the full set"
    legend = (
        ("P, R", f"pairwise precision, recall: the originals and their {near_n} near-dup copies"),
        ("excerpt", "share of the excerpts decided excerpt, in the right cluster"),
        ("superset", "share of the supersets decided superset, in the right cluster"),
        ("seeds", "any link between articles of the five seed stories"),
        (
            "other",
            f"false links among the other hard negatives ({len(dataset.overlap_pairs)} "
            f"high-overlap story pairs, {negative_n} template negatives)",
        ),
        ("published", "near-dup copies published again: unique, or updated as a superset"),
        ("dec/s", "articles per second in the batch requests (busy shared machine: indicative)"),
        ("bars", "the issue's bars the setting misses: P, R, E(xcerpt), S(uperset), seeds"),
        ("*", "the service's defaults"),
    )
    print()
    print(
        f"Sweep: the same {len(dataset.items)} articles ({which}) through one service start "
        "per setting, each under a fresh key prefix"
    )
    for name, meaning in legend:
        print(f"  {name:<10} {meaning}")
    head = (
        f"  {'setting':<34}{'bands x rows':>13}{'P':>7}{'R':>7}{'excerpt':>9}{'superset':>9}"
        f"{'seeds':>7}{'other':>7}{'published':>10}{'dec/s':>7}  bars"
    )
    print(head)
    for name, group in SWEEP:
        print(f"  {name}")
        for setting in group:
            row = rows[setting]
            bands, rows_per_band = lsh_params(setting.threshold, setting.num_perm)
            mark = "*" if setting == defaults else " "
            notes = failed_bars(row)
            if row.errors:
                notes += f"; {row.errors} errors"
            if row.retries:
                notes += f"; {row.retries} retried"
            print(
                f"  {mark} {setting.label():<32}{f'{bands} x {rows_per_band}':>13}"
                f"{row.near.precision:7.3f}{row.near.recall:7.3f}{row.excerpt:9.3f}"
                f"{row.superset:9.3f}{'yes' if row.seeds_linked else 'no':>7}{row.other_links:>7}"
                f"{row.published:>10}{row.per_s:7.0f}  {notes}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    started = time.perf_counter()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("news-ingest duplicate-detection quality")
    print(f"  commit      {git_commit()}")
    print(
        f"  machine     {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load}"
    )
    step("generating the syndication set")
    dataset = build(config)
    print_set(dataset)
    if config.sweep:
        run_sweep(config, dataset)
        print()
        print(f"total {time.perf_counter() - started:.1f} s")
        return 0
    run = Run(dataset)
    step("baselines: datasketch MinHashLSH on the raw text")
    run_baselines(run)
    step(f"baselines took {run.timings['baselines']:.1f} s")
    run_service(config, run)
    errors = Counter(
        r["error"].get("code") for r in run.results.values() if isinstance(r.get("error"), dict)
    )
    step(
        f"service decided {len(run.results)} articles in {run.timings['service']:.1f} s "
        f"(batches of {config.batch_size}; {run.retries} batches posted again after a 503); "
        "errors: " + (", ".join(f"{k} {n}" for k, n in errors.items()) or "none")
    )
    print_scores(run)
    shares = print_relations(run, config.show)
    found = print_negatives(run)
    print_bars(run, shares, found)
    print()
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
