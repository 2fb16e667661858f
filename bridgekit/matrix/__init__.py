"""The Matrix side of a bridge: the appservice's client of the homeserver, and per-user intents.

Start with :class:`MatrixClient` (built on an injected ``httpx.AsyncClient``) and
:meth:`MatrixClient.intent`. Nothing here imports the store or the core: what must be remembered
comes in as a :class:`MatrixStateMemory`.
"""

from bridgekit.matrix.client import Clock, MatrixClient, Sleep
from bridgekit.matrix.content import edit_content, mentions, reaction_content, text_content
from bridgekit.matrix.intent import Intent, WhoAmI
from bridgekit.matrix.memory import MatrixStateMemory
from bridgekit.matrix.paths import split_content_uri, txn_id_for
from bridgekit.matrix.retry import RetryPolicy

__all__ = [
    "Clock",
    "Intent",
    "MatrixClient",
    "MatrixStateMemory",
    "RetryPolicy",
    "Sleep",
    "WhoAmI",
    "edit_content",
    "mentions",
    "reaction_content",
    "split_content_uri",
    "text_content",
    "txn_id_for",
]
