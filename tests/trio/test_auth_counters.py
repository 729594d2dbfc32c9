"""Login counters, back-off keys, account enumeration and key derivation, on the wire.

Issue 10, items 6, 11, 13, 14 and 15, against a real server over loopback TCP
with trustme TLS certificates:

* two counters: the per-stream SASL attempt limit (RFC 6120 §6.4.5, aborts
  and malformed requests count) and the cross-connection back-off (only
  credentials that were checked and found wrong count);
* the back-off keys on the PRECIS-prepared localpart (RFC 7622 §3.3) and never
  refuses a correct login from an address without failures;
* unknown users look like real ones (SCRAM ``i=``, PLAIN's derivation), and
  iqs to existing and missing accounts get the same error;
* PBKDF2 (PLAIN checks, password changes, registrations) runs off the event
  loop, password changes are rate-limited, a taken name costs no PBKDF2;
* failure logs are truncated, escaped and rate-limited; the back-off table is
  capped.

Clients come from several loopback addresses (127.0.0.2, 127.0.0.3, ...) to
play a clean and a guessing address. Waits are bounded with
``trio.fail_after``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_security import (
    FOOTER,
    HEADER,
    WAIT,
    Wire,
    error_condition,
    expect_stream_error,
    iq,
    login_wire,
    stream_error,
)

from xmpp_sansio.register import registration_request
from xmpp_sansio.xml.writer import serialize
from xmpp_trio import _accounts as server_module  # where PBKDF2 is called
from xmpp_trio.config import ServerConfig

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


# ---------------------------------------------------------------------------
# helpers


async def start(
    nursery: trio.Nursery,
    config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    *,
    scram_iterations: int | None = None,
    allow_registration: bool = False,
    **limits: object,
) -> RunningServer:
    """A server like the ``server`` fixture with some settings changed. A limit
    this version of ``LimitsConfig`` does not know is left out."""
    known = {f.name for f in dataclasses.fields(config.limits)}
    config = dataclasses.replace(
        config,
        allow_registration=allow_registration,
        scram_iterations=scram_iterations or config.scram_iterations,
        limits=dataclasses.replace(
            config.limits, **{k: v for k, v in limits.items() if k in known}
        ),
    )
    return await start_running(config, ca, tmp_path, nursery)


async def tls_wire(server: RunningServer, address: str = "127.0.0.1") -> Wire:
    """Direct TLS (XEP-0368) from ``address``, the stream opened, features read."""
    raw = await trio.open_tcp_stream("127.0.0.1", server.directtls_port, local_address=address)
    stream = trio.SSLStream(raw, server.client_context(), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await stream.do_handshake()
    wire = Wire(stream)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    return wire


def auth(mechanism: str, data: bytes | None = None) -> bytes:
    payload = b"" if data is None else (base64.b64encode(data) or b"=")
    return f"<auth xmlns='{SASL}' mechanism='{mechanism}'>".encode() + payload + b"</auth>"


def plain(username: str, password: str) -> bytes:
    return auth("PLAIN", f"\0{username}\0{password}".encode())


_OUTCOME = re.compile(rb"</failure>|<success[^>]*/>|</success>")


async def sasl_answer(wire: Wire, data: bytes) -> bytes:
    """Send ``data`` and return the bytes up to the server's ``<failure/>`` or
    ``<success/>``."""
    await wire.send(data)
    with trio.fail_after(WAIT):
        while (found := _OUTCOME.search(bytes(wire.data), wire._cursor)) is None:
            if not await wire._fill():
                raise AssertionError(f"closed: {bytes(wire.data[-400:])!r}")
    begin, wire._cursor = wire._cursor, found.end()
    return bytes(wire.data[begin : found.end()])


def condition_of(answer: bytes) -> str:
    if b"<success" in answer:
        return "success"
    found = re.search(rb"<failure [^>]*><([a-z-]+)/>", answer)
    assert found, answer
    return found.group(1).decode()


async def login(server: RunningServer, username: str, password: str, address: str) -> str:
    """One PLAIN attempt on a fresh connection from ``address``: its outcome."""
    wire = await tls_wire(server, address)
    try:
        return condition_of(await sasl_answer(wire, plain(username, password)))
    finally:
        await wire.aclose()


async def scram_first_challenge(server: RunningServer, username: str) -> dict[str, str]:
    """The server-first-message of SCRAM-SHA-256 for ``username`` (RFC 5802 §5.1)."""
    wire = await tls_wire(server)
    await wire.send(auth("SCRAM-SHA-256", f"n,,n={username},r=clientnonce".encode()))
    text = await wire.read_until(b"</challenge>")
    await wire.aclose()
    found = re.search(rb"<challenge [^>]*>([^<]*)</challenge>", text)
    assert found, text
    message = base64.b64decode(found.group(1)).decode()
    return dict(part.split("=", 1) for part in message.split(","))


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every PBKDF2 the process runs, as (hash, iterations)."""
    calls: list[tuple[str, int]] = []
    original = hashlib.pbkdf2_hmac

    def spy(hash_name: str, password: bytes, salt: bytes, iterations: int, *a: Any) -> bytes:
        calls.append((hash_name, iterations))
        return original(hash_name, password, salt, iterations, *a)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", spy)
    yield calls


