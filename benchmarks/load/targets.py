"""The servers under test: ours (``python -m xmpp_trio serve``), Prosody 0.12, ejabberd.

A target prepares its accounts once (``prepare``) and then starts a fresh
server per scenario run (``start``) with the listener the run needs (direct
TLS, STARTTLS, or plaintext), pinned to CPU 0. Accounts ``u0``, ``u1``, ...
share one password and, to keep preparation cheap, one salt per hash (a
benchmark shortcut; each account still has its own stored record, and the
server still does the full per-login work). The client-side SaltedPassword
cache (:data:`generator.SALTED`) is filled for that salt.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import archive_check
import ejabberd_sql
from generator import SALTED, contacts_of

ROOT = Path(__file__).resolve().parents[2]
#: ``ours-nostore``'s start-up hook (nostore/sitecustomize.py: the archive writer skips SQLite).
NOSTORE = Path(__file__).resolve().parent / "nostore"
DOMAIN = "localhost"
PASSWORD = "load-test-password"
SCRAM_ITERATIONS = 4096
SERVER_CPU = 0
#: py-spy's sampling options (run.py --profile); BENCH_PYSPY="--rate 500 --native" adds the C
#: frames, at a cost that starves the server of its core (py-spy falls behind)
_PYSPY = os.environ.get("BENCH_PYSPY", "--rate 200").split()
GENERATOR_CPU = 1


def pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` (0: this process) and its threads to ``cpu`` if the machine has it."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        if cpu not in os.sched_getaffinity(0) and pid == 0:
            return False
        tasks = os.listdir(f"/proc/{pid}/task") if pid else [0]
        for task in tasks:
            os.sched_setaffinity(int(task), {cpu})
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(
    proc: subprocess.Popen[bytes],
    port: int,
    what: str,
    timeout: float = 30,
    log: Path | None = None,
) -> None:
    """Wait until ``proc`` accepts connections on ``port``; if it exits or
    times out, kill its process group and raise (naming ``log`` if given)."""
    deadline = time.monotonic() + timeout
    problem = f"{what} did not start listening within {timeout:.0f} s"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            problem = f"{what} exited with status {proc.returncode}"
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise RuntimeError(problem if log is None else f"{problem}; see {log}")


class Running:
    """A started server: its pid (the process whose tree is measured) and port."""

    def __init__(self, proc: subprocess.Popen[bytes], pid: int, port: int, signum: int) -> None:
        self.proc = proc
        self.pid = pid
        self.port = port
        self.signum = signum

    def stop(self) -> None:
        # Let the server finish closing the generator's sessions first: Prosody
        # 0.12 logs errors from mod_c2s when SIGTERM races with closing sessions.
        time.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, self.signum)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# Run by ``python -c`` with the tree of the server under test first on the path:
# u0 through that tree's AccountStore, u1.. copied from its rows (or, if the
# schema differs, created one by one the slow, public way).
PREPARE_OURS = """\
import contextlib, sqlite3, sys
from xmpp_trio.storage import AccountStore
database, domain, password, iterations, accounts = sys.argv[1:4] + [int(x) for x in sys.argv[4:6]]
with AccountStore.open(database) as store:
    store.create("u0", domain, password, iterations=iterations)
how = "u0 via AccountStore, the rest copied from its rows"
try:
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.executemany("INSERT INTO accounts (domain, local) VALUES (?, ?)",
                       [(domain, f"u{i}") for i in range(1, accounts)])
        db.executemany(
            "INSERT INTO scram_credentials (domain, local, hash_name, salt, iterations,"
            " stored_key, server_key) SELECT domain, ?, hash_name, salt, iterations,"
            " stored_key, server_key FROM scram_credentials WHERE domain = ? AND"
            " local = 'u0'",
            [(f"u{i}", domain) for i in range(1, accounts)],
        )
except sqlite3.Error as exc:
    how = f"AccountStore.create ({exc})"
    with AccountStore.open(database) as store:
        for i in range(1, accounts):
            with contextlib.suppress(Exception):
                store.create(f"u{i}", domain, password, iterations=iterations)
print(how)
"""

# Rosters written as the server's roster store expects them (its SCHEMA, one
# row per user and contact, subscription both), rows as JSON on stdin.
ROSTERS_OURS = """\
import json, sqlite3, sys
from xmpp_trio.stores.roster import SCHEMA
pairs = json.load(sys.stdin)
db = sqlite3.connect(sys.argv[1])
db.executescript(SCHEMA)
with db:
    db.execute("DELETE FROM roster_items")
    db.execute("DELETE FROM roster_versions")
    db.executemany(
        "INSERT INTO roster_items (user, contact, name, subscription, ask, approved, groups,"
        " in_roster, pending_in, pending_request) VALUES (?, ?, NULL, 'both', 0, 0, '[]', 1, 0,"
        " NULL)", pairs)
    db.executemany("INSERT INTO roster_versions (user, version) VALUES (?, 1)",
                   sorted({(user,) for user, _ in pairs}))
