"""Server CPU of one c2s login in the sans-IO core: the classic flow against
SASL2 + Bind 2 and SASL2 + FAST (issue 22).

    python benchmarks/login_server_cpu.py [--logins N]

Each flow runs from the stream header to a bound stream with XEP-0198 on:

* ``classic``: RFC 6120 SCRAM-SHA-256, the restart, the bind iq, ``<enable/>``
  (4 round trips after TLS);
* ``sasl2``: SASL2 SCRAM-SHA-256 with Bind 2 and SM inline (2 round trips);
* ``fast``: SASL2 HT-SHA-256-NONE with a FAST token, Bind 2 and SM inline
  (1 round trip).

Only the server side is timed (``receive_data``, ``next_event``, the
answers, ``data_to_send``), not the client's PBKDF2 or the I/O layer's
look-ups; the stored SCRAM credentials and the token are handed over as the
Trio server would. Best and median of 5 runs. No sockets, no TLS: the
round trips are what a real network adds (one RTT each). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmpp_sansio.sasl import ChannelBinding, create_client_mechanism
from xmpp_sansio.sasl.credentials import derive_scram_credentials
from xmpp_sansio.sasl.ht import ht_initiator_message
from xmpp_sansio.stream.answers import FastToken, FastTokensProvided
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.stream.events import CredentialsRequested, FastTokensRequested
from xmpp_sansio.testing import seeded_rng

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
SASL2 = "urn:xmpp:sasl:2"
AGENT = "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/>"
BIND = (
    "<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag>"
    "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
)
PASSWORD = "r0m30myr0m30"
CREDS = derive_scram_credentials(PASSWORD, "sha256", salt=b"s" * 16, iterations=4096)
TOKEN = b"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm"
NOW = 1_700_000_000.0
CONFIG = ServerConfig(
    rng=seeded_rng(0),
    domains=frozenset({"capulet.example"}),
    sasl2=True,
    sm_resume_timeout=300,
    fast_token_lifetime=86400,
    clock=lambda: NOW,
)
TLS = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", b"\x01" * 32))


class Timed:
    """The server connection, with the time spent in it summed."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.conn = self.call(lambda: ServerConnection(CONFIG, tls_active=True, tls_info=TLS))

    def call(self, fn: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = fn()
        self.spent += time.perf_counter() - start
        return result

    def feed(self, data: bytes) -> bytes:
        """Give the server ``data``, answer its look-ups, return its output."""
        conn = self.conn
        assert isinstance(conn, ServerConnection)

        def step() -> bytes:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, CredentialsRequested):
                    conn.provide_credentials(CREDS)
                elif isinstance(event, FastTokensRequested):
                    conn.send(FastTokensProvided((FastToken(TOKEN, event.mechanism, NOW + 9e4),)))
            return conn.data_to_send()

        out = self.call(step)
        assert isinstance(out, bytes)
        return out


def challenge_of(out: bytes) -> bytes:
    start = out.index(b"challenge") + len(b"challenge")
    start = out.index(b">", start) + 1
    return base64.b64decode(out[start : out.index(b"</", start)])


def classic() -> float:
    server = Timed()
    server.feed(HEADER)
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password=PASSWORD, nonce=b"n" * 18
    )
    first = base64.b64encode(client.initial_response() or b"").decode()
    out = server.feed(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>".encode())
    final = base64.b64encode(client.challenge(challenge_of(out))).decode()
    server.feed(f"<response xmlns='{SASL}'>{final}</response>".encode())
    server.feed(HEADER)
    server.feed(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    server.feed(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    return server.spent


def sasl2() -> float:
    server = Timed()
    server.feed(HEADER)
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password=PASSWORD, nonce=b"n" * 18
    )
    first = base64.b64encode(client.initial_response() or b"").decode()
    out = server.feed(
        f"<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'><initial-response>{first}"
        f"</initial-response>{AGENT}{BIND}</authenticate>".encode()
    )
    final = base64.b64encode(client.challenge(challenge_of(out))).decode()
    out = server.feed(f"<response xmlns='{SASL2}'>{final}</response>".encode())
    assert b"<bound" in out, out
    return server.spent


def fast() -> float:
    server = Timed()
    server.feed(HEADER)
    message = base64.b64encode(ht_initiator_message("juliet", TOKEN)).decode()
    out = server.feed(
        f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>"
        f"{message}</initial-response>{AGENT}<fast xmlns='urn:xmpp:fast:0'/>{BIND}"
        "</authenticate>".encode()
    )
    assert b"<bound" in out, out
    return server.spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300)
    args = parser.parse_args()
    flows = {"classic": classic, "sasl2": sasl2, "fast": fast}
    runs: dict[str, list[float]] = {name: [] for name in flows}
    for _ in range(5):
        for name, flow in flows.items():  # interleaved
            runs[name].append(sum(flow() for _ in range(args.logins)) / args.logins)
    for name, times in runs.items():
        print(
            f"{name:>8}: best {min(times) * 1e6:7.1f} us  median "
            f"{statistics.median(times) * 1e6:7.1f} us per login (server CPU)"
        )


if __name__ == "__main__":
    main()
