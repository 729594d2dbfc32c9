"""Entropy is an input of xmpp_sansio (issue 11): the configs, the router and
the IQ tracker take ``rng`` from the caller and never read one of their own."""

from __future__ import annotations

import pytest

from xmpp_sansio.iq import IqTracker
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Router
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.testing import seeded_rng, x


def test_a_server_config_without_rng_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="rng"):
        ServerConfig(domains=frozenset({"capulet.example"}))  # type: ignore[call-arg]


def test_a_client_config_without_rng_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="rng"):
        ClientConfig(jid=JID.parse("juliet@capulet.example"), password="pw")  # type: ignore[call-arg]


def test_a_router_and_an_iq_tracker_without_rng_are_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="rng"):
        Router(["capulet.example"], account_exists=lambda local, domain: True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="rng"):
        IqTracker()  # type: ignore[call-arg]


def test_the_scram_decoy_key_comes_from_the_callers_rng_unless_given() -> None:
    drawn = ServerConfig(domains=frozenset({"capulet.example"}), rng=seeded_rng(3))
    assert drawn.decoy_key == seeded_rng(3)(16)
    given = ServerConfig(
        domains=frozenset({"capulet.example"}), rng=seeded_rng(3), decoy_key=b"k" * 16
    )
    assert given.decoy_key == b"k" * 16


def test_iq_ids_come_from_the_callers_rng() -> None:
    tracker = IqTracker(rng=seeded_rng(5))
    iq_id = tracker.request(x("<iq type='get' to='capulet.example'/>"), now=0.0, timeout=30.0)
    assert iq_id == seeded_rng(5)(8).hex()
