"""The client's negotiation steps as plug-ins composed per profile
(stream/client_features.py, RFC 6120 §4.3.3)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.client_features import (
    C2S_CLIENT,
    ClientBind,
    ClientFeatureHost,
    ClientProfile,
    ClientSASL,
    ClientStartTLS,
)
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.stream.events import NegotiationFailed, ResourceBound, TLSRequested
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng

PASSWORDS = {"juliet": "r0m30myr0m30"}


def pair_with(profile: ClientProfile, **client_kw: object) -> ConnectionPair:
    client = ClientConnection(
        ClientConfig(  # type: ignore[arg-type]
            rng=seeded_rng(1),
            jid=JID.parse("juliet@capulet.example"),
            password="r0m30myr0m30",
            **client_kw,
        ),
        profile=profile,
    )
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(2), domains=frozenset({"capulet.example"}), require_tls=False)
    )
    pair = ConnectionPair(client, server, make_credentials(PASSWORDS))
    client.start()
    pair.pump()
    return pair


class NothingToDo:
    def take(self, conn: ClientFeatureHost, features: Element) -> bool:
        return False


def test_the_default_client_profile_goes_tls_then_sasl_then_bind() -> None:
    assert [type(step) for step in C2S_CLIENT.steps] == [ClientStartTLS, ClientSASL, ClientBind]
    pair = pair_with(C2S_CLIENT)
    assert [type(e) for e in pair.client_events if isinstance(e, TLSRequested)] == [TLSRequested]


def test_a_client_profile_without_starttls_authenticates_and_binds_in_the_clear() -> None:
    pair = pair_with(ClientProfile(steps=(ClientSASL(), ClientBind())), require_tls=False)
    assert not any(isinstance(e, TLSRequested) for e in pair.client_events)
    assert any(isinstance(e, ResourceBound) for e in pair.client_events)


def test_features_no_step_of_the_profile_takes_fail_the_negotiation() -> None:
    pair = pair_with(ClientProfile(steps=(NothingToDo(),)))
    (failed,) = [e for e in pair.client_events if isinstance(e, NegotiationFailed)]
    assert failed.reason == "no feature of this profile can go on"
