"""Throughput of the XML stream parser against a bare stdlib pull parser.

    python benchmarks/parser_bench.py            # full run (~20 s)
    python benchmarks/parser_bench.py --quick    # ~2 s, for CI

A realistic c2s stream (chat messages of varied sizes, some carrying chat
states, receipts, origin-ids or delays, and presences with entity caps) is fed
in 4 KiB chunks to:

* baseline: ``xml.etree.ElementTree.XMLPullParser(events=("start", "end"))``
  building the same elements (also C expat + C TreeBuilder), counting depth-1
  ends and deleting completed top-level children from the root, so that both
  keep the same memory;
* ``StreamParser(hold=False)`` with its default limits, i.e. every protection
  on (restricted-XML checks, size and depth limits, prolog vetting);
* ``StreamParser(hold=True)`` for information: the mode a stream connection
  uses during negotiation (one ``>`` at a time).

Each is run 5 times, interleaved, and the best run counts. Nothing is
asserted and the script always exits 0 (a stanza-count mismatch is printed,
the tests are what catch it).
"""

from __future__ import annotations

import argparse
import platform
import pyexpat
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from xml.etree.ElementTree import XMLPullParser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xmpp_sansio.xml.parser import StreamParser

CHUNK = 4096
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' from='example.com'"
    b" to='juliet@example.com' id='c2s-4a7b' version='1.0' xml:lang='en'>"
)
_TEXT = (
    "the quick brown fox jumps over a lazy dog hello there how are you "
    "ok lol see you tomorrow meeting at 10 caf\u00e9 na\u00efve \u00fcber "
    '\u043f\u0440\u0438\u0432\u0435\u0442 \u4f60\u597d \U0001f600 \u2764\ufe0f & <3 "quoted"'
)
WORDS = _TEXT.split()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _body(rng: random.Random) -> str:
    # Mostly short chat lines, a tail of long pastes.
    n = min(int(rng.lognormvariate(2.0, 1.1)) + 1, 400)
    return _escape(" ".join(rng.choice(WORDS) for _ in range(n)))


def build_stream(n: int, seed: int = 6120) -> tuple[bytes, int]:
    """A stream of ``n`` stanzas; returns it with the number of stanzas."""
    rng = random.Random(seed)
    parts = [HEADER]
    for i in range(n):
        peer = f"{rng.choice(['romeo', 'nurse', 'tybalt', 'mercutio'])}@example.net"
        roll = rng.random()
        if roll < 0.12:
            caps = (
                "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1'"
                " node='https://gajim.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>"
            )
            show = rng.choice(["", "<show>away</show>", "<show>dnd</show><status>busy</status>"])
            parts.append(
                f"<presence from='{peer}/laptop' to='juliet@example.com/balcony'>"
                f"{show}<priority>{rng.randint(0, 10)}</priority>{caps}</presence>".encode()
            )
            continue
        if roll < 0.22:
            state = rng.choice(["composing", "paused", "active", "inactive", "gone"])
            parts.append(
                f"<message from='{peer}/phone' to='juliet@example.com' type='chat' id='cs{i}'>"
                f"<{state} xmlns='http://jabber.org/protocol/chatstates'/></message>".encode()
            )
            continue
        if roll < 0.30:
            parts.append(
                f"<message from='{peer}/phone' to='juliet@example.com' id='rc{i}'>"
                f"<received xmlns='urn:xmpp:receipts' id='m{i - 1}'/></message>".encode()
            )
            continue
        extras = []
        if rng.random() < 0.5:
            extras.append("<active xmlns='http://jabber.org/protocol/chatstates'/>")
        if rng.random() < 0.4:
            extras.append("<request xmlns='urn:xmpp:receipts'/>")
        if rng.random() < 0.6:
            extras.append(
                f"<origin-id xmlns='urn:xmpp:sid:0' id='{uuid.UUID(int=rng.getrandbits(128))}'/>"
            )
        if rng.random() < 0.1:
            extras.append(
                "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2024-05-01T10:00:00Z'/>"
            )
        thread = f"<thread>{rng.getrandbits(64):016x}</thread>" if rng.random() < 0.3 else ""
        parts.append(
            f"<message from='{peer}/phone' to='juliet@example.com' type='chat' id='m{i}'"
            f" xml:lang='en'><body>{_body(rng)}</body>{thread}{''.join(extras)}</message>".encode()
        )
        if rng.random() < 0.05:
            parts.append(b" ")  # a whitespace keepalive
    return b"".join(parts), n


def chunks_of(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def run_baseline(chunks: list[bytes]) -> int:
    pull: XMLPullParser[Any] = XMLPullParser(events=("start", "end"))
    read = cast("Callable[[], Iterator[tuple[str, Any]]]", pull.read_events)
    depth = 0
    count = 0
    root = None
    for chunk in chunks:
        pull.feed(chunk)
        for kind, el in read():
            if kind == "start":
                depth += 1
                if depth == 1:
                    root = el
            else:
                depth -= 1
                if depth == 1:
                    count += 1
        if root is not None and len(root):
            del root[:]
    return count


def make_stream_parser_run(hold: bool) -> Callable[[list[bytes]], int]:
    def run(chunks: list[bytes]) -> int:
        parser = StreamParser(hold=hold)
        feed = parser.feed
        pull = parser.next_event
        count = -1  # the header is an event too
        for chunk in chunks:
            feed(chunk)
            while pull() is not None:
                count += 1
        return count

    return run


def best_of(
    runs: dict[str, Callable[[list[bytes]], int]], chunks: list[bytes], repeat: int
) -> tuple[dict[str, float], dict[str, int]]:
    best = {name: float("inf") for name in runs}
    counts: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in runs.items():  # interleaved: drift hits every contender alike
            t0 = time.perf_counter()
            counts[name] = fn(chunks)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, counts


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a ~2 s run for CI")
    ap.add_argument(
        "-n", type=int, default=None, help="stanzas in the stream (default 100000, quick 5000)"
    )
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.n or (5000 if args.quick else 100_000)

    data, expected = build_stream(n)
    chunks = chunks_of(data)
    runs = {
        "baseline XMLPullParser": run_baseline,
        "StreamParser hold=False": make_stream_parser_run(False),
        "StreamParser hold=True": make_stream_parser_run(True),
    }
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), {pyexpat.EXPAT_VERSION}"
    )
    print(
        f"stream: {n} stanzas, {len(data) / 1e6:.2f} MB, {len(data) / n:.0f} B/stanza avg,"
        f" fed in {CHUNK} B chunks; best of {args.repeat}, interleaved"
    )
    best, counts = best_of(runs, chunks, args.repeat)
    for name, secs in best.items():
        print(
            f"  {name:<26} {expected / secs:>11,.0f} stanzas/s {len(data) / secs / 1e6:>8.1f} MB/s"
            f"   ({secs * 1000:.1f} ms)"
        )
        if counts[name] != expected:
            print(f"  !! {name} counted {counts[name]} stanzas, expected {expected}")
    base = best["baseline XMLPullParser"]
    print(
        f"ratio StreamParser(hold=False) / baseline: {base / best['StreamParser hold=False']:.2f}"
    )
    print(f"ratio StreamParser(hold=True)  / baseline: {base / best['StreamParser hold=True']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
