"""The ``xmpp-trio`` command line (also ``python -m xmpp_trio``).

Subcommands, each accepting ``--config PATH`` (before or after the subcommand):

``serve``
    Run the server until interrupted.
``adduser JID [--password PW]``
    Create an account. Without ``--password`` the password is asked for twice on a
    terminal, or read as one line from standard input when that is not a terminal
    (``echo secret | xmpp-trio adduser alice@example.org``).
``passwd JID [--password PW]``
    Change an account's password (the password is read the same way).
``deluser JID``
    Delete an account.
``check``
    Validate the configuration and print a summary of it.
``backup FILE`` / ``restore FILE``
    Copy the database to a new file, safely while the server runs; replace
    the database with such a copy while the server is stopped.
``status`` / ``sessions`` / ``users``
    Ask the running server (over its admin socket, ``<data_dir>/admin.sock``)
    for its state, its bound sessions, its accounts (``users`` reads the
    database when the server is not running). ``--json`` prints the answer as
    JSON.
``kick JID [--reason TEXT]`` / ``announce TEXT`` / ``stop`` / ``reload``
    End an account's sessions; send a message to every online session; stop
    the server; read the configuration file again (as SIGHUP does).
``disable JID`` / ``enable JID`` / ``motd TEXT`` / ``motd --delete``
    Disable an account (its sessions end, it cannot log in) or re-enable it;
    set or delete the message of the day (the XEP-0133 commands' operations).
``export FILE`` / ``import FILE``
    Write every account with its roster, vCard, private XML and offline
    messages as XEP-0227 (safe while the server runs); read such a file, or a
    directory of them (``prosody-migrator``'s output), with the server stopped.
``cert import DIR``
    Install a certificate and key from ``DIR`` (certbot's ``live`` directory,
    say) as the server's, and reload the running server.
``bot BOTS.toml [--check]``
    Run the bots declared in a bots file (see :mod:`xmpp_trio.bot`) until
    interrupted; with ``--check``, only validate the file and list the bots.

The configuration file is ``--config``, else ``$XMPP_TRIO_CONFIG``, else
``./xmpp.toml``, else ``/etc/xmpp-trio/xmpp.toml``; with none of them the
built-in defaults are used (see :mod:`xmpp_trio.config`). Commands that change
accounts say which database they used; ``passwd`` and ``deluser`` also end
the account's sessions on the running server. Errors, startup failures included, are
printed to standard error as one line and give exit status 1.
"""

from __future__ import annotations

import argparse
import faulthandler
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from xmpp_trio.config import ConfigError, ServerConfig, find_config, load_config

if TYPE_CHECKING:
    from xmpp_sansio.jid import JID

__all__ = ["main"]

PROG = "xmpp-trio"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CommandError(Exception):
    """A user-facing failure: printed as ``xmpp-trio: error: <message>``, exit status 1."""


# --- helpers -------------------------------------------------------------------


def _load(args: argparse.Namespace) -> ServerConfig:
    path = find_config(args.config)
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CommandError(f"invalid configuration: {exc}") from None


def _account_jid(text: str, config: ServerConfig, *, require_hosted: bool) -> JID:
    """Parse an account JID: a localpart, no resource, and (if asked) a hosted domain."""
    from xmpp_sansio.jid import JID, InvalidJID

    try:
        jid = JID.parse(text)
    except InvalidJID as exc:
        raise CommandError(f"invalid JID {text!r}: {exc}") from None
    if jid.local is None:
        raise CommandError(f"{text!r} has no localpart; an account JID looks like user@domain")
    if jid.resource is not None:
        raise CommandError(
            f"{text!r} has a resource; give the bare JID {jid.bare} (accounts have no resource)"
        )
    if require_hosted and jid.domain not in config.domains:
        raise CommandError(
            f"domain {jid.domain!r} is not served by this server; "
            f"configured domains: {', '.join(config.domains)}"
        )
    return jid


