"""What archiving costs per message in-process (issue 17): ``Router.route``
of a chat message to a full JID with the bundled services over SQLite, both
accounts online, as the server routes it (xmpp_trio/_session.py
``_handle_events_batched``): inside ``shared_writes()``, the element handed
over (``owned=True``: a fresh one per message, as the parser makes), each
``Deliver`` serialised for its client stream (what ``conn.send`` does, so
the archive's bytes are shared with the delivery as in the server), the
effects carried out as the server does (``XMPPServer.apply``'s dispatch,
then ``StorageEdge.settle`` at the end of each message's batch:
``ServerServices.keep_behind`` (session 10: the archived copies written
behind, ``Router.behind``), ``write_behind``, ``commit``; a flush every 1000
messages).

    python benchmarks/mam_cost.py --n 4000                # µs CPU/message, on and off
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/mam_cost.py --once on --n 800   # instructions: run
                                                          # N=800 and N=2000, divide the difference
    python benchmarks/mam_cost.py --instructions on [--tree TREE]  # the same, done for
                    # you: PYTHONHASHSEED=0, N=800 and 2000 under callgrind, the
                    # difference over 1,200 messages (TREE: another checkout's
                    # mam_cost.py and code, e.g. `git archive integ | tar -x -C /tmp/base`)
    python benchmarks/mam_cost.py --profile on --n 4000   # cProfile, top 25
    ... --users 200   # messages among 200 accounts (user i to i + 1) instead of a to b
    ... --ablate serialise|write|store   # without the archive's serialisation / SQLite
                   # write / the store's whole write (rows and SQL: the loop's part left)
    ... --ablate store,keep|observe|stamp   # several, comma-separated: also without the
                   # hand-over to the store / the archived copy / the <stanza-id/> stamp
                   # (with --instructions: the loop's share taken apart, session 15)
    ... --unshared   # as before session 7: no scope, no delivery serialised, not owned
    ... --writer   # the server's archive writer thread (xmpp_trio/archive_writer.py);
                   # the timing also prints the main thread's (the event loop's) share
                   # and the writer thread's (time.thread_time() in its batches and
                   # idle merges)
    ... --batch N  # [mam] writer_batch and loop_batch (rows committed at once)
    ... --stalls   # the main thread's longest call to commit/flush (CPU ms: what a
                   # server's loop would be held for), p99 and max over the run

Nothing is asserted."""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import re
import secrets
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Disconnect, Router
from xmpp_sansio.server.effects import Deliver, Load, Persist
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.server.sessions import CloseStream
from xmpp_sansio.xml.ns import CLIENT
from xmpp_sansio.xml.writer import serialize, shared_writes
from xmpp_trio._edge import StorageEdge
from xmpp_trio.config import ServerConfig
from xmpp_trio.metrics import Metrics
from xmpp_trio.services import build_services, open_database
from xmpp_trio.storage import AccountStore

C = "{jabber:client}"


