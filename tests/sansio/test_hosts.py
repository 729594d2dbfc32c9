"""The hosts table (issue 11): a stanza's ``to`` domain picks its handler before
any account lookup; a service host (the toy echo service) is one sans-IO file
plus a line of wiring; an anonymous-only account host offers SASL ANONYMOUS
and nothing else (issue 10 item 4)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import pytest

from xmpp_sansio.disco import parse_disco_info, parse_disco_items
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.server.echo import EchoService
from xmpp_sansio.server.hosts import AccountHost, Authentication, Hosts
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
ROMEO = 10
HEADER = (
    "<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'>"
)


def account_exists(local: str, domain: str) -> bool:
    assert domain == "example.com", f"an account lookup at {domain}"
    return local in ("romeo", "juliet")


@pytest.fixture
def router() -> Router:
    r = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=account_exists,
        services=[DiscoService()],
        hosts={"echo.example.com": EchoService()},
    )
    r.bind(ROMEO, JID.parse("romeo@example.com/orchard"))
    return r


def only(effects: list[Effect]) -> Element:
    (effect,) = effects
    assert isinstance(effect, Deliver) and effect.session == ROMEO
    return effect.element


@pytest.mark.parametrize("to", ["echo.example.com", "bot@echo.example.com/x"])
def test_echo_service_answers_a_message_with_its_body(router: Router, to: str) -> None:
    reply = only(
        router.route(
            ROMEO,
            x(
                f"<message to='{to}' type='chat' id='m1'><body>O Romeo</body><thread>t</thread></message>"
            ),
        )
    )
    assert reply.attrib == {
        "to": "romeo@example.com/orchard",
        "from": to,
        "type": "chat",
        "id": "m1",
    }
    assert reply.findtext(C + "body") == "O Romeo"
    assert reply.findtext(C + "thread") == "t"


@pytest.mark.parametrize(
    "stanza",
    [
        "<message to='echo.example.com' type='error'><body>x</body></message>",
        "<message to='echo.example.com'><subject>no body</subject></message>",
        "<presence to='echo.example.com'/>",
    ],
)
def test_echo_service_stays_silent_on_errors_bodiless_messages_and_presence(
    router: Router, stanza: str
) -> None:
    assert router.route(ROMEO, x(stanza)) == []


def test_echo_service_answers_disco_and_refuses_other_requests(router: Router) -> None:
    info = only(
        router.route(
            ROMEO,
            x(
                "<iq type='get' id='d' to='echo.example.com'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            ),
        )
    )
    assert info.get("type") == "result" and info.get("from") == "echo.example.com"
    parsed = parse_disco_info(info[0])
    assert [(i.category, i.type, i.name) for i in parsed.identities] == [
        ("component", "generic", "Echo")
    ]
    refused = only(
        router.route(
            ROMEO,
            x(
                "<iq type='get' id='v' to='echo.example.com'><query xmlns='jabber:iq:version'/></iq>"
            ),
        )
    )
    assert parse_error(refused).condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_the_servers_disco_items_list_the_service_hosts(router: Router) -> None:
    items = only(
        router.route(
            ROMEO,
            x(
                "<iq type='get' id='i' to='example.com'>"
                "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
            ),
        )
    )
    parsed = parse_disco_items(items[0])
    assert [(str(i.jid), i.name) for i in parsed.items] == [("echo.example.com", "Echo")]


def test_other_domains_still_take_the_remote_route(router: Router) -> None:
    bounce = only(
        router.route(ROMEO, x("<message to='juliet@capulet.example'><body>hi</body></message>"))
    )
    assert parse_error(bounce).condition is StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND


def test_a_domain_cannot_be_an_account_host_and_a_service_host() -> None:
    with pytest.raises(ValueError, match="account host and a service host"):
        Hosts.build(["example.com"], {"Example.COM": EchoService()})


# -- anonymous-only account hosts (issue 10 item 4) ----------------------------------


def _features(conn: ServerConnection, to: str) -> bytes:
    conn.receive_data(HEADER.format(to=to).encode())
    while conn.next_event() is not None:
        pass
    return conn.data_to_send()


def _server() -> ServerConnection:
    config = ServerConfig(
        rng=seeded_rng(0),
        domains=frozenset({"example.com", "anon.example.com"}),
        anonymous_domains=frozenset({"anon.example.com"}),
        allow_registration=True,
    )
    return ServerConnection(config, tls_active=True)


def test_an_anonymous_host_offers_anonymous_only_and_no_registration() -> None:
    features = _features(_server(), "anon.example.com")
    assert re.findall(rb"<mechanism>([^<]+)</mechanism>", features) == [b"ANONYMOUS"]
    assert b"jabber:iq:register" not in features


def test_the_other_hosts_keep_their_mechanisms() -> None:
    features = _features(_server(), "example.com")
    mechanisms = re.findall(rb"<mechanism>([^<]+)</mechanism>", features)
    assert b"SCRAM-SHA-256" in mechanisms and b"ANONYMOUS" not in mechanisms


def test_a_password_mechanism_on_an_anonymous_host_is_invalid_mechanism() -> None:
    conn = _server()
    _features(conn, "anon.example.com")
    conn.receive_data(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABwdw==</auth>"
    )
    while conn.next_event() is not None:
        pass
    assert b"<invalid-mechanism/>" in conn.data_to_send()


def test_anonymous_domains_must_be_served() -> None:
    with pytest.raises(ValueError, match="anonymous_domains"):
        ServerConfig(
            rng=seeded_rng(0),
            domains=frozenset({"example.com"}),
            anonymous_domains=frozenset({"anon.x"}),
        )


def test_account_hosts_carry_their_authentication() -> None:
    hosts = Hosts.build(["example.com", AccountHost("Anon.Example.com", Authentication.ANONYMOUS)])
    assert hosts.accounts["anon.example.com"].authentication is Authentication.ANONYMOUS
    assert hosts.account_domains == {"example.com", "anon.example.com"}
