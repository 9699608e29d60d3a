"""Where a webhook may point: an http(s) URL whose host resolves only to public addresses. Private,
loopback, link-local (cloud metadata), multicast and reserved addresses, and IPv6 forms that carry
an IPv4 one, are refused unless the operator allows them (LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS), at
creation and again before every attempt; the attempt then connects to the very address checked
(pinned), so a name re-pointed at an internal address between the check and the connection (DNS
rebinding) is never reached."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ledger.errors import InvalidWebhook

MAX_URL_LENGTH = 2000
RESOLVE_TIMEOUT_SECONDS = 5.0


def checked_url(url: str) -> str:
    """The URL as stored, or InvalidWebhook saying what is wrong with its shape."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidWebhook("url must be at most 2000 characters with no spaces or control characters.", param="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhook("url is not a valid URL.", param="url") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("url must be an http or https URL with a host.", param="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("url must not carry a user name or password: verify the signature instead.", param="url")
    if parts.fragment:
        raise InvalidWebhook("url must not have a #fragment.", param="url")
    if port == 0:
        raise InvalidWebhook("url's port must be 1 to 65535.", param="url")
    return parts.scheme.lower() + url[len(parts.scheme) :]  # HTTP://x is http://x


# IPv6 ranges that carry an IPv4 address (or reach one through a relay): refused outright, since
# what they lead to depends on the network's gateways (NAT64 reaches 127.0.0.1 as 64:ff9b::7f00:1)
EMBEDDING_IPV4 = [
    ipaddress.ip_network(n)
    for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32")
]


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif any(address in network for network in EMBEDDING_IPV4):
            return False
    return address.is_global and not address.is_multicast


async def refuse_private(url: str, allow_private: bool) -> list[str]:
    """The addresses the URL's host resolves to, every one public (else InvalidWebhook); [] when
    private ones are allowed (nothing is checked, nothing pinned). A host that does not resolve is
    refused too: nothing could be delivered."""
    if allow_private:
        return []
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, UnicodeError):
            raise InvalidWebhook(f"url's host {host!r} does not resolve.", param="url") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    private = [str(a) for a in addresses if not is_public(a)]
    if private or not addresses:
        raise InvalidWebhook(
            f"url's host {host!r} resolves to a private, loopback or link-local address ({', '.join(private)}): "
            "webhooks go to public addresses only.",
            param="url",
        )
    return [str(a) for a in addresses]


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request to the address that was checked, not to whatever the name resolves to a moment
    later (DNS rebinding): the URL names the address, the Host header and TLS (SNI and the
    certificate's name) the original host."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned(url: str, addresses: list[str]) -> Pinned:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not addresses or host.strip("[]") == addresses[0]:
        return Pinned(url, {}, {})
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Pinned(urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions)
