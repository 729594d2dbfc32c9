"""Storage faults on the wire (issue 10, item 9): a full database answers the
sender with ``resource-constraint`` and keeps serving, a corrupt database is
refused at start in one line, an internal error ends the stream with
``internal-server-error`` instead of a silent close.

The faults are real: ``PRAGMA max_page_count`` makes the server's own SQLite
connection full (tests run as root, so file permissions cannot), and the
corrupt file is a real database with garbage written over one of its pages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import PASSWORDS
from test_limits import (
    BODY,
    WAIT,
    chat,
    config,
    read_until,
    start,
)

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import OfflinePage
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import IqErrorResponse, _negotiate, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore, StorageError

__all__ = ["config"]

REPO = Path(__file__).resolve().parents[2]
C = "{jabber:client}"


def ping() -> ET.Element:
    iq = ET.Element(C + "iq", {"type": "get", "to": "localhost"})
    ET.SubElement(iq, "{urn:xmpp:ping}ping")
    return iq


def fill(db: Any) -> None:
    """Let the database grow no more and fill its free space: from now on a
    write fails with SQLITE_FULL, as on a full disk."""
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages + 2}")
    db.execute("CREATE TABLE filler (x BLOB)")
    for size in (1000, 100, 10, 1):
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                db.execute("INSERT INTO filler VALUES (?)", (b"f" * size,))


async def next_error(client: Any, tag: str) -> ET.Element:
    with trio.fail_after(WAIT):
        async for stanza in client:
            if stanza.tag == C + tag and stanza.get("type") == "error":
                return stanza
    raise AssertionError("the stream ended")


async def test_a_full_database_answers_the_sender_and_keeps_serving(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    started = await start(nursery, config)
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo:
        fill(started.server.db)
        # An offline message cannot be stored: the sender is told, not ignored.
        message = chat("juliet@localhost", "x" * 20_000)
        message.set("id", "lost-1")
        await romeo.send(message)
        error = await next_error(romeo, "message")
        assert error.get("id") == "lost-1"
        assert parse_error(error).condition.value == "resource-constraint"
        # A roster change cannot be stored either: the iq gets the error.
        # (Existing pages have some room left: the roster fills its own first.)
        with pytest.raises(IqErrorResponse, match="resource-constraint"):
            for i in range(20):
                roster_set = ET.Element(C + "iq", {"type": "set", "id": f"r{i}"})
                query = ET.SubElement(roster_set, "{jabber:iq:roster}query")
                item = {"jid": f"nurse{i}@localhost", "name": "n" * 1000}
                ET.SubElement(query, "{jabber:iq:roster}item", item)
                await romeo.request(roster_set)
        # Everything that needs no write is still served, on the same stream.
        assert (await romeo.request(ping())).get("type") == "result"
        async with open_client(
            "juliet@localhost", PASSWORDS["juliet"], **started.options()
        ) as juliet:
            await juliet.send(ET.Element(C + "presence"))
            await juliet.request(ping())  # available from here on
            await romeo.send(chat("juliet@localhost/" + juliet.jid.resource, "still here"))
            with trio.fail_after(WAIT):
                async for stanza in juliet:
                    if stanza.findtext(BODY) == "still here":
                        break
    assert started.server.metrics.storage_errors._value.get() >= 1


async def test_a_write_that_cannot_be_committed_is_answered_and_never_seen(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """A vCard set whose commit fails gets ``resource-constraint`` instead of
    its result, and a get afterwards sees the vCard stored before it, not the
    one that failed (the service's pending write is dropped)."""
    started = await start(nursery, config)
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo:

        def vcard(name: str, type_: str = "set") -> ET.Element:
            iq = ET.Element(C + "iq", {"type": type_})
            card = ET.SubElement(iq, "{vcard-temp}vCard")
            if type_ == "set":
                ET.SubElement(card, "{vcard-temp}FN").text = name
            return iq

        await romeo.request(vcard("Romeo"))
        fill(started.server.db)
        with pytest.raises(IqErrorResponse, match="resource-constraint"):
            await romeo.request(vcard("R" * 20_000))
        stored = await romeo.request(vcard("", "get"))
        assert stored.findtext("{vcard-temp}vCard/{vcard-temp}FN") == "Romeo"


async def test_a_page_read_that_fails_delivers_nothing_and_the_next_presence_gets_it(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """The offline flush reads its pages through Load effects: a read that
    fails ends the flush quietly (the message stays stored), and the next
    available presence reads it again."""
    started = await start(nursery, config)
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo:
        await romeo.send(chat("juliet@localhost", "kept"))
        await romeo.request(ping())  # stored by now
    readers = started.server.services.readers
    kind = OfflinePage  # the offline flush's reads (archive pages have their own)
    read = readers[kind]

    def broken(query: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    readers[kind] = broken
    async with open_client("juliet@localhost", PASSWORDS["juliet"], **started.options()) as juliet:
        await juliet.send(ET.Element(C + "presence"))
        await juliet.request(ping())  # the presence and its failed read are handled
        with sqlite3.connect(config.database_path) as db:  # not handed over: still stored
            assert db.execute("SELECT COUNT(*) FROM offline_messages").fetchone() == (1,)
        readers[kind] = read
        await juliet.send(ET.Element(C + "presence"))
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.findtext(BODY) is not None:
                    assert stanza.findtext(BODY) == "kept"
                    break
    assert started.server.metrics.storage_errors._value.get() >= 1


async def test_an_internal_error_ends_the_stream_with_internal_server_error(
    config: ServerConfig, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug costs one connection, and the client is told so (RFC 6120
    §4.9.3.8) instead of seeing the connection drop."""
    started = await start(nursery, config)

    def broken_bind(*args: object) -> None:
        raise RuntimeError("a bug in binding")

    monkeypatch.setattr(started.server.router, "bind", broken_bind)
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    conn = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0), jid=JID.parse("romeo@localhost/x"), password=PASSWORDS["romeo"]
        )
    )
    received = b""
    with trio.fail_after(WAIT):
        try:
            negotiated = await _negotiate(conn, stream, started.ctx, "localhost")
            received = await read_until(negotiated.stream, b"</stream:stream>")
        except Exception as exc:  # the client library reports the stream error
            received = repr(exc).encode()
    assert b"internal-server-error" in received


def _corrupt(path: Path) -> None:
    """Write garbage over the last page of a real database file."""
    size = path.stat().st_size
    page = 4096
    with path.open("r+b") as f:
        f.seek(size - page)
        f.write(os.urandom(page))


def test_a_corrupt_database_is_refused_at_start_in_one_line(
    config: ServerConfig, tmp_path: Path
) -> None:
    with AccountStore.open(config.database_path) as store:
        for i in range(200):  # enough rows for several pages
            store.create(f"user{i}", "localhost", "pw-" + str(i), iterations=4096)
        store.check_integrity()  # sound before
    _corrupt(config.database_path)
    with AccountStore.open(config.database_path) as store, pytest.raises(StorageError):
        store.check_integrity()
    toml = tmp_path / "xmpp.toml"
    toml.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{config.data_dir}"\n'
        "[[listeners]]\n"
        'kind = "c2s-starttls"\naddress = "127.0.0.1"\nport = 0\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(toml)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("xmpp-trio: error: ") and "corrupt" in lines[0]


def _chattr(flag: str, paths: list[Path]) -> bool:
    """Set or clear the immutable attribute (root cannot write such a file)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    return subprocess.run([chattr, flag, *map(str, paths)], check=False).returncode == 0


async def test_a_data_dir_made_read_only_under_the_server_answers_and_keeps_serving(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """The database files and the data directory become unwritable while the
    server runs (immutable: tests run as root, so permissions would not stop
    them): writes fail with internal-server-error to the sender, the server
    keeps serving, logs it, and does not die (it used to, by SIGBUS)."""
    started = await start(nursery, config)
    paths = [*config.data_dir.glob("xmpp.sqlite3*"), config.data_dir]
    async with open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo:
        if not _chattr("+i", paths):
            pytest.skip("chattr +i is not supported here")
        try:
            message = chat("juliet@localhost", "y" * 5000)
            message.set("id", "ro-1")
            await romeo.send(message)
            error = await next_error(romeo, "message")
            assert error.get("id") == "ro-1"
            assert parse_error(error).condition.value == "internal-server-error"
            assert (await romeo.request(ping())).get("type") == "result"
        finally:
            _chattr("-i", paths)
    assert started.server.metrics.storage_errors._value.get() >= 1
