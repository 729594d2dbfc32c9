"""The archive's writes off the event loop (xmpp_trio/archive_writer.py,
docs/mam.md "Cost"), on the wire and on real SQLite files: archived copies
of live messages are committed by a worker thread with its own connection;
a MAM query, a roster push or the server's stop waits for the batch in
flight and nothing is lost, duplicated or reordered, also when a batch
fails; the worker checkpoints, so the WAL stays bounded."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from itertools import count
from pathlib import Path

import pytest
import trio
import trustme
from conftest import RunningServer, start_running
from test_im_client import Session, im_session

from xmpp_sansio.client.mam import parse_fin, parse_result, query_iq
from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.server.mam.store import ArchivePut, ArchiveQuery
from xmpp_sansio.stanza import MessageType, make_message
from xmpp_sansio.xml import ns
from xmpp_trio import services as services_module
from xmpp_trio.archive_writer import ArchiveWriter, BatchFloor
from xmpp_trio.config import ConfigError, ServerConfig, load_config
from xmpp_trio.mam_config import ArchiveWriterLimits
from xmpp_trio.storage import AccountStore
from xmpp_trio.stores.mam import SqliteArchiveStorage

BATCH = 5  # rows handed to the writer at once in these tests
JULIET = "juliet@localhost/phone"


def archiving(config: ServerConfig) -> ServerConfig:
    return dataclasses.replace(
        config, mam=MamLimits(enabled=True), mam_writer=ArchiveWriterLimits(batch=BATCH)
    )


def writer_of(server: RunningServer) -> ArchiveWriter[ArchivePut]:
    writer = server.server.services.archive.writer
    assert writer is not None
    return writer


async def archive_of(session: Session, page: int = 100) -> list[tuple[str, str]]:
    """The user's archive, ``(id, body)`` in order, read on the wire page
    by page: the result messages, then the iq result with the ``<fin/>``
    (sent, not requested, so both are read in the order they came)."""
    found: list[tuple[str, str]] = []
    after: str | None = None
    for n in count():
        await session.im.send(query_iq(f"q{n}", f"qid{n}", max=page, after=after))
        async for stanza in session.im.stanzas():
            result = parse_result(stanza)
            if result is not None and result.queryid == f"qid{n}":
                text = result.message.findtext(f"{{{ns.CLIENT}}}body") or ""
                found.append((result.id, text))
            elif stanza.tag == f"{{{ns.CLIENT}}}iq" and stanza.get("id") == f"q{n}":
                fin = parse_fin(stanza)
                assert fin is not None, ET.tostring(stanza)
                break
        if fin.complete or fin.last is None:
            return found
        after = fin.last
    raise AssertionError("unreachable")


def bodies_of(found: list[tuple[str, str]]) -> list[str]:
    assert len({sid for sid, _ in found}) == len(found)  # no duplicate
    return [text for _, text in found]


async def send_and_see(romeo: Session, juliet: Session, bodies: list[str]) -> None:
    """Romeo sends ``bodies`` to Juliet's session, delivered live (so their
    archived copies are written behind); returns once she has them all."""
    for text in bodies:
        await romeo.im.send(make_message(to=JULIET, type=MessageType.CHAT, body=text))
    seen: list[str] = []
    async for stanza in juliet.im.stanzas():
        text = stanza.findtext(f"{{{ns.CLIENT}}}body")
        if text is not None:
            seen.append(text)
        if len(seen) == len(bodies):
            break
    assert seen == bodies


@dataclasses.dataclass
class Blocked:
    entered: threading.Event  # the batch is in flight, inside its transaction
    waited: threading.Event  # the loop waited for it

    async def in_flight(self) -> None:
        await trio.to_thread.run_sync(self.entered.wait)


@asynccontextmanager
async def blocked_batch(writer: ArchiveWriter[ArchivePut]) -> AsyncIterator[Blocked]:
    """The writer's next batch stops inside its transaction (SQLite's write
    lock held) until the loop waits for it."""
    entered, release, waited = threading.Event(), threading.Event(), threading.Event()

    def in_batch() -> None:
        writer.in_batch = None  # the first batch only
        entered.set()
        release.wait()

    def on_wait() -> None:
        waited.set()
        release.set()

    writer.in_batch, writer.on_wait = in_batch, on_wait
    try:
        yield Blocked(entered, waited)
    finally:
        release.set()
        writer.on_wait = None
    assert entered.is_set()


async def test_messages_archived_while_a_batch_is_in_flight_are_all_in_the_next_query(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_running(archiving(server_config), ca, tmp_path, nursery)
    writer = writer_of(server)
    with trio.fail_after(20):
        async with (
            im_session(server, JULIET) as juliet,
            im_session(server, "romeo@localhost/garden") as romeo,
        ):
            async with blocked_batch(writer) as blocked:
                first = [f"m{i}" for i in range(BATCH)]
                await send_and_see(romeo, juliet, first)  # the fifth hands the batch over
                await blocked.in_flight()
                assert writer.busy
                later = [f"m{i}" for i in range(BATCH, 3 * BATCH)]
                await send_and_see(romeo, juliet, later)  # kept behind meanwhile
                assert writer.busy and not blocked.waited.is_set()
                everything = await archive_of(juliet, page=4)
                assert blocked.waited.is_set()  # the query waited for the batch in flight
            assert bodies_of(everything) == first + later
            assert writer.batches >= 1 and writer.failures == 0


async def test_a_roster_push_during_an_archive_batch_completes(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_running(archiving(server_config), ca, tmp_path, nursery)
    writer = writer_of(server)
    with trio.fail_after(20):
        async with (
            im_session(server, JULIET) as juliet,
            im_session(server, "romeo@localhost/garden") as romeo,
        ):
            await romeo.im.get_roster()
            async with blocked_batch(writer) as blocked:
                await send_and_see(romeo, juliet, [f"m{i}" for i in range(BATCH)])
                await blocked.in_flight()
                item = await romeo.im.set_roster_item(JID.parse("juliet@localhost"), name="J")
                assert item is not None and item.name == "J"
                assert blocked.waited.is_set()  # the commit waited for the batch, no SQLITE_BUSY
            assert bodies_of(await archive_of(juliet)) == [f"m{i}" for i in range(BATCH)]


async def test_a_stop_right_after_a_burst_loses_nothing(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path
) -> None:
    config = archiving(server_config)
    bodies = [f"m{i}" for i in range(8 * BATCH + 3)]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            writer = writer_of(server)
            archive = server.server.services.archive
            async with AsyncExitStack() as clients:
                juliet = await clients.enter_async_context(im_session(server, JULIET))
                romeo = await clients.enter_async_context(im_session(server, "romeo@localhost/x"))
                await send_and_see(romeo, juliet, bodies)
                # Then one at a time until one is kept behind: a message's
                # commit hands everything kept to an idle writer, the next
                # one (fewer than a batch) stays.
                while not archive.behind:
                    bodies.append(f"m{len(bodies)}")
                    await send_and_see(romeo, juliet, bodies[-1:])
                assert archive.behind  # the last ones are kept behind...
                nursery.cancel_scope.cancel()  # ...when the server stops, sessions open
        assert writer.batches >= 1 and not writer.running and archive.behind == []
        async with trio.open_nursery() as nursery:
            server = await start_running(config, ca, tmp_path, nursery)
            async with im_session(server, JULIET) as juliet:
                everything = await archive_of(juliet, page=10)
            nursery.cancel_scope.cancel()
    assert bodies_of(everything) == bodies


async def test_a_failing_batch_loses_no_message_and_the_server_goes_on(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_running(archiving(server_config), ca, tmp_path, nursery)
    writer = writer_of(server)
    side = sqlite3.connect(server_config.database_path, isolation_level=None)
    side.execute("CREATE TABLE disk_full (on_ INTEGER NOT NULL)")
    side.execute("INSERT INTO disk_full VALUES (1)")
    side.execute(
        "CREATE TRIGGER fail_archive BEFORE INSERT ON mam_items"
        " WHEN (SELECT on_ FROM disk_full) BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    bodies = [f"m{i}" for i in range(3 * BATCH)]
    with trio.fail_after(20):
        async with (
            im_session(server, JULIET) as juliet,
            im_session(server, "romeo@localhost/garden") as romeo,
        ):
            await send_and_see(romeo, juliet, bodies[:BATCH])
            await trio.to_thread.run_sync(writer.idle)
            failed = writer.failures
            assert failed >= 1  # tried twice, kept
            await send_and_see(romeo, juliet, bodies[BATCH:])  # the server goes on
            await trio.to_thread.run_sync(writer.idle)
            assert writer.failures > failed  # the kept ones went first, failed again
            side.execute("UPDATE disk_full SET on_ = 0")  # room again
            everything = await archive_of(juliet, page=6)
    side.close()
    assert bodies_of(everything) == bodies


def store_with_writer(
    path: str, *, timeout: float = 5.0, **limits: int
) -> tuple[sqlite3.Connection, SqliteArchiveStorage, ArchiveWriter[ArchivePut]]:
    """A WAL database at ``path``, its archive store on one connection and an
    attached writer thread on its own (``limits``: ArchiveWriter's keywords)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    store = SqliteArchiveStorage(conn)
    worker: ArchiveWriter[ArchivePut] = ArchiveWriter(
        path, store.write_batch, timeout=timeout, **limits
    )
    store.attach(worker)
    return conn, store, worker


def test_the_writer_checkpoints_so_the_wal_stays_bounded(tmp_path: Path) -> None:
    path = str(tmp_path / "archive.sqlite3")
    conn, store, writer = store_with_writer(path, checkpoint=1000)
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost/phone")
    stanza = b"<message>" + b"x" * 2000 + b"</message>"
    largest = 0
    batches, rows = 60, 200
    for b in range(batches):
        for i in range(rows):
            n = b * rows + i
            store.write_behind(ArchivePut(romeo, f"s{n:08d}", juliet, 1e9 + n, stanza, 1 << 40))
        store.hand_off(block=True)
        writer.idle()
        largest = max(largest, os.path.getsize(path + "-wal"))
    store.flush()
    writer.close()
    written = batches * rows * len(stanza)  # 24 MB through the WAL
    assert largest < written // 3, (largest, written)
    assert writer.checkpoints >= batches * rows // 1000
    assert store.count(romeo) == batches * rows
    page = store.load(ArchiveQuery(romeo, max=3, before=""))
    assert [m.sid for m in page.items] == [f"s{n:08d}" for n in range(11997, 12000)]  # type: ignore[union-attr]
    assert not writer.running
    conn.close()


def test_a_writer_whose_writes_raise_keeps_the_ops_and_never_hangs(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection, batch: list[int]) -> None:
        raise TypeError("a bug")

    writer: ArchiveWriter[int] = ArchiveWriter(str(tmp_path / "x.sqlite3"), broken, timeout=1.0)
    writer.hand([1, 2])
    assert writer.wait() == [1, 2] and writer.failures == 1
    writer.hand([3])
    writer.idle()
    assert writer.wait() == [3] and not writer.busy
    writer.close()
    assert not writer.running


def test_a_writer_that_cannot_open_its_database_keeps_the_ops(tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "x.sqlite3")  # no such directory
    writer: ArchiveWriter[int] = ArchiveWriter(path, lambda conn, batch: None, timeout=1.0)
    writer.hand([1, 2])
    assert writer.wait() == [1, 2] and writer.failures == 1 and not writer.running
    writer.close()


async def test_without_the_writer_thread_the_loop_commits_the_archive(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    # [mam] writer_thread = false: no worker; every message still archived.
    config = dataclasses.replace(archiving(server_config), mam_writer_thread=False)
    server = await start_running(config, ca, tmp_path, nursery)
    assert server.server.services.archive.writer is None
    bodies = [f"m{i}" for i in range(3 * BATCH + 1)]
    with trio.fail_after(20):
        async with (
            im_session(server, JULIET) as juliet,
            im_session(server, "romeo@localhost/garden") as romeo,
        ):
            await send_and_see(romeo, juliet, bodies)
            assert bodies_of(await archive_of(juliet, page=7)) == bodies
            assert server.server.services.archive.writer is None  # none started since


def test_the_writer_thread_setting_loads_and_is_checked(tmp_path: Path) -> None:
    assert load_config(None).mam_writer_thread is True
    path = tmp_path / "xmpp.toml"
    path.write_text("[mam]\nwriter_thread = false\n")
    assert load_config(path).mam_writer_thread is False
    path.write_text('[mam]\nwriter_thread = "no"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "mam.writer_thread"


def test_the_writer_limits_load_and_are_checked(tmp_path: Path) -> None:
    assert load_config(None).mam_writer == ArchiveWriterLimits(
        batch=200, backlog=20_000, checkpoint=5000, keep_failed=100_000, loop_batch=1000
    )
    path = tmp_path / "xmpp.toml"
    path.write_text(
        "[mam]\nwriter_batch = 50\nwriter_batch_max = 400\nwriter_backlog = 900\n"
        "writer_checkpoint = 700\nwriter_keep_failed = 3000\nloop_batch = 40\n"
    )
    assert load_config(path).mam_writer == ArchiveWriterLimits(
        batch=50, batch_max=400, backlog=900, checkpoint=700, keep_failed=3000, loop_batch=40
    )
    path.write_text("[mam]\nwriter_batch = 500\nwriter_backlog = 100\n")
    assert load_config(path).mam_writer.backlog == 500  # never below a batch
    assert load_config(path).mam_writer.batch_max == 500
    path.write_text("[mam]\nwriter_batch = 500\nwriter_batch_max = 100\n")
    assert load_config(path).mam_writer.batch_max == 500
    for key, value in (
        ("writer_batch", "0"),
        ("writer_batch_max", "0"),
        ("writer_backlog", '"many"'),
        ("writer_checkpoint", "-1"),
        ("writer_keep_failed", "0"),
        ("loop_batch", "0"),
    ):
        path.write_text(f"[mam]\n{key} = {value}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == f"mam.{key}"


def test_a_writer_keeps_at_most_keep_failed_ops_of_failed_batches(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection, batch: list[int]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    path = str(tmp_path / "x.sqlite3")
    writer: ArchiveWriter[int] = ArchiveWriter(path, broken, timeout=1.0, keep_failed=3)
    writer.hand([1, 2])
    writer.idle()
    writer.hand([3, 4])
    writer.idle()
    assert writer.wait() == [2, 3, 4]  # the oldest dropped
    writer.close()


def test_the_writer_checkpoints_every_writer_checkpoint_ops(tmp_path: Path) -> None:
    path = str(tmp_path / "archive.sqlite3")
    conn, store, writer = store_with_writer(path, checkpoint=30)
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost/phone")
    for n in range(100):
        store.write_behind(ArchivePut(romeo, f"s{n:04d}", juliet, 1e9 + n, b"<m/>", 1 << 40))
        if n % 10 == 9:
            store.hand_off(block=True)
            writer.idle()
    assert writer.batches == 10 and writer.checkpoints == 3  # after 30, 60 and 90 ops
    writer.close()
    conn.close()


def test_the_batch_floor_grows_while_the_worker_lags_and_shrinks_when_it_keeps_up() -> None:
    floor = BatchFloor(200, 1000)
    sizes = []
    for _ in range(4):
        floor.lagging()
        floor.handed()
        sizes.append(floor.rows)
    assert sizes == [400, 800, 1000, 1000]  # doubled, up to the most
    floor.handed()
    assert floor.rows == 500  # kept up: halved
    floor.lagging()
    floor.quiet()
    assert floor.rows == 200
    floor.handed()
    assert floor.rows == 200  # never below the least
    assert BatchFloor(300, 100).high == 300


def test_a_worker_that_lags_gets_larger_batches(server_config: ServerConfig) -> None:
    """The services' side: rows reaching the floor while the worker is busy
    double the next hand-over's floor; an idle worker takes them at the floor."""
    config = dataclasses.replace(
        archiving(server_config), mam_writer=ArchiveWriterLimits(batch=BATCH, batch_max=4 * BATCH)
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = services_module.open_database(config)
    svc = services_module.ServerServices(
        config, AccountStore.open(config.database_path), db, archive_writer=True
    )
    writer = svc.archive.writer
    assert writer is not None
    gate = threading.Event()
    writer.in_batch = gate.wait  # the first batch stays in flight until the gate opens
    romeo, juliet = JID.parse("romeo@localhost"), JID.parse("juliet@localhost/phone")
    seq = count()

    def put(n: int) -> None:
        for _ in range(n):
            i = next(seq)
            svc.commit([ArchivePut(romeo, f"s{i:04d}", juliet, 1e9 + i, b"<m/>", 1 << 40)])

    put(BATCH)  # handed over: the worker is busy with it
    assert writer.busy and svc.archive.behind == []
    put(BATCH)  # reached the floor while busy: kept
    assert len(svc.archive.behind) == BATCH
    writer.in_batch = None
    gate.set()
    writer.idle()
    put(1)  # idle now: handed over, the next floor doubled
    writer.idle()
    assert svc.archive.behind == []
    put(2 * BATCH - 1)
    assert len(svc.archive.behind) == 2 * BATCH - 1  # under the doubled floor
    put(1)
    writer.idle()
    assert svc.archive.behind == [] and svc.archive.count(romeo) == 4 * BATCH + 1
    svc.close()
    db.close()
