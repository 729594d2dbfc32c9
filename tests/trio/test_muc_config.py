"""The ``[muc]`` section: defaults, every key reaching the service's
settings, and precise errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_trio.config import ConfigError, ServerConfig, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["example.org"]\n{text}\n')
    return path


def test_multi_user_chat_is_on_at_conference_of_the_first_domain_by_default(tmp_path: Path) -> None:
    assert ServerConfig().muc_domain == "conference.localhost"
    assert load_config(write(tmp_path, "")).muc_domain == "conference.example.org"


def test_it_can_be_moved_or_turned_off(tmp_path: Path) -> None:
    assert (
        load_config(write(tmp_path, '[muc]\ndomain = "Rooms.Example.org"')).muc_domain
        == "rooms.example.org"
    )
    assert load_config(write(tmp_path, "[muc]\nenabled = false")).muc_domain is None


def test_every_key_reaches_the_service_settings(tmp_path: Path) -> None:
    text = """[muc]
room_creators = "admins"
admins = ["boss@example.org/laptop"]
max_rooms = 5
max_rooms_per_user = 2
max_occupants = 40
max_history = 7
max_subject_length = 99
max_nick_length = 12
default_persistent = true
default_public = false
default_members_only = true
default_moderated = true
default_whois = "anyone"
default_max_users = 30
default_history_length = 5
default_allow_invites = true
default_change_subject = true
default_allow_pm = "moderators"
default_archiving = false
"""
    settings = load_config(write(tmp_path, text)).muc.settings
    assert settings.creators == "admins" and settings.admins == {JID.parse("boss@example.org")}
    limits = settings.limits
    assert (
        limits.max_rooms,
        limits.max_rooms_per_user,
        limits.max_occupants,
        limits.max_history,
    ) == (5, 2, 40, 7)
    assert (limits.max_subject_length, limits.max_nick_length) == (99, 12)
    c = settings.default_config
    assert (c.persistent, c.public, c.members_only, c.moderated, c.whois) == (
        True,
        False,
        True,
        True,
        "anyone",
    )
    assert (c.max_users, c.history_length, c.allow_invites, c.change_subject, c.allow_pm) == (
        30,
        5,
        True,
        True,
        "moderators",
    )
    assert c.archiving is False and ServerConfig().muc.settings.default_config.archiving


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[muc]\ndomain = "example.org"', "muc.domain"),
        ('[muc]\nroom_creators = "everyone"', "muc.room_creators"),
        ('[muc]\nadmins = ["@bad"]', "muc.admins"),
        ("[muc]\nmax_occupants = 1", "muc.max_occupants"),
        ("[muc]\nmax_occupants = 10\ndefault_max_users = 20", "muc.default_max_users"),
        ('[muc]\ndefault_whois = "nobody"', "muc.default_whois"),
        ("[muc]\nmax_roomz = 3", "muc.max_roomz"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert raised.value.key == key