db.close()
"""


def _path_first(tree: Path) -> str:
    """PYTHONPATH with ``tree`` in front, so its packages win over installed ones."""
    rest = os.environ.get("PYTHONPATH", "")
    return f"{tree}{os.pathsep}{rest}" if rest else str(tree)


def roster_pairs(contacts: int, accounts: int) -> list[tuple[str, str]]:
    """(user, contact) bare JIDs of every roster item: ``generator.contacts_of``."""
    return [(f"u{i}@{DOMAIN}", f"u{j}@{DOMAIN}")
            for i in range(accounts) for j in contacts_of(i, accounts, contacts)]  # fmt: skip


# [limits] of our server: every per-client limit raised out of the way.
LIMITS = {
    "negotiation_timeout": 600,
    "resume_timeout": 0,
    "max_connections": 1000000,
    "max_connections_per_ip": 1000000,
    "max_sessions_per_account": 10,
    "auth_failures_before_backoff": 1000000,
    "max_read_rate": 1073741824,
    "idle_timeout": 86400,
    "max_output_buffer": 67108864,
    "max_offline_messages": 100000,
}


#: The archive's tables, of the first layout and of today's, emptied before each run.
_ARCHIVE_TABLES = (
    "mam_messages", "mam_counts", "mam_entries", "mam_log_entries", "mam_items", "mam_peers",
    "mam_archives",
)  # fmt: skip


class Ours:
    """``python -m xmpp_trio serve`` with a generated TOML configuration, run from
    ``tree`` (this checkout by default; ``ours@REV``: see :class:`OursAt`)."""

    name = "ours"
    label = "xmpp-trio"
    login_mechanisms = ("SCRAM-SHA-256", "PLAIN")  # the first is the headline figure
    default_mechanism = "SCRAM-SHA-256"

    def __init__(self, workdir: Path, profile: bool = False, tree: Path = ROOT,
                 name: str = "ours", archives: bool | None = None, extra: str = "",
                 path: tuple[Path, ...] = ()) -> None:  # fmt: skip
        self.name = name
        #: Directories put before the tree on the server's PYTHONPATH (``ours-nostore``).
        self.path = path
        #: Extra configuration of this target (``ours-nice0``: the writer thread at the loop's niceness).
        self.extra = extra
        #: Archives on/off whatever XMPP_TRIO_BENCH_ARCHIVES says (``ours-nomam``: off).
        self.archives = archives
        self.tree = tree
        self.workdir = workdir / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.data = self.workdir / "data"
        self.profile = profile
        self.cafile = str(self.data / "tls" / "cert.pem")
        self.description = "python -m xmpp_trio serve"
        self.rosters = (0, 0)  # (contacts, accounts) now in the database

    def _python(self, code: str, *argv: str, stdin: str | None = None) -> str:
        """Run ``code`` with the server's tree first on the path; its stdout."""
        env = os.environ | {"PYTHONPATH": _path_first(self.tree)}
        done = subprocess.run([sys.executable, "-c", code, *argv], cwd=self.tree, env=env,
                              input=stdin, capture_output=True, text=True, timeout=600)  # fmt: skip
        if done.returncode:
            lines = (done.stderr.strip() or "no output").splitlines()
            raise RuntimeError(f"{lines[-1]} (python -c in {self.tree})")
        return done.stdout.strip()

    def prepare(self, accounts: int) -> str:
        from xmpp_sansio.sasl.credentials import salted_password

        start = time.perf_counter()
        self.data.mkdir(parents=True, exist_ok=True)
        database = self.data / "xmpp.sqlite3"
        how = self._python(PREPARE_OURS, str(database), DOMAIN, PASSWORD,
                           str(SCRAM_ITERATIONS), str(accounts))  # fmt: skip
        with contextlib.closing(sqlite3.connect(database)) as db:
            rows = db.execute(
                "SELECT DISTINCT hash_name, salt, iterations FROM scram_credentials"
            ).fetchall()
        for hash_name, salt, iterations in rows:
            SALTED[(hash_name, bytes(salt), iterations)] = salted_password(
                PASSWORD, hash_name, bytes(salt), iterations
            )
        return f"{accounts} accounts in {time.perf_counter() - start:.1f} s ({how})"

    def provide_rosters(self, contacts: int, accounts: int) -> None:
        """Rosters of ``contacts`` both-way contacts for u0..u<accounts-1> (0: none),
        written into the roster tables before the server starts."""
        if (contacts, accounts) == self.rosters or (not contacts and not self.rosters[0]):
            return
        pairs = roster_pairs(contacts, accounts) if contacts else []
        self._python(ROSTERS_OURS, str(self.data / "xmpp.sqlite3"), stdin=json.dumps(pairs))
        self.rosters = (contacts, accounts) if contacts else (0, 0)

    def close(self) -> None:
        pass

    def _limits(self) -> dict[str, int]:
        """:data:`LIMITS` that the tree's configuration knows (an older commit may
        predate some: it gets its own defaults for those)."""
        known = ""
        with contextlib.suppress(OSError):
            known = (self.tree / "xmpp_trio" / "config.py").read_text()
        return {k: v for k, v in LIMITS.items() if not known or k in known}

    def _empty_archives(self) -> None:
        """Every run starts with empty archives, as Prosody's (runs would otherwise
        depend on the ones before)."""
        database = self.data / "xmpp.sqlite3"
        if not database.exists():
            return
        with contextlib.closing(sqlite3.connect(database)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            # Both layouts: the first (session 5) and today's (docs/mam.md).
            for table in _ARCHIVE_TABLES:
                if table in tables:
                    db.execute(f"DELETE FROM {table}")
            db.commit()

    def _extra_config(self) -> str:
        """XMPP_TRIO_BENCH_CONFIG (extra sections for A/B runs, e.g. "[mam]\\nenabled =
        false", mam_bench.py), and archives on (issue 24: part of the measured
        configuration, as mod_mam in Prosody's full set) unless that names [mam],
        XMPP_TRIO_BENCH_ARCHIVES=0 or the target ``ours-nomam`` (archives off,
        written out: they are on by default since session 5), or the tree has
        no [mam] section."""
        extra = self.extra + os.environ.get("XMPP_TRIO_BENCH_CONFIG", "").replace("\\n", "\n")
        if "[mam]" in extra or not (self.tree / "xmpp_trio" / "mam_config.py").exists():
            return extra
        on = self.archives
        if on is None:
            on = os.environ.get("XMPP_TRIO_BENCH_ARCHIVES", "1") != "0"
        return extra + f"\n[mam]\nenabled = {'true' if on else 'false'}\n"

    def start(self, tls: str, profile_raw: Path | None = None) -> Running:
        port = free_port()
        self._empty_archives()
        kind = "c2s-directtls" if tls == "direct" else "c2s-starttls"
        web = ""
        if tls == "ws":  # XMPP over WebSocket on plain http (issue 18), HTTP limits off
            kind = "http"
            web = ("\n[http]\nwebsocket_on_plain_http = true\nmax_connections = 1000000\n"
                   "max_connections_per_ip = 1000000\nrequests_per_minute_per_ip = 1000000000\n")  # fmt: skip
        config = self.workdir / "xmpp.toml"
        config.write_text(
            f'domains = ["{DOMAIN}"]\n'
            f'data_dir = "{self.data}"\n'
            'log_level = "warning"\n'
            f"scram_iterations = {SCRAM_ITERATIONS}\n"
            f"require_tls = {'false' if tls == 'none' else 'true'}\n"
            "\n[limits]\n"
            + "".join(f"{key} = {value}\n" for key, value in self._limits().items())
            + f'\n[[listeners]]\nkind = "{kind}"\naddress = "127.0.0.1"\nport = {port}\n'
            + web
            + self._extra_config()
        )
        command = [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)]
        if profile_raw is not None:
            command = ["py-spy", "record", "--format", "raw", *_PYSPY,
                       "-o", str(profile_raw), "--", *command]  # fmt: skip
        server_path = os.pathsep.join([*map(str, self.path), _path_first(self.tree)])
        env = os.environ | {"PYTHONPATH": server_path}
        proc = subprocess.Popen(command, cwd=self.tree, env=env, start_new_session=True)
        wait_listening(proc, port, f"the server ({self.name})")
        pid = proc.pid
        if profile_raw is not None:  # measure and stop the python child, not py-spy
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(children.read_text().split()[0])
        pin(pid, SERVER_CPU)
        return Running(proc, pid, port, signal.SIGINT)


