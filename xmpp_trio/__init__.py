"""Trio bindings for xmpp_sansio: an XMPP server and client.

The public API, importable from here (``from xmpp_trio import open_client,
Bot``): the client (:func:`open_client`), IM on top of it (:class:`IMClient`),
the persistent client (:func:`open_persistent_client`), bots (:class:`Bot`,
bots files), external components (:func:`open_component`, XEP-0114) and the
server (:func:`run_server`). See docs/client.md and docs/components.md.
"""

from .bot import Bot as Bot
from .bot import BotConfig as BotConfig
from .bot import BotsConfig as BotsConfig
from .bot import Context as Context
from .bot import Handler as Handler
from .bot import HandlerSpec as HandlerSpec
from .bot import OptionError as OptionError
from .bot import build_bots as build_bots
from .bot import hear as hear
from .bot import load_bots_config as load_bots_config
from .bot import respond as respond
from .bot import serve_bots as serve_bots
from .client import AuthenticationError as AuthenticationError
from .client import CertificateError as CertificateError
from .client import Client as Client
from .client import ConnectionFailed as ConnectionFailed
from .client import IqErrorResponse as IqErrorResponse
from .client import IqTimeoutError as IqTimeoutError
from .client import StreamError as StreamError
from .client import XMPPError as XMPPError
from .client import open_client as open_client
from .client import openssl_client_context as openssl_client_context
from .component import Component as Component
from .component import open_component as open_component
from .config import ConfigError as ConfigError
from .config import ServerConfig as ServerConfig
from .im import IMClient as IMClient
from .im import SubscriptionRequest as SubscriptionRequest
from .persistent import NotConnected as NotConnected
from .persistent import PersistentClient as PersistentClient
from .persistent import PresenceSettings as PresenceSettings
from .persistent import open_persistent_client as open_persistent_client
from .server import XMPPServer as XMPPServer
from .server import run_server as run_server

__all__ = [
    "AuthenticationError",
    "Bot",
    "BotConfig",
    "BotsConfig",
    "CertificateError",
    "Client",
    "Component",
    "ConfigError",
    "ConnectionFailed",
    "Context",
    "Handler",
    "HandlerSpec",
    "IMClient",
    "IqErrorResponse",
    "IqTimeoutError",
    "NotConnected",
    "OptionError",
    "PersistentClient",
    "PresenceSettings",
    "ServerConfig",
    "StreamError",
    "SubscriptionRequest",
    "XMPPError",
    "XMPPServer",
    "build_bots",
    "hear",
    "load_bots_config",
    "open_client",
    "open_component",
    "open_persistent_client",
    "openssl_client_context",
    "respond",
    "run_server",
    "serve_bots",
]
