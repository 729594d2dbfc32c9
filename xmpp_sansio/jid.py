"""XMPP addresses (JIDs), RFC 7622.

Implemented:

* §3.1 fundamentals: a JID is ``[ localpart "@" ] domainpart [ "/" resourcepart ]``,
  split at the first ``/`` (everything after it is the resourcepart) and then at the
  first ``@`` of what remains.
* §3.2 domainpart: one trailing ``.`` is stripped before anything else; IPv4
  literals, bracketed IPv6 literals (``[::1]``) and IDNA2008 domain names (with the
  UTS #46 mapping of RFC 5895 applied first) are accepted.
* §3.3 localpart: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3, which
  obsoletes the RFC 7613 that RFC 7622 cites), then the characters §3.3.1 forbids,
  ``" & ' / : < > @``, are rejected.
* §3.4 resourcepart: the PRECIS OpaqueString profile (RFC 8265 §4.2); any character
  it allows, including ``@`` and ``/``, may appear.
* §3.2-§3.4 lengths: no part may be empty or longer than 1023 octets of UTF-8 after
  normalisation.

A :class:`JID` always holds the normalised ("enforced") form of each part, so ``==``
and ``hash`` compare JIDs the way §3.2-§3.4 require. The domainpart is kept in its
Unicode form (U-labels, lowercase), as §3.2.1 and §3.2.3 ask for comparison:
``Ü.example``, ``ü.example`` and ``xn--tda.example`` all give ``ü.example``. Code that
needs the DNS (A-label) form should call ``idna.encode`` on :attr:`JID.domain`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final, Self

import idna
import precis_i18n

__all__ = ["JID", "MAX_PART_OCTETS", "InvalidJID"]

MAX_PART_OCTETS: Final = 1023
"""Longest localpart, domainpart or resourcepart, in UTF-8 octets (RFC 7622 §3.2-§3.4)."""

_MAX_DNS_NAME: Final = 253
"""Longest DNS name in A-label form without the root dot (RFC 1034 §3.1, RFC 7622 §3.2.1)."""

_PARSE_CACHE_SIZE: Final = 8192
_PARSE_CACHE_MAX_CHARS: Final = 512
"""Longer inputs are parsed but not cached, so the cache's memory stays bounded."""

_FORBIDDEN_IN_LOCALPART: Final = frozenset("\"&'/:<>@")
"""Characters RFC 7622 §3.3.1 disallows in a localpart even though PRECIS allows them."""

_USERNAME_CASE_MAPPED: Final = precis_i18n.get_profile("UsernameCaseMapped")
_OPAQUE_STRING: Final = precis_i18n.get_profile("OpaqueString")

# A lowercase LDH host name (RFC 1123 §2.1): labels of 1-63 letters, digits and
# hyphens, not starting or ending with a hyphen.
_LDH_NAME: Final = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
_NUMERIC_NAME: Final = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class InvalidJID(ValueError):
    """A string or part is not a valid JID (RFC 7622); maps to ``<jid-malformed/>``.

    :attr:`part` names what was wrong (``"localpart"``, ``"domainpart"`` or
    ``"resourcepart"``) and :attr:`reason` says why.
    """

    part: str
    reason: str

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(part, reason)
        self.part = part
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.part}: {self.reason}"


def _shorten(value: str, limit: int = 64) -> str:
    """``repr`` of ``value``, truncated so error messages stay readable."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value)} characters)"


def _check_length(part: str, value: str) -> None:
    """Reject an empty part or one longer than 1023 octets (RFC 7622 §3.2-§3.4)."""
    if not value:
        raise InvalidJID(part, "must not be empty")
    # At most 4 octets per code point, so short values need no encoding.
    if len(value) * 4 > MAX_PART_OCTETS:
        octets = len(value.encode("utf-8", "surrogatepass"))
        if octets > MAX_PART_OCTETS:
            raise InvalidJID(
                part, f"is {octets} octets of UTF-8, more than the {MAX_PART_OCTETS} allowed"
            )


def _normalise_localpart(value: str) -> str:
    """Enforce UsernameCaseMapped and RFC 7622 §3.3.1's extra exclusions."""
    if not value:
        raise InvalidJID("localpart", "must not be empty when '@' is present")
    try:
        result = _USERNAME_CASE_MAPPED.enforce(value)
    except UnicodeError as exc:  # precis-i18n raises UnicodeEncodeError
        reason = getattr(exc, "reason", str(exc))
        raise InvalidJID(
            "localpart", f"{_shorten(value)} is not allowed by PRECIS UsernameCaseMapped ({reason})"
        ) from None
    for char in result:
        if char in _FORBIDDEN_IN_LOCALPART:
            raise InvalidJID(
                "localpart", f"{_shorten(value)} contains {char!r}, forbidden by RFC 7622 §3.3.1"
            )
    _check_length("localpart", result)
    return result


