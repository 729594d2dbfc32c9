"""Property tests: hostile input makes the mechanisms fail only in their documented way.

A server mechanism fed any bytes at any step either takes a valid step or
raises :class:`SASLFailure`; a client mechanism fed any challenge or success
data either answers or raises :class:`SASLClientError`. Nothing else escapes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.sasl import (
    SERVER_MECHANISMS,
    Authenticated,
    Challenge,
    ChannelBinding,
    ClientMechanism,
    NeedCredentials,
    NeedDerivation,
    SASLClientError,
    SASLFailure,
    ScramCredentials,
    ServerMechanism,
    ServerStep,
    create_client_mechanism,
    create_server_mechanism,
    derive_scram_credentials,
    scram_hash_name,
)
from xmpp_sansio.testing import derive

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ITERATIONS = 4096  # the least a client accepts (RFC 5802 §5.1)
NONCE = b"fixed client nonce"
CLIENT_NONCE = "Zml4ZWQgY2xpZW50IG5vbmNl"  # base64 of NONCE, as the client sends it
BINDING = ChannelBinding("tls-exporter", b"\x01" * 32)
CLIENT_MECHANISMS = (
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-512-PLUS",
    "PLAIN",
    "ANONYMOUS",
    "EXTERNAL",
)

# Pieces of SCRAM and PLAIN messages, so that random input often gets past the
# first checks and reaches the deeper ones.
PIECES = st.sampled_from(
    [
        "n",
        "y",
        "p=tls-exporter",
        "p=tls-unique",
        "a=juliet",
        "a=x=2Cy",
        "n=juliet",
        "n=ju=3Dliet",
        "r=abc",
        f"r={CLIENT_NONCE}",
        f"r={CLIENT_NONCE}xyz",
        "m=ext",
        "c=biws",
        "c=eSws",
        "c=",
        "s=c2FsdA==",
        "s=",
        "i=1",
        "i=0",
        "i=4096",
        "v=AAAA",
        "e=other-error",
        "p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "x=ext",
        "=",
        "",
        "\x00",
        "juliet",
        "é",
    ]
)
ATTRIBUTES = st.builds(
    str.__add__,
    st.sampled_from(["a=", "n=", "r=", "m=", "c=", "s=", "i=", "p=", "v=", "e=", "x="]),
    st.text(max_size=10),
)
STRUCTURED = st.lists(st.one_of(PIECES, ATTRIBUTES, st.text(max_size=8)), max_size=8).flatmap(
    lambda parts: st.sampled_from([",", "\x00"]).map(lambda sep: sep.join(parts).encode())
)
DATA = st.one_of(st.binary(max_size=200), STRUCTURED)


def credentials(hash_name: str | None) -> ScramCredentials:
    return derive_scram_credentials(
        "r0m30myr0m30", hash_name or "sha256", salt=b"salt", iterations=ITERATIONS
    )


def server(name: str) -> ServerMechanism:
    return create_server_mechanism(
        name,
        nonce=b"server nonce",
        channel_binding=BINDING,
        advertised_plus=True,
        external_identity="juliet",
        decoy_iterations=ITERATIONS,
    )


def advance(mech: ServerMechanism, step: ServerStep, known_user: bool) -> ServerStep:
    """Answer NeedCredentials the way a caller would."""
    if isinstance(step, NeedCredentials):
        creds = credentials(mech.hash_name) if known_user else None
        step = mech.provide_credentials(creds)
    if isinstance(step, NeedDerivation):
        return mech.provide_derived(derive(step))
    return step


@FUZZ
@given(
    name=st.sampled_from(SERVER_MECHANISMS),
    initial=st.one_of(st.none(), DATA),
    responses=st.lists(DATA, max_size=3),
    known_user=st.booleans(),
)
def test_server_raises_only_sasl_failure(
    name: str, initial: bytes | None, responses: list[bytes], known_user: bool
) -> None:
    mech = server(name)
    try:
        step = advance(mech, mech.start(initial), known_user)
        for data in responses:
            step = advance(mech, mech.respond(data), known_user)
    except SASLFailure:
        return
    assert isinstance(step, Challenge | Authenticated)


@FUZZ
@given(
    name=st.sampled_from([n for n in SERVER_MECHANISMS if scram_hash_name(n)]),
    flag=st.sampled_from(["n", "y", "p=tls-exporter"]),
    final=DATA,
    known_user=st.booleans(),
)
def test_scram_server_final_step_raises_only_sasl_failure(
    name: str, flag: str, final: bytes, known_user: bool
) -> None:
    # A valid client-first gets the server to the last step; then anything goes.
    mech = server(name)
    try:
        step = advance(mech, mech.start(f"{flag},,n=juliet,r=abc".encode()), known_user)
    except SASLFailure:
        return  # a flag that does not fit the mechanism
    assert isinstance(step, Challenge)
    try:
        result = mech.respond(final)
    except SASLFailure:
        return
    assert isinstance(result, Authenticated)


def client(name: str) -> ClientMechanism:
    mech = create_client_mechanism(
        name,
        username="juliet",
        password="r0m30myr0m30",
        nonce=NONCE,
        authzid="juliet@example.com",
        channel_binding=BINDING,
        server_supports_plus=True,
    )
    mech.initial_response()
    return mech


@FUZZ
@given(
    name=st.sampled_from(CLIENT_MECHANISMS),
    challenges=st.lists(DATA, max_size=3),
    success=st.one_of(st.none(), DATA),
)
def test_client_raises_only_sasl_client_error(
    name: str, challenges: list[bytes], success: bytes | None
) -> None:
    mech = client(name)
    try:
        for data in challenges:
            assert isinstance(mech.challenge(data), bytes)
        mech.success(success)
    except SASLClientError:
        assert not mech.complete
        return
    assert mech.complete


@FUZZ
@given(
    name=st.sampled_from([n for n in CLIENT_MECHANISMS if scram_hash_name(n)]),
    data=DATA,
    as_challenge=st.booleans(),
)
def test_scram_client_final_step_raises_only_sasl_client_error(
    name: str, data: bytes, as_challenge: bool
) -> None:
    mech = client(name)
    mech.challenge(f"r={CLIENT_NONCE}xyz,s=c2FsdA==,i=4096".encode())
    try:
        if as_challenge:
            assert mech.challenge(data) == b""
        mech.success(None if as_challenge else data)
    except SASLClientError:
        assert not mech.complete
        return
    raise AssertionError("a made-up server signature was accepted")
