"""OpenSSL's read-ahead is turned on only for a context whose ``SSL_CTX``
pointer checks out (xmpp_trio/_read_ahead.py); the reads themselves are
tested both ways in test_tls_records.py."""

from __future__ import annotations

import ssl

import pytest

from xmpp_trio import _read_ahead


def test_read_ahead_is_left_off_when_the_context_does_not_check_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SSL_CTX pointer is used only if SSL_CTX_get_options through it
    # agrees with SSLContext.options; here it is made to disagree.
    assert _read_ahead._FUNCTIONS is not None
    ctrl, get_options, *rest = _read_ahead._FUNCTIONS
    monkeypatch.setattr(
        _read_ahead, "_FUNCTIONS", (ctrl, lambda pointer: get_options(pointer) ^ 1, *rest)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert not _read_ahead.enable(context)
    monkeypatch.undo()
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert _read_ahead.enable(other) and _read_ahead.enable(other)  # asked once, kept
    assert not _read_ahead.enable(context)  # the first answer is kept too
