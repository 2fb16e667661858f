"""Which addresses the bridge may send HTTP requests to (server-side request forgery guard).

Outbound hooks and avatar fetches take URLs from chat users. Without a guard such a URL reaches
what only the bridge's host can reach: a cloud metadata service (169.254.169.254), an admin port
on loopback, the private network. Only globally routable addresses are allowed, plus what the
admin allow-lists. The check is made on the address actually connected to (see
``guarded_http``), so DNS that answers differently the second time cannot slip past it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowRule:
    """An admin's exception: a network, and optionally the one port allowed on it."""

    network: IPNetwork
    port: int | None = None

    def allows(self, address: IPAddress, port: int) -> bool:
        return address in self.network and (self.port is None or self.port == port)


def parse_allow_rule(text: str) -> AllowRule:
    """``10.0.0.0/8``, ``127.0.0.1``, ``127.0.0.1:8080``, ``[::1]:8080``, ``fd00::/8``."""
    rule = text.strip()
    port: int | None = None
    try:
        if rule.startswith("["):
            host, _, rest = rule[1:].partition("]")
            if rest:
                port = _port(rest.removeprefix(":"), text)
        elif rule.count(":") == 1:
            host, _, port_text = rule.partition(":")
            port = _port(port_text, text)
        else:
            host = rule
        return AllowRule(ipaddress.ip_network(host, strict=False), port)
    except ValueError as error:
        raise ValueError(
            f"outbound_allow entry {text!r} is not a network: write 10.0.0.0/8, 127.0.0.1:8080 or [::1]:8080 ({error})"
        ) from None


def _port(text: str, rule: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {rule!r}")
    return int(text)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped ``::ffff:a.b.c.d``, 6to4, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """True for addresses on the public internet; every special-purpose range is refused."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    # Site-local IPv6 (fec0::/10, deprecated but still routed inside some networks) counts as
    # global to the ipaddress module.
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or site_local
    )


def address_allowed(address: IPAddress, port: int, rules: tuple[AllowRule, ...]) -> bool:
    """Public, or allow-listed by the admin (the mapped IPv4 of an IPv6 address counts too)."""
    if any(rule.allows(address, port) for rule in rules):
        return True
    inner = embedded_ipv4(address)
    if inner is not None and any(rule.allows(inner, port) for rule in rules):
        return True
    return is_public(address)


class UnsafeURL(ValueError):
    """A URL the bridge refuses to fetch or post to; the message says why, for the user."""


@dataclass(frozen=True)
class Target:
    """A URL split into what connecting needs."""

    scheme: str
    host: str
    port: int
    path: str
    """Path and query, as sent in the request line."""

    @property
    def literal_address(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_target(url: str) -> Target:
    """Check the URL's shape (http or https, a host, no credentials); raise UnsafeURL if wrong."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(f"{url!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise UnsafeURL(f"{url!r} names no host")
    if parts.username or parts.password:
        raise UnsafeURL("URLs with a user name or password in them are refused (they would end up in logs)")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default_port = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default_port, path)


def check_literal(target: Target, rules: tuple[AllowRule, ...]) -> None:
    """Refuse a URL whose host is an IP address that is not allowed (early, at hook creation)."""
    address = target.literal_address
    if address is not None and not address_allowed(address, target.port, rules):
        raise UnsafeURL(refusal(address))


def refusal(address: IPAddress) -> str:
    return (
        f"{address} is a private, loopback, link-local or otherwise non-public address; the bridge does "
        "not send requests there unless the bridge admin allow-lists it (outbound_allow)"
    )


__all__ = [
    "AllowRule",
    "IPAddress",
    "Target",
    "UnsafeURL",
    "address_allowed",
    "check_literal",
    "embedded_ipv4",
    "is_public",
    "parse_allow_rule",
    "parse_target",
    "refusal",
]
