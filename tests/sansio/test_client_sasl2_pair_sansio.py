"""Our client role against our server role, sans I/O, end to end: a password
login over SASL2 that binds with Bind2, enables XEP-0198 inline and receives
a FAST token; the next login with that token in one HT exchange (no
credential look-up, no PBKDF2); a dropped session resumed inline in the same
round trip; a token the server no longer knows dropped for the password."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.answers import (
    FastToken,
    FastTokensProvided,
    ResumeAccepted,
    ResumeRejected,
    UpgradeTasksNeeded,
)
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    FastTokenIssued,
    FastTokensRequested,
    ResourceBound,
    ResumeRequested,
    StreamManagementEnabled,
    StreamResumed,
    UpgradeTasksRequested,
)
from xmpp_sansio.stream.login_options import (
    FastTokenAccepted,
    FastTokenGranted,
    FastTokenRejected,
    LoginOptions,
    SavedFastToken,
)
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng

AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"
NOW = 1_700_000_000.0
ENDP = ChannelBinding("tls-server-end-point", b"\x05" * 32)


class Server:
    """The I/O layer's part: token store and detached sessions, in memory."""

    def __init__(self) -> None:
        self.tokens: list[FastToken] = []
        self.sessions: dict[str, SMState] = {}
        self.lookups = 0

    def connect(
        self, login: LoginOptions, *, resume: SMState | None = None, framing: str = "tcp"
    ) -> ConnectionPair:
        client = ClientConnection(
            ClientConfig(
                rng=seeded_rng(len(self.tokens) + 7),
                jid=JID.parse("juliet@capulet.example"),
                password="r0m30myr0m30",
                login=login,
            ),
            sm_state=resume,
        )
        server = ServerConnection(
            ServerConfig(
                rng=seeded_rng(11),
                domains=frozenset({"capulet.example"}),
                sasl2=True,
                fast_token_lifetime=86400.0,
                fast_rotate_within=3600.0,
                clock=lambda: NOW,
                decoy_iterations=4096,
                sm_resume_timeout=300.0,
            )
        )
        pair = ConnectionPair(client, server, make_credentials({"juliet": "r0m30myr0m30"}))
        pair.channel_binding = ENDP
        pair.framing = framing
        pair.__post_init__()
        client.start()
        seen = 0
        for _ in range(50):
            pair.pump()
            new, seen = pair.server_events[seen:], len(pair.server_events)
            if not self.answer(pair, new):
                break
        return pair

    def answer(self, pair: ConnectionPair, events: list[object]) -> bool:
        """Answer what ConnectionPair leaves to the I/O layer; whether anything was."""
        answered = False
        for event in events:
            if isinstance(event, (CredentialsRequested, DerivationRequested)):
                self.lookups += 1
            elif isinstance(event, FastTokensRequested):
                pair.server.send(FastTokensProvided(tuple(self.tokens)))
                answered = True
            elif isinstance(event, FastTokenIssued):
                self.tokens = [FastToken(event.token, event.mechanism, event.expiry, 0, "new")]
            elif isinstance(event, ResumeRequested):
                state = self.sessions.get(event.previd)
                pair.server.send(ResumeAccepted(state) if state else ResumeRejected())
                answered = True
        return answered


def granted(pair: ConnectionPair) -> SavedFastToken:
    (event,) = [e for e in pair.client_events if isinstance(e, FastTokenGranted)]
    return event.token


@pytest.mark.parametrize("framing", ["tcp", "websocket"])
def test_password_login_binds_enables_sm_and_gets_a_token_then_fast_logs_in(framing: str) -> None:
    server = Server()
    first = server.connect(LoginOptions(user_agent_id=AGENT), framing=framing)
    assert first.client.state is State.READY and first.client.used_sasl2
    assert any(isinstance(e, StreamManagementEnabled) for e in first.client_events)
    (bound,) = [e for e in first.client_events if isinstance(e, ResourceBound)]
    assert bound.jid.resource  # the server chose it (Bind2)
    token = granted(first)
    assert token.mechanism == "HT-SHA-256-ENDP"  # the binding this connection has
    before = server.lookups
    second = server.connect(LoginOptions(user_agent_id=AGENT, fast_token=token), framing=framing)
    assert second.client.state is State.READY
    assert server.lookups == before  # no credentials, no PBKDF2: the HMAC is the check
    assert [e.token.count for e in second.client_events if isinstance(e, FastTokenAccepted)] == [1]
    assert any(isinstance(e, StreamManagementEnabled) for e in second.client_events)


