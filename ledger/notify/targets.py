"""Where a webhook may point: an http(s) URL whose host resolves only to public addresses. Private,
loopback, link-local (cloud metadata), multicast and reserved addresses are refused unless the
operator allows them (LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS), at creation and again before every
attempt, so a name re-pointed at an internal address later is refused then too."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

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
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("url must be an http or https URL with a host.", param="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("url must not carry a user name or password: verify the signature instead.", param="url")
    if parts.fragment:
        raise InvalidWebhook("url must not have a #fragment.", param="url")
    if port == 0:
        raise InvalidWebhook("url's port must be 1 to 65535.", param="url")
    return url


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def refuse_private(url: str, allow_private: bool) -> None:
    """InvalidWebhook unless every address the URL's host resolves to is public (or private ones
    are allowed). A host that does not resolve is refused too: nothing could be delivered."""
    if allow_private:
        return
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