def setup(
    archiving: bool,
    users: int = 0,
    unshared: bool = False,
    writer: bool = False,
    stalls: list[float] | None = None,
    batch: int = 0,
) -> Callable[[int], None]:
    """The loop; ``users``: messages between that many accounts (user ``i``
    to ``i + 1``, round robin), else ``a`` to ``b`` only."""
    tmp = Path(tempfile.mkdtemp(prefix="mam-cost-"))
    config = ServerConfig(
        domains=("localhost",),
        data_dir=tmp,
        scram_iterations=4096,
        mam=MamLimits(enabled=archiving),
    )
    if batch:  # [mam] writer_batch / loop_batch (session 8; older trees have neither)
        from xmpp_trio.mam_config import ArchiveWriterLimits

        limits = ArchiveWriterLimits(batch=batch, backlog=max(batch, 20_000), loop_batch=batch)
        config = dataclasses.replace(config, mam_writer=limits)
    store = AccountStore.open(config.database_path)
    names = [f"u{i}" for i in range(users)] if users else ["a", "b"]
    for user in names:
        store.create(user, "localhost", "pw-pw-pw", iterations=4096)
    extra = {"archive_writer": True} if writer else {}  # runs against older trees too
    services = build_services(config, store, open_database(config), **extra)
    router = Router(
        config.domains,
        rng=secrets.token_bytes,
        account_exists=lambda local, domain: store.exists(local, domain),
        services=services.services,
        clock=services.clock,  # the server's: a stopped clock would stamp every message alike
    )
    for session, user in enumerate(names, 1):
        router.bind(session, JID.parse(f"{user}@localhost/r"))
        router.route(session, ET.Element(C + "presence"))
    messages = [
        (i + 1, f"{names[(i + 1) % len(names)]}@localhost/r")
        for i in range(len(names) if users else 1)
    ]
    body = "y" * 120

    edge = StorageEdge(services, router, Metrics())
    commit = edge.settle
    if stalls is not None:

        def commit(apply: Callable[[list], None]) -> None:
            t = time.thread_time()
            edge.settle(apply)
            stalls.append(time.thread_time() - t)

    def apply(effects: list) -> None:
        # XMPPServer.apply's dispatch (xmpp_trio/server.py), in its order
        for effect in effects:
            match effect:
                case Deliver():
                    if not unshared:
                        serialize(effect.element, CLIENT)  # the recipient's stream
                case Disconnect() | CloseStream():
                    pass
                case Persist():
                    edge.persists.append(effect)
                case Load():
                    edge.loads.append(effect)

    def run(n: int) -> None:
        for i in range(n):
            session, to = messages[i % len(messages)]
            # a fresh element a message, as the stream's parser hands over
            msg = ET.Element(C + "message", {"to": to, "type": "chat", "id": "x"})
            ET.SubElement(msg, C + "body").text = body
            if unshared:
                apply(router.route(session, msg))
            else:
                with shared_writes():
                    apply(router.route(session, msg, owned=True))
            if edge:  # the batch's end (XMPPServer.end_batch): one message a read
                commit(apply)
            if i % 1000 == 999:
                t = time.thread_time() if stalls is not None else 0.0
                services.flush()
                if stalls is not None:
                    stalls.append(time.thread_time() - t)
        services.flush()
        services.archive.flush()  # with the writer: after its last batch

    run(200)  # warm up: caches, prepared statements
    return run


ABLATIONS = ("serialise", "write", "store", "keep", "observe", "stamp")


def _ablations(text: str) -> tuple[str, ...]:
    names = tuple(n for n in text.split(",") if n)
    for name in names:
        if name not in ABLATIONS:
            raise argparse.ArgumentTypeError(f"{name!r}: one of {', '.join(ABLATIONS)}")
    return names


