"""Checks made before the server starts, so that what would fail deep inside
``serve`` fails first with one line naming what is wrong (issue 23): listen
addresses that do not resolve or cannot be bound, a data directory that
cannot be written. (Two listeners on one address and port are refused when
the configuration is loaded.)

``check`` runs the checks that do not need the ports free (the server may be
running); ``serve`` runs them all.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from .config import ListenerConfig, ServerConfig, bind_host

__all__ = ["problems"]


def _describe(listener: ListenerConfig) -> str:
    return f"listener {listener.kind} on {listener.address} port {listener.port}"


def _addresses(listener: ListenerConfig) -> list[tuple[int, tuple[object, ...]]]:
    infos = socket.getaddrinfo(
        bind_host(listener.address),
        listener.port,
        type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
    )
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _bind_problem(family: int, sockaddr: tuple[object, ...]) -> str | None:
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT:
            return None  # e.g. no IPv6 here: the server skips that family too
        return exc.strerror or str(exc)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is already in use (another server, or another listener?)"
            if exc.errno == errno.EACCES:
                return "permission denied (ports below 1024 need privileges)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return "the address is not one of this machine's"
            return exc.strerror or str(exc)
    return None


def _data_dir_problem(data_dir: Path) -> str | None:
    """The data directory (or its first existing parent) must be writable."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"data_dir {data_dir}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"data_dir {data_dir}: {existing} is not writable by this user"
    return None


def problems(config: ServerConfig, *, bind: bool) -> list[str]:
    """What would stop the server from starting, one line each (empty: none
    found). ``bind``: also try to bind each listener (the ports must be free)."""
    found: list[str] = []
    for listener in config.listeners:
        try:
            addresses = _addresses(listener)
        except (OSError, UnicodeError) as exc:
            found.append(f"{_describe(listener)}: cannot resolve the address: {exc}")
            continue
        if not bind or listener.port == 0:
            continue
        for family, sockaddr in addresses:
            problem = _bind_problem(family, sockaddr)
            if problem is not None:
                found.append(f"{_describe(listener)}: {problem}")
                break
    data_problem = _data_dir_problem(config.data_dir)
    if data_problem is not None:
        found.append(data_problem)
    return found
