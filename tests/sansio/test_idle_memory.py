"""What an idle bound server stream keeps (issue 24: memory per idle session).

Each stream logs in (RFC 6120 SASL, or SASL2 with a user-agent id, XEP-0388),
binds, and takes its initial presence, over an in-memory pair; the clients
are then dropped and tracemalloc counts what the server streams still hold.
The figures are exact for a given CPython/expat build (no timing); the
bounds leave ~10% over what this build measures (about 20.0 KB a stream, of
which expat's state is ~14.5 KB: benchmarks/idle_memory.py for the whole
server's figure on the wire).
"""

from __future__ import annotations

import gc
import tracemalloc
from xml.etree.ElementTree import fromstring

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.stream.login_options import LoginOptions
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng

CREDENTIALS = make_credentials({"juliet": "r0m30myr0m30"})
SERVER = ServerConfig(rng=seeded_rng(4), domains=frozenset({"capulet.example"}), sasl2=True)
UA = "d4565fa7-4d72-4749-b3d3-740edbf87770"
STREAMS = 40
BOUND_BYTES = 22_000  # per idle bound stream (this build: ~20,000)


def bound_stream(*, sasl2: bool, seed: int) -> ServerConnection:
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(seed),
            jid=JID.parse("juliet@capulet.example/balcony"),
            password="r0m30myr0m30",
            login=LoginOptions(sasl2=sasl2, user_agent_id=UA),
        ),
        tls_active=True,
    )
    server = ServerConnection(SERVER, tls_active=True)
    pair = ConnectionPair(client, server, CREDENTIALS)
    client.start()
    pair.pump()
    assert server.jid is not None
    assert client.used_sasl2 is sasl2
    client.send(fromstring("<presence xmlns='jabber:client'/>"))
    pair.pump()
    server.data_to_send()
    return server


def held_per_stream(*, sasl2: bool) -> float:
    for seed in range(3):  # warm caches shared by every stream (names, claims)
        bound_stream(sasl2=sasl2, seed=seed)
    gc.collect()
    tracing = tracemalloc.is_tracing()  # e.g. python -X tracemalloc: leave it on
    if not tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [bound_stream(sasl2=sasl2, seed=seed) for seed in range(STREAMS)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if not tracing:
            tracemalloc.stop()
    assert len(kept) == STREAMS
    return (after - before) / STREAMS


@pytest.mark.parametrize("sasl2", [False, True], ids=["rfc6120-sasl", "sasl2"])
def test_an_idle_bound_stream_holds_less_than_the_documented_bound(sasl2: bool) -> None:
    assert held_per_stream(sasl2=sasl2) < BOUND_BYTES


def test_a_sasl2_login_leaves_no_more_than_a_classic_one() -> None:
    """No restart after SASL2 (XEP-0388 §2.6.1): the negotiation's parser
    state is dropped at ``<success/>`` all the same (it was ~2 KB more)."""
    assert held_per_stream(sasl2=True) < held_per_stream(sasl2=False) + 512


def test_a_bound_stream_stays_under_the_shared_key_limit_of_instance_dicts() -> None:
    """Past 29 attributes in ``__dict__`` CPython gives each instance its own
    1.6 KB key table; the role's attributes are slots."""
    server = bound_stream(sasl2=True, seed=1)
    assert len(vars(server)) < 30
