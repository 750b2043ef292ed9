"""Credentials never shown: ``redact_url`` and ``redact_text``."""
from __future__ import annotations

import pytest

from downloader.redact import redact_text, redact_url, shown_url


@pytest.mark.parametrize("url, shown", [
    ("https://example.org/a", "https://example.org/a"),
    ("https://user:pw@example.org/a", "https://user:***@example.org/a"),
    ("https://user@example.org/a", "https://user@example.org/a"),
    ("http://user:p%40ss@h:8080/x?q=1", "http://user:***@h:8080/x?q=1"),
    # Unescaped / ? # in a password hide the @ from URL parsers; where the
    # URL then does not parse, the text is masked all the same.
    ("http://user:pa/ss@host/f", "http://user:***@host/f"),
    ("https://a:b?c@h/", "https://a:***@h/"),
    ("https://a:b#c@h/", "https://a:***@h/"),
    # ... and an @ in a path or query of a URL with a port is left alone.
    ("http://localhost:8080/users/@alice", "http://localhost:8080/users/@alice"),
    ("https://h.example:8443/x?email=a@b.com", "https://h.example:8443/x?email=a@b.com"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_replaces_the_url_inside_a_message() -> None:
    url = "http://u:secret@h/x"
    assert redact_text(f"failed {url}: boom", url) == "failed http://u:***@h/x: boom"


def test_shown_url_masks_credentials_and_control_characters() -> None:
    assert shown_url("http://u:pw@h/a\x1b[2Jb\x9b") == "http://u:***@h/a?[2Jb?"
    assert shown_url("http://h/a\nb\x07") == "http://h/a?b?"
    assert shown_url("http://h/caf\udce9") == "http://h/caf?"
