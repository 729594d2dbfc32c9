"""Tests for xmpp_trio.config: TOML loading, defaults, and precise error messages."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import platformdirs
import pytest

import xmpp_trio.config as config_module
from xmpp_trio.config import (
    DATA_DIR_ENV,
    DEFAULT_LISTENERS,
    ConfigError,
    LimitsConfig,
    ListenerConfig,
    ServerConfig,
    TLSConfig,
    load_config,
)
from xmpp_trio.http_config import HTTP_KEYS
from xmpp_trio.pubsub_config import PUBSUB_KEYS


def write(tmp_path: Path, text: str, name: str = "xmpp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def test_no_file_gives_defaults() -> None:
    config = load_config(None)
    assert config == ServerConfig(data_dir=config.data_dir)
    assert config.domains == ("localhost",)
    assert config.data_dir == Path(platformdirs.user_data_dir("xmpp-trio"))
    assert config.listeners == (  # every address, IPv4 and IPv6 (issue 23)
        ListenerConfig("c2s-starttls", "*", 5222),
        ListenerConfig("c2s-directtls", "*", 5223),
        ListenerConfig("http", "127.0.0.1", 5280),  # WebSocket and discovery (issue 18)
    )
    assert config.require_tls is True
    assert config.allow_plain is True
    assert config.allow_anonymous is False
    assert config.scram_iterations == 10000
    assert config.log_level == "info"
    assert config.tls == TLSConfig(None, None)
    assert config.limits == LimitsConfig(262144, 16384, 64, 60.0)
    assert config.config_path is None
    assert config.database_path == config.data_dir / "xmpp.sqlite3"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(path)
    assert config.domains == ("localhost",)
    assert config.listeners == DEFAULT_LISTENERS
    assert config.config_path == path
    assert config.data_dir == Path(platformdirs.user_data_dir("xmpp-trio"))


def test_env_overrides_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert load_config(None).data_dir == tmp_path / "from-env"
    assert load_config(write(tmp_path, "")).data_dir == tmp_path / "from-env"


def test_relative_env_data_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, "rel")
    assert load_config(None).data_dir == tmp_path / "rel"


def test_config_data_dir_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    config = load_config(write(tmp_path, f'data_dir = "{tmp_path / "from-file"}"'))
    assert config.data_dir == tmp_path / "from-file"


def test_full_example_from_docstring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The layout documented in the module docstring (which the README copies) must load.
    doc = config_module.__doc__
    assert doc is not None
    block = doc.split("The layout::\n", 1)[1].split("\nRelative paths", 1)[0]
    example = "\n".join(line.removeprefix("    ") for line in block.splitlines())
    assert "[[listeners]]" in example
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "cert.pem").write_text("cert")
    (sub / "key.pem").write_text("key")
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the cwd
    config = load_config(write(sub, example))
    assert config == ServerConfig(
        domains=("localhost",),
        data_dir=sub / "data",
        listeners=(ListenerConfig("c2s-starttls", "0.0.0.0", 5222),),
        require_tls=True,
        allow_plain=True,
        allow_anonymous=False,
        scram_iterations=10000,
        log_level="info",
        tls=TLSConfig(sub / "cert.pem", sub / "key.pem"),
        limits=LimitsConfig(262144, 16384, 64, 60.0),
        config_path=sub / "xmpp.toml",
    )
    assert isinstance(config.limits.negotiation_timeout, float)


def test_all_settings(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("c")
    (tmp_path / "k.pem").write_text("k")
    path = write(
        tmp_path,
        """
        domains = ["Example.ORG.", "chat.example.net", "bücher.example"]
        data_dir = "/var/lib/xmpp"
        log_level = "DEBUG"
        require_tls = false
        allow_plain = false
        allow_anonymous = true
        scram_iterations = 4096

        [tls]
        cert = "c.pem"
        key = "k.pem"

        [limits]
        max_stanza_size = 100000
        max_stanza_size_preauth = 5000
        max_depth = 32
        negotiation_timeout = 2.5

        [[listeners]]
        kind = "c2s-directtls"
        address = "::"
        port = 5223

        [[listeners]]
        kind = "c2s-starttls"
        address = "127.0.0.1"
        port = 0

        [[listeners]]
        kind = "c2s-starttls"
        address = "127.0.0.1"
        port = 0
        """,
    )
    config = load_config(path)
    assert config.domains == ("example.org", "chat.example.net", "bücher.example")
    assert config.data_dir == Path("/var/lib/xmpp")
    assert config.log_level == "debug"
    assert (config.require_tls, config.allow_plain, config.allow_anonymous) == (
        False,
        False,
        True,
    )
    assert config.scram_iterations == 4096
    assert config.tls == TLSConfig(tmp_path / "c.pem", tmp_path / "k.pem")
    assert config.limits == LimitsConfig(100000, 5000, 32, 2.5)
    assert config.listeners == (
        ListenerConfig("c2s-directtls", "::", 5223),
        ListenerConfig("c2s-starttls", "127.0.0.1", 0),
        ListenerConfig("c2s-starttls", "127.0.0.1", 0),
    )


def test_idn_domain_in_a_label_form_is_normalised(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'domains = ["xn--bcher-kva.example"]'))
    assert config.domains == ("bücher.example",)


def test_config_is_frozen() -> None:
    config = ServerConfig(data_dir=Path("/x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log_level = "debug"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.limits.max_depth = 1  # type: ignore[misc]


LISTENER = '[[listeners]]\nkind = "c2s-starttls"\naddress = "0.0.0.0"\nport = 5222\n'

ERROR_CASES: list[tuple[str, str | None, list[str]]] = [
    # (TOML text, expected ConfigError.key, substrings the message must contain)
    (
        'domain = ["x"]',
        "domain",
        ["unknown key 'domain'", "did you mean 'domains'", "valid keys", "scram_iterations"],
    ),
    (
        "[limits]\nmax_stanza = 5",
        "limits.max_stanza",
        ["unknown key 'max_stanza'", "[limits]", "max_stanza_size_preauth", "max_depth"],
    ),
    ("[tls]\ncertificate = 'x'", "tls.certificate", ["unknown key 'certificate'", "cert, key"]),
    (
        LISTENER + "tls = true\n",
        "listeners[0].tls",
        ["unknown key 'tls'", "address, kind, port"],
    ),
    ('require_tls = "yes"', "require_tls", ["true or false", "string"]),
    ("allow_anonymous = 1", "allow_anonymous", ["true or false", "integer"]),
    ("scram_iterations = 100", "scram_iterations", ["between 4096 and", "100"]),
    ("scram_iterations = 4096.5", "scram_iterations", ["must be an integer", "float"]),
    ("[limits]\nmax_depth = true", "limits.max_depth", ["must be an integer", "boolean"]),
    ("[limits]\nnegotiation_timeout = 0", "limits.negotiation_timeout", ["positive"]),
    ("[limits]\nnegotiation_timeout = 'soon'", "limits.negotiation_timeout", ["number"]),
    (
        "[limits]\nmax_stanza_size = 20000\nmax_stanza_size_preauth = 30000",
        "limits.max_stanza_size_preauth",
        ["30000", "exceeds limits.max_stanza_size (20000)"],
    ),
    ("[limits]\nmax_stanza_size = 100", "limits.max_stanza_size", ["between 10000"]),
    ('log_level = "verbose"', "log_level", ["'verbose'", "debug, info, warning, error"]),
    ("log_level = 10", "log_level", ["must be a string", "integer"]),
    ("domains = []", "domains", ["at least one domain"]),
    ('domains = "example.org"', "domains", ["array of strings", "got a string"]),
    ("domains = [1]", "domains[0]", ["must be a string", "integer"]),
    ('domains = ["ok.example", "user@example.org"]', "domains[1]", ["not a valid domain", "'@'"]),
    ('domains = ["example.org/res"]', "domains[0]", ["not a valid domain", "'/'"]),
    ('domains = ["exa mple.org"]', "domains[0]", ["not a valid domain", "whitespace"]),
    ('domains = [""]', "domains[0]", ["not a valid domain", "empty"]),
    ('domains = ["a..b"]', "domains[0]", ["empty label"]),
    ('domains = ["example.org", "EXAMPLE.org"]', "domains[1]", ["listed twice"]),
    ('domains = ["-bad-.example"]', "domains[0]", ["invalid domain name", "IDNA2008"]),
    ('tls = "cert.pem"', "tls", ["must be a table", "[tls]"]),
    ("listeners = []", "listeners", ["at least one [[listeners]]"]),
    ('listeners = "all"', "listeners", ["array of tables"]),
    (LISTENER.replace("5222", "70000"), "listeners[0].port", ["between 0 and 65535", "70000"]),
    (LISTENER.replace("5222", "-1"), "listeners[0].port", ["between 0 and 65535"]),
    (LISTENER.replace("5222", '"5222"'), "listeners[0].port", ["must be an integer", "string"]),
    (
        LISTENER.replace("c2s-starttls", "s2s"),
        "listeners[0].kind",
        ["unknown listener kind 's2s'", "c2s-starttls, c2s-directtls"],
    ),
    (LISTENER.replace('"0.0.0.0"', '""'), "listeners[0].address", ["IP address or host name"]),
    (LISTENER.replace("port = 5222\n", ""), "listeners[0]", ["missing required key 'port'"]),
    (
        LISTENER + LISTENER.replace("c2s-starttls", "c2s-directtls"),
        "listeners[1]",
        ["0.0.0.0 port 5222", "already used by listeners[0]"],
    ),
]


@pytest.mark.parametrize(("text", "key", "fragments"), ERROR_CASES)
def test_config_errors_name_the_key(
    tmp_path: Path, text: str, key: str | None, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    message = str(error)
    assert error.key == key
    assert error.path == path
    assert message.startswith(f"{path}: {key}: ")
    for fragment in fragments:
        assert fragment in message


def test_cert_without_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    with pytest.raises(ConfigError, match=r"tls: 'cert' is set but 'key' is not"):
        load_config(write(tmp_path, '[tls]\ncert = "cert.pem"'))


def test_key_without_cert(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls: 'key' is set but 'cert' is not"):
        load_config(write(tmp_path, '[tls]\nkey = "key.pem"'))


def test_missing_cert_file(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("x")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[tls]\ncert = "nope.pem"\nkey = "key.pem"'))
    assert info.value.key == "tls.cert"
    assert f"file not found: {tmp_path / 'nope.pem'}" in str(info.value)


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'domains = ["a"]\nlog_level = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
    assert re.search(r"line 2", str(info.value))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_relative_config_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 'data_dir = "d"')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("xmpp.toml"))
    assert config.config_path == tmp_path / "xmpp.toml"
    assert config.data_dir == tmp_path / "d"
    assert os.path.isabs(config.data_dir)


def test_bounds_of_issue_10_load_with_their_defaults(tmp_path: Path) -> None:
    names = {
        "max_roster_groups_per_item": 3,
        "max_roster_size": 4096,
        "max_pending_subscriptions": 7,
        "max_subscription_status": 0,
        "max_directed_presence": 9,
        "max_private_items": 11,
        "max_private_total": 2048,
        "max_unacked_bytes": 70000,
    }
    text = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in names.items())
    limits = load_config(write(tmp_path, text)).limits
    assert {k: getattr(limits, k) for k in names} == names
    defaults = load_config(None).limits
    assert (defaults.max_roster_groups_per_item, defaults.max_roster_size) == (30, 524288)
    assert (defaults.max_pending_subscriptions, defaults.max_subscription_status) == (100, 1024)
    assert (defaults.max_directed_presence, defaults.max_unacked_bytes) == (200, 8 << 20)
    assert (defaults.max_private_items, defaults.max_private_total) == (100, 1 << 20)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("max_roster_groups_per_item = 0", "limits.max_roster_groups_per_item"),
        ("max_roster_size = 100", "limits.max_roster_size"),
        ("max_directed_presence = 0", "limits.max_directed_presence"),
        ("max_private_total = 10", "limits.max_private_total"),
        ("max_unacked_bytes = 1000", "limits.max_unacked_bytes"),
        # a roster result must fit in the output buffer
        ("max_output_buffer = 100000\nmax_roster_size = 60000", "limits.max_roster_size"),
    ],
)
def test_bad_bounds_of_issue_10_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[limits]\n" + text))
    assert info.value.key == key


def test_default_roster_size_follows_a_smaller_output_buffer(tmp_path: Path) -> None:
    limits = load_config(write(tmp_path, "[limits]\nmax_output_buffer = 100000")).limits
    assert limits.max_roster_size == 50000


def test_the_readme_documents_every_config_key_and_only_those() -> None:
    """README's configuration reference and the loader agree (issue 23): each
    documented key is accepted and each accepted key is documented."""
    import re

    from xmpp_trio import config as config_module
    from xmpp_trio.admin_config import ADMIN_KEYS, DIRECTORY_KEYS
    from xmpp_trio.component_config import COMPONENT_KEYS
    from xmpp_trio.federation_config import FEDERATION_KEYS
    from xmpp_trio.gc_config import GC_KEYS
    from xmpp_trio.mam_config import MAM_KEYS
    from xmpp_trio.muc_config import MUC_KEYS
    from xmpp_trio.runtime_config import RUNTIME_KEYS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = (
        readme.split("## Configuration reference", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    )
    documented: dict[str, set[str]] = {}
    section = ""
    for line in block.splitlines():
        header = re.match(r"^\[\[?(\w+)\]\]?", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"^(\w+)\s*=", line)
        if key:
            documented.setdefault(section, set()).add(key.group(1))
    accepted = {
        "": set(config_module._TOP_KEYS)
        - {"tls", "limits", "metrics", "listeners", "http", "pubsub", "muc", "components"}
        - {"admin", "directory", "federation", "mam", "gc", "runtime"},
        "tls": set(config_module._TLS_KEYS),
        "limits": set(config_module._LIMITS_KEYS),
        "metrics": set(config_module._METRICS_KEYS),
        "pubsub": set(PUBSUB_KEYS),
        "muc": set(MUC_KEYS),
        "admin": set(ADMIN_KEYS),
        "directory": set(DIRECTORY_KEYS),
        "federation": set(FEDERATION_KEYS),
        "mam": set(MAM_KEYS),
        "gc": set(GC_KEYS),
        "runtime": set(RUNTIME_KEYS),
        "listeners": set(config_module._LISTENER_KEYS),
        "http": set(HTTP_KEYS),
        "components": set(COMPONENT_KEYS),
    }
    assert documented == accepted
