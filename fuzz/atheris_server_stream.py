"""Coverage-guided fuzzing of the server stream machine with atheris (libFuzzer).

    pip install atheris
    python fuzz/atheris_server_stream.py fuzz/corpus/server_stream -max_total_time=600

Each input is one client stream: its first byte is the number of cuts, then
two bytes per cut, then the bytes a client sends (see
``server_stream_target``). ``server_stream_target.check`` drives a
``ServerConnection`` over direct TLS, answers its requests as an I/O layer
would and asserts the invariants. Set ``FUZZ_STRICT=1`` to also fail on the
known missing-header-after-restart bug (see fuzz/README.md). Importing this
file without atheris installed works (it is only needed when run).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["xmpp_sansio", "server_stream_target"]):
        import server_stream_target

    def one_input(data: bytes, target: Any = server_stream_target) -> None:
        target.check(data)

    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
