"""Ghost profiles kept in step with the network: what must change is worked out first (pure:
:func:`prepare_profile`, from what was last applied and what the network says now), then applied
on Matrix (:class:`ProfileApplier`), and remembered.

A picture that cannot be used (refused by the SSRF guard, too big, not an image) is remembered
as tried, so it is not fetched again for every message, and never blocks the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from bridgekit.errors import MatrixError
from bridgekit.guarded_http import GuardedHTTP, ResponseTooLarge
from bridgekit.ids import ContentURI
from bridgekit.matrix import Intent
from bridgekit.ssrf import UnsafeURL
from bridgekit.store.ghosts import GhostProfile, GhostStore

log = logging.getLogger(__name__)

AVATAR_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """What to change on a ghost's profile (None: leave as it is)."""

    name: str | None = None
    avatar: str | None = None
    """The picture's source: an ``mxc://`` URI is set as it is, a URL is fetched and uploaded."""

    @property
    def empty(self) -> bool:
        return self.name is None and self.avatar is None


def prepare_profile(stored: GhostProfile, wanted: GhostProfile, *, fallback_name: str | None) -> ProfileUpdate:
    """What must change for the ghost to show ``wanted``, given what was last applied.

    Without a wanted name the ghost keeps the name it has; a ghost that never had one gets
    ``fallback_name`` (the remote user ID), when given. Without a wanted picture the picture stays.
    """
    name = wanted.name or (stored.name if stored.name is not None else fallback_name)
    return ProfileUpdate(
        name=name if name is not None and name != stored.name else None,
        avatar=wanted.avatar if wanted.avatar and wanted.avatar != stored.avatar else None,
    )


class ProfileApplier:
    """Makes a :class:`ProfileUpdate` true on Matrix, and remembers it in the ghost store."""

    def __init__(self, ghosts: GhostStore, fetcher: GuardedHTTP | None) -> None:
        self._ghosts = ghosts
        self._fetcher = fetcher
        """Fetches pictures given by URL (through the SSRF guard); None: only mxc:// pictures."""

    async def stored(self, network: str, remote_id: str, *, with_avatar: bool) -> GhostProfile:
        return await self._ghosts.profile(network, remote_id, with_avatar=with_avatar)

    async def apply(self, ghost: Intent, network: str, remote_id: str, update: ProfileUpdate) -> None:
        if update.name is not None:
            await ghost.set_displayname(update.name)
            await self._ghosts.remember_name(network, remote_id, ghost.user_id, update.name)
        if update.avatar is not None:
            mxc = await self._set_avatar(ghost, update.avatar)
            await self._ghosts.remember_avatar(network, remote_id, ghost.user_id, update.avatar, mxc)

    async def _set_avatar(self, ghost: Intent, source: str) -> str | None:
        """The picture's mxc URI once set; None when it could not be used (logged)."""
        mxc: str | None = None
        try:
            if source.startswith("mxc://"):
                mxc = source
            elif self._fetcher is not None:
                response, data = await self._fetcher.request("GET", source, max_bytes=AVATAR_MAX_BYTES)
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                if response.status_code == 200 and content_type.startswith("image/"):
                    mxc = await ghost.upload_media(data, content_type, filename="avatar")
                else:
                    log.info("avatar of %s not used: HTTP %d, %s", ghost.user_id, response.status_code, content_type)
            if mxc is not None:
                await ghost.set_avatar_url(ContentURI(mxc))
        except (UnsafeURL, ResponseTooLarge, httpx.HTTPError, MatrixError) as error:
            log.info("avatar of %s not set from %s: %s", ghost.user_id, source, error)
        return mxc


__all__ = ["AVATAR_MAX_BYTES", "ProfileApplier", "ProfileUpdate", "prepare_profile"]
