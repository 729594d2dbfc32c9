"""Login cost: classic SCRAM (RFC 6120) vs SASL2 + Bind2 vs FAST (issue 22).

Two parts:

* **wire**: the real server in this process (direct TLS on loopback, SCRAM
  at ``--iterations``, FAST on), our Trio client logging in one after
  another: logins per second and the latency of ``open_client`` (TCP + TLS +
  login + bind + SM enable), classic vs SASL2 + Bind2 vs FAST + Bind2; then
  the latency of a reconnect that resumes a dropped session (XEP-0198),
  classic (SASL, restart, ``<resume/>``) vs SASL2 (and FAST) with
  ``<resume/>`` inline.
* **sans-IO**: the same logins between our client and server roles in
  memory (no sockets, no TLS): CPU per login of SCRAM-SHA-256 (PBKDF2 on both
  sides: the client derives, the server only looks stored keys up), SASL2 +
  Bind2, and a FAST token login (one HMAC each side, no PBKDF2).

    python benchmarks/login_bench.py            # 200 wire logins per mode, 10 000 iterations
    python benchmarks/login_bench.py --quick    # 40 logins, 4096 iterations

Wall-clock figures: noisy on a shared machine. It asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import trio
from _server import PASSWORDS, Running, running_server

from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.stream.answers import FastToken, FastTokensProvided
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import FastTokenIssued, FastTokensRequested
from xmpp_sansio.stream.login_options import FastTokenGranted, LoginOptions, SavedFastToken
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng
from xmpp_trio.client import open_client
from xmpp_trio.login_state import LoginState

AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (
        f"{name:34} {len(ms) / (sum(samples) or 1):8.1f}/s   p50 {statistics.median(ms):7.2f} ms"
        f"   p95 {p95:7.2f} ms"
    )


async def wire(server: Running, logins: int) -> None:
    """The modes alternate login by login, so that load from elsewhere on
    the machine falls on both alike."""
    options = {
        "host": "127.0.0.1",
        "port": server.port,
        "direct_tls": True,
        "ssl_context": server.client_context(),
    }
    jid, password = "juliet@localhost", PASSWORDS["juliet"]
    fast = LoginState()
    async with open_client(jid, password, login=fast.options(), **options) as client:
        fast.update(client.fast_token)  # a password login that asks for a token
    modes = {
        "classic SCRAM + bind + SM": lambda: LoginOptions(sasl2=False),
        "SASL2 + Bind2 + SM inline": lambda: LoginOptions(user_agent_id=AGENT, fast=False),
        # no id: the server records no client (one SQLite write less per login)
        "SASL2 + Bind2 + SM, no agent id": lambda: LoginOptions(fast=False),
        "SASL2 FAST + Bind2 + SM inline": fast.options,
    }
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(logins):
        for name, login in modes.items():
            start = time.perf_counter()
            async with open_client(jid, password, login=login(), **options) as client:
                samples[name].append(time.perf_counter() - start)
                if name.startswith("SASL2 FAST"):
                    fast.update(client.fast_token)
    for name in modes:
        print(summary("login: " + name, samples[name]))
    states = {}
    for name, login in modes.items():
        async with open_client(jid, password, login=login(), **options) as client:
            if name.startswith("SASL2 FAST"):
                fast.update(client.fast_token)
            states[name] = client.sm_state
            await client.abort()
    samples = {name: [] for name in modes}
    for _ in range(logins):
        for name, login in modes.items():
            start = time.perf_counter()
            async with open_client(
                jid, password, login=login(), resume=states[name], **options
            ) as client:
                samples[name].append(time.perf_counter() - start)
                assert client.resumed, "the session was not resumed"
                if name.startswith("SASL2 FAST"):
                    assert client.mechanism.startswith("HT-"), client.mechanism
                    fast.update(client.fast_token)
                states[name] = client.sm_state
                await client.abort()
    for name in modes:
        print(summary("reconnect+resume: " + name, samples[name]))


def pair_login(
    iterations: int, login: LoginOptions, tokens: list[FastToken]
) -> tuple[ConnectionPair, float]:
    server_config = ServerConfig(
        rng=seeded_rng(2),
        domains=frozenset({"capulet.example"}),
        sasl2=True,
        fast_token_lifetime=86400.0,
        clock=time.time,
        decoy_iterations=iterations,
    )
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(1), jid=JID.parse("juliet@capulet.example"), password="pw", login=login
        )
    )
    lookup = make_credentials({"juliet": "pw"}, iterations=iterations)
    start = time.perf_counter()
    pair = ConnectionPair(client, ServerConnection(server_config), lookup)
    pair.channel_binding = ChannelBinding("tls-server-end-point", b"\x05" * 32)
    client.start()
    seen = 0
    for _ in range(20):
        pair.pump()
        answered = False
        for event in pair.server_events[seen:]:
            if isinstance(event, FastTokensRequested):
                pair.server.send(FastTokensProvided(tuple(tokens)))
                answered = True
            elif isinstance(event, FastTokenIssued):
                tokens[:] = [FastToken(event.token, event.mechanism, event.expiry, 0, "new")]
        seen = len(pair.server_events)
        if not answered:
            break
    assert pair.client.state is State.READY
    return pair, time.perf_counter() - start


def sansio(iterations: int, logins: int) -> None:
    make_credentials({"juliet": "pw"}, iterations=iterations)("juliet", "sha256")  # warm
    tokens: list[FastToken] = []
    first, _ = pair_login(iterations, LoginOptions(user_agent_id=AGENT), tokens)
    (granted,) = [e.token for e in first.client_events if isinstance(e, FastTokenGranted)]
    cases: list[tuple[str, Callable[[], LoginOptions]]] = [
        ("RFC 6120 SCRAM-SHA-256-PLUS", lambda: LoginOptions(sasl2=False)),
        ("SASL2 SCRAM + Bind2", lambda: LoginOptions(user_agent_id=AGENT, fast=False)),
        (
            "SASL2 FAST (HT-SHA-256-ENDP) + Bind2",
            lambda: LoginOptions(user_agent_id=AGENT, fast_token=granted),
        ),
    ]
    for name, options in cases:
        samples = []
        for n in range(logins):
            saved = SavedFastToken(mechanism=granted.mechanism, token=granted.token, count=n)
            login = options()
            if login.fast_token is not None:
                login = LoginOptions(user_agent_id=AGENT, fast_token=saved)
            samples.append(pair_login(iterations, login, tokens)[1])
        print(summary("sans-IO: " + name, samples))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--logins", type=int)
    parser.add_argument("--iterations", type=int)
    args = parser.parse_args()
    logins = args.logins or (40 if args.quick else 200)
    iterations = args.iterations or (4096 if args.quick else 10_000)
    print(f"{logins} logins per mode, SCRAM iterations {iterations}")
    async with running_server(iterations, sasl2=True, fast_token_lifetime=86400) as server:
        await wire(server, logins)
    sansio(iterations, logins)


if __name__ == "__main__":
    trio.run(main)