def _read_password(given: str | None) -> str:
    """The new password: ``--password``, else two prompts on a TTY, else one stdin line."""
    from xmpp_sansio.sasl.credentials import normalize_password

    if given is not None:
        password = given
    elif sys.stdin is not None and sys.stdin.isatty():
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
        except EOFError:
            raise CommandError("no password given") from None
        if password != again:
            raise CommandError("the passwords do not match")
    else:
        if sys.stdin is None:
            raise CommandError("no password given (no --password and no standard input)")
        try:
            line = sys.stdin.readline()
        except OSError as exc:
            raise CommandError(f"cannot read the password from standard input: {exc}") from None
        password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandError("the password must not be empty")
    try:
        normalize_password(password)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return password


def _format_address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- commands ------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    from xmpp_trio.logs import configure

    configure(config.log_level, config.log_format)
    import trio

    # Imported here so the other subcommands work without loading the server.
    from xmpp_trio.collector import serve_tuned  # [gc]: the process's collector
    from xmpp_trio.preflight import problems
    from xmpp_trio.server import run_server  # type: ignore[import-not-found,unused-ignore]
    from xmpp_trio.storage import StorageError

    found = problems(config, bind=True)
    if found:
        raise CommandError("; ".join(found))
    if config.tls.cert is not None and config.tls.key is not None:
        _check_tls_pair(config.tls.cert, config.tls.key)
    lock = _lock_data_dir(config)
    _say_where_things_are(config)
    # A fatal signal (SIGBUS from a vanished or read-only database file, say)
    # leaves a traceback on stderr instead of nothing.
    faulthandler.enable()
    try:
        trio.run(serve_tuned, run_server, config)  # [gc] applied once started
    except KeyboardInterrupt:
        logging.getLogger("xmpp_trio").info("interrupted, shutting down")
        return 0
    except (StorageError, OSError) as exc:  # e.g. a corrupt database, found at start
        raise CommandError(str(exc)) from None
    except BaseExceptionGroup as group:
        # Startup failures inside the server's nursery (a port taken between
        # the checks and the bind): one line each, no traceback.
        leaves = _leaves(group)
        if not all(isinstance(e, (StorageError, OSError)) for e in leaves):
            raise
        raise CommandError("; ".join(str(e) for e in leaves)) from None
    finally:
        lock.close()
    return 0


def _lock_data_dir(config: ServerConfig) -> IO[bytes]:
    """Hold an exclusive lock on ``<data_dir>/xmpp-trio.lock`` while serving, so
    two servers never share one data directory (and one database)."""
    import fcntl

    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config.data_dir / "xmpp-trio.lock"
    lock = path.open("a+b")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().decode(errors="replace").strip() or "another process"
        lock.close()
        raise CommandError(
            f"data_dir {config.data_dir} is in use by another server (pid {holder})"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()).encode())
    lock.flush()
    return lock