def test_a_dropped_session_resumes_inline_in_the_fast_login() -> None:
    server = Server()
    first = server.connect(LoginOptions(user_agent_id=AGENT))
    token = granted(first)
    sm = first.client.sm
    assert sm is not None and sm.id
    server.sessions[sm.id] = first.server.sm  # type: ignore[assignment]
    again = server.connect(LoginOptions(user_agent_id=AGENT, fast_token=token), resume=sm)
    assert again.client.state is State.READY
    assert any(isinstance(e, StreamResumed) for e in again.client_events)


def test_a_token_the_server_forgot_is_dropped_for_the_password_on_the_same_stream() -> None:
    server = Server()
    token = granted(server.connect(LoginOptions(user_agent_id=AGENT)))
    server.tokens = []  # revoked
    pair = server.connect(LoginOptions(user_agent_id=AGENT, fast_token=token))
    assert FastTokenRejected("HT-SHA-256-ENDP", "not-authorized") in pair.client_events
    assert pair.client.state is State.READY
    # a new one, asked for with the password on the same stream
    assert [t.secret.decode() for t in server.tokens] == [granted(pair).token]


@settings(max_examples=20, deadline=None)
@given(st.booleans(), st.booleans(), st.sampled_from(["tcp", "websocket"]))
def test_any_mix_of_token_and_resumption_ends_ready(
    use_token: bool, resume: bool, framing: str
) -> None:
    server = Server()
    first = server.connect(LoginOptions(user_agent_id=AGENT), framing=framing)
    sm = first.client.sm
    assert sm is not None and sm.id
    if resume:
        server.sessions[sm.id] = first.server.sm  # type: ignore[assignment]
    login = LoginOptions(user_agent_id=AGENT, fast_token=granted(first) if use_token else None)
    pair = server.connect(login, resume=sm, framing=framing)
    assert pair.client.state is State.READY and pair.client_error is None
    assert any(isinstance(e, StreamResumed) for e in pair.client_events) == resume


def mitm_login(strip: bytes) -> tuple[list[object], ServerConnection]:
    """Our client and server over SASL2, with ``strip`` cut out of what the
    server sends (an active attacker editing the offer)."""
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(5),
            jid=JID.parse("juliet@capulet.example"),
            password="r0m30myr0m30",
            mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"),
        ),
        tls_active=True,
        tls_info=TLSInfo(channel_binding=ENDP),
    )
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(6), domains=frozenset({"capulet.example"}), sasl2=True),
        tls_active=True,
        tls_info=TLSInfo(channel_binding=ENDP),
    )
    lookup = make_credentials({"juliet": "r0m30myr0m30"})
    events: list[object] = []
    client.start()
    for _ in range(20):
        server.receive_data(client.data_to_send())
        try:
            while (event := server.next_event()) is not None:
                if isinstance(event, CredentialsRequested):
                    server.provide_credentials(lookup(event.username, event.hash_name))
                elif isinstance(event, UpgradeTasksRequested):
                    server.send(UpgradeTasksNeeded(()))  # the account has every hash
        except RemoteProtocolError:
            pass
        data = server.data_to_send().replace(strip, b"") if strip else server.data_to_send()
        if not data:
            break
        client.receive_data(data)
        try:
            while (event := client.next_event()) is not None:
                events.append(event)
        except RemoteProtocolError:
            break
    return events, server


def test_the_servers_downgrade_hash_is_checked_and_a_stripped_offer_is_caught() -> None:
    events, _ = mitm_login(b"")
    assert any(isinstance(e, ResourceBound) for e in events)  # h= matched
    events, server = mitm_login(b"<mechanism>SCRAM-SHA-256-PLUS</mechanism>")
    (failed,) = [e for e in events if isinstance(e, AuthenticationFailed)]
    assert failed.condition == "server-not-verified" and "XEP-0474" in (failed.text or "")
    assert server.authenticated_jid is None  # no proof was sent
