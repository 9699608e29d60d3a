"""The address that links in emails point at. Never taken from a request's Host header alone: a
password reset asked for with a forged Host would mail the victim a link to the attacker's site
(and its token with it). LEDGER_PUBLIC_URL names it; without it, only a request that came to a
loopback address (a newcomer's own machine) may lend its address."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request

from api.errors import ApiError
from api.services import services

LOOPBACK_NAMES = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def email_link_base(request: Request) -> str:
    public = services(request).settings.public_url
    if public:
        return public.rstrip("/")
    client = request.client.host if request.client else ""
    if _loopback(request.url.hostname or "") and _loopback(client):
        return str(request.base_url).rstrip("/")
    raise ApiError(
        503,
        "This service sends no emails with links until its operator sets LEDGER_PUBLIC_URL.",
        code="public_url_unset",
    )
