"""The SASL2 ``<authentication/>`` offer (XEP-0388 §2.1) is built once per
configuration and what a stream offers, and shared (issue 24): streams that
differ in TLS, channel bindings or host still each get their own offer."""

from __future__ import annotations

from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.testing import seeded_rng

HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
)
ENDP = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", b"\x01" * 32))


def offer(config: ServerConfig, *, tls: TLSInfo | None, to: str = "capulet.example") -> bytes:
    conn = ServerConnection(config, tls_active=tls is not None, tls_info=tls)
    conn.receive_data(HEADER.format(to=to).encode())
    while conn.next_event() is not None:
        pass
    out = conn.data_to_send()
    start = out.index(b"<authentication")
    return out[start : out.index(b"</authentication>") + len(b"</authentication>")]


def config(**kw: object) -> ServerConfig:
    settings: dict[str, object] = {"fast_token_lifetime": 3600, **kw}
    return ServerConfig(
        rng=seeded_rng(1),
        domains=frozenset({"capulet.example", "guest.example"}),
        sasl2=True,
        clock=lambda: 0.0,
        **settings,  # type: ignore[arg-type]
    )


def test_streams_with_and_without_channel_binding_get_their_own_offers() -> None:
    cfg = config()
    with_binding = offer(cfg, tls=ENDP)
    without = offer(cfg, tls=TLSInfo())
    assert b"SCRAM-SHA-256-PLUS" in with_binding and b"HT-SHA-256-ENDP" in with_binding
    assert b"-PLUS" not in without and b"HT-SHA-256-ENDP" not in without
    assert offer(cfg, tls=ENDP) == with_binding  # the shared one, unchanged by serialising
    assert offer(cfg, tls=TLSInfo()) == without


def test_an_anonymous_host_and_another_config_get_their_own_offers() -> None:
    cfg = config(anonymous_domains=frozenset({"guest.example"}), allow_anonymous=True)
    accounts = offer(cfg, tls=ENDP)
    guests = offer(cfg, tls=ENDP, to="guest.example")
    assert b"upgrade" in accounts and b"upgrade" not in guests
    assert b">ANONYMOUS<" in guests and b"fast" not in guests
    no_fast = offer(config(fast_token_lifetime=0), tls=ENDP)
    assert b"HT-SHA-256" in accounts and b"HT-SHA-256" not in no_fast
