"""Shared helpers of the sans-IO tests.

``x()``, the stanza literal 14 test files define for themselves, now lives
once in :func:`xmpp_sansio.testing.x` (import it, or use the ``x`` fixture;
switching those files is left to their owners, see docs/architecture.md). ``any_framing`` runs a module's ConnectionPair
transcripts over the TCP framing and the in-memory RFC 7395 WebSocket framing:
``pytestmark = pytest.mark.usefixtures("any_framing")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from xml.etree.ElementTree import Element

import pytest

from xmpp_sansio import testing


@pytest.fixture(name="x")
def x_fixture() -> Callable[[str], Element]:
    """The ``x()`` literal (:func:`xmpp_sansio.testing.x`) as a fixture."""
    return testing.x


@pytest.fixture(params=["tcp", "websocket"])
def any_framing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every ConnectionPair of the test uses this framing."""
    monkeypatch.setattr(testing, "DEFAULT_FRAMING", request.param)
    yield str(request.param)
