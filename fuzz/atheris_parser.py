"""Coverage-guided fuzzing of the XML stream parser with atheris (libFuzzer).

    pip install atheris
    python fuzz/atheris_parser.py fuzz/corpus/parser -max_total_time=600

The first bytes of each input choose the parser mode and where the input is
cut into chunks; the rest is the stream. See ``parser_target.check`` for the
invariants. Importing this file without atheris installed works (it is only
needed when run), so tooling that imports every file is not broken by it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def one_input(data: bytes, atheris: Any, target: Any) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    hold = fdp.ConsumeBool()
    cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    target.check(target.split(stream, cuts), hold=hold)


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["xmpp_sansio", "parser_target"]):
        import parser_target

    atheris.Setup(argv, lambda data: one_input(data, atheris, parser_target))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