class Gate:
    """A blocking stand-in for a slow derivation: it waits (in whatever thread
    runs it) until the test opens the gate, at most ``WAIT`` seconds."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.timed_out = False

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def blocking(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            if not self.opened.wait(WAIT):
                self.timed_out = True  # it ran on the event loop: nobody could open it
            return function(*args, **kwargs)

        return blocking

    async def wait_entered(self) -> bool:
        return await trio.to_thread.run_sync(self.entered.wait, WAIT)


# ---------------------------------------------------------------------------
# item 6: the per-stream attempt limit and the back-off are two counters


async def test_failures_before_any_password_check_do_not_trip_the_back_off(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """An unknown mechanism, an abort, a malformed request, a channel binding
    downgrade, an unsupported channel binding type: no credential was checked, so none counts toward the back-off
    (one free failure here); the right password then logs in at once."""
    server = await start(nursery, server_config, ca, tmp_path, auth_failures_before_backoff=1)
    attempts = [
        (auth("X-UNKNOWN", b"x"), "invalid-mechanism"),
        (plain("juliet", ""), "malformed-request"),  # no password
        (auth("SCRAM-SHA-256", b"y,,n=juliet,r=abc"), "not-authorized"),  # downgrade, §6
        (auth("SCRAM-SHA-256", b"n,,juliet"), "malformed-request"),
        (auth("SCRAM-SHA-256-PLUS", b"p=x-bogus,,n=juliet,r=abc"), "not-authorized"),  # cb type
    ]
    for data, condition in attempts * 2:
        wire = await tls_wire(server)
        assert condition_of(await sasl_answer(wire, data)) == condition
        await wire.aclose()
    wire = await tls_wire(server)
    await wire.send(auth("PLAIN"))
    await wire.read_until(b"<challenge")  # empty: <challenge .../>
    assert condition_of(await sasl_answer(wire, f"<abort xmlns='{SASL}'/>".encode())) == "aborted"
    await wire.aclose()
    assert await login(server, "juliet", PASSWORDS["juliet"], "127.0.0.1") == "success"
    assert len(server.server.auth_backoff) == 0


async def test_abort_counts_toward_the_per_stream_attempt_limit(server: RunningServer) -> None:
    """RFC 6120 §6.4.5: a stream cannot probe without end by aborting; the
    third ``<abort/>`` (max_auth_attempts 3) ends it with policy-violation."""
    wire = await tls_wire(server)
    for attempt in range(3):
        await wire.send(auth("PLAIN"))
        await wire.read_until(b"<challenge")  # empty: <challenge .../>
        await wire.send(f"<abort xmlns='{SASL}'/>".encode())
        if attempt < 2:
            answer = await wire.read_until(b"</failure>")
            assert b"<aborted/>" in answer and stream_error(answer) is None
    data = await expect_stream_error(wire, "policy-violation")
    assert b"<aborted/>" in data


async def test_failure_log_names_the_reason(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="xmpp_trio")
    wire = await tls_wire(server)
    await sasl_answer(wire, auth("SCRAM-SHA-256", b"y,,n=juliet,r=abc"))
    messages = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(messages) == 1
    assert "not-authorized" in messages[0] and "downgrade" in messages[0]
    assert "no credential checked" in messages[0]


# ---------------------------------------------------------------------------
# item 15: back-off keys


async def test_fullwidth_and_case_variants_share_the_accounts_back_off(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Wrong passwords for fullwidth ``juliet`` and ``JULIET`` count for ``juliet``
    (RFC 7622 §3.3 UsernameCaseMapped): with two free failures the third
    starts the account's back-off, which then holds for an address that has
    failures on record (127.0.0.2 failed once, below its own limit)."""
    server = await start(nursery, server_config, ca, tmp_path, auth_failures_before_backoff=2)
    assert await login(server, "juliet", "wrong", "127.0.0.2") == "not-authorized"
    assert await login(server, "\uff4a\uff55\uff4c\uff49\uff45\uff54", "wrong", "127.0.0.3") == (
        "not-authorized"
    )
    assert await login(server, "\uff2a\uff35\uff2c\uff29\uff25\uff34", "wrong", "127.0.0.4") == (
        "not-authorized"
    )
    assert await login(server, "juliet", PASSWORDS["juliet"], "127.0.0.2") == (
        "temporary-auth-failure"
    )


