"""The running server gives its services the wall clock as ``now``
(Router(clock=...), issue 11): no service holds a clock of its own."""

from __future__ import annotations

import time
from xml.etree.ElementTree import fromstring

from conftest import RunningServer

from xmpp_sansio.jid import JID
from xmpp_trio.stores.offline import SqliteOfflineStorage


async def test_offline_messages_are_stamped_with_the_servers_clock(server: RunningServer) -> None:
    before = time.time()
    effects = server.router.route_inbound(
        fromstring(
            "<message xmlns='jabber:client' from='tybalt@example.net/sword'"
            " to='juliet@localhost' type='chat'><body>later</body></message>"
        )
    )
    server.server.apply(effects)  # as the I/O layer does: commits the Persist
    after = time.time()
    (stored,) = SqliteOfflineStorage(server.server.db).peek(JID.parse("juliet@localhost"))
    assert before <= stored.stamp <= after