def _say_where_things_are(config: ServerConfig) -> None:
    """Log at start what a new user needs to know: the data directory and the
    database, the certificate clients must trust, and whether accounts exist.
    A database that cannot be opened or is corrupt stops the start first."""
    import sqlite3

    from xmpp_trio.storage import AccountStore, StorageError

    try:
        with AccountStore.open(config.database_path) as store:
            store.check_integrity()  # a corrupt database stops here, in one line
            count = len(store.list_accounts())
    except (StorageError, OSError, sqlite3.Error) as exc:
        raise CommandError(str(exc)) from None
    log = logging.getLogger("xmpp_trio")
    source = config.config_path or "none (built-in defaults)"
    log.info("config file: %s; data directory: %s", source, config.data_dir)
    if config.tls.cert is None:
        log.info(
            "TLS: self-signed certificate %s (clients must be told to trust it)",
            config.generated_tls_dir / "cert.pem",
        )
    if count:
        log.info("database %s: %d accounts", config.database_path, count)
    else:
        log.warning(
            "database %s has no accounts yet: add one with 'xmpp-trio adduser user@%s'",
            config.database_path,
            config.domains[0],
        )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions of a (nested) exception group."""
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


def _cmd_adduser(args: argparse.Namespace) -> int:
    from xmpp_trio.storage import AccountExists, AccountStore, StorageError

    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=True)
    assert jid.local is not None
    password = _read_password(args.password)
    try:
        with AccountStore.open(config.database_path) as store:
            store.create(jid.local, jid.domain, password, iterations=config.scram_iterations)
    except AccountExists:
        raise CommandError(f"account {jid} already exists") from None
    except (StorageError, OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(f"created account {jid} (database {config.database_path})")
    return 0


def _cmd_passwd(args: argparse.Namespace) -> int:
    from xmpp_trio.storage import AccountNotFound, AccountStore, StorageError

    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    assert jid.local is not None
    try:
        with AccountStore.open(config.database_path) as store:
            if not store.exists(jid.local, jid.domain):
                raise CommandError(f"account {jid} does not exist")
            password = _read_password(args.password)
            store.set_password(jid.local, jid.domain, password, iterations=config.scram_iterations)
    except AccountNotFound:
        raise CommandError(f"account {jid} does not exist") from None
    except (StorageError, OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(f"changed the password of {jid} (database {config.database_path})")
    _tell_server(config, jid, "password")
    return 0


def _cmd_deluser(args: argparse.Namespace) -> int:
    from xmpp_trio.storage import AccountNotFound, AccountStore, StorageError

    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    assert jid.local is not None
    from xmpp_trio.services import remove_account_data

    try:
        with AccountStore.open(config.database_path) as store:
            store.delete(jid.local, jid.domain)
            # A running server removes the account's data itself (and tells the
            # contacts' sessions, RFC 6121 §2.5.2); else it is done here.
            if not _tell_server(config, jid, "deleted"):
                remove_account_data(config, store, jid)
    except AccountNotFound:
        raise CommandError(f"account {jid} does not exist") from None
    except (StorageError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(f"deleted account {jid} (database {config.database_path})")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from xmpp_trio.backup import backup
    from xmpp_trio.storage import StorageError

    config = _load(args)
    try:
        backup(config.database_path, args.file)
    except (StorageError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(f"backed up {config.database_path} to {args.file}")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from xmpp_trio.backup import restore
    from xmpp_trio.storage import StorageError

    config = _load(args)
    try:
        restore(args.file, config.database_path, config.data_dir / "xmpp-trio.lock")
    except (StorageError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(f"restored {config.database_path} from {args.file}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from xmpp_trio.storage import StorageError
    from xmpp_trio.xep0227 import export_server

    config = _load(args)
    try:
        report = export_server(config, args.file)
    except (StorageError, OSError, ValueError) as exc:
        raise CommandError(f"export: {exc}") from None
    print(f"exported {report.summary()} to {args.file} (database {config.database_path})")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from xmpp_trio.storage import StorageError
    from xmpp_trio.xep0227 import import_server

    config = _load(args)
    lock = _lock_data_dir(config)  # the server must be stopped
    try:
        report = import_server(config, args.file)
    except (StorageError, OSError, ValueError) as exc:
        raise CommandError(f"import: {exc}") from None
    finally:
        lock.close()
    for line in report.skipped:
        print(f"skipped: {line}")
    print(f"imported {report.summary()} from {args.file} (database {config.database_path})")
    return 0


def _cmd_cert(args: argparse.Namespace) -> int:
    """``cert import DIR`` (as ``prosodyctl cert import``)."""
    from xmpp_trio.admin import AdminUnavailable, request, socket_path
    from xmpp_trio.certs import find_certificate_pair, install_certificate

    config = _load(args)
    if config.tls.cert is not None and config.tls.key is not None:
        cert_target, key_target = config.tls.cert, config.tls.key
    else:  # the slot of the self-signed pair, used when [tls] names no files
        cert_target = config.generated_tls_dir / "cert.pem"
        key_target = config.generated_tls_dir / "key.pem"
    named = config.hosted_domains
    try:
        cert, key = find_certificate_pair(args.dir, named)
        install_certificate(cert, key, cert_target, key_target, named)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cert import: {exc}") from None
    print(f"installed {cert} as {cert_target} and {key} as {key_target}")
    try:
        request(socket_path(config), "reload")
    except AdminUnavailable:
        print("the server is not running: it uses the certificate from its next start")
        return 0
    except Exception as exc:
        raise CommandError(f"cert import: installed, but the reload failed: {exc}") from None
    print("reloaded the running server: new TLS handshakes use the certificate")
    return 0


def _check_tls_pair(cert: Path, key: Path) -> None:
    """Fail unless ``cert`` and ``key`` load into a server SSLContext."""
    import ssl

    from xmpp_trio.certs import load_server_ssl_context

    try:
        load_server_ssl_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"tls: cannot use certificate {cert} with key {key}: {exc}") from None


def _cmd_check(args: argparse.Namespace) -> int:
    from xmpp_trio.preflight import problems

    config = _load(args)
    found = problems(config, bind=False)
    if found:
        raise CommandError("; ".join(found))
    source = str(config.config_path) if config.config_path else "none (built-in defaults)"
    lines = [
        "config OK",
        f"config file: {source}",
        f"domains: {', '.join(config.domains)}",
        f"data dir: {config.data_dir}",
        f"database: {config.database_path}",
        "listeners:",
        *(
            f"  {listener.kind} on {_format_address(listener.address, listener.port)}"
            for listener in config.listeners
        ),
    ]
    if config.tls.cert is not None and config.tls.key is not None:
        from xmpp_trio.certs import certificate_problems

        _check_tls_pair(config.tls.cert, config.tls.key)
        named = config.hosted_domains + ((config.echo_domain,) if config.echo_domain else ())
        wrong = certificate_problems(config.tls.cert, named)
        if wrong:
            raise CommandError("tls: " + "; ".join(wrong))
        lines.append(f"tls: certificate {config.tls.cert}, key {config.tls.key}")
    else:
        cert = config.generated_tls_dir / "cert.pem"
        key = config.generated_tls_dir / "key.pem"
        if cert.is_file() and key.is_file():
            _check_tls_pair(cert, key)
            lines.append(f"tls: self-signed certificate {cert} (generated earlier)")
        else:
            lines.append(f"tls: self-signed certificate {cert} (generated on first start)")
    lines += [
        f"require_tls: {str(config.require_tls).lower()}",
        f"allow_plain: {str(config.allow_plain).lower()} (only over TLS)",
        f"allow_anonymous: {str(config.allow_anonymous).lower()}",
        f"scram_iterations: {config.scram_iterations}",
        f"log_level: {config.log_level}",
        f"limits: max_stanza_size={config.limits.max_stanza_size} "
        f"max_stanza_size_preauth={config.limits.max_stanza_size_preauth} "
        f"max_depth={config.limits.max_depth} "
        f"negotiation_timeout={config.limits.negotiation_timeout:g}s",
    ]
    print("\n".join(lines))
    return 0


# --- the running server (admin socket) ----------------------------------------


def _ask(config: ServerConfig, op: str, **fields: object) -> Any:
    """Send ``op`` to the running server's admin socket; a server that is not
    running, or a refused request, is a one-line error."""
    from xmpp_sansio.server.admin import AdminRequestError
    from xmpp_trio.admin import AdminUnavailable, request, socket_path

    try:
        return request(socket_path(config), op, **fields)
    except AdminUnavailable as exc:
        raise CommandError(str(exc)) from None
    except (AdminRequestError, OSError, ValueError) as exc:
        raise CommandError(f"{op}: {exc}") from None


def _tell_server(config: ServerConfig, jid: JID, change: str) -> bool:
    """End the account's sessions on the running server (for a deleted account
    the server also removes its data); False when no server runs (or it
    could not be told: a warning says so)."""
    from xmpp_trio.admin import AdminUnavailable, request, socket_path

    try:
        result = request(socket_path(config), "account_changed", jid=str(jid), change=change)
    except AdminUnavailable:
        return False  # not running: nothing to end
    except Exception as exc:  # the change is made; say what could not follow
        print(f"{PROG}: warning: could not end the running sessions of {jid}: {exc}")
        return False
    print(f"ended {result['ended']} running sessions of {jid}")
    return True


def _print(args: argparse.Namespace, result: object, lines: list[str]) -> int:
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from xmpp_trio.runtime import status_lines

    config = _load(args)
    st = _ask(config, "status")
    listeners = [
        f"  {x['kind']} on {_format_address(x['address'], x['port'])}" for x in st["listeners"]
    ]
    lines = [
        f"running: pid {st['pid']}, version {st['version']}, up {_duration(st['uptime'])}",
        f"domains: {', '.join(st['domains'])}",
        f"sessions: {st['sessions']} bound, {st['connections']} connections",
        f"components: {', '.join(c['jid'] for c in st['components']) or 'none connected'}",
        *_s2s_line(st.get("s2s")),
        *_gc_line(st.get("gc")),
        *status_lines(st.get("loop")),  # [runtime] loop_stats
        f"data dir: {st['data_dir']}",
        "listeners:",
        *listeners,
    ]
    return _print(args, st, lines)


def _gc_line(gc: dict[str, Any] | None) -> list[str]:
    """The garbage collector's line of ``status`` ([gc], docs/gc.md)."""
    if not gc:
        return []
    runs = "/".join(str(n) for n in gc["collections"])
    return [f"gc: {gc['frozen']} objects frozen, thresholds {'/'.join(map(str, gc['thresholds']))},"
            f" {runs} collections (young/middle/full), {sum(gc['seconds']):.3f} s"]  # fmt: skip


