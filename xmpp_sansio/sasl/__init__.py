"""SASL (RFC 4422 as profiled by RFC 6120 §6): mechanisms as pure objects.

* :mod:`.common`: failure conditions, errors, server steps, the mechanism bases;
* :mod:`.channel_binding`: channel binding data for the ``-PLUS`` mechanisms;
* :mod:`.scram`: SCRAM-SHA-1/256/512 and ``-PLUS`` (RFC 5802, RFC 7677);
* :mod:`.simple`: PLAIN (RFC 4616), ANONYMOUS (RFC 4505), EXTERNAL (RFC 4422);
* :mod:`.mechanisms`: choosing and creating mechanisms by name;
* :mod:`.credentials`: the stored SCRAM credentials.
"""

from .channel_binding import (
    TLS_EXPORTER,
    TLS_EXPORTER_LABEL,
    TLS_EXPORTER_LENGTH,
    TLS_SERVER_END_POINT,
    TLS_UNIQUE,
    ChannelBinding,
    choose_channel_binding,
    tls_server_end_point,
    tls_unique,
)
from .common import (
    Authenticated,
    Challenge,
    ClientMechanism,
    MissingCredentials,
    NeedCredentials,
    NeedDerivation,
    SASLClientError,
    SASLCondition,
    SASLFailure,
    ServerMechanism,
    ServerStep,
    UnsupportedChannelBinding,
)
from .credentials import ScramCredentials, derive_scram_credentials
from .mechanisms import (
    CLIENT_PREFERENCE,
    SERVER_MECHANISMS,
    create_client_mechanism,
    create_server_mechanism,
    select_client_mechanism,
)
from .scram import ScramClient, ScramServer, scram_hash_name

__all__ = [
    "CLIENT_PREFERENCE",
    "SERVER_MECHANISMS",
    "TLS_EXPORTER",
    "TLS_EXPORTER_LABEL",
    "TLS_EXPORTER_LENGTH",
    "TLS_SERVER_END_POINT",
    "TLS_UNIQUE",
    "Authenticated",
    "Challenge",
    "ChannelBinding",
    "ClientMechanism",
    "MissingCredentials",
    "NeedCredentials",
    "NeedDerivation",
    "SASLClientError",
    "SASLCondition",
    "SASLFailure",
    "ScramClient",
    "ScramCredentials",
    "ScramServer",
    "ServerMechanism",
    "ServerStep",
    "UnsupportedChannelBinding",
    "choose_channel_binding",
    "create_client_mechanism",
    "create_server_mechanism",
    "derive_scram_credentials",
    "scram_hash_name",
    "select_client_mechanism",
    "tls_server_end_point",
    "tls_unique",
]