def _ablate(names: tuple[str, ...]) -> None:
    """Take the named parts of archiving out of the message path (--ablate)."""
    from xmpp_sansio.server.mam import service
    from xmpp_sansio.server.stages import MessageDelivered, MessageSent
    from xmpp_trio.services import ServerServices
    from xmpp_trio.stores.mam import SqliteArchiveStorage

    if "serialise" in names:
        service.archived_bytes = lambda element: b"<message/>"  # type: ignore[assignment]
    if "write" in names:
        SqliteArchiveStorage._write_rows = lambda self, conn, rows: None  # type: ignore[method-assign]
    if "store" in names:
        SqliteArchiveStorage._put = lambda self, conn, ops: None  # type: ignore[method-assign]
    if "keep" in names:

        def keep_behind(self: ServerServices, ops: list) -> bool:
            ops.clear()
            return False

        ServerServices.keep_behind = keep_behind  # type: ignore[method-assign]
    if "observe" in names:
        observe = service.MamService.observe

        def observe_others(self: service.MamService, ctx: object, event: object) -> list:
            if type(event) is MessageSent or type(event) is MessageDelivered:
                return []
            return observe(self, ctx, event)  # type: ignore[arg-type]

        service.MamService.observe = observe_others  # type: ignore[method-assign,assignment]
    if "stamp" in names:
        service.MamService.transform = (  # type: ignore[method-assign]
            lambda self, ctx, element, sender, to: element
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--once", choices=("on", "off"), help="one run (for callgrind)")
    parser.add_argument(
        "--instructions", choices=("on", "off"), help="callgrind count a message (N 800 and 2000)"
    )
    parser.add_argument("--tree", type=Path, help="with --instructions: that checkout's code")
    parser.add_argument("--profile", choices=("on", "off"))
    parser.add_argument("--users", type=int, default=0, help="accounts (default: a to b only)")
    parser.add_argument(
        "--ablate",
        type=_ablations,
        default=(),
        help="comma-separated, measured without: serialise (the archived copy's bytes a"
        " constant), write (its SQLite rows dropped at the flush), store (the store's"
        " `_put` a no-op: what is left is the loop's part), keep (the hand-over to the"
        " store: ServerServices.keep_behind drops the ops), observe (MamService.observe"
        " ignores MessageSent and MessageDelivered: no copy, no ArchivePut), stamp"
        " (MamService.transform returns the message as it is: no <stanza-id/>)",
    )
    parser.add_argument(
        "--unshared",
        action="store_true",
        help="as the sixth pass measured: no shared_writes() scope, no delivery serialised",
    )
    parser.add_argument("--writer", action="store_true", help="the archive writer thread")
    parser.add_argument("--batch", type=int, default=0, help="[mam] writer_batch, loop_batch")
    parser.add_argument("--stalls", action="store_true", help="longest commit/flush calls")
    args = parser.parse_args()
    _ablate(args.ablate)
    if args.stalls:
        stalls: list[float] = []
        setup(True, args.users, args.unshared, args.writer, stalls, args.batch)(args.n)
        stalls.sort()
        p99 = stalls[int(len(stalls) * 0.99)] if stalls else 0.0
        print(
            f"commit/flush calls on the main thread: {len(stalls)}, CPU ms p99 {p99 * 1e3:.2f}"
            f" max {max(stalls, default=0.0) * 1e3:.2f} ({args.n} messages)"
        )
        return
    if args.instructions:
        tree = (args.tree or Path(__file__).resolve().parents[1]).resolve()
        rest = [a for a in sys.argv[1:] if a not in ("--instructions", args.instructions)]
        if args.tree is not None:
            rest = [a for a in rest if a not in ("--tree", str(args.tree))]
        rest = [a for a in rest if not a.startswith(("--instructions=", "--tree="))]
        per = instructions(tree, args.instructions, rest)
        print(f"archiving {args.instructions}: {per:,} instructions a message ({tree})")
        return
    if args.once:
        setup(args.once == "on", args.users, args.unshared, args.writer, batch=args.batch)(args.n)
        return
    if args.profile:
        run = setup(args.profile == "on", args.users, args.unshared, args.writer, batch=args.batch)
        prof = cProfile.Profile()
        prof.runcall(run, args.n)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    if args.writer:
        _time_the_writer()
    for name in ("off", "on"):
        run = setup(name == "on", args.users, args.unshared, args.writer, batch=args.batch)
        best = min(_timed(run, args.n) for _ in range(5))
        writer = f", writer thread {best[2]:.2f}" if args.writer else ""
        print(
            f"archiving {name}: {best[0]:.2f} us CPU/message, main thread {best[1]:.2f}"
            f"{writer} (best of 5 x {args.n})"
        )


def instructions(tree: Path, mode: str, rest: list[str]) -> int:
    """Instructions a message under callgrind: runs of 800 and 2,000 messages
    (``--once``), the difference over 1,200 (the setup and warm-up cancel),
    string hashing seeded (dict probes, so the count, vary by a few thousand
    instructions a run without it)."""
    counts = []
    for n in (800, 2000):
        command = [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable),
            *(str(tree / "benchmarks" / "mam_cost.py"), "--once", mode, *rest, "--n", str(n)),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        assert found is not None, "valgrind printed no count"
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) // 1200


#: CPU seconds the writer thread spent in its batches (and idle merges): --writer.
_WRITER_CPU = [0.0]


def _time_the_writer() -> None:
    """Count the writer thread's CPU in ``write_batch`` (and ``merge_idle``,
    session 9) with ``time.thread_time()``."""
    from xmpp_trio.stores.mam import SqliteArchiveStorage

    for name in ("write_batch", "merge_idle"):
        method = getattr(SqliteArchiveStorage, name, None)
        if method is None:
            continue

        def timed(*args: object, _method: Callable[..., None] = method) -> None:
            t = time.thread_time()
            try:
                _method(*args)
            finally:
                _WRITER_CPU[0] += time.thread_time() - t

        setattr(SqliteArchiveStorage, name, timed)


def _timed(run: Callable[[int], None], n: int) -> tuple[float, float, float]:
    t, main, _WRITER_CPU[0] = time.process_time(), time.thread_time(), 0.0
    run(n)
    per = (time.process_time() - t, time.thread_time() - main, _WRITER_CPU[0])
    return per[0] / n * 1e6, per[1] / n * 1e6, per[2] / n * 1e6


if __name__ == "__main__":
    main()
