"""Work the services defer for the I/O layer (xmpp_trio/admin_jobs.py) is
started only when ``services.deferred`` says some is pending: the flag must
be set by every deferral and cleared once the work is taken."""

from __future__ import annotations

import trio
from conftest import RunningServer
from test_auth_counters import change_password
from test_security import WAIT, login_wire


async def test_each_deferred_password_change_is_started_and_answered(
    server: RunningServer,
) -> None:
    """XEP-0077 §3.3 changes, deferred to a worker thread: the first, a
    message, then a second change (after the flag was cleared) all go
    through, and nothing is left pending."""
    juliet = await login_wire(server, "juliet@localhost/balcony")
    romeo = await login_wire(server, "romeo@localhost/orchard")
    deferred = server.server.services.deferred
    assert not deferred.pending
    with trio.fail_after(WAIT):
        first = await juliet.request(change_password("n3w-Passw0rd-1"))
        assert first.get("type") == "result"
        assert not deferred.pending
        await romeo.sync()  # stanzas with nothing deferred
        second = await juliet.request(change_password("n3w-Passw0rd-2"))
    assert second.get("type") == "result"
    assert not deferred.pending
