"""Sessions per account (``[limits] max_sessions_per_account``, RFC 6120 §7.6.2.1
resource-constraint) and the login back-off's temporary-auth-failure (RFC 6120
§6.5.12) on a real server.

Every wait is bounded with ``trio.fail_after``.
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any

import memory
import pytest
import trio
import trio.testing
import trustme
from conftest import PASSWORDS

from xmpp_sansio.jid import JID
from xmpp_trio.client import AuthenticationError, Client, ConnectionFailed, open_client
from xmpp_trio.config import ConfigError, ServerConfig, load_config
from xmpp_trio.server import BoundListener, XMPPServer, run_server

WAIT = 15.0


async def start(
    nursery: trio.Nursery, config: ServerConfig, ca: trustme.CA, tmp_path: Path, **limits: Any
) -> tuple[XMPPServer, dict[str, Any]]:
    config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, **limits))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    bound: list[BoundListener] = await nursery.start(run_server, config)
    listener = next(b for b in bound if b.kind == "c2s-starttls")
    assert listener.server is not None
    options = {
        "host": "127.0.0.1",
        "port": listener.port,
        "ssl_context": ssl.create_default_context(cafile=str(ca_file)),
    }
    return listener.server, options


def bound(server: XMPPServer, account: str = "juliet@localhost") -> list[JID]:
    return [jid for jid, _ in server.router.resources(JID.parse(account))]


async def wait_for(predicate: Any) -> None:
    with trio.fail_after(WAIT):
        while not predicate():
            await trio.sleep(0.01)


# -- configuration ---------------------------------------------------------------------------


def test_max_sessions_per_account_defaults_to_ten_and_loads(tmp_path: Path) -> None:
    assert ServerConfig().limits.max_sessions_per_account == 10
    path = tmp_path / "server.toml"
    path.write_text("[limits]\nmax_sessions_per_account = 3\n")
    assert load_config(path).limits.max_sessions_per_account == 3


@pytest.mark.parametrize("value", ["0", "-1", "true", "'two'"])
def test_bad_max_sessions_per_account_names_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "server.toml"
    path.write_text(f"[limits]\nmax_sessions_per_account = {value}\n")
    with pytest.raises(ConfigError, match=r"limits\.max_sessions_per_account"):
        load_config(path)


# -- sessions per account ----------------------------------------------------------------------


async def test_third_session_gets_resource_constraint_until_one_leaves(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server, options = await start(nursery, server_config, ca, tmp_path, max_sessions_per_account=2)
    password = PASSWORDS["juliet"]
    async with open_client("juliet@localhost/one", password, **options) as one:
        async with open_client("juliet@localhost/two", password, **options) as two:
            assert sorted(map(str, bound(server))) == [
                "juliet@localhost/one",
                "juliet@localhost/two",
            ]
            with pytest.raises(ConnectionFailed, match="resource-constraint"):
                async with open_client("juliet@localhost/three", password, **options):
                    pass
            # A generated resource is refused alike.
            with pytest.raises(ConnectionFailed, match="resource-constraint"):
                async with open_client("juliet@localhost", password, **options):
                    pass
            # The two bound sessions were not disturbed.
            assert len(bound(server)) == 2
            assert not one.closed.is_set() and not two.closed.is_set()
            # Another account has its own allowance.
            async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **options) as r:
                assert str(r.jid) == "romeo@localhost/orchard"
        await wait_for(lambda: len(bound(server)) == 1)
        # One left: a second session fits again.
        async with open_client("juliet@localhost/three", password, **options) as three:
            assert str(three.jid) == "juliet@localhost/three"
            assert len(bound(server)) == 2
        assert not one.closed.is_set()


async def test_the_same_full_jid_replaces_a_session_even_at_the_limit(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server, options = await start(nursery, server_config, ca, tmp_path, max_sessions_per_account=1)
    password = PASSWORDS["juliet"]
    async with open_client("juliet@localhost/balcony", password, **options) as first:
        with pytest.raises(ConnectionFailed, match="resource-constraint"):
            async with open_client("juliet@localhost/garden", password, **options):
                pass
        second: Client
        async with open_client("juliet@localhost/balcony", password, **options) as second:
            with trio.fail_after(WAIT):
                await first.closed.wait()  # replaced (conflict), not refused
            assert str(second.jid) == "juliet@localhost/balcony"
            assert bound(server) == [JID.parse("juliet@localhost/balcony")]


# -- login back-off --------------------------------------------------------------------------


async def test_back_off_refuses_with_temporary_auth_failure(
    server_config: ServerConfig, ca: trustme.CA, autojump_clock: trio.testing.MockClock
) -> None:
    """In memory under the mock clock: the back-off passes virtually."""
    ca.cert_pem.write_to_path(str(server_config.data_dir.parent / "ca.pem"))
    limits = dataclasses.replace(server_config.limits, auth_failures_before_backoff=2)
    async with memory.serving(dataclasses.replace(server_config, limits=limits)) as server:

        def open_client(jid: str, password: str) -> Any:
            # One address for all, as from one client reconnecting.
            return memory.memory_client(server, jid, password, peer="10.0.0.1:5222")

        for _ in range(3):  # two free failures, the third starts a back-off of a second
            with pytest.raises(AuthenticationError) as info:
                async with open_client("juliet@localhost", "wrong"):
                    pass
            assert info.value.condition == "not-authorized"
        # During the back-off even the right password is refused, with a SASL
        # failure the client can act upon rather than a stream error.
        with pytest.raises(AuthenticationError) as refused:
            async with open_client("juliet@localhost", PASSWORDS["juliet"]):
                pass
        assert refused.value.condition == "temporary-auth-failure"
        assert server.metrics.stream_errors.labels(condition="policy-violation")._value.get() == 0
        assert server.metrics.auth_failures._value.get() == 4
        # The refusal did not extend the back-off (1 s).
        await trio.sleep(1.1)
        async with open_client("juliet@localhost", PASSWORDS["juliet"]) as client:
            assert client.jid.local == "juliet"


async def test_max_auth_attempts_from_the_config_ends_the_stream(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """`[limits] max_auth_attempts = 1`: the first failed login ends the stream with
    policy-violation (RFC 6120 §6.4.5), after the SASL failure itself."""
    from xmpp_sansio.errors import StreamErrorCondition

    server, options = await start(nursery, server_config, ca, tmp_path, max_auth_attempts=1)
    with pytest.raises(AuthenticationError):
        async with open_client("juliet@localhost", "wrong", **options):
            pass
    # The server counts the error before it writes the failure the client saw.
    errors = server.metrics.stream_errors
    assert errors.labels(condition=StreamErrorCondition.POLICY_VIOLATION.value)._value.get() == 1
