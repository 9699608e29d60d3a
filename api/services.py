"""The app's services in one typed object (instead of loose `app.state` attributes).

Built by the app factory; the pool, the upstream session and the metered engine exist while the
lifespan runs, and asking for them outside it is a bug, said plainly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import aiohttp
import asyncpg
import stripe
from starlette.requests import Request

from api.web.sessions import SessionSigner
from ledger.accounts.mail import Mailer
from ledger.db.group_commit import GroupCommit
from ledger.gateway.byok import KeyCipher
from ledger.gateway.catalog import Catalog
from ledger.gateway.engine import Gateway
from ledger.gateway.keys import KeyGate
from ledger.metrics import Metrics
from ledger.money.usage import BATCH_FORM
from ledger.settings import ProviderConfig, Settings


@dataclass
class Services:
    settings: Settings
    providers: dict[str, ProviderConfig]
    catalog: Catalog
    metrics: Metrics
    stripe: stripe.StripeClient | None
    cipher: KeyCipher | None
    signer: SessionSigner
    # where emails go (SMTP, or the outbox folder): ledger.accounts.mail.mailer_of_settings
    mailer: Mailer
    # the metered routes' check of a key from the headers, before the body is read
    key_gate: KeyGate = field(default_factory=KeyGate)
    _pool: asyncpg.Pool | None = None
    _gateway: Gateway | None = None

    def start(self, pool: asyncpg.Pool, session: aiohttp.ClientSession) -> None:
        self._pool = pool
        metered = GroupCommit(
            pool,
            BATCH_FORM,
            max_batch=self.settings.group_commit_max_batch,
            in_flight=self.settings.group_commit_in_flight,
        )
        self._gateway = Gateway(
            metered, session, self.settings, self.providers, self.catalog, self.cipher, self.metrics
        )

    def stop(self) -> None:
        self._pool = self._gateway = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool exists only while the app's lifespan runs")
        return self._pool

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            raise RuntimeError("the metered engine exists only while the app's lifespan runs")
        return self._gateway


def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)
