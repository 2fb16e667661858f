"""The SSRF guard: which addresses are refused, allow-list rules, and the resolved-address check."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from bridgekit.guarded_http import GuardedHTTP
from bridgekit.ssrf import (
    IPAddress,
    UnsafeURL,
    address_allowed,
    check_literal,
    is_public,
    parse_allow_rule,
    parse_target,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
        "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
        "::ffff:169.254.169.254", "2002:7f00:1::", "64:ff9b::7f00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not address_allowed(ipaddress.ip_address(address), 80, ())


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allow_rules_with_and_without_port() -> None:
    loopback_8080 = parse_allow_rule("127.0.0.1:8080")
    private_net = parse_allow_rule("10.0.0.0/8")
    v6 = parse_allow_rule("[::1]:9000")
    rules = (loopback_8080, private_net, v6)
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), 8080, rules)
    assert not address_allowed(ipaddress.ip_address("127.0.0.1"), 8081, rules)
    assert address_allowed(ipaddress.ip_address("10.9.8.7"), 1, rules)
    assert address_allowed(ipaddress.ip_address("::1"), 9000, rules)
    # The IPv4-mapped form of an allow-listed address is the same destination.
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), 8080, rules)
    with pytest.raises(ValueError, match="outbound_allow"):
        parse_allow_rule("not-a-network")


def test_url_shapes() -> None:
    target = parse_target("https://hooks.example.org/in?x=1")
    assert (target.scheme, target.host, target.port, target.path) == ("https", "hooks.example.org", 443, "/in?x=1")
    for bad in ("ftp://x/", "file:///etc/passwd", "https://user:pw@x/", "http:///nohost"):
        with pytest.raises(UnsafeURL):
            parse_target(bad)
    with pytest.raises(UnsafeURL, match=r"169\.254\.169\.254"):
        check_literal(parse_target("http://169.254.169.254/latest/meta-data"), ())
    with pytest.raises(UnsafeURL):
        check_literal(parse_target("http://[::ffff:127.0.0.1]:8080/"), ())


def fixed_resolver(answer: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(_host: str, _port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answer]

    return resolve


async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        guarded = GuardedHTTP(http, (), resolver=fixed_resolver(["10.0.0.5"]))
        with pytest.raises(UnsafeURL):
            await guarded.request("POST", "https://internal.example.org/hook", content=b"{}")
    assert sent == []


async def test_the_request_goes_to_the_checked_address_with_the_original_host() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        guarded = GuardedHTTP(http, (), resolver=fixed_resolver(["10.0.0.5", "93.184.215.14"]))
        response, _ = await guarded.request("POST", "https://hooks.example.org:8443/in", content=b"{}")
    assert response.status_code == 302  # redirects are answers, never followed
    assert len(sent) == 1
    assert str(sent[0].url) == "https://93.184.215.14:8443/in"
    assert sent[0].headers["Host"] == "hooks.example.org:8443"
    assert sent[0].extensions["sni_hostname"] == "hooks.example.org"


async def test_a_client_given_as_a_factory_is_made_at_the_first_request_only() -> None:
    made: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: httpx.Response(204)))
        made.append(client)
        return client

    guarded = GuardedHTTP(make, (), resolver=fixed_resolver(["93.184.215.14"]))
    with pytest.raises(UnsafeURL):  # refused before any client is needed
        await guarded.request("GET", "http://127.0.0.1/")
    assert made == []
    for _ in range(2):
        response, _ = await guarded.request("GET", "https://pictures.example.org/a.png")
        assert response.status_code == 204
    assert len(made) == 1, "one client, made once and kept"
    await made[0].aclose()
