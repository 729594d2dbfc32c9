"""Tests for the xmpp-trio command line, in-process and as a real subprocess."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xmpp_sansio.sasl.credentials import HASHES, derive_scram_credentials
from xmpp_trio.certs import ensure_certificate
from xmpp_trio.cli import main
from xmpp_trio.storage import AccountStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "xmpp.toml"
    path.parent.mkdir()
    path.write_text(
        'domains = ["example.org", "localhost"]\n'
        'data_dir = "../data"\n'
        "scram_iterations = 4096\n"
        "[[listeners]]\n"
        'kind = "c2s-starttls"\n'
        'address = "127.0.0.1"\n'
        "port = 15222\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "xmpp.sqlite3"


def password_verifies(db_path: Path, local: str, domain: str, password: str) -> bool:
    with AccountStore.open(db_path) as store:
        for hash_name in HASHES:
            creds = store.credentials(local, domain, hash_name)
            if creds is None:
                return False
            expected = derive_scram_credentials(
                password, hash_name, salt=creds.salt, iterations=creds.iterations
            )
            if expected != creds:
                return False
    return True


def accounts(db_path: Path) -> list[tuple[str, str]]:
    with AccountStore.open(db_path) as store:
        return store.list_accounts()


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_module(
    args: list[str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmpp_trio", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(),
        timeout=60,
    )


# --- check -----------------------------------------------------------------------


@pytest.mark.parametrize("before", [True, False])
def test_check(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], before: bool
) -> None:
    args = (
        ["--config", str(config_path), "check"]
        if before
        else [
            "check",
            "--config",
            str(config_path),
        ]
    )
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("config OK\n")
    assert "domains: example.org, localhost" in out
    assert f"data dir: {tmp_path / 'etc' / '..' / 'data'}" in out
    assert "c2s-starttls on 127.0.0.1:15222" in out
    assert "self-signed certificate" in out
    assert "generated on first start" in out


def test_check_with_configured_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = ensure_certificate(tmp_path / "pki", ["localhost"])  # the default domain
    path = tmp_path / "x.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[tls]\ncert = "{cert}"\nkey = "{key}"\n')
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"tls: certificate {cert}, key {key}" in out
    assert "c2s-directtls on *:5223" in out  # every address, IPv4 and IPv6

    # Files that exist but are no certificate and key are caught too.
    (tmp_path / "c.pem").write_text("c")
    (tmp_path / "k.pem").write_text("k")
    path.write_text(f'data_dir = "{tmp_path}"\n[tls]\ncert = "c.pem"\nkey = "k.pem"\n')
    assert main(["check", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    assert "config OK" not in captured.out
    assert f"tls: cannot use certificate {tmp_path / 'c.pem'}" in captured.err


def test_check_refuses_a_certificate_that_does_not_name_a_domain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = ensure_certificate(tmp_path / "pki", ["example.org"])
    path = tmp_path / "x.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[tls]\ncert = "{cert}"\nkey = "{key}"\n')
    assert main(["check", "--config", str(path)]) == 1
    assert "does not name localhost" in capsys.readouterr().err


def test_check_sees_generated_certificate(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_certificate(tmp_path / "data", ["example.org"])
    assert main(["check", "--config", str(config_path)]) == 0
    assert "(generated earlier)" in capsys.readouterr().out


def test_check_reports_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[limits]\nmax_stanza = 5\n")
    assert main(["check", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "limits.max_stanza" in captured.err
    assert "unknown key 'max_stanza'" in captured.err
    assert "max_stanza_size" in captured.err
    assert str(path) in captured.err


def test_check_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "check"]) == 1
    assert "configuration file not found" in capsys.readouterr().err


def test_serve_with_bad_config_fails_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('log_level = "loud"\n')
    assert main(["serve", "--config", str(path)]) == 1
    assert "log_level" in capsys.readouterr().err


def test_subcommand_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_check_subprocess(config_path: Path, tmp_path: Path) -> None:
    result = run_module(["check", "--config", str(config_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config OK\n")
    assert "domains: example.org, localhost" in result.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text("[[listeners]]\nkind = 'c2s-starttls'\naddress = '::'\nport = 99999\n")
    result = run_module(["--config", str(bad), "check"], cwd=tmp_path)
    assert result.returncode == 1
    assert "listeners[0].port" in result.stderr
    assert "between 0 and 65535" in result.stderr


# --- adduser / passwd / deluser -------------------------------------------------------


def test_adduser_with_password_option(
    config_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["adduser", "Alice@Example.ORG", "--config", str(config_path), "--password", "s3cret"])
        == 0
    )
    assert "created account alice@example.org" in capsys.readouterr().out
    assert accounts(db_path) == [("alice", "example.org")]
    assert password_verifies(db_path, "alice", "example.org", "s3cret")
    with AccountStore.open(db_path) as store:
        creds = store.credentials("alice", "example.org", "sha256")
    assert creds is not None and creds.iterations == 4096  # from the config
    assert b"s3cret" not in db_path.read_bytes()


def test_adduser_reads_password_from_stdin(
    config_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("piped password\nignored\n"))
    assert main(["--config", str(config_path), "adduser", "bob@localhost"]) == 0
    assert password_verifies(db_path, "bob", "localhost", "piped password")


@pytest.mark.parametrize(
    ("jid", "message"),
    [
        ("carol@other.example", "'other.example' is not served"),
        ("carol@example.org/phone", "has a resource"),
        ("example.org", "has no localpart"),
        ("car ol@example.org", "invalid JID"),
        ("@example.org", "invalid JID"),
        ("carol@", "invalid JID"),
    ],
)
def test_adduser_rejects_bad_jids(
    config_path: Path,
    db_path: Path,
    capsys: pytest.CaptureFixture[str],
    jid: str,
    message: str,
) -> None:
    assert main(["adduser", jid, "--config", str(config_path), "--password", "pw"]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("xmpp-trio: error: ")
    assert not db_path.exists() or accounts(db_path) == []


def test_adduser_existing_account(
    config_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["adduser", "alice@example.org", "--config", str(config_path)]
    assert main([*args, "--password", "one"]) == 0
    assert main([*args, "--password", "two"]) == 1
    assert "account alice@example.org already exists" in capsys.readouterr().err
    assert password_verifies(db_path, "alice", "example.org", "one")


def test_adduser_empty_password(
    config_path: Path,
    db_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["adduser", "alice@example.org", "--config", str(config_path)]
    assert main([*args, "--password", ""]) == 1
    assert "must not be empty" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # EOF: nothing piped
    assert main(args) == 1
    assert "must not be empty" in capsys.readouterr().err
    assert not db_path.exists() or accounts(db_path) == []


def test_adduser_invalid_password(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["adduser", "alice@example.org", "--config", str(config_path)]
    assert main([*args, "--password", "bad\x07bell"]) == 1
    assert "invalid password" in capsys.readouterr().err


def test_passwd(config_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = ["--config", str(config_path)]
    assert main([*conf, "adduser", "alice@example.org", "--password", "old"]) == 0
    assert main([*conf, "passwd", "ALICE@example.org", "--password", "new"]) == 0
    assert "changed the password of alice@example.org" in capsys.readouterr().out
    assert password_verifies(db_path, "alice", "example.org", "new")
    assert not password_verifies(db_path, "alice", "example.org", "old")


def test_passwd_unknown_account(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["passwd", "nobody@example.org", "--config", str(config_path), "--password", "x"]) == 1
    )
    assert "account nobody@example.org does not exist" in capsys.readouterr().err


def test_deluser(config_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = ["--config", str(config_path)]
    assert main([*conf, "adduser", "alice@example.org", "--password", "pw"]) == 0
    assert main([*conf, "adduser", "bob@example.org", "--password", "pw"]) == 0
    assert main([*conf, "deluser", "alice@example.org"]) == 0
    assert "deleted account alice@example.org" in capsys.readouterr().out
    assert accounts(db_path) == [("bob", "example.org")]
    assert main([*conf, "deluser", "alice@example.org"]) == 1
    assert "account alice@example.org does not exist" in capsys.readouterr().err
    assert main([*conf, "deluser", "alice@example.org/res"]) == 1
    assert "has a resource" in capsys.readouterr().err


def test_adduser_subprocess_with_piped_stdin(
    config_path: Path, db_path: Path, tmp_path: Path
) -> None:
    conf = ["--config", str(config_path)]
    result = run_module(["adduser", "dave@example.org", *conf], tmp_path, stdin="pipe pw\n")
    assert result.returncode == 0, result.stderr
    assert "created account dave@example.org" in result.stdout
    assert password_verifies(db_path, "dave", "example.org", "pipe pw")

    result = run_module(["adduser", "dave@example.org", *conf], tmp_path, stdin="again\n")
    assert result.returncode == 1
    assert "already exists" in result.stderr

    result = run_module(["passwd", "dave@example.org", *conf], tmp_path, stdin="changed\n")
    assert result.returncode == 0, result.stderr
    assert password_verifies(db_path, "dave", "example.org", "changed")

    result = run_module(["deluser", "dave@example.org", *conf], tmp_path)
    assert result.returncode == 0, result.stderr
    assert accounts(db_path) == []


# --- interactive prompt on a real terminal ---------------------------------------------


def run_on_pty(args: list[str], cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Run ``python -m xmpp_trio`` with a pseudo-terminal as stdin; type ``answers``."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmpp_trio", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=subprocess_env(),
        start_new_session=True,  # no controlling terminal: getpass uses stdin
    )
    os.close(slave)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                # Answer each prompt once it has appeared.
                prompts = output.count(b"Password")
                while pending and prompts > len(answers) - len(pending):
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif proc.poll() is not None:
                break
        returncode = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return returncode, output.decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_adduser_prompts_twice_on_a_terminal(
    config_path: Path, db_path: Path, tmp_path: Path
) -> None:
    conf = ["--config", str(config_path)]
    code, output = run_on_pty(
        ["adduser", "erin@example.org", *conf], tmp_path, ["tty pw", "tty pw"]
    )
    assert code == 0, output
    assert "Password: " in output
    assert "Password (again): " in output
    assert "tty pw" not in output  # not echoed
    assert password_verifies(db_path, "erin", "example.org", "tty pw")

    code, output = run_on_pty(["adduser", "frank@example.org", *conf], tmp_path, ["one", "two"])
    assert code == 1
    assert "passwords do not match" in output
    assert accounts(db_path) == [("erin", "example.org")]


def test_deluser_wipes_the_account_data_too(config_path: Path, db_path: Path) -> None:
    """Like an in-band removal (XEP-0077 §3.2), `deluser` leaves nothing of the
    account behind: a new account of the same name starts empty."""
    import sqlite3

    from xmpp_sansio.jid import JID
    from xmpp_sansio.roster import RosterItem
    from xmpp_sansio.server.roster import StoredItem
    from xmpp_trio.stores.roster import SqliteRosterStorage
    from xmpp_trio.stores.vcard import SqliteVCardStorage

    conf = ["--config", str(config_path)]
    assert main([*conf, "adduser", "alice@example.org", "--password", "pw"]) == 0
    alice, bob = JID.parse("alice@example.org"), JID.parse("bob@example.org")
    db = sqlite3.connect(db_path, isolation_level=None)
    SqliteRosterStorage(db).put(alice, StoredItem(RosterItem(bob)))
    SqliteVCardStorage(db).put(alice, b"<vCard xmlns='vcard-temp'/>")
    db.close()
    assert main([*conf, "deluser", "alice@example.org"]) == 0
    db = sqlite3.connect(db_path, isolation_level=None)
    assert SqliteRosterStorage(db).count(alice) == 0
    assert SqliteVCardStorage(db).get(alice) is None
    db.close()
