"""Tests for xmpp_sansio.jid (RFC 7622 XMPP addresses)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.jid import JID, MAX_PART_OCTETS, InvalidJID

# Loading the PRECIS and IDNA tables makes the first examples slow.
hypothesis_settings = settings(deadline=None)


# RFC 7622 §3.5.1, Table 1 (examples 1-15).
RFC7622_VALID = [
    ("juliet@example.com", "juliet", "example.com", None),
    ("juliet@example.com/foo", "juliet", "example.com", "foo"),
    ("juliet@example.com/foo bar", "juliet", "example.com", "foo bar"),
    ("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"),
    ("foo\\20bar@example.com", "foo\\20bar", "example.com", None),
    ("fussball@example.com", "fussball", "example.com", None),
    ("fu\u00dfball@example.com", "fu\u00dfball", "example.com", None),
    ("\u03c0@example.com", "\u03c0", "example.com", None),
    ("\u03a3@example.com/foo", "\u03c3", "example.com", "foo"),
    ("\u03c3@example.com/foo", "\u03c3", "example.com", "foo"),
    ("\u03c2@example.com/foo", "\u03c2", "example.com", "foo"),
    ("king@example.com/\u265a", "king", "example.com", "\u265a"),
    ("example.com", None, "example.com", None),
    ("example.com/foobar", None, "example.com", "foobar"),
    ("a.example.com/b@example.net", None, "a.example.com", "b@example.net"),
]

# RFC 7622 §3.5.2, Table 2 (examples 16-23), without example 18 (a leading space
# in the resourcepart), which erratum 4560 withdrew: OpaqueString allows it.
RFC7622_INVALID = [
    ('"juliet"@example.com', "localpart"),
    ("foo bar@example.com", "localpart"),
    ("@example.com/", "localpart"),
    ("henry\u2163@example.com", "localpart"),
    ("\u265a@example.com", "localpart"),
    ("juliet@", "domainpart"),
    ("/foobar", "domainpart"),
]


@pytest.mark.parametrize(("text", "local", "domain", "resource"), RFC7622_VALID)
def test_rfc7622_valid_examples_parse_into_their_parts(
    text: str, local: str | None, domain: str, resource: str | None
) -> None:
    jid = JID.parse(text)
    assert (jid.local, jid.domain, jid.resource) == (local, domain, resource)


@pytest.mark.parametrize(("text", "part"), RFC7622_INVALID)
def test_rfc7622_invalid_examples_are_rejected_naming_the_bad_part(text: str, part: str) -> None:
    with pytest.raises(InvalidJID) as info:
        JID.parse(text)
    assert info.value.part == part
    assert part in str(info.value)


def test_leading_space_in_resourcepart_is_allowed_per_erratum_4560() -> None:
    assert JID.parse("juliet@example.com/ foo").resource == " foo"


def test_invalid_jid_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match=r"invalid localpart: .*forbidden by RFC 7622 §3\.3\.1"):
        JID.parse("ju:liet@example.com")


def test_invalid_jid_survives_pickling() -> None:
    error = InvalidJID("domainpart", "must not be empty")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.part, copy.reason, str(copy)) == (error.part, error.reason, str(error))


# --- Case mapping and comparison -------------------------------------------------


def test_localpart_is_case_folded() -> None:
    assert JID.parse("Juliet@example.com").local == "juliet"
    assert JID.parse("JULIET@example.com") == JID.parse("juliet@example.com")


def test_localpart_width_is_mapped() -> None:
    assert JID.parse("\uff32\uff4f\uff4d\uff45\uff4f@example.net").local == "romeo"


def test_sharp_s_is_not_folded_to_ss() -> None:
    assert JID.parse("fu\u00dfball@example.com") != JID.parse("fussball@example.com")


def test_domainpart_is_case_folded() -> None:
    assert JID.parse("juliet@Example.COM").domain == "example.com"
    assert JID.parse("juliet@EXAMPLE.com") == JID.parse("juliet@example.com")


def test_resourcepart_is_case_preserved() -> None:
    jid = JID.parse("juliet@example.com/Balcony")
    assert jid.resource == "Balcony"
    assert jid != JID.parse("juliet@example.com/balcony")


def test_resourcepart_is_normalised_with_opaque_string() -> None:
    # OpaqueString maps non-ASCII spaces to SPACE and applies NFC.
    assert JID.parse("a@example.com/foo\u00a0bar").resource == "foo bar"
    assert JID.parse("a@example.com/e\u0301").resource == "\u00e9"


def test_equal_jids_hash_equal() -> None:
    assert (
        len({JID.parse("Romeo@Example.NET/orchard"), JID.parse("romeo@example.net/orchard")}) == 1
    )


_PARTS = st.sampled_from(["a", "A", "b", "\u00e9", "e\u0301"])


@settings(max_examples=200)
@given(
    st.tuples(st.one_of(st.none(), _PARTS), st.sampled_from(["x.example", "X.example"]),
              st.one_of(st.none(), _PARTS)),
    st.tuples(st.one_of(st.none(), _PARTS), st.sampled_from(["x.example", "X.example"]),
              st.one_of(st.none(), _PARTS)),
)  # fmt: skip
def test_cached_hash_and_string_agree_with_equality(
    one: tuple[str | None, str, str | None], two: tuple[str | None, str, str | None]
) -> None:
    a, b = JID(*one), JID(*two)
    str(a), hash(a), a.bare  # fill the caches of one side only
    assert (a == b) == (a.local == b.local and a.domain == b.domain and a.resource == b.resource)
    assert (a == b) == (str(a) == str(b))
    if a == b:
        assert hash(a) == hash(b)
    assert JID.parse(str(a)) == a and str(JID.parse(str(b))) == str(b)
    assert pickle.loads(pickle.dumps(a)) == a and hash(pickle.loads(pickle.dumps(a))) == hash(a)


def test_jid_is_never_equal_to_its_string() -> None:
    assert JID.parse("a@b.example") != "a@b.example"
    assert JID.parse("a@b.example") in {JID.parse("A@B.example")}


# --- Domainparts -----------------------------------------------------------------


def test_idn_domain_equals_its_a_label_form() -> None:
    unicode_form = JID.parse("juliet@\u00dc.example")
    assert unicode_form == JID.parse("juliet@xn--tda.example")
    assert unicode_form == JID.parse("juliet@\u00fc.example")
    assert unicode_form == JID.parse("juliet@XN--TDA.example")


def test_idn_domain_is_stored_as_u_label() -> None:
    assert JID.parse("xn--tda.example").domain == "\u00fc.example"


def test_ideographic_full_stop_separates_labels() -> None:
    assert JID.parse("juliet@example\u3002com").domain == "example.com"


@pytest.mark.parametrize(
    "domain", ["localhost", "example.com", "capulet.example", "conference.localhost"]
)
def test_typical_test_domains_are_accepted(domain: str) -> None:
    assert JID.parse(f"user@{domain}").domain == domain


def test_trailing_dot_is_stripped_from_domainpart() -> None:
    assert JID.parse("juliet@example.com./balcony") == JID.parse("juliet@example.com/balcony")
    assert JID.parse("example.com.").domain == "example.com"


def test_trailing_ideographic_full_stop_is_stripped_from_domainpart() -> None:
    assert JID.parse("example.com\u3002").domain == "example.com"


def test_only_one_trailing_dot_is_stripped() -> None:
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse("juliet@example.com..")


@pytest.mark.parametrize("domain", [".", "..", ".example.com", "example..com"])
def test_empty_domain_labels_are_rejected(domain: str) -> None:
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse(f"juliet@{domain}")


def test_ipv4_literal_is_accepted() -> None:
    assert JID.parse("juliet@192.0.2.1/x").domain == "192.0.2.1"


@pytest.mark.parametrize("domain", ["192.0.2.256", "1.2.3", "01.2.3.4", "123"])
def test_all_numeric_domain_must_be_an_ipv4_address(domain: str) -> None:
    with pytest.raises(InvalidJID, match="IPv4"):
        JID.parse(f"juliet@{domain}")


def test_ipv6_literal_is_accepted_and_canonicalised() -> None:
    jid = JID.parse("juliet@[::1]/balcony")
    assert jid.domain == "[::1]"
    assert JID.parse("juliet@[0:0:0:0:0:0:0:1]") == jid.bare
    assert JID.parse("[2001:DB8::A]").domain == "[2001:db8::a]"


@pytest.mark.parametrize("domain", ["[::1", "[not-an-address]", "[192.0.2.1]", "[fe80::1%eth0]"])
def test_malformed_ipv6_literal_is_rejected(domain: str) -> None:
    with pytest.raises(InvalidJID, match="IPv6"):
        JID.parse(f"juliet@{domain}")


def test_unbracketed_ipv6_address_is_rejected() -> None:
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse("::1")


@pytest.mark.parametrize(
    "domain",
    ["-example.com", "example-.com", "ex_ample.com", "ab--cd.example", "xn--zz.example", "a b"],
)
def test_invalid_domain_names_are_rejected(domain: str) -> None:
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse(f"juliet@{domain}")


def test_domain_label_longer_than_63_octets_is_rejected() -> None:
    assert JID.parse("a" * 63 + ".example").domain == "a" * 63 + ".example"
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse("a" * 64 + ".example")


def test_domainpart_longer_than_1023_octets_is_rejected() -> None:
    # RFC 7622 §3.2.1 also keeps DNS's own limits (253 octets), which bind first.
    domain = ".".join(["a" * 63] * 16)
    assert len(domain.encode()) == MAX_PART_OCTETS
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse(domain)
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse(domain + "a")


def test_at_sign_in_domainpart_is_rejected() -> None:
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.parse("a@b@example.com")


# --- Localparts and resourceparts --------------------------------------------------


@pytest.mark.parametrize("char", ['"', "&", "'", ":", "<", ">", "@"])
def test_forbidden_localpart_characters_are_rejected(char: str) -> None:
    with pytest.raises(InvalidJID, match="localpart"):
        JID.from_parts(f"ju{char}liet", "example.com")


def test_slash_in_localpart_is_rejected_by_from_parts() -> None:
    with pytest.raises(InvalidJID, match="localpart"):
        JID.from_parts("ju/liet", "example.com")


def test_fullwidth_at_sign_in_localpart_is_rejected_after_width_mapping() -> None:
    with pytest.raises(InvalidJID, match="localpart"):
        JID.parse("ju\uff20liet@example.com")


def test_empty_localpart_is_rejected() -> None:
    with pytest.raises(InvalidJID, match="localpart"):
        JID.parse("@example.com")
    with pytest.raises(InvalidJID, match="localpart"):
        JID.from_parts("", "example.com")


def test_empty_resourcepart_is_rejected() -> None:
    with pytest.raises(InvalidJID, match="resourcepart"):
        JID.parse("juliet@example.com/")
    with pytest.raises(InvalidJID, match="resourcepart"):
        JID.parse("juliet@example.com").with_resource("")


def test_resourcepart_may_contain_slashes_and_at_signs() -> None:
    jid = JID.parse("juliet@example.com/a/b@c/d")
    assert (jid.local, jid.domain, jid.resource) == ("juliet", "example.com", "a/b@c/d")


def test_control_characters_in_resourcepart_are_rejected() -> None:
    with pytest.raises(InvalidJID, match="resourcepart"):
        JID.parse("juliet@example.com/a\x00b")


def test_lone_surrogates_are_rejected() -> None:
    for text in ["ju\ud800liet@example.com", "juliet@exa\ud800mple.com", "j@example.com/\udfff"]:
        with pytest.raises(InvalidJID):
            JID.parse(text)


def test_localpart_of_1023_octets_is_accepted_and_1024_rejected() -> None:
    # U+00E9 is two octets of UTF-8: 511 of them plus "x" is 1023 octets.
    local = "\u00e9" * 511 + "x"
    assert JID.parse(f"{local}@example.com").local == local
    with pytest.raises(InvalidJID, match=r"localpart.*1024 octets"):
        JID.parse(f"{local}x@example.com")


def test_resourcepart_of_1023_octets_is_accepted_and_1024_rejected() -> None:
    resource = "\u265a" * 341  # three octets each: 1023 octets
    assert JID.parse(f"juliet@example.com/{resource}").resource == resource
    with pytest.raises(InvalidJID, match=r"resourcepart.*1024 octets"):
        JID.parse(f"juliet@example.com/{resource}x")


def test_length_limit_applies_after_normalisation() -> None:
    # Fullwidth letters are three octets each, but map to one-octet ASCII.
    assert JID.parse("\uff41" * 1023 + "@example.com").local == "a" * 1023
    assert JID.parse("a" * 1023 + "@example.com").local == "a" * 1023


# --- API ---------------------------------------------------------------------------


def test_str_is_the_canonical_form() -> None:
    assert str(JID.parse("Romeo@Example.NET/orchard")) == "romeo@example.net/orchard"
    assert str(JID.parse("Example.NET")) == "example.net"
    assert str(JID.parse("example.net/x@y")) == "example.net/x@y"


def test_repr_shows_the_string_form() -> None:
    assert repr(JID.parse("romeo@example.net/orchard")) == "JID('romeo@example.net/orchard')"


def test_bare_drops_the_resourcepart() -> None:
    jid = JID.parse("romeo@example.net/orchard")
    assert jid.is_full and not jid.is_bare
    assert jid.bare == JID.parse("romeo@example.net")
    bare = jid.bare
    assert bare.is_bare and not bare.is_full
    assert bare.bare is bare


def test_with_resource_replaces_and_normalises_the_resourcepart() -> None:
    jid = JID.parse("romeo@example.net/orchard").with_resource("garden\u00a0wall")
    assert jid == JID.parse("romeo@example.net/garden wall")
    with pytest.raises(InvalidJID, match="resourcepart"):
        jid.with_resource("bad\x07")


def test_from_parts_normalises_each_part() -> None:
    jid = JID.from_parts("Romeo", "Example.NET.", "Orchard")
    assert (jid.local, jid.domain, jid.resource) == ("romeo", "example.net", "Orchard")
    assert JID.from_parts(None, "example.net") == JID.parse("example.net")


def test_direct_construction_normalises_like_from_parts() -> None:
    assert JID("Romeo", "Example.NET", None) == JID.from_parts("romeo", "example.net", None)
    with pytest.raises(InvalidJID):
        JID("romeo", "", None)


def test_jid_is_immutable() -> None:
    jid = JID.parse("romeo@example.net")
    with pytest.raises(AttributeError):
        jid.local = "juliet"  # type: ignore[misc]


def test_parse_returns_cached_instances_for_repeated_input() -> None:
    assert JID.parse("nurse@capulet.example/kitchen") is JID.parse("nurse@capulet.example/kitchen")


def test_long_input_is_parsed_without_the_cache() -> None:
    text = "juliet@example.com/" + "r" * 1000
    assert JID.parse(text) == JID.parse(text)
    assert JID.parse(text).resource == "r" * 1000


def test_jid_survives_pickling() -> None:
    jid = JID.parse("juliet@\u00fc.example/balcony")
    assert pickle.loads(pickle.dumps(jid)) == jid


# --- Properties --------------------------------------------------------------------

_ascii_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
_unicode_label = st.text(
    st.characters(categories=("Ll", "Lu", "Lo", "Nd", "Mn")), min_size=1, max_size=8
)
_domains = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "Example.COM.",
            "localhost",
            "conference.localhost",
            "capulet.example",
            "\u00dc.example",
            "xn--tda.example",
            "192.0.2.1",
            "[::1]",
            "[2001:DB8::1]",
            "example\u3002com",
            "\uff45xample.com",
        ]
    ),
    st.lists(st.one_of(_ascii_label, _unicode_label), min_size=1, max_size=4).map(".".join),
    st.text(max_size=12),
)
_locals = st.one_of(
    st.text(st.characters(categories=("Ll", "Lu", "Lo", "Nd", "Pc", "Pd")), min_size=1),
    st.text(st.characters(codec="ascii"), max_size=10),
    st.text(max_size=10),
)
_resources = st.text(max_size=20)
_delimiters = st.sampled_from(["@", "/", ".", "[", "]", ":", "\u3002", "\uff20", "\uff0f"])


@st.composite
def _jid_texts(draw: st.DrawFn) -> str:
    """Strings shaped like JIDs (most valid), sometimes with stray delimiters."""
    text = draw(_domains)
    if draw(st.booleans()):
        text = f"{draw(_locals)}@{text}"
    if draw(st.booleans()):
        text = f"{text}/{draw(_resources)}"
    return text


_any_text = st.one_of(
    _jid_texts(),
    st.text(),
    st.text(st.one_of(_delimiters, st.characters())),
    st.text(st.characters(exclude_categories=())),  # including lone surrogates
)


def _parse_or_none(text: str) -> JID | None:
    try:
        return JID.parse(text)
    except InvalidJID:
        return None


@hypothesis_settings
@given(_any_text)
def test_arbitrary_text_parses_or_raises_invalid_jid(text: str) -> None:
    try:
        jid = JID.parse(text)
    except InvalidJID as exc:
        assert exc.part in ("localpart", "domainpart", "resourcepart")
        return
    assert isinstance(jid, JID)


@hypothesis_settings
@given(_any_text)
def test_parse_is_idempotent(text: str) -> None:
    jid = _parse_or_none(text)
    if jid is None:
        return
    again = JID.parse(str(jid))
    assert again == jid
    assert str(again) == str(jid)
    assert hash(again) == hash(jid)


@hypothesis_settings
@given(_any_text)
def test_parsed_parts_are_within_the_length_limits(text: str) -> None:
    jid = _parse_or_none(text)
    if jid is None:
        return
    for part in (jid.local, jid.domain, jid.resource):
        assert part is None or 0 < len(part.encode("utf-8")) <= MAX_PART_OCTETS


@hypothesis_settings
@given(
    st.one_of(st.none(), _locals.filter(lambda s: "@" not in s and "/" not in s)),
    _domains.filter(lambda s: "@" not in s and "/" not in s),
    st.one_of(st.none(), _resources),
)
def test_from_parts_agrees_with_parse(local: str | None, domain: str, resource: str | None) -> None:
    text = domain
    if local is not None:
        text = f"{local}@{text}"
    if resource is not None:
        text = f"{text}/{resource}"
    try:
        built: JID | InvalidJID = JID.from_parts(local, domain, resource)
    except InvalidJID as exc:
        built = exc
    try:
        parsed: JID | InvalidJID = JID.parse(text)
    except InvalidJID as exc:
        parsed = exc
    if isinstance(built, InvalidJID) or isinstance(parsed, InvalidJID):
        assert isinstance(built, InvalidJID) and isinstance(parsed, InvalidJID)
        assert built.part == parsed.part
    else:
        assert built == parsed


@hypothesis_settings
@given(_any_text)
def test_bare_has_no_resource_and_round_trips(text: str) -> None:
    jid = _parse_or_none(text)
    if jid is None:
        return
    bare = jid.bare
    assert bare.resource is None and bare.is_bare
    assert (bare.local, bare.domain) == (jid.local, jid.domain)
    assert JID.parse(str(bare)) == bare
    assert JID.from_parts(jid.local, jid.domain, None) == bare


def test_parse_or_none_gives_none_for_a_missing_or_invalid_address() -> None:
    assert JID.parse_or_none("juliet@capulet.example/balcony") == JID.parse(
        "juliet@capulet.example/balcony"
    )
    assert JID.parse_or_none(None) is None
    assert JID.parse_or_none("") is None
    assert JID.parse_or_none("@capulet.example") is None


@hypothesis_settings
@given(_any_text)
def test_a_full_jids_bare_is_the_object_parsing_its_bare_form_gives(text: str) -> None:
    # The session tables are keyed by bare JIDs: a session's bare JID and a
    # parsed bare 'to' are one object, found by identity (issue 24).
    jid = _parse_or_none(text)
    if jid is None or jid.resource is None:
        return
    fresh = JID.from_parts(jid.local, jid.domain, jid.resource)  # its bare not built yet
    bare = fresh.bare
    assert bare == jid.bare and bare.resource is None
    if len(str(bare)) <= 512:
        assert bare is JID.parse(str(bare))
    assert fresh.bare is bare  # built once


def test_a_bound_resource_and_a_parsed_address_share_the_bare_jid() -> None:
    bound = JID("juliet", "capulet.example", "balcony")
    assert bound.bare is JID.parse("juliet@capulet.example")
    assert bound.with_resource("chamber").bare is bound.bare