def _s2s_line(s2s: dict[str, Any] | None) -> list[str]:
    """Federation's line of ``status`` (none when it is off; docs/federation.md)."""
    if not s2s:
        return []
    return [
        f"s2s: {s2s['outbound']} out, {s2s['inbound']} in, {s2s['queued']} queued,"
        f" {s2s['failures']} failures; {', '.join(s2s['domains']) or 'no remote domains'}"
    ]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _cmd_users(args: argparse.Namespace) -> int:
    from xmpp_trio.admin import AdminUnavailable, request, socket_path
    from xmpp_trio.storage import AccountStore, StorageError

    config = _load(args)
    try:
        result = request(socket_path(config), "users")
    except AdminUnavailable:  # not running: the database says as much
        try:
            with AccountStore.open(config.database_path) as store:
                users = [f"{local}@{domain}" for local, domain in store.list_accounts()]
        except (StorageError, OSError) as exc:
            raise CommandError(str(exc)) from None
        result = {"count": len(users), "users": users}
    except Exception as exc:
        raise CommandError(f"users: {exc}") from None
    return _print(args, result, [*result["users"], f"{result['count']} accounts"])


def _cmd_sessions(args: argparse.Namespace) -> int:
    config = _load(args)
    found = _ask(config, "sessions")
    lines = [
        f"{s['jid']}  {s['address'] or '-'}  {s['tls'] or 'no TLS'}  sm={s['sm']}"
        f"  client={s['client'] or 'unknown'}"
        for s in found
    ]
    return _print(args, found, [*lines, f"{len(found)} sessions"])


