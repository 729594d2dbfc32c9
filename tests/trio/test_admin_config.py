"""The ``[admin]`` section: administrators and ad-hoc session limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_trio.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text('domains = ["localhost"]\n' + text, encoding="utf-8")
    return path


def test_admin_defaults_have_no_administrators(tmp_path: Path) -> None:
    admin = load_config(write(tmp_path, "")).admin
    assert admin.admins == frozenset()
    assert (admin.command_session_lifetime, admin.max_command_sessions) == (600, 10)


def test_admin_section_is_read(tmp_path: Path) -> None:
    text = '[admin]\nadmins = ["Juliet@localhost"]\ncommand_session_lifetime = 30\n'
    text += "max_command_sessions = 2\n"
    admin = load_config(write(tmp_path, text)).admin
    assert admin.admins == frozenset({JID.parse("juliet@localhost")})
    assert (admin.command_session_lifetime, admin.max_command_sessions) == (30, 2)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('admins = "juliet@localhost"', "admin.admins"),
        ('admins = ["localhost"]', "admin.admins"),
        ('admins = ["juliet@localhost/res"]', "admin.admins"),
        ("command_session_lifetime = 0", "admin.command_session_lifetime"),
        ("max_command_sessions = 0", "admin.max_command_sessions"),
        ("bogus = 1", "admin.bogus"),
    ],
)
def test_bad_admin_values_are_refused_with_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[admin]\n{text}\n"))
    assert key in str(info.value)


def test_top_level_admins_join_the_admin_section(tmp_path: Path) -> None:
    text = 'admins = ["romeo@localhost"]\n[admin]\nadmins = ["juliet@localhost"]\n'
    admin = load_config(write(tmp_path, text)).admin
    assert admin.admins == frozenset({JID.parse("juliet@localhost"), JID.parse("romeo@localhost")})


def test_bad_top_level_admins_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, 'admins = ["localhost"]\n'))
    assert "admins" in str(info.value)
