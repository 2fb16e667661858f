"""HTTP requests to user-given URLs, made only to addresses the SSRF guard allows.

The host name is resolved here and the request goes to the checked IP address itself (with the
original ``Host`` header, and the name as TLS SNI so certificates are still verified against it).
Checking a name and then letting the HTTP library resolve it again would leave a window for DNS
rebinding. Redirects are never followed (a public URL could redirect to a private one), and
proxies from the environment are ignored (they would connect on our behalf, unchecked).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx

from bridgekit.ssrf import AllowRule, IPAddress, Target, UnsafeURL, address_allowed, parse_target, refusal

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class ResponseTooLarge(Exception):
    pass


class GuardedHTTP:
    """Sends requests to URLs chat users gave, after the SSRF check on the resolved address."""

    def __init__(
        self, http: httpx.AsyncClient | Callable[[], httpx.AsyncClient], rules: tuple[AllowRule, ...], *,
        resolver: Resolver = resolve,
    ) -> None:
        """``http`` is the client, or a function that gives it on first use (a client holds its
        TLS context and CA bundle, about 1 MB, for its whole life: a bridge that fetches nothing
        need not pay for it)."""
        self._http_source = http
        self._rules = rules
        self._resolve = resolver

    def _client(self) -> httpx.AsyncClient:
        if not isinstance(self._http_source, httpx.AsyncClient):
            self._http_source = self._http_source()
        return self._http_source

    async def pick_address(self, target: Target) -> IPAddress:
        """The first allowed address of the target; UnsafeURL when there is none."""
        literal = target.literal_address
        if literal is not None:
            candidates = [literal]
        else:
            try:
                candidates = await self._resolve(target.host, target.port)
            except OSError as error:
                raise UnsafeURL(f"cannot resolve {target.host}: {error.strerror or error}") from None
        for address in candidates:
            if address_allowed(address, target.port, self._rules):
                return address
        if not candidates:
            raise UnsafeURL(f"{target.host} has no address")
        raise UnsafeURL(refusal(candidates[0]))

    async def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None,
        time_limit: float = 10.0, max_bytes: int = 1024 * 1024,
    ) -> tuple[httpx.Response, bytes]:
        """The response (not following redirects) and at most ``max_bytes`` of its body.

        Raises UnsafeURL for a refused target, ResponseTooLarge, or httpx errors.
        """
        async with self.stream(method, url, content=content, headers=headers, time_limit=time_limit) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise ResponseTooLarge(f"the answer is larger than {max_bytes} bytes")
        return response, bytes(body)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None,
        time_limit: float = 10.0,
    ) -> AsyncIterator[httpx.Response]:
        """The response (not following redirects), its body not read yet: for bodies read in
        chunks. Closed when the block ends. Raises UnsafeURL for a refused target, or httpx errors.
        """
        target = parse_target(url)
        address = await self.pick_address(target)
        host = f"[{address}]" if address.version == 6 else str(address)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:  # an IPv6 literal keeps its brackets in the Host header
            host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
        client = self._client()
        request = client.build_request(
            method, f"{target.scheme}://{host}:{target.port}{target.path}", content=content,
            headers={**(headers or {}), "Host": host_header}, timeout=time_limit,
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            yield response
        finally:
            await response.aclose()


def new_http_client() -> httpx.AsyncClient:
    """A client for :class:`GuardedHTTP`: no proxies from the environment, no redirects."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False)


__all__ = ["GuardedHTTP", "ResponseTooLarge", "new_http_client", "resolve"]