class OursAt(Ours):
    """``ours@REV``: our server as of git revision REV, from a temporary
    ``git worktree add --detach`` of it (removed by :meth:`close`), started
    with ``PYTHONPATH=<tree> python -m xmpp_trio serve``. Its accounts and
    rosters are written by that tree's own code (:data:`PREPARE_OURS`,
    :data:`ROSTERS_OURS`); the generator is this checkout's."""

    def __init__(self, workdir: Path, rev: str, profile: bool = False) -> None:
        super().__init__(workdir, profile, tree=workdir / "unset", name=f"ours@{rev}")
        self.rev = rev
        self.added: Path | None = None
        self.description = f"python -m xmpp_trio serve from {rev}"

    def prepare(self, accounts: int) -> str:
        def git(*argv: str) -> str:
            done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True,
                                  text=True, timeout=300)  # fmt: skip
            if done.returncode:
                raise RuntimeError(f"git {' '.join(argv)}: {done.stderr.strip()}")
            return done.stdout.strip()

        sha = git("rev-parse", "--verify", "--quiet", f"{self.rev}^{{commit}}")
        tree = Path(tempfile.mkdtemp(prefix=f"xmpp-load-{sha[:10]}-"))
        tree.rmdir()  # git worktree add creates it
        git("worktree", "add", "--detach", "--quiet", str(tree), sha)
        self.added = self.tree = tree
        self.description = (f"python -m xmpp_trio serve from {self.rev} = {sha[:10]}"
                            f" (git worktree {tree})")  # fmt: skip
        return super().prepare(accounts)

    def close(self) -> None:
        if self.added is None:
            return
        tree, self.added = self.added, None
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True,
                       timeout=120)  # fmt: skip


