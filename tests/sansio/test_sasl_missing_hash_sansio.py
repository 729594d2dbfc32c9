"""A server stream and an account that lacks the mechanism's hash (imported
with SCRAM-SHA-1 only, XEP-0227): the I/O layer answers with the credentials
it has, the exchange fails like an unknown user's, and the first
``MAX_UNCOUNTED_HASH_MISSES`` such misses on a stream do not count toward
``max_auth_attempts`` (RFC 6120 §6.4.5); PLAIN verifies against SHA-1 and
emits :class:`CredentialsUpgradable` before :class:`Authenticated`."""

from __future__ import annotations

import base64

import pytest
from test_auth_counters_sansio import HEADER, drain

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.sasl import ChannelBinding, create_client_mechanism
from xmpp_sansio.sasl.credentials import derive_scram_credentials, salted_password
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    CredentialsUpgradable,
    DerivationRequested,
    Event,
)
from xmpp_sansio.stream.features.sasl import MAX_UNCOUNTED_HASH_MISSES
from xmpp_sansio.testing import framed, seeded_rng

PASSWORD = "s3cret-mercutio"
SHA1 = derive_scram_credentials(PASSWORD, "sha1", salt=b"prosody-salt-16b", iterations=4096)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
# Every transcript runs over TCP and RFC 7395 WebSocket framing.
pytestmark = pytest.mark.usefixtures("any_framing")


def server() -> ServerConnection:
    """A TLS stream with a decoy as costly as the imported credentials (the
    client refuses fewer than 4096 iterations, RFC 5802 §5.1)."""
    config = ServerConfig(
        rng=seeded_rng(0), domains=frozenset({"capulet.example"}), decoy_iterations=4096
    )
    binding = ChannelBinding("tls-server-end-point", b"\x01" * 32)
    tls = TLSInfo(channel_binding=binding)
    conn = framed(ServerConnection(config, tls_active=True, tls_info=tls))
    conn.receive_data(HEADER)
    drain(conn)
    conn.data_to_send()
    return conn


def element(name: str, data: bytes, mechanism: str | None = None) -> bytes:
    attr = f" mechanism='{mechanism}'" if mechanism else ""
    return (
        f"<{name} xmlns='{SASL}'{attr}>".encode() + base64.b64encode(data) + f"</{name}>".encode()
    )


def payload(out: bytes) -> bytes:
    start = out.index(b">", out.index(b"<challenge")) + 1
    return base64.b64decode(out[start : out.index(b"</challenge>")])


def scram_attempt(conn: ServerConnection, mechanism: str) -> list[Event]:
    """One SCRAM exchange in which the I/O layer has SHA-1 credentials only."""
    client = create_client_mechanism(
        mechanism, username="mercutio", password=PASSWORD, nonce=b"n" * 18
    )
    conn.receive_data(element("auth", client.initial_response() or b"", mechanism))
    [asked] = drain(conn)
    assert isinstance(asked, CredentialsRequested) and asked.username == "mercutio"
    conn.provide_credentials(SHA1)
    drain(conn)
    first = payload(conn.data_to_send())
    conn.receive_data(element("response", client.challenge(first)))
    return drain(conn)


def test_misses_at_missing_hashes_look_unknown_and_only_the_first_ones_are_free() -> None:
    conn = server()
    for attempt in range(MAX_UNCOUNTED_HASH_MISSES):
        [failed] = scram_attempt(conn, ("SCRAM-SHA-512", "SCRAM-SHA-256")[attempt % 2])
        assert isinstance(failed, AuthenticationFailed)
        assert failed.condition == "not-authorized" and failed.text is None
        assert not failed.counted and not failed.credentials_checked
        assert b"<not-authorized/></failure>" in conn.data_to_send()
    assert conn.auth_failures == 0
    # Three more misses: they count, and the third ends the stream (§6.4.5).
    for _ in range(2):
        [failed] = scram_attempt(conn, "SCRAM-SHA-256")
        assert isinstance(failed, AuthenticationFailed) and failed.counted
    assert conn.auth_failures == 2
    with pytest.raises(RemoteProtocolError, match="policy-violation"):
        scram_attempt(conn, "SCRAM-SHA-256")
    assert conn.auth_failures == 3
    assert b"<policy-violation" in conn.data_to_send()


def test_sha1_logs_in_after_the_free_misses() -> None:
    conn = server()
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        scram_attempt(conn, mechanism)
    events = scram_attempt(conn, "SCRAM-SHA-1")
    assert [type(e) for e in events] == [Authenticated]


def test_plain_verifies_against_sha1_and_offers_the_upgrade_first() -> None:
    conn = server()
    conn.receive_data(element("auth", f"\x00mercutio\x00{PASSWORD}".encode(), "PLAIN"))
    [asked] = drain(conn)
    assert isinstance(asked, CredentialsRequested)
    conn.provide_credentials(SHA1)
    [derive] = drain(conn)
    assert isinstance(derive, DerivationRequested) and derive.hash_name == "sha1"
    conn.provide_derived(
        salted_password(derive.password, derive.hash_name, derive.salt, derive.iterations)
    )
    upgrade, done = drain(conn)[:2]
    assert isinstance(upgrade, CredentialsUpgradable) and upgrade.password == PASSWORD
    assert str(upgrade.jid) == "mercutio@capulet.example" and PASSWORD not in repr(upgrade)
    assert isinstance(done, Authenticated) and done.mechanism == "PLAIN"
