"""URL normalisation: every spelling of one article's address maps to one string."""

from __future__ import annotations

import pytest

from service.urls import host_of, normalise_url

PLAIN = "http://example.com/news/story-1"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/news/story-1",
        "https://example.com/news/story-1",
        "HTTPS://EXAMPLE.COM/news/story-1",
        "https://www.example.com/news/story-1",
        "https://WWW.Example.Com./news/story-1",
        "https://example.com/news/story-1/",
        "https://example.com/news/story-1#comments",
        "https://example.com:443/news/story-1",
        "http://example.com:80/news/story-1",
        "  https://example.com/news/story-1\n",
        "https://example.com/news/story-1?utm_source=twitter&utm_medium=social&utm_campaign=x",
        "https://example.com/news/story-1?UTM_Source=feed",
        "https://example.com/news/story-1?fbclid=IwAR0abc",
        "https://example.com/news/story-1?gclid=Cj0KCQ&utm_term=a#top",
        "https://example.com/news/story-1?fbclid=",
        "https://example.com/amp/news/story-1",
        "https://example.com/news/amp/story-1",
        "https://example.com/news/story-1/amp",
        "https://example.com/news/story-1/amp/",
        "https://example.com/news/story-1/AMP",
        "https://example.com/news/story-1.amp",
        "https://amp.example.com/news/story-1",
        "https://www.example.com/amp/news/story-1/?utm_source=x&amp=1#frag",
    ],
)
def test_spellings_of_one_article_map_to_one_url(url: str) -> None:
    assert normalise_url(url) == PLAIN


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/news/story-1.amp.html",
        "https://amp.example.com/news/story-1.html",
        "https://www.example.com/amp/news/story-1.html",
        "https://example.com/news/story-1.html/amp",
    ],
)
def test_amp_html_variant_maps_to_the_html_page(url: str) -> None:
    assert normalise_url(url) == "http://example.com/news/story-1.html"


def test_other_params_kept_and_sorted() -> None:
    url = "https://example.com/watch?v=abc&list=PL1&utm_source=x&a=&gclid=1"
    assert normalise_url(url) == "http://example.com/watch?a=&list=PL1&v=abc"


def test_param_order_does_not_matter() -> None:
    assert normalise_url("https://example.com/s?b=2&a=1") == normalise_url(
        "https://example.com/s?a=1&b=2"
    )
    assert normalise_url("https://example.com/s?b=2&a=1") == "http://example.com/s?a=1&b=2"


def test_repeated_params_kept_with_their_values() -> None:
    assert normalise_url("http://example.com/s?tag=b&tag=a") == "http://example.com/s?tag=a&tag=b"


def test_params_that_identify_the_article_change_the_url() -> None:
    assert normalise_url("http://example.com/story?id=1") != normalise_url(
        "http://example.com/story?id=2"
    )
    assert normalise_url("http://example.com/story?id=1") != normalise_url(
        "http://example.com/story"
    )


def test_encoded_values_survive() -> None:
    # A literal '+' and '&' inside a value must not turn into a space or a second parameter.
    assert normalise_url("http://example.com/s?q=a%2Bb%26c") == "http://example.com/s?q=a%2Bb%26c"


def test_host_lowercased_path_case_kept() -> None:
    assert normalise_url("https://News.Example.COM/World/Story-ABC") == (
        "http://news.example.com/World/Story-ABC"
    )
    assert normalise_url("http://example.com/Story") != normalise_url("http://example.com/story")


def test_non_default_port_kept() -> None:
    assert normalise_url("https://example.com:8443/a") == "http://example.com:8443/a"
    assert normalise_url("http://example.com:8080/a/") == "http://example.com:8080/a"
    # 443 is the default only for https.
    assert normalise_url("http://example.com:443/a") == "http://example.com:443/a"


def test_root_path() -> None:
    assert normalise_url("https://www.example.com") == "http://example.com/"
    assert normalise_url("https://www.example.com/") == "http://example.com/"
    assert normalise_url("https://www.example.com/?utm_source=x#top") == "http://example.com/"


def test_subdomains_other_than_www_and_amp_kept() -> None:
    assert normalise_url("https://edition.example.com/a") == "http://edition.example.com/a"
    assert normalise_url("https://m.example.com/a") != normalise_url("https://example.com/a")


def test_words_containing_amp_are_not_amp_segments() -> None:
    assert normalise_url("https://example.com/camp/ampersand") == (
        "http://example.com/camp/ampersand"
    )
    assert normalise_url("https://example.com/news/example") == "http://example.com/news/example"


def test_normalise_is_idempotent() -> None:
    url = "https://www.Example.com:443/amp/a/b/?z=1&utm_source=x&a=2#f"
    once = normalise_url(url)
    assert once == "http://example.com/a/b?a=2&z=1"
    assert normalise_url(once) == once


# urlsplit().hostname drops the brackets of an IPv6 literal; without them the result is not a
# URL and "[::1]:8080" would collide with the host "::1:8080".
def test_ipv6_host_keeps_brackets() -> None:
    assert normalise_url("http://[::1]:8080/a") == "http://[::1]:8080/a"


# "amp." is an AMP subdomain only when a registrable name is left after it.
def test_amp_host_stripped_only_as_a_subdomain() -> None:
    assert normalise_url("https://amp.dev/about") == "http://amp.dev/about"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Example.COM/a/b?c=1", "example.com"),
        ("http://news.example.co.uk:8080/x", "news.example.co.uk"),
        ("https://example.com./", "example.com"),
        ("https://www.example.com", "example.com"),
        ("https://wwwexample.com/", "wwwexample.com"),
        ("not a url", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
