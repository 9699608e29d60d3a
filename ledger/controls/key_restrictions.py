"""Key restrictions (seed 004 api_keys): the models (patterns), providers and client networks a
gateway key may use; None is no restriction. Checked in begin_llm_request (a 403 naming what was
not allowed), so a restricted key costs the request nothing more."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass

from ledger.controls.scopes import model_pattern
from ledger.db.executor import Executor
from ledger.db.queries import query
from ledger.errors import InvalidControl

PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MOST_ENTRIES = 50


def _listed(values: list[str] | None, name: str) -> list[str] | None:
    if values is None:
        return None
    if len(values) > MOST_ENTRIES:
        raise InvalidControl(f"{name} is a list of at most {MOST_ENTRIES} strings.", param=name)
    return values


@dataclass(frozen=True, slots=True)
class KeyRestrictions:
    allowed_models: list[str] | None = None
    allowed_providers: list[str] | None = None
    allowed_ips: list[str] | None = None

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.allowed_models, self.allowed_providers, self.allowed_ips))

    def checked(self) -> KeyRestrictions:
        models = _listed(self.allowed_models, "allowed_models")
        if models is not None:
            models = [str(model_pattern(m)) for m in dict.fromkeys(models)]
        providers = _listed(self.allowed_providers, "allowed_providers")
        if providers is not None and not all(PROVIDER_NAME.match(p) for p in providers):
            raise InvalidControl(
                "allowed_providers are provider names (openai, anthropic, ...).", param="allowed_providers"
            )
        networks = _listed(self.allowed_ips, "allowed_ips")
        if networks is not None:
            try:
                networks = [str(ipaddress.ip_network(n.strip(), strict=False)) for n in networks]
            except ValueError:
                raise InvalidControl(
                    "allowed_ips are addresses or networks in CIDR form (203.0.113.0/24, 2001:db8::/32).",
                    param="allowed_ips",
                ) from None
        return KeyRestrictions(models, None if providers is None else list(dict.fromkeys(providers)), networks)


async def restrict_key(db: Executor, workspace_id: uuid.UUID, key_id: uuid.UUID, restrictions: KeyRestrictions) -> bool:
    """Sets the key's restrictions (all three at once); False when the key is not the workspace's."""
    r = restrictions.checked()
    found = await db.fetchval(
        query("set_key_restrictions"), workspace_id, key_id, r.allowed_models, r.allowed_providers, r.allowed_ips
    )
    return found is not None