def _cmd_kick(args: argparse.Namespace) -> int:
    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    result = _ask(config, "kick", jid=str(jid), reason=args.reason)
    return _print(args, result, [f"ended {result['ended']} sessions of {jid}"])


def _cmd_clients(args: argparse.Namespace) -> int:
    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    found = _ask(config, "clients", jid=str(jid))
    lines = [
        f"{c['id']}  {c['software'] or '-'}  {c['device'] or '-'}  last login "
        + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(c["last_login"]))
        + ("  FAST token" if c["token_expiry"] else "")
        for c in found
    ]
    return _print(args, found, [*lines, f"{len(found)} clients of {jid}"])


def _cmd_revoke(args: argparse.Namespace) -> int:
    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    result = _ask(config, "revoke", jid=str(jid), client=args.client)
    if not result["revoked"]:
        raise CommandError(f"{jid} has no client {args.client}")
    return _print(args, result, [f"revoked client {args.client} of {jid}"])


def _cmd_announce(args: argparse.Namespace) -> int:
    config = _load(args)
    result = _ask(config, "announce", text=args.text)
    return _print(args, result, [f"sent to {result['sent']} sessions"])


def _cmd_disable(args: argparse.Namespace) -> int:
    config = _load(args)
    jid = _account_jid(args.jid, config, require_hosted=False)
    op = "disable" if args.command == "disable" else "enable"
    result = _ask(config, op, jid=str(jid))
    done = f"disabled {jid} (ended {result['ended']} sessions)" if result["disabled"] else ""
    return _print(args, result, [done or f"re-enabled {jid}"])


