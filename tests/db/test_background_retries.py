"""What a failover raises on a settle or release is a lost connection: the write is retried in the
background until it lands (ledger.db.background), not given up as a failed settle."""

from __future__ import annotations

import asyncpg
import pytest

from ledger.db.background import CONNECTION_ERRORS, retry_in_background, wait_for_background_writes

FAILOVER = [
    # a pooled connection whose dying server sent it a FATAL while idle
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    # no host of the multi-host URL read-write yet
    asyncpg.exceptions.TargetServerAttributeNotMatched("None of the hosts match the target attribute requirement"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ConnectionRefusedError(111, "Connection refused"),
]


@pytest.mark.parametrize("exc", FAILOVER, ids=lambda e: type(e).__name__)
def test_a_failover_exception_counts_as_a_lost_connection(exc):
    assert isinstance(exc, CONNECTION_ERRORS)


async def test_a_write_that_meets_the_failover_is_retried_until_it_lands():
    tries: list[int] = []

    raised = FAILOVER[:2]  # neither a PostgresConnectionError nor an OSError

    async def write() -> None:
        tries.append(len(tries))
        if len(tries) <= len(raised):
            raise raised[len(tries) - 1]

    retry_in_background("settle of req_test", write, give_up_after=60)
    await wait_for_background_writes()

    assert len(tries) == len(raised) + 1  # each retried, then the write landed


async def test_a_sql_error_is_not_retried():
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        raise asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist')

    retry_in_background("settle of req_test", write, give_up_after=60)
    await wait_for_background_writes()

    assert tries == [1]
