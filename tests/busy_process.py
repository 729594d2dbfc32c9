"""A stand-in for a busy server in the load generator's tests
(tests/test_load_gen.py, tests/test_load_generator.py): a real process whose
CPU the generators' settle reads from ``/proc``."""

from __future__ import annotations

import subprocess
import sys


def burner(seconds: float) -> subprocess.Popen[bytes]:
    """A process using a whole core for ``seconds`` (forever if negative), then idle."""
    code = (f"import time\nend = time.monotonic() + {seconds}\n"
            f"while {seconds} < 0 or time.monotonic() < end: pass\ntime.sleep(120)")  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", code])
