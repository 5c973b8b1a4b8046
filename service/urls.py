"""URL normalisation: the many spellings of one article's address map to one string."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that identify a campaign or a click, never the article.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "oly_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid",
        "mkt_tok", "_hsenc", "_hsmi", "ref", "ref_src", "ref_url", "cmpid", "ncid",
        "sr_share", "smid", "share", "outputtype", "amp", "__twitter_impression",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def _strip_amp(path: str) -> str:
    # The AMP variant of a page is the same article: /amp/x, /x/amp, /x.amp.html, /x.amp
    segments = [s for s in path.split("/") if s]
    segments = [s for s in segments if s.lower() != "amp"]
    if segments:
        last = segments[-1]
        for suffix in (".amp.html", ".amp"):
            if last.lower().endswith(suffix):
                segments[-1] = last[: -len(suffix)] + (".html" if suffix == ".amp.html" else "")
    return "/" + "/".join(segments)


def _strip_subdomain(host: str) -> str:
    """``www.`` and ``amp.`` in front of a registrable name, never the name itself
    (``amp.dev`` stays ``amp.dev``)."""
    for label in ("www.", "amp."):
        rest = host[len(label) :]
        if host.startswith(label) and "." in rest:
            host = rest
    return host


def normalise_url(url: str) -> str:
    """Lowercased scheme and host, no ``www.``, default port, fragment, tracking parameters,
    AMP segment or trailing slash; remaining query parameters sorted. ``https`` and ``http``
    are folded together: publishers serve the same article on both."""
    parts = urlsplit(url.strip())
    host = _strip_subdomain((parts.hostname or "").lower().rstrip("."))
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    scheme = parts.scheme.lower()
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = _strip_amp(parts.path or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit(("http", netloc, path, urlencode(query), ""))


def host_of(url: str) -> str:
    """The publisher host of a URL without ``www.``, used as the default source."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") and "." in host[4:] else host
