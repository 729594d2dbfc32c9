"""What the pieces every archived message needs cost in instructions
(issue 17: the floor of an archive path built on ElementTree elements).

Each piece is measured alone under callgrind, in the server's own code: a
fresh message as the stream's parser hands it over (``to``, ``type``,
``id``, the router's ``from``, a 120-character body), then one piece done
to it, against the same loop without that piece; runs of 500 and 2,000
messages, the difference over 1,500 (setup and warm-up cancel), string
hashing seeded:

- ``scope``: the ``shared_writes()`` scope the server opens around every
  stanza (xmpp_trio/_session.py), empty: every stanza pays it, archives or not.
- ``serialise``: the delivery written inside that scope (what every message
  costs the recipient's stream, archives or not).
- ``transform``: ``MamService.transform`` stamping the message (the child
  scan, the recipient's preferences, an id, the ``<stanza-id/>`` made).
- ``stamp-make``: making that ``<stanza-id/>`` alone (a ``Prewritten``
  element, as the transform makes it) and appending it (with one Python
  call the transform does not make: a few hundred instructions more).
- ``stamp-write``: writing the stamped message, minus writing it unstamped
  (the stamp made outside the count).
- ``copy``: the archive's copy (``archived_bytes``) after the delivery was
  written: the shared write found again and the namespace declared.

``stamp-make + stamp-write + copy`` is what an archive that keeps the
message as the delivery wrote it, and stamps it as XEP-0359 requires, costs
at least while a stanza is an ``Element``; docs/benchmarks.md "Session 19"
sets it against the budget a 20% overhead leaves at four messages in
flight.

    python benchmarks/mam_floor.py            # every piece (about 10 minutes on 2 cores)
    python benchmarks/mam_floor.py copy scope # some of them
    python benchmarks/mam_floor.py --once copy --n 500   # one run (for callgrind)

Nothing is asserted."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Router
from xmpp_sansio.server.mam.service import SID, MamLimits, MamService, archived_bytes
from xmpp_sansio.server.stages import Context
from xmpp_sansio.xml.ns import CLIENT
from xmpp_sansio.xml.writer import Prewritten, attribute_text, serialize, shared_writes
from xmpp_trio.config import ServerConfig
from xmpp_trio.services import build_services, open_database
from xmpp_trio.storage import AccountStore

C = "{jabber:client}"
#: Each piece: the modes added and the modes taken away.
PIECES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "scope": (("scope",), ("base",)),
    "serialise": (("serialise",), ("scope",)),
    "transform": (("transform",), ("base",)),
    "stamp-make": (("stamp",), ("base",)),
    # (made and written) - made - (written unstamped - nothing)
    "stamp-write": (("serialise-stamped", "base"), ("stamp", "serialise")),
    "copy": (("copy",), ("serialise",)),
}
FLOOR = ("stamp-make", "stamp-write", "copy")
MODES = sorted({mode for plus, minus in PIECES.values() for mode in plus + minus})
N1, N2 = 500, 2000


def stamp_attrs(sid: str, by: str) -> str:
    """The ``<stanza-id/>``'s attributes as written (the transform keeps them
    made: the id's with its pool, the ``by``'s with the account)."""
    return attribute_text("id", sid) + attribute_text("by", by)


def make_stamp(msg: ET.Element, sid: str, by: str, attrs: str) -> None:
    """Append ``<stanza-id id=sid by=by/>`` (``attrs``: :func:`stamp_attrs`)
    to ``msg`` as ``MamService.transform`` makes it (a ``Prewritten`` element)."""
    made = Prewritten(SID, {"id": sid, "by": by})
    made.source = ("id", sid, "by", by)
    made.attrs = attrs
    msg.append(made)


def archiving(data_dir: Path) -> tuple[MamService, Context]:
    """The bundled services over SQLite in ``data_dir``, archives on, and a
    router with ``a@localhost/r`` and ``b@localhost/r`` online: its archive
    service and the Context its stages get."""
    config = ServerConfig(
        domains=("localhost",),
        data_dir=data_dir,
        scram_iterations=4096,
        mam=MamLimits(enabled=True),
    )
    store = AccountStore.open(config.database_path)
    for user in ("a", "b"):
        store.create(user, "localhost", "pw-pw-pw", iterations=4096)
    services = build_services(config, store, open_database(config))
    router = Router(
        config.domains,
        rng=secrets.token_bytes,
        account_exists=lambda local, domain: store.exists(local, domain),
        services=services.services,
        clock=services.clock,
    )
    for session, user in enumerate(("a", "b"), 1):
        router.bind(session, JID.parse(f"{user}@localhost/r"))
        router.route(session, ET.Element(C + "presence"))
    mam = next(s for s in services.services if isinstance(s, MamService))
    return mam, router._ctx


def message(body: str) -> ET.Element:
    """A chat message from a to b as the router has it: parsed, ``from`` stamped."""
    msg = ET.Element(C + "message", {"to": "b@localhost/r", "type": "chat", "id": "x"})
    ET.SubElement(msg, C + "body").text = body
    msg.set("from", "a@localhost/r")  # the router's stamp (Router._route, owned)
    return msg


def setup(mode: str, data_dir: Path | None = None) -> Callable[[int], None]:
    """The loop of ``mode``: a fresh message a turn, one piece done to it
    (the accounts' database in ``data_dir``, else a new temporary directory)."""
    mam, ctx = archiving(data_dir or Path(tempfile.mkdtemp(prefix="mam-floor-")))
    sender, to = JID.parse("a@localhost/r"), JID.parse("b@localhost/r")
    scope = shared_writes()
    body = "y" * 120
    sid = secrets.token_hex(11)
    by = "b@localhost"
    attrs = stamp_attrs(sid, by)

    def stamp(msg: ET.Element) -> None:
        make_stamp(msg, sid, by, attrs)

    def serialise(msg: ET.Element) -> None:
        with scope:
            serialize(msg, CLIENT)

    def serialise_stamped(msg: ET.Element) -> None:
        # as many calls as ``stamp`` and ``serialise`` together, less the turn's
        make_stamp(msg, sid, by, attrs)
        with scope:
            serialize(msg, CLIENT)

    def copy(msg: ET.Element) -> None:
        with scope:
            serialize(msg, CLIENT)
            archived_bytes(msg)

    def empty_scope(msg: ET.Element) -> None:
        with scope:
            pass

    # One call a turn whatever the mode (the same overhead in each).
    piece: Callable[[ET.Element], object] = {
        "base": lambda msg: None,
        "scope": empty_scope,
        "serialise": serialise,
        "transform": lambda msg: mam.transform(ctx, msg, sender, to),
        "stamp": stamp,
        "serialise-stamped": serialise_stamped,
        "copy": copy,
    }[mode]

    def run(n: int) -> None:
        for _ in range(n):
            msg = message(body)
            ctx.begin(None)
            piece(msg)

    mam.transform(ctx, message(body), sender, to)  # the recipient known, an id pool drawn
    run(200)  # warm up
    return run


def count(mode: str, n: int) -> int:
    """Instructions of ``--once mode --n n`` under callgrind."""
    command = [
        *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable),
        *(str(Path(__file__).resolve()), "--once", mode, "--n", str(n)),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, "valgrind printed no count"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pieces", nargs="*", metavar="PIECE", help=", ".join(PIECES))
    parser.add_argument("--once", choices=MODES, help="one run of a mode (for callgrind)")
    parser.add_argument("--n", type=int, default=N1)
    args = parser.parse_args()
    if args.once:
        setup(args.once)(args.n)
        return
    pieces = args.pieces or list(PIECES)
    for piece in pieces:
        if piece not in PIECES:
            parser.error(f"{piece!r}: one of {', '.join(PIECES)}")
    modes = sorted({mode for piece in pieces for group in PIECES[piece] for mode in group})
    # callgrind's counts do not depend on the machine's load: one run a core
    todo = [(mode, n) for mode in modes for n in (N1, N2)]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        runs = dict(zip(todo, pool.map(lambda run: count(*run), todo), strict=True))
    per = {mode: (runs[mode, N2] - runs[mode, N1]) // (N2 - N1) for mode in modes}

    def cost(piece: str) -> int:
        plus, minus = PIECES[piece]
        return sum(per[m] for m in plus) - sum(per[m] for m in minus)

    for piece in pieces:
        print(f"{piece}: {cost(piece):,} instructions a message")
    if set(FLOOR) <= set(pieces):
        print(f"{' + '.join(FLOOR)}: {sum(map(cost, FLOOR)):,} instructions a message")


if __name__ == "__main__":
    main()
