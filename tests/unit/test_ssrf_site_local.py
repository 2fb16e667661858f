"""The SSRF guard refuses IPv6 site-local addresses (fec0::/10, issue 10 item 9).

Deprecated by RFC 3879 but still routed inside some networks; Python's ``is_global`` says True for
them, so the guard has to ask ``is_site_local`` itself.
"""

from __future__ import annotations

import ipaddress

import pytest

from bridgekit.ssrf import UnsafeURL, address_allowed, check_literal, is_public, parse_allow_rule, parse_target


@pytest.mark.parametrize("address", ["fec0::1", "fec0:1234::5", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"])
def test_site_local_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    assert not address_allowed(ip, 443, ())
    with pytest.raises(UnsafeURL):
        check_literal(parse_target(f"https://[{address}]/hook"), ())


def test_an_allow_rule_still_opens_a_site_local_address() -> None:
    rule = parse_allow_rule("fec0::/10")
    assert address_allowed(ipaddress.ip_address("fec0::1"), 443, (rule,))
