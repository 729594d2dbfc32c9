"""Instructions of one ``XMPPServer.apply`` call with no effects: what the
server's effect interpreter costs each effect list besides the effects
(issue 24, session 10: the deferred-work check), in a tree given on the
command line.

    python3 benchmarks/apply_cost.py [TREE]

Runs ``apply(())`` 0 and 3,000 times under ``valgrind --tool=callgrind``
(``PYTHONHASHSEED=0``) on a server built with the default services, inside
a read's batch (no commit), and prints the difference per call.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 3000

CHILD = r"""
import os, sys, pathlib, tempfile
sys.path.insert(0, sys.argv[1])
from xmpp_trio.config import ServerConfig
from xmpp_trio.server import XMPPServer
from xmpp_trio.services import build_services, open_database
from xmpp_trio.storage import AccountStore
tmp = pathlib.Path(tempfile.mkdtemp())
config = ServerConfig(domains=("localhost",), data_dir=tmp, scram_iterations=4096)
server = object.__new__(XMPPServer)
server.services = build_services(config, AccountStore.open(config.database_path),
                                 open_database(config))
class Nursery:
    def start_soon(self, *args):
        raise AssertionError("nothing was deferred")
server.nursery = Nursery()
server.batch = object()  # inside a read's batch: apply commits nothing
apply = server.apply
for _ in range(int(os.environ["N"])):
    apply(())
"""


def collected(tree: Path, n: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, "-c", CHILD, str(tree)]
    env = {**os.environ, "N": str(n), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, "valgrind printed no count"
    return int(found.group(1))


def main() -> None:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    per_call = (collected(tree, N) - collected(tree, 0)) // N
    print(f"apply(()): {per_call:,} instructions per call ({tree})")


if __name__ == "__main__":
    main()
