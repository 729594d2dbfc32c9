"""The Trio ad-hoc helpers (xmpp_trio.adhoc) against the real server over
TLS: list the commands, run a one-stage and a two-stage command, cancel, and
a non-admin's forbidden."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_sansio.client.adhoc import CommandResponse
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.forms import Field, Form, FormType
from xmpp_sansio.jid import JID
from xmpp_trio.adhoc import list_commands, run_command
from xmpp_trio.admin_config import AdminConfig
from xmpp_trio.client import Client, IqErrorResponse, open_client
from xmpp_trio.config import ServerConfig

ADMIN = "http://jabber.org/protocol/admin#"


def connect(server: RunningServer, user: str) -> AbstractAsyncContextManager[Client]:
    return open_client(
        f"{user}@localhost/{user}-res",
        PASSWORDS[user],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    )


async def test_helpers_list_and_run_commands_and_a_non_admin_is_forbidden(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = dataclasses.replace(
        server_config, admin=AdminConfig(admins=frozenset({JID.parse("juliet@localhost")}))
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            async with connect(server, "juliet") as juliet, connect(server, "romeo") as romeo:
                nodes = [item.node for item in await list_commands(juliet, "localhost")]
                assert f"{ADMIN}get-online-users-list" in nodes and "ping" in nodes
                assert await list_commands(romeo, "localhost") == ()

                pong = await run_command(juliet, "localhost", "ping")
                assert pong.status == "completed" and pong.notes == (("info", "pong"),)

                online = await run_command(juliet, "localhost", f"{ADMIN}get-online-users-list")
                assert online.form is not None
                assert online.form.values("onlineuserjids") == (
                    "juliet@localhost",
                    "romeo@localhost",
                )

                async def fill(stage: CommandResponse) -> Form:
                    assert stage.form is not None and "announcement" in stage.form
                    assert stage.default == "complete"
                    return Form(
                        FormType.SUBMIT,
                        fields=(Field("announcement", values=("Masks tonight",)),),
                    )

                sent = await run_command(juliet, "localhost", f"{ADMIN}announce", fill)
                assert sent.status == "completed"
                with trio.fail_after(10):
                    while True:
                        message = await romeo.receive()
                        if message.tag.endswith("message"):
                            break
                assert message.get("type") == "headline"
                assert message.findtext("{jabber:client}body") == "Masks tonight"

                canceled = await run_command(juliet, "localhost", f"{ADMIN}announce")
                assert canceled.status == "canceled"

                with pytest.raises(IqErrorResponse) as refused:
                    await run_command(romeo, "localhost", f"{ADMIN}announce")
                assert refused.value.error.condition is StanzaErrorCondition.FORBIDDEN
            nursery.cancel_scope.cancel()