def _cmd_motd(args: argparse.Namespace) -> int:
    config = _load(args)
    result = _ask(config, "motd", text=None if args.delete else args.text)
    return _print(args, result, ["message of the day " + ("deleted" if args.delete else "set")])


def _cmd_stop(args: argparse.Namespace) -> int:
    config = _load(args)
    result = _ask(config, "stop")
    return _print(args, result, ["the server is stopping"])


def _cmd_reload(args: argparse.Namespace) -> int:
    config = _load(args)
    result = _ask(config, "reload")
    source = result["config_file"] or "(no configuration file)"
    lines = [f"reloaded {source}: applied {', '.join(result['applied']) or 'nothing'}"]
    if result["restart_needed"]:
        lines.append(f"changed but needs a restart: {', '.join(result['restart_needed'])}")
    return _print(args, result, lines)


def _cmd_web_assets(args: argparse.Namespace) -> int:
    from xmpp_trio.web_assets import CONVERSE_VERSION, AssetError, fetch

    data_dir = args.data_dir if args.data_dir is not None else _load(args).data_dir
    try:
        dest = fetch(data_dir)
    except AssetError as exc:
        raise CommandError(str(exc)) from None
    print(f"converse.js {CONVERSE_VERSION} (checksum verified) in {dest}; page: /chat/")
    return 0


def _cmd_bot(args: argparse.Namespace) -> int:
    # Imported here so the other subcommands work without loading the bot framework.
    from xmpp_trio.bot import build_bots, load_bots_config, run

    try:
        bots_config = load_bots_config(args.bots_file)
        bots = build_bots(bots_config)
    except ConfigError as exc:
        raise CommandError(f"invalid bots file: {exc}") from None
    if args.check:
        lines = [f"bots file OK: {args.bots_file}"]
        for bot in bots:
            handlers = ", ".join(h.name for h in bot.handlers) or "none"
            rooms = ", ".join(str(room) for room in bot.config.rooms)
            lines.append(f"  {bot.config.full_jid} (nickname {bot.nickname}): handlers {handlers}")
            if rooms:
                lines.append(f"    rooms: {rooms}")
        print("\n".join(lines))
        return 0
    logging.basicConfig(level=bots_config.log_level.upper(), format=LOG_FORMAT)
    return run(bots)


