"""When and how soon a client reconnects (sans I/O: no clock, no randomness of its own).

Theory of operation: after a connection is lost or an attempt fails, the I/O
layer asks the :class:`ReconnectPolicy` whether the failure is one that
reconnecting cannot fix (:meth:`~ReconnectPolicy.auth_is_fatal`,
:meth:`~ReconnectPolicy.stream_error_is_fatal`) and, if not, how long to wait
(:meth:`~ReconnectPolicy.delay`: bounded exponential backoff with jitter from
the caller's random source). A session that lasted ``stable_session`` seconds
starts the sequence over (:meth:`~ReconnectPolicy.next_attempt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from xmpp_sansio.errors import StreamErrorCondition

__all__ = ["BOT_RECONNECT", "ReconnectPolicy", "Uniform", "backoff_delay"]

#: The only SASL failure worth retrying by default (RFC 6120 §6.5.15).
_RETRYABLE_AUTH: Final = frozenset({"temporary-auth-failure"})


class Uniform(Protocol):
    """A random source (``random.Random`` is one)."""

    def uniform(self, a: float, b: float) -> float: ...


def backoff_delay(attempt: int, *, base: float, cap: float, rng: Uniform) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0 for the first).

    Exponential (``base * 2**attempt``) up to ``cap``, with "equal jitter": a
    uniformly random value between half that and all of it, so many clients
    restarted together do not reconnect in lockstep. Always in
    ``[base / 2, cap]``.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Which failures end a reconnecting client, and the backoff between attempts.

    Attributes:
        base, cap: the backoff's first ceiling and its cap (seconds).
        stable_session: a session that lasted this long resets the backoff.
        fatal_auth: SASL conditions (RFC 6120 §6.5) that retrying cannot fix;
            ``None``: every condition but ``temporary-auth-failure``.
        fatal_stream: stream errors (RFC 6120 §4.9.3) that reconnecting cannot
            fix: by default ``conflict`` (another client bound the resource:
            reconnecting would kick it out in turn, forever), ``host-unknown``
            and ``host-gone`` (configuration errors).
    """

    base: float = 1.0
    cap: float = 60.0
    stable_session: float = 60.0
    fatal_auth: frozenset[str] | None = None
    fatal_stream: frozenset[StreamErrorCondition] = frozenset(
        {
            StreamErrorCondition.CONFLICT,
            StreamErrorCondition.HOST_UNKNOWN,
            StreamErrorCondition.HOST_GONE,
        }
    )

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError("backoff needs 0 < base <= cap")

    def auth_is_fatal(self, condition: str) -> bool:
        """Whether a SASL failure with ``condition`` ends the client."""
        if self.fatal_auth is None:
            return condition not in _RETRYABLE_AUTH
        return condition in self.fatal_auth

    def stream_error_is_fatal(self, condition: StreamErrorCondition) -> bool:
        """Whether a stream error with ``condition`` ends the client."""
        return condition in self.fatal_stream

    def next_attempt(self, attempt: int, session_length: float | None) -> int:
        """The attempt number after a failure: 0 again after a stable session
        (``session_length`` is ``None`` when no connection was made)."""
        if session_length is not None and session_length >= self.stable_session:
            return 0
        return attempt

    def delay(self, attempt: int, rng: Uniform) -> float:
        """The wait before attempt ``attempt`` (see :func:`backoff_delay`)."""
        return backoff_delay(attempt, base=self.base, cap=self.cap, rng=rng)


BOT_RECONNECT: Final = ReconnectPolicy(
    fatal_auth=frozenset(
        {
            "not-authorized",
            "account-disabled",
            "credentials-expired",
            "encryption-required",
            "invalid-authzid",
            "invalid-mechanism",
            "mechanism-too-weak",
        }
    ),
    fatal_stream=frozenset(),
)
"""A bot's policy: only refused credentials stop it (RFC 6120 §6.5); it
reconnects after any stream error, ``conflict`` included (logged)."""
