"""Settings: defaults, overridden by NEWS_INGEST_* variables, overridden by CLI flags."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.cli import build_parser, settings_from
from service.settings import Settings


def test_flags_override_env_which_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWS_INGEST_NUM_PERM", "32")
    monkeypatch.setenv("NEWS_INGEST_SHINGLE_SIZE", "3")
    monkeypatch.setenv("NEWS_INGEST_API_KEYS", "k1, k2,,")
    args = build_parser().parse_args(["serve", "--num-perm", "64", "--key-prefix", "{news}"])
    settings = settings_from(args)
    assert settings.num_perm == 64  # flag
    assert settings.shingle_size == 3  # env
    assert settings.api_keys == ["k1", "k2"]  # env, comma-separated
    assert settings.key_prefix == "{news}"
    assert settings.dedup_window_s == 7 * 24 * 3600  # default
    assert settings.max_body_bytes == 5_000_000


def test_every_setting_has_a_serve_flag() -> None:
    args = vars(build_parser().parse_args(["serve"]))
    assert set(Settings.model_fields) <= set(args)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("key_prefix", "a b", "key_prefix"),
        ("key_prefix", "{a}{b}", "hash tag"),
        ("articles_stream", "x y", "stream name"),
        ("dedup_threshold", "1.5", "less than or equal"),
        ("log_level", "LOUD", "log_level"),
    ],
)
def test_bad_settings_say_what_is_wrong(field: str, value: str, words: str) -> None:
    # Any: the field is chosen at run time, and each of Settings' keywords has its own type.
    values: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError, match=words):
        Settings(**values)


def test_streams_must_differ() -> None:
    with pytest.raises(ValidationError, match="different streams"):
        Settings(articles_stream="same", duplicates_stream="same")