PROSODY_CONFIG = """\
-- Generated by benchmarks/load/targets.py for one benchmark run.
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ warn = "{dir}/prosody.log" }}
network_backend = "epoll"
network_settings = {{ nagle = false }}
{ports}
s2s_ports = {{ }}
interfaces = {{ "127.0.0.1" }}
modules_enabled = {{ {modules} }}
modules_disabled = {{ "s2s"; "s2s_auth_certs"; }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = {require}
c2s_timeout = 3600
c2s_unauthed_stanza_size_limit = 65536
certificates = "{dir}"
ssl = {{ certificate = "{dir}/cert.pem"; key = "{dir}/key.pem"; }}

VirtualHost "{domain}"
    ssl = {{ certificate = "{dir}/cert.pem"; key = "{dir}/key.pem"; }}
"""


# What ours also does for every session or message (blocking, carbons, ...):
# the "full" set. "minimal" is Prosody's floor (about twice the messages/s
# in a quick test: carbons and blocklist each cost about a third).
PROSODY_MODULES = {
    "full": (
        "roster",
        "saslauth",
        "tls",
        "disco",
        "ping",
        "blocklist",
        "carbons",
        "private",
        "vcard_legacy",
        "lastactivity",
        "time",
        "version",
        "uptime",
        # issue 24: what ours also has (archives on: Ours.start enables [mam])
        "mam",
        "smacks",
        "pep",
        "offline",
    ),
    "minimal": ("roster", "saslauth", "tls", "disco", "ping"),
}
# the full set without archives (issue 24: Prosody's own archive on/off ratio)
PROSODY_MODULES["full-nomam"] = tuple(m for m in PROSODY_MODULES["full"] if m != "mam")


