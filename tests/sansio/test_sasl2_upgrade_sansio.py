"""XEP-0480 SCRAM upgrade tasks on SASL2, sans I/O, in the XEP's §3 shape:
``<upgrade/>`` offered, a SCRAM-SHA-1 login asking for UPGR-SCRAM-SHA-256
gets ``<continue/>`` (with the SCRAM server signature), ``<next/>`` is
answered with a salt and iteration count, the client's SaltedPassword becomes
SHA-256 credentials that log in; nothing to upgrade goes straight to
``<success/>``; a wrong task ends the stream."""

from __future__ import annotations

import base64
from xml.etree.ElementTree import Element, fromstring

import pytest
from test_auth_counters_sansio import drain
from test_sasl2_sansio import PASSWORD, SASL2, USER_AGENT, answer_all, authenticate, server

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.sasl import create_client_mechanism
from xmpp_sansio.sasl.credentials import derive_scram_credentials, salted_password
from xmpp_sansio.stream.answers import UpgradeTasksNeeded
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.events import (
    Authenticated,
    CredentialsRequested,
    CredentialsUpgraded,
    UpgradeTasksRequested,
)

pytestmark = pytest.mark.usefixtures("any_framing")
UPGRADE = "urn:xmpp:sasl:upgrade:0"
SCRAM_UPGRADE = "urn:xmpp:scram-upgrade:0"


def scram_sha1_login(conn: ServerConnection, extra: str) -> None:
    """SCRAM-SHA-1 through SASL2 up to the server's verdict."""
    client = create_client_mechanism(
        "SCRAM-SHA-1", username="juliet", password=PASSWORD, nonce=b"n" * 18
    )
    conn.receive_data(authenticate("SCRAM-SHA-1", client.initial_response(), USER_AGENT + extra))
    answer_all(conn)
    challenge = fromstring(conn.data_to_send())
    final = client.challenge(base64.b64decode(challenge.text or ""))
    conn.receive_data(
        f"<response xmlns='{SASL2}'>{base64.b64encode(final).decode()}</response>".encode()
    )


def first(out: bytes) -> Element:
    for end in (b"</continue>", b"</task-data>", b"</success>"):
        if end in out:
            return fromstring(out[: out.index(end) + len(end)])
    raise AssertionError(out)


def test_upgrade_tasks_are_offered() -> None:
    out = server().data_to_send()
    assert f'<upgrade xmlns="{UPGRADE}">UPGR-SCRAM-SHA-256</upgrade>'.encode() in out
    assert f'<upgrade xmlns="{UPGRADE}">UPGR-SCRAM-SHA-512</upgrade>'.encode() in out


def test_a_sha1_login_upgrades_to_sha256_without_the_password_on_the_server() -> None:
    conn = server()
    conn.data_to_send()
    scram_sha1_login(conn, f"<upgrade xmlns='{UPGRADE}'>UPGR-SCRAM-SHA-256</upgrade>")
    events = answer_all(conn)
    [asked] = [e for e in events if isinstance(e, UpgradeTasksRequested)]
    assert str(asked.jid) == "juliet@capulet.example" and asked.hashes == ("sha256",)
    assert [e for e in events if isinstance(e, Authenticated)]
    conn.send(UpgradeTasksNeeded(("sha256",)))
    cont = first(conn.data_to_send())
    assert cont.tag == f"{{{SASL2}}}continue"
    assert cont.findtext(f"{{{SASL2}}}additional-data")  # SCRAM's v=, with the first task
    assert [t.text for t in cont.iterfind(f"{{{SASL2}}}tasks/{{{SASL2}}}task")] == [
        "UPGR-SCRAM-SHA-256"
    ]
    conn.receive_data(f"<next xmlns='{SASL2}' task='UPGR-SCRAM-SHA-256'/>".encode())
    data = first(conn.data_to_send())
    salt_el = data.find(f"{{{SCRAM_UPGRADE}}}salt")
    assert data.tag == f"{{{SASL2}}}task-data" and salt_el is not None
    salt, iterations = base64.b64decode(salt_el.text or ""), int(salt_el.get("iterations", "0"))
    assert len(salt) == 16 and iterations == 4096
    hashed = base64.b64encode(salted_password(PASSWORD, "sha256", salt, iterations)).decode()
    conn.receive_data(
        f"<task-data xmlns='{SASL2}'><hash xmlns='{SCRAM_UPGRADE}'>{hashed}</hash></task-data>".encode()
    )
    [upgraded] = [e for e in drain(conn) if isinstance(e, CredentialsUpgraded)]
    assert upgraded.credentials == derive_scram_credentials(
        PASSWORD, "sha256", salt=salt, iterations=iterations
    )
    success = first(conn.data_to_send())
    assert success.tag == f"{{{SASL2}}}success"
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == "juliet@capulet.example"

    # The new credentials log in with SCRAM-SHA-256.
    again = server()
    again.data_to_send()
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password=PASSWORD, nonce=b"m" * 18
    )
    again.receive_data(authenticate("SCRAM-SHA-256", client.initial_response()))
    [lookup] = drain(again)
    assert isinstance(lookup, CredentialsRequested)
    again.provide_credentials(upgraded.credentials)
    challenge = fromstring(again.data_to_send())
    final = client.challenge(base64.b64decode(challenge.text or ""))
    again.receive_data(
        f"<response xmlns='{SASL2}'>{base64.b64encode(final).decode()}</response>".encode()
    )
    assert [e for e in drain(again) if isinstance(e, Authenticated)]


def test_nothing_to_upgrade_goes_straight_to_success() -> None:
    conn = server()
    conn.data_to_send()
    scram_sha1_login(conn, f"<upgrade xmlns='{UPGRADE}'>UPGR-SCRAM-SHA-512</upgrade>")
    answer_all(conn)
    conn.send(UpgradeTasksNeeded())
    success = first(conn.data_to_send())
    assert success.tag == f"{{{SASL2}}}success" and success.findtext(f"{{{SASL2}}}additional-data")


@pytest.mark.parametrize(
    "reply",
    [
        f"<next xmlns='{SASL2}' task='UPGR-SCRAM-SHA-512'/>",
        f"<task-data xmlns='{SASL2}'><hash xmlns='{SCRAM_UPGRADE}'>AAAA</hash></task-data>",
    ],
)
def test_a_wrong_task_or_hash_ends_the_stream(reply: str) -> None:
    conn = server()
    conn.data_to_send()
    scram_sha1_login(conn, f"<upgrade xmlns='{UPGRADE}'>UPGR-SCRAM-SHA-256</upgrade>")
    answer_all(conn)
    conn.send(UpgradeTasksNeeded(("sha256",)))
    conn.data_to_send()
    if "task-data" in reply:
        conn.receive_data(f"<next xmlns='{SASL2}' task='UPGR-SCRAM-SHA-256'/>".encode())
        conn.data_to_send()
    with pytest.raises(RemoteProtocolError, match="not-authorized"):
        conn.receive_data(reply.encode())
        drain(conn)
