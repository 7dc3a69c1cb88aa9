"""Server-side request forgery guard for alert webhooks.

A webhook URL is resolved and *every* address it resolves to must be public: loopback,
private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud
metadata address, fe80::/10), multicast, reserved, unspecified (0.0.0.0, ::), shared
(100.64/10) and every other non-global range are refused, in IPv4 and IPv6, including an
IPv4 address carried inside IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo). Hosts written as
decimal or hex numbers (``2130706433``, ``0x7f000001``) are caught because the check is made
on what the resolver returns, not on the text.

The request is then sent to the checked address itself (:class:`Pinned`), with the original
``Host`` header and TLS server name, so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot move the request. Each redirect is checked the same way.
``NARRATE_WEBHOOK_ALLOW_PRIVATE=true`` (an admin setting) lifts the address check;
``NARRATE_WEBHOOK_ALLOW_NETWORKS`` lifts it for the listed networks only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from narrate.errors import InvalidInput

__all__ = ["MAX_URL_CHARS", "Pinned", "pin_url", "refusal", "resolve_host"]

MAX_URL_CHARS = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not reach ``address`` (e.g. ``'loopback'``), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            reason = refusal(inner)
            return f"{reason} (inside the IPv6 address)" if reason else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def resolve_host(host: str, port: int, *, parameter: str) -> list[IPAddress]:
    """Every address ``host`` resolves to (IPv4 and IPv6), in the resolver's order.

    Raises:
        InvalidInput: ``unresolvable_host`` when the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise InvalidInput(
            f"The host '{host}' of the webhook URL does not resolve.",
            code="unresolvable_host",
            hint="Check the URL's spelling, or that the server's DNS can see the host.",
            details={"parameter": parameter, "host": host},
        ) from exc
    found: list[IPAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        address = ipaddress.ip_address(text)
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class Pinned:
    """Where to send a request: ``url`` holds the checked address instead of the name;
    ``host_header`` and ``server_name`` carry the name for HTTP and TLS."""

    url: httpx.URL
    host_header: str
    server_name: str
    address: str


def parse_url(text: str, *, parameter: str) -> httpx.URL:
    """A webhook URL: http or https, with a host, at most :data:`MAX_URL_CHARS`.

    Raises:
        InvalidInput: ``invalid_url`` naming ``parameter``.
    """

    def bad(why: str) -> InvalidInput:
        return InvalidInput(
            f"'{text[:200]}' is not a webhook URL Narrate can call: {why}.",
            code="invalid_url",
            hint="Use an http:// or https:// URL with a host name, like "
            "https://hooks.example.com/narrate.",
            details={"parameter": parameter},
        )

    if not text or len(text) > MAX_URL_CHARS:
        raise bad(f"it must have 1 to {MAX_URL_CHARS} characters")
    if any(ord(ch) < 33 for ch in text):
        raise bad("it holds spaces or control characters")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise bad(str(exc)) from exc
    if url.scheme not in {"http", "https"}:
        raise bad(f"the scheme '{url.scheme}' is not http or https")
    if not url.host:
        raise bad("it has no host")
    return url


def pin_url(
    text: str,
    *,
    allow_private: bool,
    allow_networks: Sequence[str] = (),
    parameter: str = "url",
) -> Pinned:
    """Check a webhook URL and the addresses its host resolves to; pin the first.

    Args:
        text: The URL.
        allow_private: Skip the address check (``NARRATE_WEBHOOK_ALLOW_PRIVATE``).
        allow_networks: Networks (CIDR) allowed although not public.
        parameter: Where the URL came from, for error details.

    Returns:
        The request target with the address pinned.

    Raises:
        InvalidInput: ``invalid_url``, ``unresolvable_host``, or ``url_refused`` when an
            address is not public and private addresses are not allowed.
    """
    url = parse_url(text, parameter=parameter)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = resolve_host(url.host, port, parameter=parameter)
    allowed = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
    if not allow_private:
        for address in addresses:
            if any(address in network for network in allowed):
                continue
            reason = refusal(address)
            if reason is not None:
                raise InvalidInput(
                    f"The webhook URL's host '{url.host}' resolves to {address} ({reason}); "
                    "webhooks may only reach public addresses.",
                    code="url_refused",
                    hint="Use a public URL, or ask an admin to set "
                    "NARRATE_WEBHOOK_ALLOW_PRIVATE=true for an internal receiver.",
                    details={"parameter": parameter, "host": url.host, "address": str(address)},
                )
    chosen = addresses[0]
    host_header = url.host if url.port is None else f"{url.host}:{url.port}"
    if ":" in url.host and url.port is None:
        host_header = f"[{url.host}]"
    elif ":" in url.host:
        host_header = f"[{url.host}]:{url.port}"
    return Pinned(
        url=url.copy_with(host=str(chosen)),
        host_header=host_header,
        server_name=url.host,
        address=str(chosen),
    )
