"""Stream features as plug-ins composed per profile (stream/features/): each owns its
elements, their handling and the answers it asks for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import LocalProtocolError
from xmpp_sansio.stream.answers import Answer, CredentialsProvided, RegistrationAnswered
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.events import TLSRequested
from xmpp_sansio.stream.features import (
    C2S_SERVER,
    BindFeature,
    FeatureHost,
    Profile,
    SASLFeature,
    Stage,
    StartTLSFeature,
)
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.xml import ns
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


class ClaimingFeature(ExampleFeature):
    """A toy plug-in that also handles its own element before authentication."""

    def __init__(self) -> None:
        self.handled: list[tuple[Stage, str]] = []

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        return ("{urn:example:feature}hello",) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        self.handled.append((stage, el.tag))
        return True


def test_an_element_a_plug_in_claims_reaches_it_instead_of_a_stream_error() -> None:
    feature = ClaimingFeature()
    profile = Profile(before_auth=(feature, SASLFeature()), after_auth=(BindFeature(),))
    server = ServerConnection(config(require_tls=False), profile=profile)
    features_of(server)
    server.receive_data(b"<hello xmlns='urn:example:feature'/>")
    assert feature.handled == [(Stage.BEFORE_AUTH, "{urn:example:feature}hello")]
    assert b"stream:error" not in server.data_to_send()
    server.receive_data(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert b"unsupported-stanza-type" in server.data_to_send()  # nobody in this profile claims it


def test_the_default_profile_gives_each_element_to_its_feature_per_stage() -> None:
    claims = C2S_SERVER.claims(config())
    owner = {stage: {tag: type(f).__name__ for tag, f in claims[stage].items()} for stage in Stage}
    assert owner[Stage.BEFORE_AUTH] == {
        ns.STARTTLS_TAG: "StartTLSFeature",
        ns.AUTH_TAG: "SASLFeature",
        ns.RESPONSE_TAG: "SASLFeature",
        ns.ABORT_TAG: "SASLFeature",
        ns.IQ_TAG: "RegisterFeature",
        ns.SM_ENABLE_TAG: "SMFeature",
        ns.SM_RESUME_TAG: "SMFeature",
    }
    assert owner[Stage.BIND] == {
        ns.IQ_TAG: "BindFeature",
        ns.SM_ENABLE_TAG: "SMFeature",
        ns.SM_RESUME_TAG: "SMFeature",
        ns.CSI_ACTIVE_TAG: "CSIFeature",
        ns.CSI_INACTIVE_TAG: "CSIFeature",
    }
    assert ns.IQ_TAG not in owner[Stage.READY]  # stanzas never go through a plug-in
    assert owner[Stage.READY]["{" + ns.SM + "}"] == "SMFeature"


def test_features_switched_off_in_the_config_claim_nothing() -> None:
    claims = C2S_SERVER.claims(config(stream_management=False, csi=False))
    assert set(claims[Stage.READY]) == set()
    assert set(claims[Stage.BIND]) == {ns.IQ_TAG}


def test_the_claims_are_built_once_per_config() -> None:
    same = config()
    assert C2S_SERVER.claims(same) is C2S_SERVER.claims(same)
    assert C2S_SERVER.claims(config()) is not C2S_SERVER.claims(same)


@given(
    stream_management=st.booleans(),
    csi=st.booleans(),
    registration=st.booleans(),
    stage=st.sampled_from(Stage),
)
def test_a_feature_claims_elements_only_when_the_config_turns_it_on(
    stream_management: bool, csi: bool, registration: bool, stage: Stage
) -> None:
    claims = C2S_SERVER.claims(
        config(stream_management=stream_management, csi=csi, allow_registration=registration)
    )[stage]
    owners = {type(feature).__name__ for feature in claims.values()}
    assert ("SMFeature" in owners) == stream_management
    assert ("CSIFeature" in owners) == (csi and stage is not Stage.BEFORE_AUTH)
    assert (ns.IQ_TAG in claims) == (stage is not Stage.READY)  # Register, then Bind
    assert not any(tag in claims for tag in ("{jabber:client}message", "{jabber:client}presence"))


class GreetingFeature(ExampleFeature):
    """A toy plug-in that owns its element, its handling and the answer it waits for."""

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        return ("{urn:example:feature}hello",) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        conn._send_element(Element("{urn:example:feature}hi"))
        conn._events.append(TLSRequested(server_side=True, server_hostname="asked"))
        return True

    def answers(self) -> tuple[type[Answer], ...]:
        return (RegistrationAnswered,)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        conn._send_element(Element("{urn:example:feature}thanks"))


def test_a_plug_in_owns_its_handling_and_the_answers_it_asked_for() -> None:
    profile = Profile(before_auth=(GreetingFeature(), SASLFeature()), after_auth=(BindFeature(),))
    server = ServerConnection(config(require_tls=False), profile=profile)
    features_of(server)
    server.receive_data(b"<hello xmlns='urn:example:feature'/>")
    assert server.data_to_send() == b'<hi xmlns="urn:example:feature"/>'
    events = iter(server.next_event, None)
    assert TLSRequested(server_side=True, server_hostname="asked") in list(events)
    server.send(RegistrationAnswered())
    assert server.data_to_send() == b'<thanks xmlns="urn:example:feature"/>'


def test_a_profile_without_a_feature_refuses_its_answers() -> None:
    profile = Profile(before_auth=(StartTLSFeature(),), after_auth=(BindFeature(),))
    server = ServerConnection(config(), profile=profile)
    features_of(server)
    with pytest.raises(LocalProtocolError):
        server.send(CredentialsProvided(None))
    with pytest.raises(LocalProtocolError):
        server.registration_result(None)
    server.receive_data(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
    assert b"<unsupported-stanza-type" in server.data_to_send()


def test_the_default_profile_routes_each_answer_to_the_plug_in_that_asks() -> None:
    owner = {kind.__name__: type(f).__name__ for kind, f in C2S_SERVER.answering().items()}
    assert owner == {
        "CredentialsProvided": "SASLFeature",
        "CredentialsRefused": "SASLFeature",
        "DerivationProvided": "SASLFeature",
        "FastTokensProvided": "FastFeature",
        "UpgradeTasksNeeded": "UpgradeFeature",
        "RegistrationAnswered": "RegisterFeature",
        "BindAccepted": "BindFeature",
        "BindRefused": "BindFeature",
        "ResumeAccepted": "SMFeature",
        "ResumeRejected": "SMFeature",
    }
