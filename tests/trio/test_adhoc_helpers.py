"""The Trio ad-hoc helpers (xmpp_trio.adhoc) against the real server over
TLS: list the commands, run a one-stage and a two-stage command, cancel, and
a non-admin's forbidden."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running

from xmpp_sansio.client.adhoc import CommandResponse
from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.forms import Field, Form, FormType
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import IqType, make_iq
from xmpp_trio.adhoc import Answer, list_commands, run_command
from xmpp_trio.admin_config import AdminConfig
from xmpp_trio.client import (
    AuthenticationError,
    Client,
    IqErrorResponse,
    StreamError,
    open_client,
)
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


def submit(**values: str) -> Form:
    return Form(FormType.SUBMIT, fields=tuple(Field(k, values=(v,)) for k, v in values.items()))


async def test_disable_change_password_and_motd_from_a_client(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    """XEP-0133 writes on the real server and SQLite file: a disabled user's
    session ends and they cannot log in until re-enabled; a changed password
    is the one that works; the message of the day reaches the next login."""
    config = dataclasses.replace(
        server_config, admin=AdminConfig(admins=frozenset({JID.parse("juliet@localhost")}))
    )

    async def answer_with(form: Form) -> Answer:
        async def answer(stage: CommandResponse) -> Form:
            return form

        return answer

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            async with connect(server, "juliet") as juliet:
                async with connect(server, "romeo") as romeo:
                    disabled = await run_command(
                        juliet,
                        "localhost",
                        f"{ADMIN}disable-user",
                        await answer_with(submit(accountjids="romeo@localhost")),
                    )
                    assert disabled.status == "completed"
                    with trio.fail_after(10):
                        await romeo.closed.wait()
                    assert isinstance(romeo.error, StreamError)
                    assert romeo.error.condition is StreamErrorCondition.NOT_AUTHORIZED
                with pytest.raises(AuthenticationError):
                    async with connect(server, "romeo"):
                        pass
                await run_command(
                    juliet,
                    "localhost",
                    f"{ADMIN}reenable-user",
                    await answer_with(submit(accountjids="romeo@localhost")),
                )
                await run_command(
                    juliet,
                    "localhost",
                    f"{ADMIN}change-user-password",
                    await answer_with(submit(accountjid="romeo@localhost", password="N3w-pass")),
                )
                with pytest.raises(AuthenticationError):
                    async with connect(server, "romeo"):
                        pass
                await run_command(
                    juliet,
                    "localhost",
                    f"{ADMIN}set-motd",
                    await answer_with(submit(motd="Masks tonight")),
                )
                async with open_client(
                    "romeo@localhost/new",
                    "N3w-pass",
                    host="127.0.0.1",
                    port=server.starttls_port,
                    ssl_context=server.client_context(),
                ) as romeo:
                    with trio.fail_after(10):
                        while True:
                            message = await romeo.receive()
                            if message.tag.endswith("message"):
                                break
                    assert message.get("type") == "headline"
                    assert message.findtext("{jabber:client}body") == "Masks tonight"
            nursery.cancel_scope.cancel()


async def test_add_user_derives_off_the_event_loop_so_another_client_is_answered_meanwhile(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    """XEP-0133 §4.1 add-user runs PBKDF2 in a worker thread (as XEP-0077
    registration does): with a large iteration count, romeo's ping is answered
    while the account is not created yet, and the command completes after."""
    config = dataclasses.replace(
        server_config,
        admin=AdminConfig(admins=frozenset({JID.parse("juliet@localhost")})),
        scram_iterations=600_000,  # about a second of PBKDF2 for the three hashes
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            accounts, store = server.server.accounts, server.server.store
            async with connect(server, "juliet") as juliet, connect(server, "romeo") as romeo:
                results: list[CommandResponse] = []
                done = trio.Event()

                async def add() -> None:
                    form = submit(accountjid="nurse@localhost", password="s3cret")
                    results.append(
                        await run_command(
                            juliet, "localhost", f"{ADMIN}add-user", lambda stage: _const(form)
                        )
                    )
                    done.set()

                before = accounts.derivations
                nursery.start_soon(add)
                while accounts.derivations == before:  # the derivation has started
                    await trio.sleep(0)
                ping = Element("{urn:xmpp:ping}ping")
                pong = await romeo.request(make_iq(IqType.GET, "", ping, to="localhost"))
                assert pong.get("type") == "result"
                assert not done.is_set() and not store.exists("nurse", "localhost")
                await done.wait()
                assert results[0].status == "completed", results
                assert store.exists("nurse", "localhost")
            nursery.cancel_scope.cancel()


async def _const(form: Form) -> Form:
    return form
