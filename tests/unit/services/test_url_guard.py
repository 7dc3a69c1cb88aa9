"""The SSRF guard of alert webhooks: every address form that reaches the machine itself or
a private network is refused unless allowed; public addresses pass; the request is pinned
to the checked address."""

from __future__ import annotations

import ipaddress

import pytest

from narrate.errors import InvalidInput
from narrate.services.url_guard import pin_url, refusal

REFUSED_URLS = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://10.255.255.254/hook", "private"),
    ("http://172.16.3.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fc00::1]/hook", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback (inside the IPv6 address)"),
    ("http://[::ffff:169.254.169.254]/hook", "link-local (inside the IPv6 address)"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one decimal number
    ("http://0x7f000001/hook", "loopback"),  # ... as hex
    ("http://127.1/hook", "loopback"),  # ... shortened
    ("http://localhost/hook", "loopback"),  # a name resolving to loopback
    ("http://224.0.0.1/hook", "multicast"),
    ("http://100.64.0.1/hook", "not public"),  # carrier-grade NAT
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS, ids=[u for u, _ in REFUSED_URLS])
def test_non_public_addresses_are_refused_naming_the_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        pin_url(url, allow_private=False, parameter="channels[0].url")
    assert err.value.code == "url_refused"
    assert f"({reason})" in err.value.message
    assert err.value.details["parameter"] == "channels[0].url"
    assert "NARRATE_WEBHOOK_ALLOW_PRIVATE" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::1", "loopback (inside the IPv6 address)"),  # 6to4 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback (inside the IPv6 address)"),  # Teredo
        ("64:ff9b::a00:1", "private (inside the IPv6 address)"),  # NAT64 of 10.0.0.1
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),  # TEST-NET-1, documentation only
        ("255.255.255.255", "reserved"),
    ],
)
def test_refusal_looks_inside_ipv6_and_at_every_non_global_range(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_public_literal_is_pinned_with_host_header_and_server_name() -> None:
    pinned = pin_url("https://8.8.8.8:8443/a?b=1", allow_private=False)
    assert str(pinned.url) == "https://8.8.8.8:8443/a?b=1"
    assert pinned.host_header == "8.8.8.8:8443"
    assert pinned.address == "8.8.8.8"


def test_a_name_is_replaced_by_its_checked_address() -> None:
    # Pinning is what defeats DNS rebinding: the connection goes to the address checked.
    pinned = pin_url("http://localhost:9000/hook?x=1", allow_private=True)
    assert pinned.url.host in {"127.0.0.1", "::1"}
    assert pinned.url.port == 9000
    assert pinned.url.raw_path == b"/hook?x=1"
    assert pinned.host_header == "localhost:9000"
    assert pinned.server_name == "localhost"


def test_allow_private_lets_loopback_through() -> None:
    assert pin_url("http://127.0.0.1:8080/", allow_private=True).address == "127.0.0.1"
    assert pin_url("http://[::1]:8080/", allow_private=True).host_header == "[::1]:8080"


def test_allowed_networks_let_only_those_addresses_through() -> None:
    allow = ["127.0.0.1/32"]
    assert pin_url("http://127.0.0.1/", allow_private=False, allow_networks=allow)
    with pytest.raises(InvalidInput, match="loopback"):
        pin_url("http://127.0.0.2/", allow_private=False, allow_networks=allow)
    with pytest.raises(InvalidInput, match="private"):
        pin_url("http://10.0.0.1/", allow_private=False, allow_networks=allow)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://8.8.8.8/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("http:///nohost", "no host"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://8.8.8.8/\r\nX-Injected: 1", "spaces or control characters"),
        ("", "1 to 2048 characters"),
        ("https://example.com/" + "a" * 2048, "1 to 2048 characters"),
    ],
)
def test_malformed_urls_are_invalid_naming_the_field(url: str, why: str) -> None:
    with pytest.raises(InvalidInput) as err:
        pin_url(url, allow_private=True, parameter="channels[2].url")
    assert err.value.code == "invalid_url"
    assert why in err.value.message
    assert err.value.details == {"parameter": "channels[2].url"}


def test_a_host_that_does_not_resolve_is_invalid() -> None:
    with pytest.raises(InvalidInput) as err:
        pin_url("http://no-such-host.invalid/hook", allow_private=True)
    assert err.value.code == "unresolvable_host"
    assert err.value.details["host"] == "no-such-host.invalid"


def test_a_host_with_an_octal_part_is_not_a_url() -> None:
    # httpx refuses 0177.0.0.1 (127.0.0.1 to inet_aton) before any resolver sees it.
    with pytest.raises(InvalidInput) as err:
        pin_url("http://0177.0.0.1/hook", allow_private=False)
    assert err.value.code == "invalid_url"
