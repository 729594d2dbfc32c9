"""SASL mechanisms: RFC test vectors, client against server, negotiation and failures."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from xmpp_sansio.sasl import (
    CLIENT_PREFERENCE,
    SERVER_MECHANISMS,
    Authenticated,
    Challenge,
    ChannelBinding,
    ClientMechanism,
    MissingCredentials,
    NeedCredentials,
    NeedDerivation,
    SASLClientError,
    SASLCondition,
    SASLFailure,
    ScramClient,
    ScramCredentials,
    ScramServer,
    ServerMechanism,
    ServerStep,
    create_client_mechanism,
    create_server_mechanism,
    derive_scram_credentials,
    scram_hash_name,
    select_client_mechanism,
    tls_server_end_point,
)
from xmpp_sansio.sasl.credentials import salted_password
from xmpp_sansio.testing import derive

SCRAM = ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_PLUS = tuple(name + "-PLUS" for name in SCRAM)
NONCE = bytes(range(18))
SERVER_NONCE = b"server nonce bytes"
ITERATIONS = 4096  # the least a client accepts (RFC 5802 §5.1)
EXPORTER = ChannelBinding("tls-exporter", b"\x01" * 32)
END_POINT = ChannelBinding("tls-server-end-point", b"\x02" * 32)


class Store:
    """Stored credentials per (username, hash), the way a server keeps them."""

    def __init__(self, users: dict[str, str]) -> None:
        self.credentials = {
            (user, hash_name): derive_scram_credentials(
                password, hash_name, salt=user.encode() + b"-salt", iterations=ITERATIONS
            )
            for user, password in users.items()
            for hash_name in ("sha1", "sha256", "sha512")
        }

    def lookup(self, username: str, hash_name: str | None) -> ScramCredentials | None:
        assert hash_name is not None
        return self.credentials.get((username, hash_name))


STORE = Store({"juliet": "r0m30myr0m30", "user": "pencil"})


def run(
    client: ClientMechanism, server: ServerMechanism, store: Store = STORE
) -> tuple[Authenticated, list[ServerStep]]:
    """Drive a whole exchange; return the outcome and every server step."""
    steps: list[ServerStep] = []
    step = server.start(client.initial_response())
    while True:
        steps.append(step)
        if isinstance(step, Challenge):
            step = server.respond(client.challenge(step.data))
        elif isinstance(step, NeedCredentials):
            step = server.provide_credentials(store.lookup(step.username, server.hash_name))
        elif isinstance(step, NeedDerivation):
            step = server.provide_derived(derive(step))
        else:
            client.success(step.additional_data)
            assert client.complete
            return step, steps


def client_for(name: str, password: str = "r0m30myr0m30", **kwargs: object) -> ClientMechanism:
    kwargs.setdefault("username", "juliet")
    return create_client_mechanism(name, password=password, nonce=NONCE, **kwargs)  # type: ignore[arg-type]


def server_for(name: str, **kwargs: object) -> ServerMechanism:
    kwargs.setdefault("decoy_iterations", ITERATIONS)
    return create_server_mechanism(name, nonce=SERVER_NONCE, **kwargs)  # type: ignore[arg-type]


def failure(call: object) -> SASLFailure:
    assert callable(call)
    with pytest.raises(SASLFailure) as info:
        call()
    return info.value


# --- RFC test vectors ------------------------------------------------------------

VECTORS = [
    pytest.param(  # RFC 5802 §5
        "SCRAM-SHA-1",
        "fyko+d2lbbFgONRv9qkxdawL",
        "3rfcNHYJY1ZVvWVs7j",
        "QSXCR+Q6sek8bf92",
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        id="rfc5802",
    ),
    pytest.param(  # RFC 7677 §3
        "SCRAM-SHA-256",
        "rOprNGfwEbeRWgbNEkqO",
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        id="rfc7677",
    ),
]


@pytest.mark.parametrize(
    ("name", "c_nonce", "s_nonce", "salt", "client_final", "server_final"), VECTORS
)
def test_vector_client(
    name: str, c_nonce: str, s_nonce: str, salt: str, client_final: bytes, server_final: bytes
) -> None:
    # The vectors' client nonces happen to be base64 of whole bytes, so the factory
    # reproduces them from the raw bytes.
    client = create_client_mechanism(
        name, username="user", password="pencil", nonce=base64.b64decode(c_nonce)
    )
    assert client.initial_response() == f"n,,n=user,r={c_nonce}".encode()
    server_first = f"r={c_nonce}{s_nonce},s={salt},i=4096".encode()
    assert client.challenge(server_first) == client_final
    assert not client.complete
    client.success(server_final)
    assert client.complete


@pytest.mark.parametrize(
    ("name", "c_nonce", "s_nonce", "salt", "client_final", "server_final"), VECTORS
)
def test_vector_client_with_printable_nonce(
    name: str, c_nonce: str, s_nonce: str, salt: str, client_final: bytes, server_final: bytes
) -> None:
    client = ScramClient(name, username="user", password="pencil", client_nonce=c_nonce)
    assert client.initial_response() == f"n,,n=user,r={c_nonce}".encode()
    assert client.challenge(f"r={c_nonce}{s_nonce},s={salt},i=4096".encode()) == client_final
    # The server signature may also come as a last challenge (RFC 4422 §3.6).
    assert client.challenge(server_final) == b""
    client.success(None)
    assert client.complete


@pytest.mark.parametrize(
    ("name", "c_nonce", "s_nonce", "salt", "client_final", "server_final"), VECTORS
)
def test_vector_server(
    name: str, c_nonce: str, s_nonce: str, salt: str, client_final: bytes, server_final: bytes
) -> None:
    hash_name = scram_hash_name(name)
    assert hash_name is not None
    credentials = derive_scram_credentials(
        "pencil", hash_name, salt=base64.b64decode(salt), iterations=4096
    )
    server = ScramServer(name, server_nonce=s_nonce)
    assert server.hash_name == hash_name
    assert server.start(f"n,,n=user,r={c_nonce}".encode()) == NeedCredentials("user")
    step = server.provide_credentials(credentials)
    assert step == Challenge(f"r={c_nonce}{s_nonce},s={salt},i=4096".encode())
    assert server.respond(client_final) == Authenticated("user", None, server_final)


# --- client against server ---------------------------------------------------------


@pytest.mark.parametrize("name", [*SCRAM, "PLAIN"])
def test_success(name: str) -> None:
    result, _ = run(client_for(name), server_for(name))
    assert result.username == "juliet"
    assert result.authzid is None
    if name == "PLAIN":
        assert result.additional_data is None
    else:
        assert result.additional_data is not None
        assert result.additional_data.startswith(b"v=")


@pytest.mark.parametrize("name", [*SCRAM, "PLAIN"])
def test_authzid(name: str) -> None:
    client = client_for(name, authzid="juliet@example.com/balcony")
    result, _ = run(client, server_for(name))
    assert (result.username, result.authzid) == ("juliet", "juliet@example.com/balcony")


@pytest.mark.parametrize("name", [*SCRAM, "PLAIN"])
def test_wrong_password(name: str) -> None:
    exc = failure(lambda: run(client_for(name, password="wrong"), server_for(name)))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED
    assert exc.text is None


@pytest.mark.parametrize("name", [*SCRAM, "PLAIN"])
def test_unknown_user_looks_like_wrong_password(name: str) -> None:
    client = client_for(name, username="romeo")
    exc = failure(lambda: run(client, server_for(name)))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED
    assert exc.text is None
    assert not client.complete


@pytest.mark.parametrize("name", SCRAM)
def test_unknown_user_gets_a_realistic_challenge(name: str) -> None:
    client = client_for(name, username="romeo")
    server = server_for(name, decoy_iterations=4096)
    assert server.start(client.initial_response()) == NeedCredentials("romeo")
    step = server.provide_credentials(None)
    assert isinstance(step, Challenge)
    nonce, salt, count = step.data.decode().split(",")
    assert nonce.startswith("r=" + base64.b64encode(NONCE).decode())
    assert len(base64.b64decode(salt.removeprefix("s="), validate=True)) == 16
    assert count == "i=4096"
    exc = failure(lambda: server.respond(client.challenge(step.data)))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED


def decoy_challenge(name: str, username: str, nonce: bytes, key: bytes | None) -> bytes:
    server = create_server_mechanism(name, nonce=nonce, decoy_key=key)
    server.start(f"n,,n={username},r=abc".encode())
    step = server.provide_credentials(None)
    assert isinstance(step, Challenge)
    return step.data.split(b",", 1)[1]  # salt and iteration count


def test_decoy_salt_is_stable_with_a_key() -> None:
    key = b"server secret"
    first = decoy_challenge("SCRAM-SHA-256", "romeo", b"nonce 1", key)
    assert first == decoy_challenge("SCRAM-SHA-256", "romeo", b"nonce 2", key)
    assert first != decoy_challenge("SCRAM-SHA-256", "tybalt", b"nonce 1", key)
    assert first != decoy_challenge("SCRAM-SHA-256", "romeo", b"nonce 1", b"other secret")
    # Without a key the decoy follows the nonce.
    assert decoy_challenge("SCRAM-SHA-256", "romeo", b"nonce 1", None) != decoy_challenge(
        "SCRAM-SHA-256", "romeo", b"nonce 2", None
    )


def test_scram_username_and_authzid_escaping() -> None:
    client = client_for("SCRAM-SHA-256", username="a=b,c", authzid="x,y=z")
    first = client.initial_response()
    assert first is not None
    assert first.startswith(b"n,a=x=2Cy=3Dz,n=a=3Db=2Cc,r=")
    server = server_for("SCRAM-SHA-256")
    assert server.start(first) == NeedCredentials("a=b,c")
    store = Store({"a=b,c": "secret"})
    result, _ = run(
        client_for("SCRAM-SHA-256", username="a=b,c", password="secret"),
        server_for("SCRAM-SHA-256"),
        store,
    )
    assert result.username == "a=b,c"


def test_username_is_prepared() -> None:
    # PRECIS UsernameCasePreserved maps fullwidth letters to their narrow forms.
    result, _ = run(client_for("SCRAM-SHA-1", username="\uff4auliet"), server_for("SCRAM-SHA-1"))
    assert result.username == "juliet"
    with pytest.raises(ValueError):
        client_for("SCRAM-SHA-1", username="jul iet")
    with pytest.raises(ValueError):
        client_for("PLAIN", username="")


def test_invalid_password_is_refused_by_the_client() -> None:
    for name in ("SCRAM-SHA-256", "PLAIN"):
        with pytest.raises(ValueError):
            client_for(name, password="")
        with pytest.raises(ValueError):
            client_for(name, password="a\x00b")


# --- channel binding -----------------------------------------------------------------


@pytest.mark.parametrize("name", SCRAM_PLUS)
@pytest.mark.parametrize("binding", [EXPORTER, END_POINT])
def test_plus_success(name: str, binding: ChannelBinding) -> None:
    client = client_for(name, channel_binding=binding, server_supports_plus=True)
    first = client.initial_response()
    assert first is not None
    assert first.startswith(f"p={binding.type},,".encode())
    server = server_for(name, channel_binding=binding, advertised_plus=True)
    result, _ = run(client, server)
    assert result.username == "juliet"


def test_plus_server_with_several_binding_types() -> None:
    for binding in (EXPORTER, END_POINT):
        client = client_for("SCRAM-SHA-256-PLUS", channel_binding=binding)
        server = server_for(
            "SCRAM-SHA-256-PLUS", channel_binding=[EXPORTER, END_POINT], advertised_plus=True
        )
        run(client, server)


@pytest.mark.parametrize("name", SCRAM_PLUS)
def test_plus_mismatching_data(name: str) -> None:
    client = client_for(name, channel_binding=ChannelBinding("tls-exporter", b"\x09" * 32))
    server = server_for(name, channel_binding=EXPORTER, advertised_plus=True)
    exc = failure(lambda: run(client, server))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED
    assert not client.complete


def test_plus_unsupported_type() -> None:
    client = client_for("SCRAM-SHA-256-PLUS", channel_binding=END_POINT)
    server = server_for("SCRAM-SHA-256-PLUS", channel_binding=EXPORTER, advertised_plus=True)
    exc = failure(lambda: server.start(client.initial_response()))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED


@pytest.mark.parametrize("flag", [b"n", b"y"])
def test_plus_without_binding_flag(flag: bytes) -> None:
    server = server_for("SCRAM-SHA-256-PLUS", channel_binding=EXPORTER, advertised_plus=True)
    exc = failure(lambda: server.start(flag + b",,n=juliet,r=abcdef"))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED


def test_p_flag_with_non_plus_mechanism_is_malformed() -> None:
    server = server_for("SCRAM-SHA-256", channel_binding=EXPORTER, advertised_plus=True)
    exc = failure(lambda: server.start(b"p=tls-exporter,,n=juliet,r=abcdef"))
    assert exc.condition is SASLCondition.MALFORMED_REQUEST


def test_client_gs2_flags() -> None:
    def flag(name: str, cb: ChannelBinding | None, plus: bool) -> bytes:
        client = client_for(name, channel_binding=cb, server_supports_plus=plus)
        first = client.initial_response()
        assert first is not None
        return first.split(b",", 1)[0]

    assert flag("SCRAM-SHA-256", None, False) == b"n"
    assert flag("SCRAM-SHA-256", None, True) == b"n"
    assert flag("SCRAM-SHA-256", EXPORTER, False) == b"y"
    assert flag("SCRAM-SHA-256", EXPORTER, True) == b"n"
    assert flag("SCRAM-SHA-256-PLUS", EXPORTER, True) == b"p=tls-exporter"
    with pytest.raises(ValueError):
        client_for("SCRAM-SHA-256-PLUS")


def test_downgrade_detected() -> None:
    # The client could bind but saw no -PLUS: a man in the middle stripped them.
    client = client_for("SCRAM-SHA-256", channel_binding=EXPORTER, server_supports_plus=False)
    server = server_for("SCRAM-SHA-256", channel_binding=EXPORTER, advertised_plus=True)
    exc = failure(lambda: server.start(client.initial_response()))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED


def test_y_flag_accepted_when_plus_not_advertised() -> None:
    client = client_for("SCRAM-SHA-256", channel_binding=EXPORTER, server_supports_plus=False)
    run(client, server_for("SCRAM-SHA-256", advertised_plus=False))


def test_c_attribute_must_match_the_gs2_header() -> None:
    # A client-final whose c= claims a different header than the client-first sent.
    client = client_for("SCRAM-SHA-256")
    server = server_for("SCRAM-SHA-256")
    server.start(client.initial_response())
    step = server.provide_credentials(STORE.lookup("juliet", "sha256"))
    assert isinstance(step, Challenge)
    final = client.challenge(step.data).replace(b"c=biws,", b"c=eSws,")  # "y,,"
    assert failure(lambda: server.respond(final)).condition is SASLCondition.NOT_AUTHORIZED


def test_channel_binding_type_is_validated() -> None:
    with pytest.raises(ValueError):
        ChannelBinding("tls exporter", b"")
    with pytest.raises(ValueError):
        ChannelBinding("", b"")


def make_certificate(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    algorithm: hashes.HashAlgorithm | None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)  # type: ignore[arg-type]
    )


def test_tls_server_end_point() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    for algorithm, expected in (
        (hashes.SHA384(), hashes.SHA384()),
        (hashes.SHA256(), hashes.SHA256()),
    ):
        der = make_certificate(key, algorithm).public_bytes(Encoding.DER)
        digest = hashes.Hash(expected)
        digest.update(der)
        assert tls_server_end_point(der) == ChannelBinding(
            "tls-server-end-point", digest.finalize()
        )
    der = make_certificate(ed25519.Ed25519PrivateKey.generate(), None).public_bytes(Encoding.DER)
    with pytest.raises(ValueError):
        tls_server_end_point(der)
    with pytest.raises(ValueError):
        tls_server_end_point(b"not a certificate")


# --- PLAIN, ANONYMOUS, EXTERNAL ------------------------------------------------------


def test_plain_message() -> None:
    assert client_for("PLAIN").initial_response() == b"\x00juliet\x00r0m30myr0m30"
    client = client_for("PLAIN", authzid="juliet@example.com")
    assert client.initial_response() == b"juliet@example.com\x00juliet\x00r0m30myr0m30"


def test_plain_without_initial_response() -> None:
    server = server_for("PLAIN")
    assert server.hash_name == "sha256"
    assert server.start(None) == Challenge(b"")
    assert server.respond(b"\x00juliet\x00r0m30myr0m30") == NeedCredentials("juliet")
    step = server.provide_credentials(STORE.lookup("juliet", "sha256"))
    assert isinstance(step, NeedDerivation)
    assert server.provide_derived(derive(step)) == Authenticated("juliet", None, None)


def test_plain_accepts_other_hashes() -> None:
    server = server_for("PLAIN")
    server.start(b"\x00juliet\x00r0m30myr0m30")
    step = server.provide_credentials(STORE.lookup("juliet", "sha1"))
    assert isinstance(step, NeedDerivation) and step.hash_name == "sha1"
    assert isinstance(server.provide_derived(derive(step)), Authenticated)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"juliet",
        b"juliet\x00r0m30myr0m30",
        b"\x00\x00juliet\x00r0m30myr0m30",
        b"\x00juliet\x00r0m30\x00myr0m30",
        b"\x00\x00r0m30myr0m30",
        b"\x00juliet\x00",
        b"\x00juli\xffet\x00r0m30myr0m30",
        b"\x00juliet\x00\xc3(",
    ],
)
def test_plain_malformed(message: bytes) -> None:
    server = server_for("PLAIN")
    assert failure(lambda: server.start(message)).condition is SASLCondition.MALFORMED_REQUEST


def test_plain_password_that_is_no_opaque_string() -> None:
    server = server_for("PLAIN")
    server.start(b"\x00juliet\x00\x07")
    step = server.provide_credentials(STORE.lookup("juliet", "sha256"))
    assert isinstance(step, NeedDerivation)  # the same work as any other password
    exc = failure(lambda: server.provide_derived(derive(step)))
    assert exc.condition is SASLCondition.NOT_AUTHORIZED and exc.checked


def plain_derivation(username: str, decoy_iterations: int) -> NeedDerivation:
    server = create_server_mechanism(
        "PLAIN", nonce=NONCE, decoy_key=b"k", decoy_iterations=decoy_iterations
    )
    server.start(b"\x00" + username.encode() + b"\x00wrong password")
    step = server.provide_credentials(STORE.lookup(username, "sha256"))
    assert isinstance(step, NeedDerivation)
    return step


def test_plain_asks_for_the_same_derivation_for_unknown_and_known_users() -> None:
    """Item 14: the decoy of an unknown user has the hash and iterations of a
    real account (the configured count), so neither work nor request differs."""
    known = plain_derivation("juliet", decoy_iterations=ITERATIONS)
    unknown = plain_derivation("nobody", decoy_iterations=ITERATIONS)
    assert (unknown.hash_name, unknown.iterations) == (known.hash_name, known.iterations)
    assert len(unknown.salt) == 16  # as the server's stored salts (storage.SALT_BYTES)
    assert plain_derivation("nobody", decoy_iterations=10000).iterations == 10000


@pytest.mark.parametrize("username", ["juliet", "nobody"])
def test_plain_wrong_password_and_unknown_user_fail_as_checked(username: str) -> None:
    server = create_server_mechanism("PLAIN", nonce=NONCE)
    server.start(b"\x00" + username.encode() + b"\x00wrong")
    step = server.provide_credentials(STORE.lookup(username, "sha256"))
    assert isinstance(step, NeedDerivation)
    exc = failure(lambda: server.provide_derived(derive(step)))
    assert (exc.condition, exc.text, exc.checked) == (SASLCondition.NOT_AUTHORIZED, None, True)


def test_plain_malformed_message_fails_unchecked() -> None:
    server = create_server_mechanism("PLAIN", nonce=NONCE)
    exc = failure(lambda: server.start(b"juliet"))
    assert exc.condition is SASLCondition.MALFORMED_REQUEST and not exc.checked


def test_plain_derived_result_without_a_request_is_malformed() -> None:
    server = create_server_mechanism("PLAIN", nonce=NONCE)
    server.start(None)
    exc = failure(lambda: server.provide_derived(b"x" * 32))
    assert exc.condition is SASLCondition.MALFORMED_REQUEST


def test_plain_client_rejects_challenges_and_additional_data() -> None:
    client = client_for("PLAIN")
    with pytest.raises(SASLClientError):
        client.challenge(b"")
    client = client_for("PLAIN")
    with pytest.raises(SASLClientError):
        client.success(b"v=abc")
    client = client_for("PLAIN")
    client.success(b"")
    assert client.complete


@pytest.mark.parametrize("initial", [b"", b"trace@example.com", "é".encode() * 255])
def test_anonymous(initial: bytes) -> None:
    server = server_for("ANONYMOUS")
    assert server.hash_name is None
    assert server.start(initial) == Authenticated(None, None, None)


def test_anonymous_round_trip_and_without_initial_response() -> None:
    result, _ = run(client_for("ANONYMOUS"), server_for("ANONYMOUS"))
    assert result == Authenticated(None, None, None)
    server = server_for("ANONYMOUS")
    assert server.start(None) == Challenge(b"")
    assert server.respond(b"sirhc") == Authenticated(None, None, None)


@pytest.mark.parametrize("initial", [b"x" * 256, "é".encode() * 256, b"\xff", b"\xc3"])
def test_anonymous_malformed(initial: bytes) -> None:
    server = server_for("ANONYMOUS")
    assert failure(lambda: server.start(initial)).condition is SASLCondition.MALFORMED_REQUEST


def test_external() -> None:
    server = server_for("EXTERNAL", external_identity="juliet")
    assert server.hash_name is None
    result, _ = run(client_for("EXTERNAL"), server)
    assert result == Authenticated("juliet", None, None)
    server = server_for("EXTERNAL", external_identity="juliet")
    result, _ = run(client_for("EXTERNAL", authzid="juliet@example.com"), server)
    assert result == Authenticated("juliet", "juliet@example.com", None)
    server = server_for("EXTERNAL", external_identity="juliet")
    assert server.start(None) == Challenge(b"")
    assert server.respond(b"") == Authenticated("juliet", None, None)


def test_external_without_identity() -> None:
    server = server_for("EXTERNAL")
    assert failure(lambda: server.start(b"")).condition is SASLCondition.NOT_AUTHORIZED


@pytest.mark.parametrize("initial", [b"\xff", b"a\x00b"])
def test_external_malformed(initial: bytes) -> None:
    server = server_for("EXTERNAL", external_identity="juliet")
    assert failure(lambda: server.start(initial)).condition is SASLCondition.MALFORMED_REQUEST


# --- SCRAM server: malformed input ---------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n,,",
        b"n,",
        b"x,,n=juliet,r=abc",
        b"p=,,n=juliet,r=abc",
        b"p=tls exporter,,n=juliet,r=abc",
        b"n,b=juliet,n=juliet,r=abc",
        b"n,a=,n=juliet,r=abc",
        b"n,a=x=41,n=juliet,r=abc",
        b"n,,m=ext,n=juliet,r=abc",
        b"n,,n=juliet",
        b"n,,n=,r=abc",
        b"n,,n=jul=iet,r=abc",
        b"n,,n=jul\x00iet,r=abc",
        b"n,,u=juliet,r=abc",
        b"n,,n=juliet,r=",
        b"n,,n=juliet,x=abc",
        b"n,,n=juliet,r=ab\x7fc",
        b"n,,n=juliet,r=abc,b",
        b"n,,n=juliet,r=abc,b=",
        b"n,,n=juli\xffet,r=abc",
    ],
)
def test_scram_client_first_malformed(message: bytes) -> None:
    server = server_for("SCRAM-SHA-256")
    assert failure(lambda: server.start(message)).condition is SASLCondition.MALFORMED_REQUEST


def test_scram_client_first_extensions_are_ignored() -> None:
    server = server_for("SCRAM-SHA-256")
    assert server.start(b"n,,n=juliet,r=abc,x=ext") == NeedCredentials("juliet")


def scram_final_stage() -> tuple[ServerMechanism, bytes]:
    """A SCRAM-SHA-256 server waiting for the client-final, and the correct one."""
    client = client_for("SCRAM-SHA-256")
    server = server_for("SCRAM-SHA-256")
    server.start(client.initial_response())
    step = server.provide_credentials(STORE.lookup("juliet", "sha256"))
    assert isinstance(step, Challenge)
    return server, client.challenge(step.data)


@pytest.mark.parametrize(
    ("edit", "condition"),
    [
        (lambda m: b"", SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.rsplit(b",", 1)[0], SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"c=biws", b"c=bi!s"), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"c=biws", b"x=biws"), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"r=", b"x="), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"p=", b"p=AAAA"), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"p=", b"p=*"), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m + b"\xff", SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b",p=", b",bad,p="), SASLCondition.MALFORMED_REQUEST),
        (lambda m: m.replace(b"c=biws", b"c="), SASLCondition.NOT_AUTHORIZED),
        (lambda m: m.replace(b"r=", b"r=x"), SASLCondition.NOT_AUTHORIZED),
        (lambda m: m.replace(b",p=", b"x,p="), SASLCondition.NOT_AUTHORIZED),
        (
            lambda m: m[:-6] + (b"AAAAA=" if m[-6:] != b"AAAAA=" else b"BBBBB="),
            SASLCondition.NOT_AUTHORIZED,
        ),
    ],
)
def test_scram_client_final_bad(edit: object, condition: SASLCondition) -> None:
    server, final = scram_final_stage()
    assert callable(edit)
    assert failure(lambda: server.respond(edit(final))).condition is condition


def test_scram_client_final_extensions_are_ignored_but_signed() -> None:
    # An extension between r= and p= is part of AuthMessage; adding one invalidates the proof.
    server, final = scram_final_stage()
    edited = final.replace(b",p=", b",x=ext,p=")
    assert failure(lambda: server.respond(edited)).condition is SASLCondition.NOT_AUTHORIZED


# --- SCRAM client: a misbehaving server ------------------------------------------------

C_NONCE = base64.b64encode(NONCE).decode()


def scram_client() -> ClientMechanism:
    client = client_for("SCRAM-SHA-1")
    client.initial_response()
    return client


@pytest.mark.parametrize(
    "server_first",
    [
        b"",
        b"\xff",
        f"m=ext,r={C_NONCE}xyz,s=c2FsdA==,i=10".encode(),
        f"r={C_NONCE},s=c2FsdA==,i=10".encode(),  # no server part
        b"r=otherxyz,s=c2FsdA==,i=10",
        f"r=x{C_NONCE}xyz,s=c2FsdA==,i=10".encode(),
        f"s=c2FsdA==,r={C_NONCE}xyz,i=10".encode(),
        f"r={C_NONCE}x,yz,s=c2FsdA==,i=10".encode(),
        f"r={C_NONCE}xyz,s=,i=10".encode(),  # empty salt
        f"r={C_NONCE}xyz,s=c2Fsd!==,i=10".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA=,i=10".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=0".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=-1".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=010".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=ten".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=10000001".encode(),  # above MAX_CLIENT_ITERATIONS
        f"r={C_NONCE}xyz,s=c2FsdA==,i=99999999999".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==".encode(),
        f"r={C_NONCE}xyz,s=c2FsdA==,i=10,bad".encode(),
    ],
)
def test_scram_client_rejects_bad_server_first(server_first: bytes) -> None:
    client = scram_client()
    with pytest.raises(SASLClientError):
        client.challenge(server_first)
    # Every client error is final.
    with pytest.raises(SASLClientError):
        client.success(b"v=abc")
    assert not client.complete


def test_scram_client_accepts_4096_iterations_and_extensions() -> None:
    client = scram_client()
    assert client.challenge(f"r={C_NONCE}xyz,s=c2FsdA==,i=4096,x=ext".encode()).startswith(
        b"c=biws,"
    )


@pytest.mark.parametrize("count", [1, 2, 4095])
def test_scram_client_refuses_fewer_than_4096_iterations(count: int) -> None:
    """RFC 5802 §5.1: a server asking for fewer gets no proof (it could brute-force it)."""
    client = scram_client()
    with pytest.raises(SASLClientError, match="iteration count"):
        client.challenge(f"r={C_NONCE}xyz,s=c2FsdA==,i={count}".encode())
    assert not client.complete


def test_scram_client_checks_server_final() -> None:
    def at_final() -> tuple[ClientMechanism, ServerMechanism, bytes]:
        client = client_for("SCRAM-SHA-256")
        server = server_for("SCRAM-SHA-256")
        server.start(client.initial_response())
        step = server.provide_credentials(STORE.lookup("juliet", "sha256"))
        assert isinstance(step, Challenge)
        result = server.respond(client.challenge(step.data))
        assert isinstance(result, Authenticated) and result.additional_data
        return client, server, result.additional_data

    client, _, good = at_final()
    bad_signature = b"v=" + base64.b64encode(bytes(32))
    for data in (
        None,
        b"",
        bad_signature,
        b"v=!!",
        b"e=invalid-proof",
        b"x=abc",
        b"\xff",
        good[:-4],
    ):
        client, _, _ = at_final()
        with pytest.raises(SASLClientError):
            client.success(data)
        assert not client.complete
        with pytest.raises(SASLClientError):
            client.success(good)
    client, _, good = at_final()
    client.success(good + b",x=ext")
    assert client.complete
    with pytest.raises(SASLClientError):
        client.challenge(b"")


def test_scram_client_rejects_early_success() -> None:
    client = scram_client()
    with pytest.raises(SASLClientError):
        client.success(None)
    assert not client.complete


def test_scram_client_server_error_message() -> None:
    client = scram_client()
    client.challenge(f"r={C_NONCE}xyz,s=c2FsdA==,i=4096".encode())
    with pytest.raises(SASLClientError, match="invalid-proof"):
        client.challenge(b"e=invalid-proof")


def test_scram_client_needs_printable_nonce() -> None:
    with pytest.raises(ValueError):
        ScramClient("SCRAM-SHA-1", username="u", password="p", client_nonce="a,b")
    with pytest.raises(ValueError):
        create_client_mechanism("SCRAM-SHA-1", username="u", password="p", nonce=b"")


# --- the server mechanism's life cycle --------------------------------------------------


def test_out_of_order_calls() -> None:
    server = server_for("SCRAM-SHA-256")
    assert failure(lambda: server.respond(b"x")).condition is SASLCondition.MALFORMED_REQUEST
    server = server_for("SCRAM-SHA-256")
    assert (
        failure(lambda: server.provide_credentials(None)).condition
        is SASLCondition.MALFORMED_REQUEST
    )
    server = server_for("SCRAM-SHA-256")
    server.start(b"n,,n=juliet,r=abc")
    assert (
        failure(lambda: server.start(b"n,,n=juliet,r=abc")).condition
        is SASLCondition.MALFORMED_REQUEST
    )
    server = server_for("SCRAM-SHA-256")
    server.start(b"n,,n=juliet,r=abc")
    assert failure(lambda: server.respond(b"c=biws")).condition is SASLCondition.MALFORMED_REQUEST
    server = server_for("PLAIN")
    server.start(b"\x00juliet\x00r0m30myr0m30")
    assert failure(lambda: server.respond(b"")).condition is SASLCondition.MALFORMED_REQUEST
    server = server_for("PLAIN")
    assert (
        failure(lambda: server.provide_credentials(None)).condition
        is SASLCondition.MALFORMED_REQUEST
    )


@pytest.mark.parametrize("name", [*SCRAM, "PLAIN", "ANONYMOUS"])
def test_calls_after_completion_fail(name: str) -> None:
    server = server_for(name)
    run(client_for(name), server)
    for call in (
        lambda: server.respond(b""),
        lambda: server.provide_credentials(None),
        lambda: server.start(None),
    ):
        assert failure(call).condition is SASLCondition.MALFORMED_REQUEST


def test_failures_are_final() -> None:
    server = server_for("SCRAM-SHA-256")
    assert server.start(None) == Challenge(b"")
    failure(lambda: server.respond(b"garbage"))
    assert (
        failure(lambda: server.respond(b"n,,n=juliet,r=abc")).condition
        is SASLCondition.MALFORMED_REQUEST
    )


@pytest.mark.parametrize("name", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_an_account_without_the_hash_looks_unknown_and_its_failure_does_not_count(
    name: str,
) -> None:
    """Credentials of another hash (an account imported with SHA-1 only): the
    decoy server-first-message of an unknown user, then the same
    not-authorized, but not counted (nothing was checked)."""
    first = b"n,,n=juliet,r=abc"
    decoy = server_for(name, decoy_key=b"k")
    decoy.start(first)
    unknown = decoy.provide_credentials(None)
    server = server_for(name, decoy_key=b"k")
    server.start(first)
    step = server.provide_credentials(STORE.lookup("juliet", "sha1"))
    assert step == unknown
    client = client_for(name)
    server = server_for(name, decoy_key=b"k")
    step = server.start(client.initial_response())
    step = server.provide_credentials(STORE.lookup("juliet", "sha1"))
    assert isinstance(step, Challenge)
    final = client.challenge(step.data)
    exc = failure(lambda: server.respond(final))
    assert isinstance(exc, MissingCredentials)
    assert exc.condition is SASLCondition.NOT_AUTHORIZED and exc.text is None
    assert not exc.counts and not exc.checked


def test_plain_against_sha1_credentials_hands_on_the_password_for_the_upgrade() -> None:
    for hash_name, upgrade in (("sha1", "r0m30myr0m30"), ("sha256", None)):
        server = server_for("PLAIN")
        step = server.start(b"\x00juliet\x00r0m30myr0m30")
        assert isinstance(step, NeedCredentials)
        step = server.provide_credentials(STORE.lookup("juliet", hash_name))
        assert isinstance(step, NeedDerivation) and step.hash_name == hash_name
        salted = salted_password(step.password, step.hash_name, step.salt, step.iterations)
        done = server.provide_derived(salted)
        assert isinstance(done, Authenticated) and done.upgrade_password == upgrade
        assert "r0m30" not in repr(done)


# --- names, selection, factories ----------------------------------------------------------


def test_scram_hash_name() -> None:
    assert scram_hash_name("SCRAM-SHA-1") == "sha1"
    assert scram_hash_name("SCRAM-SHA-256-PLUS") == "sha256"
    assert scram_hash_name("SCRAM-SHA-512") == "sha512"
    assert scram_hash_name("PLAIN") is None
    assert scram_hash_name("SCRAM-SHA-384") is None


@pytest.mark.parametrize("name", SCRAM + SCRAM_PLUS)
def test_server_hash_names(name: str) -> None:
    assert server_for(name, channel_binding=EXPORTER).hash_name == scram_hash_name(name)


def test_unknown_mechanisms() -> None:
    for name in ("DIGEST-MD5", "scram-sha-1", "", "X-OAUTH2"):
        assert failure(lambda n=name: server_for(n)).condition is SASLCondition.INVALID_MECHANISM
        with pytest.raises(ValueError):
            client_for(name)
    # A -PLUS mechanism cannot have been offered without channel binding data.
    exc = failure(lambda: server_for("SCRAM-SHA-256-PLUS"))
    assert exc.condition is SASLCondition.INVALID_MECHANISM


def test_every_server_mechanism_can_be_created() -> None:
    for name in SERVER_MECHANISMS:
        assert server_for(name, channel_binding=EXPORTER).name == name
    assert set(CLIENT_PREFERENCE) <= set(SERVER_MECHANISMS)


ALL = [
    "SCRAM-SHA-1",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
    "PLAIN",
    "ANONYMOUS",
    "EXTERNAL",
]


@pytest.mark.parametrize(
    ("offered", "tls", "cb", "allow_plain", "expected"),
    [
        (ALL, True, True, True, "SCRAM-SHA-256-PLUS"),
        (ALL, True, False, True, "SCRAM-SHA-256"),
        (ALL, False, False, True, "SCRAM-SHA-256"),
        (
            ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-512-PLUS"],
            True,
            True,
            True,
            "SCRAM-SHA-512-PLUS",
        ),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], True, True, True, "SCRAM-SHA-1-PLUS"),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], True, False, True, "SCRAM-SHA-1"),
        (["SCRAM-SHA-512", "SCRAM-SHA-1"], True, True, True, "SCRAM-SHA-512"),
        (["SCRAM-SHA-256-PLUS"], True, False, True, None),
        (["PLAIN"], True, False, True, "PLAIN"),
        (["PLAIN"], True, True, False, None),
        (["PLAIN"], False, False, True, None),
        (["PLAIN", "SCRAM-SHA-1"], True, False, True, "SCRAM-SHA-1"),
        (["ANONYMOUS", "EXTERNAL"], True, True, True, None),
        ([" SCRAM-SHA-256\n", "PLAIN"], True, False, True, "SCRAM-SHA-256"),
        (["DIGEST-MD5", "X-OAUTH2"], True, True, True, None),
        ([], True, True, True, None),
    ],
)
def test_select_client_mechanism(
    offered: list[str], tls: bool, cb: bool, allow_plain: bool, expected: str | None
) -> None:
    chosen = select_client_mechanism(
        iter(offered), tls=tls, channel_binding=cb, allow_plain=allow_plain
    )
    assert chosen == expected


def test_sasl_condition_values() -> None:
    assert SASLCondition.NOT_AUTHORIZED.value == "not-authorized"
    assert str(SASLCondition.MALFORMED_REQUEST) == "malformed-request"
    assert SASLCondition("temporary-auth-failure") is SASLCondition.TEMPORARY_AUTH_FAILURE
    assert len(SASLCondition) == 11
    exc = SASLFailure(SASLCondition.ABORTED, "bye")
    assert (exc.condition, exc.text) == (SASLCondition.ABORTED, "bye")