async def test_a_correct_login_from_a_clean_address_succeeds_during_the_accounts_back_off(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Guessing from 127.0.0.2 backs off that address and the account, but
    Juliet with her password from 127.0.0.3 (no failures) is let in."""
    server = await start(nursery, server_config, ca, tmp_path, auth_failures_before_backoff=1)
    outcomes = [await login(server, "juliet", "guess", "127.0.0.2") for _ in range(3)]
    assert outcomes == ["not-authorized", "not-authorized", "temporary-auth-failure"]
    assert await login(server, "juliet", PASSWORDS["juliet"], "127.0.0.2") == (
        "temporary-auth-failure"
    )
    assert await login(server, "juliet", PASSWORDS["juliet"], "127.0.0.3") == "success"


# ---------------------------------------------------------------------------
# item 13: log flooding and the back-off table


async def test_long_usernames_are_truncated_and_failure_logs_rate_limited(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="xmpp_trio")
    server = await start(nursery, server_config, ca, tmp_path, auth_log_lines_per_minute=3)
    for _ in range(3):
        wire = await tls_wire(server)
        for _ in range(3):
            username = "x" * 5000 + "\n" + "forged log line"
            await wire.send(plain(username, "wrong"))
            await wire.read_until(b"</failure>")
        await wire.read_to_end()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("xmpp_trio")]
    assert max(len(message) for message in ours) < 400
    assert not any("\n" in message for message in ours)
    failed = [m for m in ours if "authentication failed" in m]
    assert 1 <= len(failed) <= 4  # 3 a minute, all peers together (a 4th if a minute passed)


async def test_back_off_table_is_capped(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start(nursery, server_config, ca, tmp_path, auth_backoff_max_entries=5)
    for host in range(2, 6):
        wire = await tls_wire(server, f"127.0.0.{host}")
        for n in range(2):
            await wire.send(plain(f"nobody-{host}-{n}", "wrong"))
            assert b"<not-authorized/>" in await wire.read_until(b"</failure>")
        await wire.aclose()
    assert len(server.server.auth_backoff) <= 5


# ---------------------------------------------------------------------------
# item 14: account enumeration


async def test_scram_challenge_of_an_unknown_user_looks_like_a_real_accounts(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """The decoy has the configured iteration count (5000 here, as the
    account created with it), a salt as long, and the same salt each time."""
    server = await start(nursery, server_config, ca, tmp_path, scram_iterations=5000)
    server.server.store.create("tybalt", "localhost", "prince-of-cats", iterations=5000)
    known = await scram_first_challenge(server, "tybalt")
    unknown = await scram_first_challenge(server, "nobody")
    assert unknown["i"] == known["i"] == "5000"
    assert len(base64.b64decode(unknown["s"])) == len(base64.b64decode(known["s"]))
    assert (await scram_first_challenge(server, "nobody"))["s"] == unknown["s"]


async def test_plain_runs_the_same_derivation_for_unknown_and_known_users(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    pbkdf2_calls: list[tuple[str, int]],
) -> None:
    server = await start(nursery, server_config, ca, tmp_path, scram_iterations=5000)
    server.server.store.create("tybalt", "localhost", "prince-of-cats", iterations=5000)
    pbkdf2_calls.clear()
    assert await login(server, "tybalt", "wrong", "127.0.0.2") == "not-authorized"
    known = list(pbkdf2_calls)
    pbkdf2_calls.clear()
    assert await login(server, "nobody", "wrong", "127.0.0.3") == "not-authorized"
    assert pbkdf2_calls == known == [("sha256", 5000)]


IQ_PAYLOADS = [
    ("get", "<query xmlns='jabber:iq:roster'/>"),
    ("get", "<query xmlns='jabber:iq:private'><x xmlns='urn:example'/></query>"),
    ("get", "<query xmlns='jabber:iq:last'/>"),
    ("get", "<vCard xmlns='vcard-temp'/>"),
    ("set", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>"),
    ("get", "<blocklist xmlns='urn:xmpp:blocking'/>"),
    ("get", "<query xmlns='jabber:iq:register'/>"),
    ("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"),
    ("get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"),
    ("get", "<query xmlns='jabber:iq:version'/>"),
    ("get", "<ping xmlns='urn:xmpp:ping'/>"),
    ("get", "<query xmlns='urn:example:unknown'/>"),
]


@pytest.mark.parametrize(("kind", "payload"), IQ_PAYLOADS, ids=[p[1][1:30] for p in IQ_PAYLOADS])
async def test_iqs_to_existing_and_missing_accounts_get_the_same_answer(
    server: RunningServer, kind: str, payload: str
) -> None:
    """RFC 6121 §8.5.1 answers an iq to a missing account with
    service-unavailable; an unauthorised iq to an existing account gets the
    same (RFC 6120 §8.3.3.19), never ``forbidden``. (Romeo has no vCard: a
    stored one is public by design, docs/security.md.)"""
    juliet = await login_wire(server, "juliet@localhost/balcony")
    existing = await juliet.request(iq(kind, payload, to="romeo@localhost"))
    missing = await juliet.request(iq(kind, payload, to="nobody@localhost"))
    assert error_condition(existing) == error_condition(missing) == "service-unavailable"


# ---------------------------------------------------------------------------
# item 11: key derivation off the event loop, password changes, registration


async def test_plain_derivation_runs_off_the_event_loop(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one PLAIN check is stuck in its PBKDF2, another session is served."""
    romeo = await login_wire(server, "romeo@localhost/orchard")
    gate = Gate()
    monkeypatch.setattr(server_module, "_derive", gate.wrap(server_module._derive), raising=False)
    wire = await tls_wire(server)
    await wire.stream.send_all(plain("juliet", PASSWORDS["juliet"]))
    assert await gate.wait_entered(), "the derivation never ran"
    await romeo.sync()  # served while the derivation is pending
    gate.opened.set()
    assert b"<success" in await sasl_answer(wire, b"")
    assert not gate.timed_out


def change_password(password: str, username: str = "juliet") -> ET.Element:
    return iq(
        "set",
        "<query xmlns='jabber:iq:register'>"
        f"<username>{username}</username><password>{password}</password></query>",
    )


async def test_password_change_runs_off_the_event_loop(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    juliet = await login_wire(server, "juliet@localhost/balcony")
    romeo = await login_wire(server, "romeo@localhost/orchard")
    gate = Gate()
    store = server.server.store
    monkeypatch.setattr(store, "set_password", gate.wrap(store.set_password))
    request = change_password("n3w-Passw0rd")
    await juliet.stream.send_all(serialize(request))
    assert await gate.wait_entered()
    await romeo.sync()  # served while the derivation is pending
    gate.opened.set()
    with trio.fail_after(WAIT):
        while True:
            answer = await juliet.next_element()
            if answer.get("id") == request.get("id"):
                break
    assert answer.get("type") == "result"
    assert not gate.timed_out


async def test_password_changes_over_the_hourly_limit_get_resource_constraint(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start(nursery, server_config, ca, tmp_path, password_changes_per_hour=2)
    juliet = await login_wire(server, "juliet@localhost/balcony")
    answers = [await juliet.request(change_password(f"n3w-Passw0rd-{n}")) for n in range(3)]
    assert [a.get("type") for a in answers[:2]] == ["result", "result"]
    assert error_condition(answers[2]) == "resource-constraint"
    # Another account has its own allowance.
    romeo = await login_wire(server, "romeo@localhost/orchard")
    assert (await romeo.request(change_password("n3w-Passw0rd", "romeo"))).get("type") == "result"


async def register(server: RunningServer, username: str) -> bytes:
    wire = await tls_wire(server)
    request = ET.Element("{jabber:client}iq", {"type": "set", "id": "reg"})
    request.append(registration_request(username, "fresh-Passw0rd"))
    await wire.send(serialize(request))
    answer = await wire.read_until(b"</iq>")
    await wire.aclose()
    return answer


async def test_registering_a_taken_name_costs_no_pbkdf2_and_counts(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    pbkdf2_calls: list[tuple[str, int]],
) -> None:
    server = await start(
        nursery,
        server_config,
        ca,
        tmp_path,
        allow_registration=True,
        registrations_per_ip_per_hour=2,
    )
    pbkdf2_calls.clear()
    assert b"<conflict" in await register(server, "juliet")
    assert b"<conflict" in await register(server, "romeo")
    assert pbkdf2_calls == []
    # The two probes used up the address's allowance.
    assert b"<not-acceptable" in await register(server, "benvolio")
    assert not server.server.store.exists("benvolio", "localhost")


async def test_stream_stays_usable_after_a_derivation(server: RunningServer) -> None:
    """PLAIN success over the worker thread path restarts the stream as usual."""
    wire = await tls_wire(server)
    assert condition_of(await sasl_answer(wire, plain("juliet", PASSWORDS["juliet"]))) == (
        "success"
    )
    await wire.send(HEADER)
    assert b"<bind " in await wire.read_until(b"</stream:features>")
    await wire.send(FOOTER)


async def test_a_password_change_ends_the_accounts_other_sessions_with_reset(
    server: RunningServer,
) -> None:
    """Issue 10 item 16: the sessions opened with the old password end with
    the ``reset`` stream error (RFC 6120 §4.9.3.16); the one that changed it
    and other accounts' sessions go on."""
    balcony = await login_wire(server, "juliet@localhost/balcony")
    chamber = await login_wire(server, "juliet@localhost/chamber")
    romeo = await login_wire(server, "romeo@localhost/orchard")
    answer = await balcony.request(change_password("n3w-Passw0rd"))
    assert answer.get("type") == "result"
    ended = await chamber.read_until(b"</stream:stream>")
    assert stream_error(ended) == "reset"
    await balcony.sync()
    await romeo.sync()
    assert await login(server, "juliet", "n3w-Passw0rd", "127.0.0.1") == "success"