class Prosody:
    """Prosody 0.12 (Debian package) in the foreground with a generated config.

    Modules (:data:`PROSODY_MODULES`): the Debian default set minus what ours
    does not do either per message or session (no mod_limits rate limiting,
    no smacks since the generator does not enable it, no s2s, no
    HTTP/BOSH/websocket, no MAM, no PEP/bookmarks/vcard4), network backend
    epoll, Nagle off (``network_settings``; ours sets TCP_NODELAY too).
    """

    name = "prosody"
    label = "Prosody"
    websocket = True  # mod_websocket (tls "ws": plain http, consider_websocket_secure)
    login_mechanisms = ("PLAIN", "SCRAM-SHA-1")
    default_mechanism = "SCRAM-SHA-1"

    def __init__(self, workdir: Path, modules: str = "full", name: str = "prosody") -> None:
        self.name = name
        self.workdir = workdir / name
        self.modules = PROSODY_MODULES[modules]
        self.cafile = str(self.workdir / "cert.pem")
        binary = shutil.which("prosody") or "prosody"
        version = "?"
        with contextlib.suppress(OSError):
            version = Path("/usr/lib/prosody/prosody.version").read_text().strip()
        self.description = (f"{binary} {version}, network_backend epoll, nagle off, storage"
                            f" internal, modules ({modules}): {', '.join(self.modules)}")  # fmt: skip
        self.rosters = (0, 0)

    def provide_rosters(self, contacts: int, accounts: int) -> None:
        """Rosters of ``contacts`` both-way contacts for u0..u<accounts-1> (0: none):
        ``<data_path>/localhost/roster/uN.dat`` as mod_roster's keyval store writes
        them (``[false]`` holds the version and pending requests)."""
        if (contacts, accounts) == self.rosters or (not contacts and not self.rosters[0]):
            return
        folder = self.workdir / "data" / DOMAIN.replace(".", "%2e") / "roster"
        shutil.rmtree(folder, ignore_errors=True)
        self.rosters = (0, 0)
        if not contacts:
            return
        folder.mkdir(parents=True)
        for i in range(accounts):
            items = "".join(f'\t["u{j}@{DOMAIN}"] = {{ ["subscription"] = "both";'
                            f' ["groups"] = {{}}; }};\n'
                            for j in contacts_of(i, accounts, contacts))  # fmt: skip
            (folder / f"u{i}.dat").write_text(
                f'return {{\n\t[false] = {{ ["version"] = 1; ["pending"] = {{}}; }};\n{items}}};\n'
            )
        self.rosters = (contacts, accounts)

    def close(self) -> None:
        pass

    def prepare(self, accounts: int) -> str:
        from xmpp_sansio.sasl.credentials import (
            keys_from_salted_password,
            salted_password,
        )
        from xmpp_trio.certs import generate_self_signed

        start = time.perf_counter()
        cert, key = generate_self_signed([DOMAIN])
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cert.pem").write_bytes(cert)
        (self.workdir / "key.pem").write_bytes(key)
        os.chmod(self.workdir / "key.pem", 0o600)
        # mod_auth_internal_hashed (password_hash SHA-1, the 0.12 default) stores
        # hex StoredKey/ServerKey with the salt as a string (util.sasl.scram).
        salt = "6f1d3a52-bench-4c1e-9a77-prosodysalt0"
        salted = salted_password(PASSWORD, "sha1", salt.encode(), SCRAM_ITERATIONS)
        SALTED[("sha1", salt.encode(), SCRAM_ITERATIONS)] = salted
        _, stored_key, server_key = keys_from_salted_password(salted, "sha1")
        record = (
            "return {\n"
            f'\t["server_key"] = "{server_key.hex()}";\n'
            f'\t["stored_key"] = "{stored_key.hex()}";\n'
            f'\t["iteration_count"] = {SCRAM_ITERATIONS};\n'
            f'\t["salt"] = "{salt}";\n'
            "};\n"
        ).encode()
        folder = self.workdir / "data" / DOMAIN.replace(".", "%2e") / "accounts"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(accounts):
            (folder / f"u{i}.dat").write_bytes(record)
        took = time.perf_counter() - start
        return f"{accounts} account files (internal_hashed, SHA-1) in {took:.1f} s"

    def start(self, tls: str, profile_raw: Path | None = None) -> Running:
        del profile_raw
        port = free_port()
        modules = self.modules
        if tls == "direct":
            ports = f"c2s_ports = {{ {free_port()} }}\nc2s_direct_tls_ports = {{ {port} }}"
        elif tls == "ws":  # mod_websocket on plain http, its streams taken as secure
            ports = (f"c2s_ports = {{ {free_port()} }}\nc2s_direct_tls_ports = {{ }}\n"
                     f"http_ports = {{ {port} }}\nhttp_interfaces = {{ \"127.0.0.1\" }}\n"
                     "https_ports = { }\nconsider_websocket_secure = true")  # fmt: skip
            modules = (*modules, "websocket")
        else:
            ports = f"c2s_ports = {{ {port} }}\nc2s_direct_tls_ports = {{ }}"
        # Every run starts with empty archives (runs would otherwise depend on
        # the ones before).
        for folder in (self.workdir / "data" / DOMAIN.replace(".", "%2e")).glob("archive*"):
            shutil.rmtree(folder, ignore_errors=True)
        config = self.workdir / "prosody.cfg.lua"
        config.write_text(
            PROSODY_CONFIG.format(
                dir=self.workdir,
                ports=ports,
                require="false" if tls == "none" else "true",
                modules=" ".join(f'"{m}";' for m in modules),
                domain=DOMAIN,
            )
        )
        proc = subprocess.Popen(
            ["prosody", "--config", str(config), "-F"],
            cwd=self.workdir,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "prosody.stderr", "ab"),  # noqa: SIM115
        )
        wait_listening(proc, port, "prosody", log=self.workdir / "prosody.log")
        pin(proc.pid, SERVER_CPU)
        return Running(proc, proc.pid, port, signal.SIGTERM)


EJABBERD_CONFIG = """\
# Generated by benchmarks/load/targets.py for one benchmark run.
hosts: ["{domain}"]
loglevel: warning
log_rotate_count: 0
certfiles: ["{dir}/server.pem"]
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    shaper: none
    access: c2s
    max_fsm_queue: 1000000
{tls}
{storage}
auth_password_format: scram
auth_scram_hash: sha
disable_sasl_mechanisms: ["digest-md5", "x-oauth2"]
max_fsm_queue: 1000000
negotiation_timeout: 600
c2s_ciphers: "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"
c2s_protocol_options: ["no_sslv3", "no_tlsv1", "no_tlsv1_1", "cipher_server_preference",
                       "no_compression"]
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100000
  c2s_shaper: none
modules:
{modules}
"""

# ours' feature set (see PROSODY_MODULES "full"); mod_blocking needs mod_privacy.
# No mod_stream_mgmt, mod_mam, mod_offline, s2s, HTTP, pubsub.
EJABBERD_MODULES = (
    "mod_roster",
    "mod_disco",
    "mod_ping",
    "mod_privacy",
    "mod_blocking",
    "mod_carboncopy",
    "mod_private",
    "mod_vcard",
    "mod_last",
    "mod_time",
    "mod_version",
)

