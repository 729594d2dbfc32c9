"""Instructions a message costs with one message in flight (issue 24, session 12).

The real server (in this process, direct TLS on loopback, archives on) and
two of our clients without XEP-0198: romeo sends one chat message to juliet,
waits until juliet has it, sends the next; every message is a read of its
own on the server (one wake-up of romeo's reader) and a write of its own.
``--instructions`` runs it under ``valgrind --tool=callgrind`` for 100 and
400 messages and prints the difference over 300 (the logins cancel out):
instructions a message, server and clients together (the clients' share is
the same in every tree, so a difference between trees is the server's).

    python3 benchmarks/wake_cost.py --instructions /tmp/base-x1 .
    python3 benchmarks/wake_cost.py --messages 2000 .   # one timed run, no valgrind
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

RUN = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import trio
from _server import PASSWORDS, running_server
import xml.etree.ElementTree as ET
from xmpp_trio.client import open_client

N = int(sys.argv[2])

async def main() -> None:
    async with running_server(4096) as running:
        options = dict(host="127.0.0.1", port=running.port, direct_tls=True,
                       ssl_context=running.client_context(), stream_management=False)
        async with open_client("juliet@localhost/in", PASSWORDS["juliet"], **options) as juliet, \
                open_client("romeo@localhost/out", PASSWORDS["romeo"], **options) as romeo:
            got = juliet.__aiter__()
            start = time.thread_time()
            for i in range(N):
                msg = ET.Element("{jabber:client}message", {"to": "juliet@localhost/in", "type": "chat"})
                ET.SubElement(msg, "{jabber:client}body").text = "y" * 120
                await romeo.send(msg)
                while (await got.__anext__()).tag != "{jabber:client}message":
                    pass
            print(f"{(time.thread_time() - start) / N * 1e6:.1f} us of CPU a message")

trio.run(main)
"""


def run(tree: str, n: int, callgrind: bool) -> str:
    command = [sys.executable, "-c", RUN, tree, str(n)]
    if callgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    env = os.environ | {"PYTHONHASHSEED": "0", "PYTHONPATH": tree}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return done.stdout + done.stderr


def instructions(tree: str, n: int) -> int:
    found = re.search(r"Collected : (\d+)", run(tree, n, True))
    assert found is not None, "valgrind printed no count"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", action="store_true", help="callgrind, 400 - 100 messages")
    parser.add_argument("--messages", type=int, default=2000, help="messages of a timed run")
    parser.add_argument("trees", nargs="+")
    args = parser.parse_args()
    for tree in args.trees:
        if args.instructions:
            per = (instructions(tree, 400) - instructions(tree, 100)) / 300
            print(f"{tree}: {per:,.0f} instructions a message")
        else:
            print(f"{tree}: {run(tree, args.messages, False).strip()}")


if __name__ == "__main__":
    main()
