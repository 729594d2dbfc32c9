"""Stream features as plug-ins, composed per profile (RFC 6120 §4.3.2).

The framework (:class:`Stage`, :class:`Feature`, :class:`Profile`, the
:class:`FeatureHost` protocol) is in :mod:`.base`; each feature is a module
of its own, owning its elements and their handling.
"""

from __future__ import annotations

from ..config import ServerConfig
from .base import (
    Claims,
    ElementFeature,
    Feature,
    FeatureHost,
    Profile,
    Stage,
    _b64decode,
    _b64encode,
    _iq_error,
    _sasl_element,
)
from .bind import BindFeature
from .csi import CSIFeature
from .fast import FastFeature
from .handshake import HandshakeFeature
from .register import RegisterFeature
from .sasl import SASLFeature
from .sasl2 import SASL2Feature
from .sm import SMFeature
from .starttls import StartTLSFeature
from .upgrade import UpgradeFeature

__all__ = [
    "C2S_SERVER",
    "BindFeature",
    "CSIFeature",
    "Claims",
    "ElementFeature",
    "FastFeature",
    "Feature",
    "FeatureHost",
    "HandshakeFeature",
    "Profile",
    "RegisterFeature",
    "SASL2Feature",
    "SASLFeature",
    "SMFeature",
    "Stage",
    "StartTLSFeature",
    "UpgradeFeature",
    "_b64decode",
    "_b64encode",
    "_iq_error",
    "_sasl_element",
]

#: A client-to-server stream, server side.
C2S_SERVER: Profile[FeatureHost, ServerConfig] = Profile(
    before_auth=(
        StartTLSFeature(),
        SASLFeature(),
        SASL2Feature(),
        FastFeature(),
        UpgradeFeature(),
        RegisterFeature(),
    ),
    after_auth=(BindFeature(), SMFeature(), CSIFeature()),
)
