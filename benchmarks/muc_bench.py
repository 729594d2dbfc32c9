"""Multi-user chat load (issue 14): messages/s fanned out in a room of 100
and of 1,000 occupants, and joins/s, beside Prosody's ``muc`` component in
the same run, with the generator's CPU reported.

    python benchmarks/muc_bench.py                        # ours and Prosody, rooms of 100 and 1000
    python benchmarks/muc_bench.py --quick                # a room of 100, short windows
    python benchmarks/muc_bench.py --targets ours --room-sizes 100

It runs the load harness (``benchmarks/load/run.py``: servers pinned to CPU
0, the epoll generator to CPU 1) with two scenarios registered here:

* ``muc-joins``: u0 creates ``bench@conference.localhost`` (and submits the
  configuration: an instant room, max users = the room size), then the other
  N-1 clients join at once with ``<history maxstanzas='0'/>``: joins/s until
  the last one has its own presence (status 110). Each join is broadcast to
  everyone already in, so the work grows with N².
* ``muc-fanout``: the same room, full; ``--muc-senders`` occupants each keep
  ``--muc-inflight`` groupchat messages in flight (a sender sends the next
  when the room reflects one back to it): delivered occupant-messages/s
  (every copy the N occupants get), the room's messages/s.

Prosody gets ``Component "conference.localhost" "muc"`` added to its
generated configuration (no rate limits: mod_muc_limits is not loaded).
Figures where the generator's CPU passes 80% are the generator's, not the
server's: the report says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "load"))

import run
import targets
from generator import Client, CpuWindow, Engine, Job, idle, login_many
from scenarios import Run, Scenario, cpu_text, register

ROOM = f"bench@conference.{targets.DOMAIN}"
MUC = "http://jabber.org/protocol/muc"

targets.PROSODY_CONFIG += (
    '\nComponent "conference.{domain}" "muc"\n    restrict_room_creation = false\n'
)


def _join(index: int) -> bytes:
    return (f"<presence to='{ROOM}/u{index}'><x xmlns='{MUC}'><history maxstanzas='0'/>"
            "</x></presence>").encode()  # fmt: skip


def _config(size: int) -> bytes:
    return (f"<iq type='set' id='cfg' to='{ROOM}'><query xmlns='{MUC}#owner'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            f"<field var='muc#roomconfig_maxusers'><value>{size}</value></field>"
            "</x></query></iq>").encode()  # fmt: skip


class Room:
    """The generator's view: who has its own presence (110), the config answer,
    and a per-client tail so markers split across reads are still found."""

    def __init__(self, engine: Engine, clients: list[Client]) -> None:
        self.engine = engine
        self.clients = clients
        self.joined: set[int] = set()
        self.configured = False
        self.tails: dict[int, bytes] = {}
        self.watch: list[tuple[bytes, int]] = []  # (marker, client index) for fan-out
        self.delivered = 0
        self.measuring = False
        self.on_echo: Any = None
        engine.on_data = self.data

    def data(self, client: Client, chunk: bytes) -> None:
        tail = self.tails.get(client.index, b"")
        data = tail + chunk
        self.tails[client.index] = data[-48:]
        if client.index not in self.joined and (b"code='110'" in data or b'code="110"' in data):
            self.joined.add(client.index)
        if not self.configured and client.index == 0 and (b"id='cfg'" in data or b'id="cfg"' in data):
            self.configured = True
        # Fan-out: copies of benchmark messages (body "m<sender>x<seq>") in this read.
        count = chunk.count(b"<body>m")
        if count:
            if self.measuring:
                self.delivered += count
            if self.on_echo is not None:
                mine = data.count(b"<body>m%dx" % client.index) - tail.count(b"<body>m%dx" % client.index)
                if mine:
                    self.on_echo(client.index, mine)


def _wait(engine: Engine, done: Any, limit: float) -> bool:
    end = time.perf_counter() + limit
    while not done():
        if time.perf_counter() > end:
            return False
        engine.poll(0.05)
    return True


def _fill_room(job: Job) -> tuple[Engine, list[Client], Room, float, dict[str, float]]:
    """Log in ``job.count`` clients, create and configure the room, everyone
    joins; returns the join wall time of the N-1 concurrent joins."""
    engine = Engine(job)
    login = login_many(engine, range(job.count), job.concurrency)
    if login.failures:
        engine.close_all()
        raise RuntimeError(f"{login.failures} of {job.count} logins failed: {login.first_error}")
    clients = login.clients
    idle(engine, 0.3)
    room = Room(engine, clients)
    engine.send(clients[0], _join(0))
    if not _wait(engine, lambda: 0 in room.joined, 30):
        raise RuntimeError("u0 could not create the room")
    engine.send(clients[0], _config(job.count))
    if not _wait(engine, lambda: room.configured, 30):
        raise RuntimeError("the room's configuration was not answered")
    window = CpuWindow(job.server_pid)
    start = time.perf_counter()
    for client in clients[1:]:
        engine.send(client, _join(client.index))
    if not _wait(engine, lambda: len(room.joined) == len(clients), 600):
        raise RuntimeError(f"only {len(room.joined)} of {len(clients)} occupants joined")
    wall = time.perf_counter() - start
    return engine, clients, room, wall, window.close()


def joins_scenario(job: Job) -> dict[str, Any]:
    engine, clients, _room, wall, cpu = _fill_room(job)
    engine.close_all()
    joins = len(clients) - 1
    return {"occupants": len(clients), "joins": joins, "wall_s": wall, "joins_per_s": joins / wall, **cpu}


def fanout_scenario(job: Job) -> dict[str, Any]:
    engine, clients, room, _wall, _cpu = _fill_room(job)
    idle(engine, 0.5)  # the last presence broadcasts
    senders = clients[: job.extra["senders"]]
    seq = [0] * len(clients)
    sent = 0

    def send(index: int, n: int) -> None:
        nonlocal sent
        out = []
        for _ in range(n):
            seq[index] += 1
            out.append(f"<message to='{ROOM}' type='groupchat'><body>m{index}x{seq[index]}</body></message>")
        engine.send(clients[index], "".join(out).encode())
        sent += n

    room.on_echo = send
    for client in senders:
        send(client.index, job.inflight)
    start = time.perf_counter()
    measure_at, stop_at = start + job.warmup, start + job.duration
    window: CpuWindow | None = None
    t0 = t1 = start
    cpu: dict[str, float] = {}
    first_sent = 0
    while True:
        engine.poll(0.05)
        now = time.perf_counter()
        if window is None and now >= measure_at:
            window, room.measuring, t0, first_sent = CpuWindow(job.server_pid), True, now, sent
        if now >= stop_at:
            room.measuring, t1 = False, now
            assert window is not None
            cpu = window.close()
            break
    room.on_echo = None
    idle(engine, 0.5)
    engine.close_all()
    seconds = t1 - t0
    return {
        "occupants": len(clients),
        "senders": len(senders),
        "inflight": job.inflight,
        "window_s": seconds,
        "room_msgs_per_s": (sent - first_sent) / seconds,
        "delivered_per_s": room.delivered / seconds,
        **cpu,
    }


def _sizes(opts: argparse.Namespace) -> list[int]:
    if opts.room_sizes:
        return [int(s) for s in opts.room_sizes.split(",")]
    return [100] if opts.quick else [100, 1000]


def _expand(kind: str) -> Any:
    def expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
        mech = opts.mechanism or target.default_mechanism
        duration = opts.duration or (3.0 if opts.quick else 10.0)
        return [
            Run(str(size), "starttls", mech, {
                "count": size, "inflight": opts.muc_inflight,
                "duration": duration, "warmup": min(2.0, duration / 3),
                "extra": {"senders": opts.muc_senders},
            })
            for size in _sizes(opts)
        ]  # fmt: skip

    return expand


def _generator_note(result: dict[str, Any]) -> str:
    if result.get("generator_cpu", 0) > 0.8:
        return " GENERATOR-BOUND (generator CPU over 80%: not the server's figure)"
    return ""


def _options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--room-sizes", default=None, help="muc: occupants per room (100,1000)")
    group.add_argument("--muc-senders", type=int, default=5, help="muc-fanout: senders (5)")
    group.add_argument("--muc-inflight", type=int, default=2, help="muc-fanout: in flight per sender (2)")


register(Scenario(
    name="muc-joins",
    description="N occupants join one room (N-1 at once): joins/s",
    run=joins_scenario,
    expand=_expand("joins"),
    report=lambda v, r: [f"{r['joins']} joins into a room of {r['occupants']} in {r['wall_s']:.2f} s:"
                         f" {r['joins_per_s']:,.0f} joins/s{cpu_text(r)}{_generator_note(r)}"],
    figures=lambda v, r, o: {} if r.get("generator_cpu", 0) > 0.8 else {f"muc room {v} joins/s": r["joins_per_s"]},
    accounts=lambda opts: max(_sizes(opts)),
    options=_options,
    prefixes=("muc room ",),
))  # fmt: skip

register(Scenario(
    name="muc-fanout",
    description="groupchat in a full room, closed loop: occupant-messages delivered/s",
    run=fanout_scenario,
    expand=_expand("fanout"),
    report=lambda v, r: [f"room of {r['occupants']}, {r['senders']} senders x {r['inflight']} in flight,"
                         f" {r['window_s']:.1f} s: {r['room_msgs_per_s']:,.0f} room msgs/s,"
                         f" {r['delivered_per_s']:,.0f} delivered/s{cpu_text(r)}{_generator_note(r)}"],
    figures=lambda v, r, o: {} if r.get("generator_cpu", 0) > 0.8 else {
        f"muc fanout {v} delivered/s": r["delivered_per_s"]},
    accounts=lambda opts: max(_sizes(opts)),
    prefixes=("muc fanout ",),
))  # fmt: skip


if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a.startswith("--scenarios") for a in argv):
        argv = ["--scenarios", "muc-joins,muc-fanout", *argv]
    if not any(a.startswith("--targets") for a in argv):
        argv = ["--targets", "ours,prosody", *argv]
    sys.argv = [sys.argv[0], *argv]
    raise SystemExit(run.main())