def _normalise_resourcepart(value: str) -> str:
    """Enforce OpaqueString (RFC 7622 §3.4)."""
    if not value:
        raise InvalidJID("resourcepart", "must not be empty when '/' is present")
    try:
        result = _OPAQUE_STRING.enforce(value)
    except UnicodeError as exc:  # precis-i18n raises UnicodeEncodeError
        reason = getattr(exc, "reason", str(exc))
        raise InvalidJID(
            "resourcepart", f"{_shorten(value)} is not allowed by PRECIS OpaqueString ({reason})"
        ) from None
    _check_length("resourcepart", result)
    return result


def _ipv4(value: str, original: str) -> str:
    """An all-numeric domainpart must be a dotted-quad IPv4 address (RFC 7622 §3.2)."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise InvalidJID(
            "domainpart", f"{_shorten(original)} is all-numeric but not a valid IPv4 address"
        ) from None


def _ipv6_literal(value: str, original: str) -> str:
    """``[IPv6]`` as in RFC 3986 §3.2.2, which RFC 7622 §3.2 references."""
    inner = value[1:-1] if value.endswith("]") else None
    # Zone identifiers (RFC 6874) make no sense in an address on the wire.
    if inner is None or "%" in inner:
        raise InvalidJID("domainpart", f"{_shorten(original)} is not a valid IPv6 literal")
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise InvalidJID(
            "domainpart", f"{_shorten(original)} is not a valid IPv6 literal"
        ) from None
    return f"[{address.compressed}]"


def _idna_domain(value: str, original: str, dot_stripped: bool) -> str:
    """IDNA2008 (RFC 5891) after UTS #46 mapping; return the U-label form."""
    try:
        mapped = idna.uts46_remap(value, std3_rules=False, transitional=False)
        # UTS #46 maps U+3002 and friends to '.', so the trailing label separator
        # RFC 7622 §3.2 strips may only appear now; strip at most one in total.
        if not dot_stripped and mapped.endswith("."):
            mapped = mapped[:-1]
        if not mapped or mapped.endswith("."):
            raise InvalidJID("domainpart", f"{_shorten(original)} has an empty label")
        a_label_form = idna.encode(mapped)
        result = idna.decode(a_label_form)
    except UnicodeError as exc:  # idna.IDNAError is a UnicodeError
        raise InvalidJID(
            "domainpart", f"{_shorten(original)} is not a valid IDNA2008 domain name ({exc})"
        ) from None
    if len(a_label_form) > _MAX_DNS_NAME:
        raise InvalidJID("domainpart", f"{_shorten(original)} is longer than a DNS name may be")
    return result


def _normalise_domainpart(value: str) -> str:
    """RFC 7622 §3.2: IP literal, or IDNA2008 domain name kept as U-labels."""
    original = value
    if not value:
        raise InvalidJID("domainpart", "must not be empty")
    # §3.2: a final '.' is stripped before any other canonicalisation.
    dot_stripped = value.endswith(".")
    if dot_stripped:
        value = value[:-1]
        if not value:
            raise InvalidJID("domainpart", "must not be only a dot")
    if value.startswith("["):
        return _ipv6_literal(value, original)
    if value.isascii():
        lowered = value.lower()
        if _NUMERIC_NAME.fullmatch(lowered):
            return _ipv4(lowered, original)
        # Fast path for the common case: plain LDH names need no IDNA processing.
        # Labels with '--' in positions 3-4 (e.g. A-labels) take the full path.
        if len(lowered) <= _MAX_DNS_NAME and "--" not in lowered and _LDH_NAME.fullmatch(lowered):
            return lowered
    result = _idna_domain(value, original, dot_stripped)
    if _NUMERIC_NAME.fullmatch(result):  # e.g. fullwidth digits
        return _ipv4(result, original)
    _check_length("domainpart", result)
    return result


def _split(text: str) -> tuple[str | None, str, str | None]:
    """Split a JID string into its raw parts (RFC 7622 §3.1)."""
    slash = text.find("/")
    if slash >= 0:
        # An empty resourcepart is returned as "" and rejected after the localpart
        # and domainpart have been checked, so errors name the first bad part.
        rest, resource = text[:slash], text[slash + 1 :]
    else:
        rest, resource = text, None
    at = rest.find("@")
    if at >= 0:
        return rest[:at], rest[at + 1 :], resource
    return None, rest, resource