# ejabberd-full (issue 24): archives on as ejabberd's own ejabberd.yml.example ships
# mod_mam (every message archived, its default store: Mnesia), plus what ours and
# Prosody's full set also run per session (offline storage, stream management).
EJABBERD_FULL_MODULES = (
    *EJABBERD_MODULES,
    "mod_mam:\n    assume_mam_usage: true\n    default: always",
    "mod_offline",
    "mod_stream_mgmt",
)

# Runs once after ejabberd started (prepare): u0 via ejabberd_auth (SCRAM-SHA-1,
# random salt), u1.. as copies of its passwd record, then the salt and
# iteration count for the client cache, then a clean stop (Mnesia is dumped).
EJABBERD_PREPARE = """\
P = list_to_binary(os:getenv("BENCH_PASSWORD")), H = list_to_binary(os:getenv("BENCH_DOMAIN")),
N = list_to_integer(os:getenv("BENCH_ACCOUNTS")),
ok = ejabberd_auth:try_register(<<"u0">>, H, P),
[R] = mnesia:dirty_read(passwd, {<<"u0">>, H}),
{scram, _, _, Salt, Hash, Iter} = element(3, R),
lists:foreach(fun(I) -> mnesia:dirty_write(setelement(2, R,
    {<<"u", (integer_to_binary(I))/binary>>, H})) end, lists:seq(1, N - 1)),
ok = file:write_file(os:getenv("BENCH_OUT"), io_lib:format("~s ~s ~b~n", [Hash, Salt, Iter])),
init:stop().
"""


# Rosters on the ring of generator.contacts_of (contacts // 2 each side), both
# ways, as mod_roster's Mnesia records (fields by name from the table's own
# attribute list); BENCH_CONTACTS=0 clears the table.
EJABBERD_ROSTERS = """\
H = list_to_binary(os:getenv("BENCH_DOMAIN")), N = list_to_integer(os:getenv("BENCH_ACCOUNTS")),
C = list_to_integer(os:getenv("BENCH_CONTACTS")),
ok = mnesia:wait_for_tables([roster], 60000),
{atomic, ok} = mnesia:clear_table(roster),
Attrs = mnesia:table_info(roster, attributes),
Half = min(C div 2, (N - 1) div 2),
U = fun(I) -> <<"u", (integer_to_binary(I))/binary>> end,
Item = fun(I, J) -> Vals = #{usj => {U(I), H, {U(J), H, <<>>}}, us => {U(I), H},
        jid => {U(J), H, <<>>}, name => <<>>, subscription => both, ask => none,
        groups => [], askmessage => <<>>, xs => []},
    list_to_tuple([roster | [maps:get(A, Vals, []) || A <- Attrs]]) end,
lists:foreach(fun(I) -> Js = lists:usort([((I + D) rem N + N) rem N
        || D <- lists:seq(-Half, Half), D =/= 0]),
    [mnesia:dirty_write(Item(I, J)) || J <- Js] end, lists:seq(0, case C of 0 -> -1; _ -> N - 1 end)),
ok = file:write_file(os:getenv("BENCH_OUT"), <<"ok">>),
init:stop().
"""


def _ejabberd_libs() -> tuple[str, str]:
    """(ERL_LIBS as ejabberdctl sets it, ejabberd version)."""
    libs = "/usr/lib/x86_64-linux-gnu"
    ctl = shutil.which("ejabberdctl") or "/usr/sbin/ejabberdctl"
    with contextlib.suppress(OSError):
        found = re.search(r"^ERL_LIBS='?([^'\n]+)", Path(ctl).read_text(), re.M)
        if found:
            libs = found.group(1)
    versions = sorted(Path(p).name for p in glob.glob(f"{libs}/ejabberd-*"))
    return libs, versions[-1].removeprefix("ejabberd-") if versions else "?"