# --- entry point ---------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xmpp-trio")
    except PackageNotFoundError:  # running from a checkout
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for :func:`main`."""
    config_help = (
        "configuration file (TOML); default: $XMPP_TRIO_CONFIG, ./xmpp.toml,"
        " /etc/xmpp-trio/xmpp.toml, else built-in defaults"
    )
    parser = argparse.ArgumentParser(prog=PROG, description="XMPP server built on Trio.")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    parser.add_argument("--config", type=Path, metavar="PATH", default=None, help=config_help)
    # The same option after the subcommand; SUPPRESS keeps it from overwriting a
    # value given before the subcommand when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, metavar="PATH", default=argparse.SUPPRESS, help=config_help
    )
    password_help = (
        "the password (visible to other local users in the process list; prefer the "
        "prompt, or piping it on standard input)"
    )

    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], summary: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    add("serve", _cmd_serve, "run the server")
    adduser = add("adduser", _cmd_adduser, "create an account")
    adduser.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    adduser.add_argument("--password", metavar="PW", help=password_help)
    passwd = add("passwd", _cmd_passwd, "change an account's password")
    passwd.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    passwd.add_argument("--password", metavar="PW", help=password_help)
    deluser = add("deluser", _cmd_deluser, "delete an account")
    deluser.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    add("check", _cmd_check, "validate the configuration and print a summary")
    backup = add("backup", _cmd_backup, "copy the database (safe while the server runs)")
    backup.add_argument("file", type=Path, metavar="FILE", help="a new file for the copy")
    restore = add("restore", _cmd_restore, "replace the database with a backup (server stopped)")
    restore.add_argument("file", type=Path, metavar="FILE", help="the backup to restore")
    json_help = "print the answer as JSON"
    for name, handler, summary in (
        ("status", _cmd_status, "show the running server's state"),
        ("users", _cmd_users, "list the accounts"),
        ("sessions", _cmd_sessions, "list the running server's sessions"),
        ("stop", _cmd_stop, "stop the running server"),
        ("reload", _cmd_reload, "reload the configuration of the running server"),
    ):
        add(name, handler, summary).add_argument("--json", action="store_true", help=json_help)
    kick = add("kick", _cmd_kick, "end every session of an account")
    kick.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    kick.add_argument("--reason", metavar="TEXT", help="told to the kicked clients")
    kick.add_argument("--json", action="store_true", help=json_help)
    clients = add("clients", _cmd_clients, "list an account's SASL2 clients (XEP-0388)")
    clients.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    clients.add_argument("--json", action="store_true", help=json_help)
    revoke = add("revoke", _cmd_revoke, "forget a client and invalidate its FAST tokens")
    revoke.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
    revoke.add_argument("client", metavar="CLIENT-ID", help="the client's id (see clients)")
    revoke.add_argument("--json", action="store_true", help=json_help)
    announce = add("announce", _cmd_announce, "send a message to every online session")
    announce.add_argument("text", metavar="TEXT", help="the message")
    announce.add_argument("--json", action="store_true", help=json_help)
    for name, summary in (
        ("disable", "disable an account: its sessions end, it cannot log in"),
        ("enable", "re-enable a disabled account"),
    ):
        disable = add(name, _cmd_disable, summary)
        disable.add_argument("jid", metavar="JID", help="the account's bare JID, user@domain")
        disable.add_argument("--json", action="store_true", help=json_help)
    motd = add("motd", _cmd_motd, "set the message of the day, sent at each login")
    motd.add_argument("text", metavar="TEXT", nargs="?", default="", help="the message")
    motd.add_argument("--delete", action="store_true", help="delete the message of the day")
    motd.add_argument("--json", action="store_true", help=json_help)
    export = add("export", _cmd_export, "export every account and its data as XEP-0227")
    export.add_argument("file", type=Path, metavar="FILE", help="the XEP-0227 file to write")
    import_ = add("import", _cmd_import, "import a XEP-0227 file (server stopped)")
    import_.add_argument(
        "file", type=Path, metavar="FILE", help="a XEP-0227 file or a directory of them"
    )
    cert = add("cert", _cmd_cert, "install a certificate (e.g. from certbot) and reload")
    cert.add_argument("action", choices=("import",), help="import: copy DIR's certificate")
    cert.add_argument("dir", type=Path, metavar="DIR", help="e.g. /etc/letsencrypt/live")
    assets = add(
        "web-assets", _cmd_web_assets, "fetch the chat page's web client (converse.js, pinned)"
    )
    assets.add_argument(
        "--data-dir", type=Path, metavar="DIR", default=None, help="instead of the configured one"
    )
    bot = add("bot", _cmd_bot, "run the bots declared in a bots file")
    bot.add_argument("bots_file", type=Path, metavar="BOTS.toml", help="the bots file (TOML)")
    bot.add_argument(
        "--check", action="store_true", help="only validate the bots file and list the bots"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0 if args.command == "serve" else 130
