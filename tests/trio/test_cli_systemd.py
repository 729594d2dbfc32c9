"""The systemd unit in contrib/ passes ``systemd-analyze verify`` (skipped
where systemd-analyze is missing, unless CI is set) and runs what the docs say."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "xmpp-trio.service"


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing in CI")
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


def installed_here(tmp_path: Path, text: str) -> Path:
    """The unit with ExecStart pointing at this checkout's interpreter (verify
    checks that the command exists; where xmpp-trio is installed varies)."""
    unit = tmp_path / "xmpp-trio.service"
    unit.write_text(
        text.replace(
            "ExecStart=/usr/local/bin/xmpp-trio ", f"ExecStart={sys.executable} -m xmpp_trio "
        )
    )
    return unit


def test_the_systemd_unit_verifies_cleanly(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/xmpp-trio serve --config /etc/xmpp-trio/xmpp.toml" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text  # reload = SIGHUP
    assert "LimitNOFILE=65536" in text
    assert "StateDirectory=xmpp-trio" in text and "StateDirectoryMode=0700" in text
    done = verify(installed_here(tmp_path, text))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("Type=exec", "Typo=exec")
    done = verify(installed_here(tmp_path, broken))
    assert "Typo" in done.stderr