class Ejabberd:
    """ejabberd (Debian package, 23.01 in Debian 12) in the foreground from a generated config.

    Started with ``erl`` directly (what ``ejabberdctl foreground`` runs, without
    its switch to the ejabberd user): own node name, spool (Mnesia), log and
    config in the work directory, one scheduler (``+S 1:1 +SDcpu 1:1``) and
    pinned to CPU 0 from the start. Modules: :data:`EJABBERD_MODULES`
    (``ejabberd-full``: :data:`EJABBERD_FULL_MODULES`, archiving every message
    in Mnesia; ``ejabberd-sql``: the same modules with everything in SQLite, see
    ``ejabberd_sql.py``; both checked on the wire to archive by
    :func:`archive_check.check` in :meth:`prepare`); shapers off,
    ``max_fsm_queue`` raised, SCRAM-SHA-1 records. Accounts: u0 registered by
    ejabberd itself, the others copies of its Mnesia record
    (:data:`EJABBERD_PREPARE`) or its SQL row (``ejabberd_sql.copy_accounts``).
    """

    label = "ejabberd"
    login_mechanisms = ("PLAIN", "SCRAM-SHA-1")
    default_mechanism = "SCRAM-SHA-1"

    def __init__(self, workdir: Path, name: str = "ejabberd") -> None:
        self.name = name
        self.sql = name == "ejabberd-sql"  # everything in SQLite: ejabberd_sql.py
        # archives on (mod_mam) in ejabberd-full (Mnesia) and ejabberd-sql (SQLite)
        self.full = name in ("ejabberd-full", "ejabberd-sql")
        self.modules = EJABBERD_FULL_MODULES if self.full else EJABBERD_MODULES
        self.db = workdir / name / "ejabberd.db"
        self.storage = (
            ejabberd_sql.CONFIG.format(db=self.db) if self.sql else "auth_method: internal"
        )
        self.workdir = workdir / name
        self.cafile = str(self.workdir / "cert.pem")
        self.node = f"{name.replace('-', '_')}_bench_{os.getpid()}@localhost"
        self.erl = shutil.which("erl") or "/usr/bin/erl"
        self.libs, version = _ejabberd_libs()
        names = ", ".join(m.split(":")[0] for m in self.modules)
        self.description = (f"ejabberd {version} ({self.erl} +S 1:1, node {self.node}),"
                            f" {'SQLite (ejabberd_sql.py)' if self.sql else 'Mnesia'},"
                            f" modules: {names}")  # fmt: skip
        self.rosters = (0, 0)
        # erl starts epmd (the Erlang port mapper) when none runs; stop it again at close
        epmd = shutil.which("epmd") or glob.glob("/usr/lib/erlang/erts-*/bin/epmd")
        self.epmd = epmd if isinstance(epmd, str) else (epmd[0] if epmd else None)
        self.epmd_before = self._epmd_running()

    def _epmd_running(self) -> bool:
        if self.epmd is None:
            return False
        names = subprocess.run([self.epmd, "-names"], capture_output=True, timeout=10)
        return names.returncode == 0

    def provide_rosters(self, contacts: int, accounts: int) -> None:
        """Rosters of ``contacts`` both-way contacts (the ring of
        ``generator.contacts_of``) written into Mnesia's ``roster`` table by an
        ``erl -eval`` run (:data:`EJABBERD_ROSTERS`); 0 clears the table
        (``ejabberd-sql``: ``rosterusers`` rows, see ``ejabberd_sql.write_rosters``)."""
        if (contacts, accounts) == self.rosters or (not contacts and not self.rosters[0]):
            return
        if self.sql:  # while ejabberd is stopped: its roster cache starts empty
            ejabberd_sql.write_rosters(self.db, roster_pairs(contacts, accounts))
            self.rosters = (contacts, accounts)
            return
        out = self.workdir / "rosters.txt"
        out.unlink(missing_ok=True)
        proc = self._spawn("none", free_port(), ["-eval", EJABBERD_ROSTERS],
                           {"BENCH_DOMAIN": DOMAIN, "BENCH_ACCOUNTS": str(accounts),
                            "BENCH_CONTACTS": str(contacts), "BENCH_OUT": str(out)})  # fmt: skip
        try:
            proc.wait(timeout=120 + accounts * max(1, contacts) / 2000)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not out.exists():
            raise RuntimeError(f"roster provisioning failed; see {self.workdir}/ejabberd.log")
        self.rosters = (contacts, accounts)

    def close(self) -> None:
        if self.epmd is not None and not self.epmd_before and self._epmd_running():
            subprocess.run([self.epmd, "-kill"], capture_output=True, timeout=10)

    def _spawn(self, tls: str, port: int, extra: list[str], env: dict[str, str]
               ) -> subprocess.Popen[bytes]:  # fmt: skip
        if tls == "direct":
            listener = "    tls: true"
        elif tls == "starttls":
            listener = "    starttls: true\n    starttls_required: true"
        else:
            listener = "    starttls: false"
        config = self.workdir / "ejabberd.yml"
        config.write_text(
            EJABBERD_CONFIG.format(
                domain=DOMAIN,
                dir=self.workdir,
                port=port,
                tls=listener,
                storage=self.storage,
                modules="\n".join(f"  {m}" if ":" in m else f"  {m}: {{}}" for m in self.modules),
            )
        )
        env = os.environ | env | {
            "EJABBERD_CONFIG_PATH": str(config),
            "EJABBERD_LOG_PATH": str(self.workdir / "ejabberd.log"),
            "ERL_LIBS": self.libs,
            "ERL_CRASH_DUMP_BYTES": "0",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }  # fmt: skip
        command = [self.erl, "-sname", self.node, "+S", "1:1", "+SDcpu", "1:1",
                   "+P", "1000000", "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
                   "-noinput", "-mnesia", "dir", f'"{self.workdir}/spool"',
                   "-s", "ejabberd", *extra]  # fmt: skip

        def affinity() -> None:
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(0, {SERVER_CPU})

        return subprocess.Popen(
            command,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
            preexec_fn=affinity,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "ejabberd.stderr", "ab"),
        )

    def prepare(self, accounts: int) -> str:
        from xmpp_sansio.sasl.credentials import salted_password
        from xmpp_trio.certs import generate_self_signed

        if not Path(self.erl).exists() or not glob.glob(f"{self.libs}/ejabberd-*"):
            raise RuntimeError("ejabberd is not installed (apt-get install ejabberd)")
        start = time.perf_counter()
        cert, key = generate_self_signed([DOMAIN])
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cert.pem").write_bytes(cert)
        (self.workdir / "server.pem").write_bytes(cert + key)
        os.chmod(self.workdir / "server.pem", 0o600)
        out = self.workdir / "prepared.txt"
        out.unlink(missing_ok=True)
        if self.sql:
            ejabberd_sql.create(self.db, self.libs)
        script = ejabberd_sql.PREPARE if self.sql else EJABBERD_PREPARE
        proc = self._spawn("none", free_port(), ["-eval", script],
                           {"BENCH_PASSWORD": PASSWORD, "BENCH_DOMAIN": DOMAIN,
                            "BENCH_ACCOUNTS": str(accounts), "BENCH_OUT": str(out)})  # fmt: skip
        try:
            proc.wait(timeout=120 + accounts / 100)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not out.exists():
            raise RuntimeError(f"account preparation failed; see {self.workdir}/ejabberd.log"
                               f" and ejabberd.stderr")  # fmt: skip
        if self.sql:  # u1.. as copies of u0's users row
            hash_name, salt_b64, iterations = ejabberd_sql.copy_accounts(self.db, accounts)
        else:
            hash_name, salt_b64, iterations = out.read_text().split()
        hash_name = {"sha": "sha1", "sha256": "sha256", "sha512": "sha512"}[hash_name]
        salt = base64.b64decode(salt_b64)
        SALTED[(hash_name, salt, int(iterations))] = salted_password(
            PASSWORD, hash_name, salt, int(iterations)
        )
        checked = ""
        if self.full:  # that it archives, on the wire, before any figure is taken
            running = self.start("starttls")
            try:
                checked = "; " + archive_check.check(running.port, self.cafile, DOMAIN, PASSWORD)
            finally:
                running.stop()
        took = time.perf_counter() - start
        return (f"{accounts} accounts in {took:.1f} s (u0 via ejabberd_auth, SCRAM {hash_name}"
                f" {iterations} iterations, the rest copied in"
                f" {'SQLite' if self.sql else 'Mnesia'}){checked}")  # fmt: skip

    def start(self, tls: str, profile_raw: Path | None = None) -> Running:
        del profile_raw
        port = free_port()
        proc = self._spawn(tls, port, [], {})
        wait_listening(proc, port, "ejabberd", timeout=60, log=self.workdir / "ejabberd.log")
        pin(proc.pid, SERVER_CPU)
        return Running(proc, proc.pid, port, signal.SIGTERM)


