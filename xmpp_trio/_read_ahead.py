"""OpenSSL's read-ahead for the stdlib's TLS sockets: one ``read()`` system
call takes every TLS record that arrived, not two per record.

Without read-ahead OpenSSL reads a record in two system calls, its 5-byte
header and then its body, so a client's four stanzas in four records cost the
server eight ``read()`` calls (and ``SocketTransport``'s gathering read one
``FIONREAD`` besides). With it (``SSL_CTX_set_read_ahead``, see
SSL_CTX_set_read_ahead(3)), OpenSSL reads as much as the kernel holds, up to
a record's worth, into its own buffer and serves the next records from there.

The ``ssl`` module has no switch for it, so :func:`enable` reaches the
context's ``SSL_CTX`` through :mod:`ctypes`: the ``SSL_CTX *`` is the first
field after the object header of CPython's ``PySSLContext`` (unchanged since
the module began), and it is used only once ``SSL_CTX_get_options`` read
through it agrees with :attr:`ssl.SSLContext.options`. Anything unexpected
(another interpreter, a built-in ``_ssl``, a missing symbol, a disagreement)
leaves the context as it was and :func:`enable` returns False: the transport
then reads as before.

What read-ahead changes for the reader: records may wait inside OpenSSL
while the socket is not readable, so a read is tried before waiting for
readability, and the records behind the first are read while
``SSL_has_pending`` (:func:`pending`) says OpenSSL holds bytes of one; only
after a read that left OpenSSL holding nothing does the next wait first.
"""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys
import weakref
from collections.abc import Callable
from typing import Final

__all__ = ["enable", "pending", "refuse"]

_SSL_CTRL_GET_READ_AHEAD: Final = 40  # openssl/ssl.h
_SSL_CTRL_SET_READ_AHEAD: Final = 41

_known: weakref.WeakKeyDictionary[ssl.SSLContext, bool] = weakref.WeakKeyDictionary()


def _functions() -> tuple[Callable[..., int], ...] | None:
    """``SSL_CTX_ctrl``, ``SSL_CTX_get_options``, ``SSL_get_SSL_CTX`` and
    ``SSL_has_pending`` of the libssl the ``ssl`` module is linked with (None
    where they cannot be found)."""
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info < (3, 15):
        return None
    try:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # dlsym searches its libssl too
        ctrl = lib.SSL_CTX_ctrl
        get_options = lib.SSL_CTX_get_options
        get_ctx = lib.SSL_get_SSL_CTX
        has_pending = lib.SSL_has_pending
    except (AttributeError, OSError):
        return None
    ctrl.restype = ctypes.c_long
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    get_options.restype = ctypes.c_uint64
    get_options.argtypes = [ctypes.c_void_p]
    get_ctx.restype = ctypes.c_void_p
    get_ctx.argtypes = [ctypes.c_void_p]
    has_pending.restype = ctypes.c_int
    has_pending.argtypes = [ctypes.c_void_p]
    return ctrl, get_options, get_ctx, has_pending


def _pointer(obj: object) -> int | None:
    """The first pointer field of a CPython object after its header (the
    ``SSL_CTX *`` of an ``SSLContext``, the ``SSL *`` of an ``_ssl._SSLSocket``
    after its ``Socket`` weak reference: callers check what they read)."""
    return ctypes.c_void_p.from_address(id(obj) + object.__basicsize__).value


_FUNCTIONS = _functions()


def enable(context: ssl.SSLContext) -> bool:
    """Turn OpenSSL's read-ahead on for the connections ``context`` makes from
    now on; True if it is on (asked once per context)."""
    known = _known.get(context)
    if known is not None:
        return known
    on = False
    if _FUNCTIONS is not None and type(context).__basicsize__ > object.__basicsize__:
        ctrl, get_options = _FUNCTIONS[:2]
        pointer = _pointer(context)
        if pointer and get_options(pointer) == context.options:
            ctrl(pointer, _SSL_CTRL_SET_READ_AHEAD, 1, None)
            on = ctrl(pointer, _SSL_CTRL_GET_READ_AHEAD, 0, None) == 1
    _known[context] = on
    return on


def refuse(context: ssl.SSLContext) -> None:
    """Keep read-ahead off for ``context`` (``[tls] read_ahead = false``):
    :func:`enable` answers False for it from now on. A context already
    turned on stays on (its answer is kept); call this before its first use."""
    _known.setdefault(context, False)


def pending(tls: ssl.SSLSocket) -> Callable[[], int] | None:
    """``SSL_has_pending`` of ``tls``: nonzero while OpenSSL holds bytes not
    yet returned by a read, a whole record or part of one. None unless the
    ``SSL *`` is found and checked: in CPython's ``PySSLSocket`` it follows
    the ``Socket`` weak reference and precedes the strong reference to its
    context (which must be ``tls.context``), and ``SSL_get_SSL_CTX`` of it must
    be that context's ``SSL_CTX *`` (itself checked by :func:`enable`)."""
    sslobj = getattr(tls, "_sslobj", None)
    context = tls.context
    if _FUNCTIONS is None or sslobj is None or not _known.get(context):
        return None
    get_ctx, has_pending = _FUNCTIONS[2:]
    word = ctypes.sizeof(ctypes.c_void_p)
    address = id(sslobj) + object.__basicsize__ + word
    if ctypes.c_void_p.from_address(address + word).value != id(context):
        return None
    ssl_pointer = ctypes.c_void_p.from_address(address).value
    if not ssl_pointer or get_ctx(ssl_pointer) != _pointer(context):
        return None
    return functools.partial(has_pending, ssl_pointer)
