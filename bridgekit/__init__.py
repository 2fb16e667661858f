"""bridgekit: a framework for Matrix application-service bridges.

This module is the connector author's API: bridges import from ``bridgekit`` only, never from its
submodules (a test keeps both this ``__all__`` and that rule honest).
"""

from bridgekit.config import ConnectorSection
from bridgekit.connector import (
    AliasQueryHandler,
    BridgeContext,
    EphemeralHandler,
    MatrixAPI,
    NetworkConnector,
    OutgoingMessage,
    PuppetProvider,
    RelayProvider,
    RemoteSession,
    RemoteSink,
    SessionKind,
    ThirdPartyHandler,
    UserQueryHandler,
    VirtualUserProvider,
)
from bridgekit.errors import (
    BridgekitError,
    ConfigError,
    MatrixBadRequest,
    MatrixConnectionError,
    MatrixError,
    MatrixForbidden,
    MatrixNotFound,
    MatrixRateLimited,
    MatrixRequestError,
    MatrixServerError,
    MatrixUserInUse,
    StoreError,
)
from bridgekit.events import EphemeralEvent, MatrixEvent, RemoteMessage
from bridgekit.ids import ContentURI, EventID, RoomAlias, RoomID, TransactionID, UserID

__version__ = "0.1.0"

__all__ = [
    "AliasQueryHandler",
    "BridgeContext",
    "BridgekitError",
    "ConfigError",
    "ConnectorSection",
    "ContentURI",
    "EphemeralEvent",
    "EphemeralHandler",
    "EventID",
    "MatrixAPI",
    "MatrixBadRequest",
    "MatrixConnectionError",
    "MatrixError",
    "MatrixEvent",
    "MatrixForbidden",
    "MatrixNotFound",
    "MatrixRateLimited",
    "MatrixRequestError",
    "MatrixServerError",
    "MatrixUserInUse",
    "NetworkConnector",
    "OutgoingMessage",
    "PuppetProvider",
    "RelayProvider",
    "RemoteMessage",
    "RemoteSession",
    "RemoteSink",
    "RoomAlias",
    "RoomID",
    "SessionKind",
    "StoreError",
    "ThirdPartyHandler",
    "TransactionID",
    "UserID",
    "UserQueryHandler",
    "VirtualUserProvider",
    "__version__",
]