@dataclass(frozen=True, slots=True, repr=False)
class JID:
    """An XMPP address, holding the normalised form of each part (RFC 7622 §3).

    Constructing one directly, ``JID(local, domain, resource)``, normalises and
    validates the parts exactly like :meth:`from_parts`; :meth:`parse` reads the
    string form. Both raise :class:`InvalidJID`.
    """

    local: str | None
    domain: str
    resource: str | None = None
    # The bare form, built once (routing asks for it many times per stanza).
    _bare: JID | None = field(default=None, init=False, repr=False, compare=False)
    # The string form and the hash, computed once (every routed stanza asks for
    # the sender's string form and hashes its addresses in the session tables).
    _str: str | None = field(default=None, init=False, repr=False, compare=False)
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "local", None if self.local is None else _normalise_localpart(self.local)
        )
        object.__setattr__(self, "domain", _normalise_domainpart(self.domain))
        object.__setattr__(
            self,
            "resource",
            None if self.resource is None else _normalise_resourcepart(self.resource),
        )

    @classmethod
    def _trusted(cls, local: str | None, domain: str, resource: str | None) -> Self:
        """Build from parts that are already normalised, skipping validation."""
        jid = object.__new__(cls)
        object.__setattr__(jid, "local", local)
        object.__setattr__(jid, "domain", domain)
        object.__setattr__(jid, "resource", resource)
        object.__setattr__(jid, "_bare", None)
        object.__setattr__(jid, "_str", None)
        object.__setattr__(jid, "_hash", None)
        return jid

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse ``[local@]domain[/resource]`` (RFC 7622 §3.1); raise InvalidJID.

        Results are cached (bounded LRU) since servers parse the same JIDs constantly.
        """
        if len(text) <= _PARSE_CACHE_MAX_CHARS:
            return _parse_cached(text)
        return _parse(text)

    @classmethod
    def parse_or_none(cls, text: str | None) -> JID | None:
        """:meth:`parse`, or ``None`` for a missing or invalid address (where
        a bad ``from``/``to`` is ignored rather than answered)."""
        if text is None:
            return None
        try:
            return cls.parse(text)
        except InvalidJID:
            return None

    @classmethod
    def from_parts(cls, local: str | None, domain: str, resource: str | None = None) -> JID:
        """Build a JID from unnormalised parts (``None`` for an absent part)."""
        return cls(local, domain, resource)

    @property
    def bare(self) -> JID:
        """This JID without its resourcepart (``local@domain`` or ``domain``)."""
        if self.resource is None:
            return self
        bare = self._bare
        if bare is None:
            bare = _bare_of(self.local, self.domain)
            object.__setattr__(self, "_bare", bare)
        return bare

    @property
    def is_bare(self) -> bool:
        """True if there is no resourcepart."""
        return self.resource is None

    @property
    def is_full(self) -> bool:
        """True if there is a resourcepart."""
        return self.resource is not None

    def with_resource(self, resource: str) -> JID:
        """This JID with its resourcepart replaced by ``resource`` (normalised)."""
        return JID._trusted(self.local, self.domain, _normalise_resourcepart(resource))

    def __str__(self) -> str:
        text = self._str
        if text is None:
            text = self.domain if self.local is None else f"{self.local}@{self.domain}"
            if self.resource is not None:
                text = f"{text}/{self.resource}"
            object.__setattr__(self, "_str", text)
        return text

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = hash((self.local, self.domain, self.resource))
            object.__setattr__(self, "_hash", value)
        return value

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, JID)
        return (
            self.domain == other.domain
            and self.local == other.local
            and self.resource == other.resource
        )

    def __repr__(self) -> str:
        return f"JID({str(self)!r})"


def _parse(text: str) -> JID:
    local, domain, resource = _split(text)
    return JID(local, domain, resource)


_parse_cached = functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)(_parse)


def _bare_of(local: str | None, domain: str) -> JID:
    """The bare JID of these normalised parts, built once per full JID: the
    parse cache's own object for it when it can be had, so that a session's
    bare JID and a parsed ``to`` are one object and the session tables find
    it by identity (no ``__eq__`` call per lookup)."""
    text = domain if local is None else f"{local}@{domain}"
    if len(text) <= _PARSE_CACHE_MAX_CHARS:
        try:
            found = _parse_cached(text)
        except InvalidJID:
            found = None
        if (
            found is not None
            and found.resource is None
            and found.local == local
            and found.domain == domain
        ):
            return found
    return JID._trusted(local, domain, None)
