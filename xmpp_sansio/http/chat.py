"""The browser chat page at ``/chat/``: converse.js (fetched by ``xmpp-trio
web-assets`` into the data directory, served under ``/chat/converse/``),
configured for this server by :func:`config_script` (WebSocket and BOSH on
the page's own origin). docs/web.md "Browser chat page"."""

from __future__ import annotations

import json
from typing import Final

__all__ = ["CHAT_CSP", "CHAT_PREFIX", "config_script", "page"]

CHAT_PREFIX: Final = "/chat/"
#: converse.js needs inline styles (its components set them), images from
#: data:/blob: URLs (avatars) and WebSocket connections to this origin.
CHAT_CSP: Final = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)

_PAGE: Final = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat</title>
<link rel="stylesheet" href="/chat/converse/converse.min.css">
<script src="/chat/converse/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This page needs JavaScript.</noscript>
<div id="missing" hidden>The web client is not installed: run <code>xmpp-trio web-assets</code>.</div>
<script src="/chat/config.js"></script>
</body>
</html>
"""


def page() -> bytes:
    """The page: converse.js, then the configuration script (no inline code)."""
    return _PAGE


def config_script(domain: str) -> bytes:
    """``/chat/config.js``: converse.js on this origin's WebSocket (RFC 7395)
    or, with ``?transport=bosh``, BOSH (XEP-0206); logins for ``domain``."""
    settings = json.dumps({"domain": domain})
    return (
        """(function () {
  "use strict";
  var server = SETTINGS;
  if (typeof converse === "undefined") {
    document.getElementById("missing").hidden = false;
    return;
  }
  var bosh = new URLSearchParams(location.search).get("transport") === "bosh";
  var options = {
    assets_path: "/chat/converse",
    view_mode: "fullscreen",
    allow_registration: false,
    discover_connection_methods: false,
    default_domain: server.domain,
    locked_domain: server.domain,
    play_sounds: false,
    show_controlbox_by_default: true,
  };
  if (bosh) {
    options.bosh_service_url = location.origin + "/http-bind";
  } else {
    options.websocket_url =
      (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/xmpp-websocket";
  }
  converse.initialize(options);
})();
""".replace("SETTINGS", settings)
    ).encode()
