"""news-ingest: clean, deduplicate and publish news articles to Redis Streams."""

__version__ = "0.1.0"