TARGETS = {"ours": Ours, "ours-nomam": Ours, "ours-nice0": Ours, "ours-nostore": Ours, "prosody": Prosody, "prosody-min": Prosody,
           "ejabberd": Ejabberd, "ejabberd-full": Ejabberd, "ejabberd-sql": Ejabberd, "prosody-nomam": Prosody}  # fmt: skip


def known(name: str) -> bool:
    """A name :func:`make` accepts: a key of :data:`TARGETS` or ``ours@REV``."""
    return name in TARGETS or (name.startswith("ours@") and len(name) > 5)


def make(name: str, workdir: Path, profile: bool = False, prosody_modules: str = "full") -> Any:
    """The target called ``name`` (see :func:`known`)."""
    if name.startswith("ours@"):
        return OursAt(workdir, name.removeprefix("ours@"), profile)
    if name == "ours":
        return Ours(workdir, profile)
    if name == "ours-nomam":  # issue 17: archiving's cost, on/off in one run
        return Ours(workdir, profile, name="ours-nomam", archives=False)
    if name == "ours-nice0":  # [runtime] writer_nice's default against none, in one run
        return Ours(workdir, profile, name="ours-nice0", extra="\n[runtime]\nwriter_nice = 0\n")
    if name == "ours-nostore":  # archives on, the writer's SQLite skipped: the loop's share
        return Ours(workdir, profile, name="ours-nostore", archives=True, path=(NOSTORE,))
    if name == "prosody":
        return Prosody(workdir, prosody_modules)
    if name == "prosody-min":  # issue 24: the minimal set beside the full one, in one run
        return Prosody(workdir, "minimal", name="prosody-min")
    if name == "prosody-nomam":  # issue 24: the full set without archives
        return Prosody(workdir, "full-nomam", name="prosody-nomam")
    if name in ("ejabberd-full", "ejabberd-sql"):  # issue 24: mod_mam in Mnesia / SQLite
        return Ejabberd(workdir, name=name)
    return TARGETS[name](workdir)
