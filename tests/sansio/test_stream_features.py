"""Stream features as plug-ins composed per profile (stream/features.py)."""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element

from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.features import (
    C2S_SERVER,
    BindFeature,
    FeatureHost,
    Profile,
    SASLFeature,
    StartTLSFeature,
)
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.xml.parser import parse_fragment

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


class ExampleFeature:
    """A toy plug-in: offered only while TLS is off."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if not conn.tls_active:
            yield Element("{urn:example:feature}example")


def features_of(server: ServerConnection) -> list[str]:
    server.receive_data(HEADER)
    out = server.data_to_send()
    features = parse_fragment(out[out.index(b"<stream:features") :], "jabber:client")
    return [child.tag for child in features]


def config(**kw: object) -> ServerConfig:
    return ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}), **kw)  # type: ignore[arg-type]


def test_the_default_profile_offers_starttls_then_sasl_then_register() -> None:
    server = ServerConnection(config(allow_registration=True, require_tls=False))
    assert features_of(server) == [
        "{urn:ietf:params:xml:ns:xmpp-tls}starttls",
        "{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms",
        "{http://jabber.org/features/iq-register}register",
    ]
    assert C2S_SERVER.before_auth[0].__class__ is StartTLSFeature


def test_a_profile_composes_its_own_plug_ins_in_order() -> None:
    profile = Profile(before_auth=(ExampleFeature(), SASLFeature()), after_auth=(BindFeature(),))
    server = ServerConnection(config(allow_registration=True, require_tls=False), profile=profile)
    assert features_of(server) == [
        "{urn:example:feature}example",
        "{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms",
    ]


def test_a_plug_in_decides_from_the_connection_whether_it_is_offered() -> None:
    profile = Profile(before_auth=(ExampleFeature(),), after_auth=())
    server = ServerConnection(config(), tls_active=True, profile=profile)
    assert features_of(server) == []
