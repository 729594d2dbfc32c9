"""The ``[components]`` section (XEP-0114 components, issue 20) and the
``component`` listener kind: loaded, checked, secrets never repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_sansio.server.component import ComponentSettings, OnConflict, WhenAway
from xmpp_trio.config import ConfigError, ListenerConfig, load_config

SECRET = "correct horse battery staple"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["example.org"]\n{text}\n')
    return path


def test_no_components_by_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.components.domains == ()
    assert config.components.settings == ComponentSettings()


def test_components_their_secrets_settings_and_listener_load(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            f"""
[components]
when_away = "queue"
max_queue = 5
on_conflict = "replace"
secrets = {{ "GW.Example.ORG" = "{SECRET}", "echo.example.org" = "other" }}

[[listeners]]
kind = "component"
address = "127.0.0.1"
port = 5347
""",
        )
    )
    assert config.components.domains == ("echo.example.org", "gw.example.org")
    assert config.components.secrets["gw.example.org"] == SECRET
    assert config.components.settings == ComponentSettings(WhenAway.QUEUE, 5, OnConflict.REPLACE)
    assert config.listeners == (ListenerConfig("component", "127.0.0.1", 5347),)
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[components]\nwhen_away = "drop"', "components.when_away", "bounce, queue"),
        ('[components]\non_conflict = "both"', "components.on_conflict", "refuse, replace"),
        ("[components]\nmax_queue = -1", "components.max_queue", "between"),
        ("[components]\nmax_qeue = 1", "components.max_qeue", "did you mean 'max_queue'"),
        (f'[components.secrets]\n"example.org" = "{SECRET}"', None, "account domain"),
        (f'[components.secrets]\n"bot@gw.example.org" = "{SECRET}"', None, "bare domain"),
        ('[components.secrets]\n"gw.example.org" = ""', None, "non-empty"),
        (f'[components.secrets]\n"conference.example.org" = "{SECRET}"', None, "a service"),
        ('[components.secrets]\n"gw.example.org" = 5', None, "non-empty"),
    ],
)
def test_bad_component_settings_are_named_without_the_secret(
    tmp_path: Path, text: str, key: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    if key is not None:
        assert info.value.key == key
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("domain", "extra"),
    [
        ("conference.example.org", ""),  # multi-user chat, on by default
        ("pubsub.example.org", ""),  # publish-subscribe, on by default
        ("vjud.example.org", ""),  # the user directory, on by default
        ("echo.example.org", "echo_service = true\n"),
        ("upload.example.org", "[http]\nupload = true\n"),
    ],
)
def test_a_component_may_not_take_a_service_domain_of_the_server(
    tmp_path: Path, domain: str, extra: str
) -> None:
    text = f'{extra}\n[components]\nsecrets = {{ "{domain}" = "{SECRET}" }}\n'
    if extra.startswith("[http]"):  # keep [components] out of the [http] table
        text = f'[components]\nsecrets = {{ "{domain}" = "{SECRET}" }}\n\n{extra}'
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert f"{domain} is a service of this server" in str(raised.value)
    assert SECRET not in str(raised.value)
