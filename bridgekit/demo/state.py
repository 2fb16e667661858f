"""What the demo keeps in its state directory (``.demo/state.json``): ports, secrets, the PIDs of
the processes it started, and what it made on Matrix, so a second start reuses all of it and
``--stop`` stops exactly what was started."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bridgekit.demo.ports import PortReservation

SERVER_NAME = "demo.localhost"
DEMO_USER = "demo"
IRC_NETWORK = "demo"
IRC_CHANNEL = "#demo"


@dataclass
class Ports:
    synapse: int
    irc: int
    bridge: int
    """``appservice.listen``: where Synapse pushes transactions."""
    public: int
    """``appservice.public_listen``: the webhooks."""
    metrics: int


@dataclass
class DemoState:
    ports: Ports
    shared_secret: str
    """Synapse's registration shared secret (the admin API registers the demo user with it)."""
    macaroon_secret: str
    form_secret: str
    password: str
    """The demo user's password, printed for logging in with Element or nheko."""
    webhook_key: str
    """The webhook connector's ``secrets_key``."""
    pids: dict[str, int] = field(default_factory=dict)
    """The processes this demo started, by name ("synapse", "ircd", "bridge")."""
    ircd: str = ""
    user_registered: bool = False
    room_id: str = ""
    hook_url: str = ""

    @classmethod
    def new(cls) -> DemoState:
        reservations = [PortReservation.acquire() for _ in range(5)]
        # Released at once: the servers bind them seconds later, and the state file remembers them.
        for reservation in reservations:
            reservation.release()
        synapse, irc, bridge, public, metrics = (r.port for r in reservations)
        return cls(
            ports=Ports(synapse=synapse, irc=irc, bridge=bridge, public=public, metrics=metrics),
            shared_secret=secrets.token_urlsafe(24),
            macaroon_secret=secrets.token_urlsafe(32),
            form_secret=secrets.token_urlsafe(32),
            password=secrets.token_urlsafe(12),
            webhook_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        )

    @classmethod
    def load(cls, path: Path) -> DemoState | None:
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        raw["ports"] = Ports(**raw["ports"])
        return cls(**raw)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.chmod(0o600)  # it holds the shared secret and the password
        tmp.replace(path)

    @property
    def homeserver_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.synapse}"

    @property
    def user_id(self) -> str:
        return f"@{DEMO_USER}:{SERVER_NAME}"
