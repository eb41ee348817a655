"""The ledger's hot routes on raw asyncpg: the floor that Keel is measured against.

Hand-written SQL in the statement order the ORM versions use (lock both
accounts ``FOR UPDATE`` in id order, look for the reference, insert the
transfer and its two entries, update both balances under the version check,
commit), with the domain rules written inline as a raw-SQL service would.
Requests, responses and error documents are the ledger's own models, so the
HTTP layer costs the same in every variant.

    DATABASE_URL=postgresql+asyncpg://... uvicorn --factory bench.ledger.http_raw:create_app
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import FastAPI, Request, Response, status
from sqlalchemy.engine import make_url

from adapters.settings import load_settings
from domain.errors import ConcurrencyError
from domain.ledger.errors import (
    AccountNotFound,
    CurrencyMismatch,
    InsufficientFunds,
    ReferenceReused,
    TransferNotFound,
)
from domain.ledger.transfer import check_transfer_request
from entrypoints.http.problems import problem_handlers
from entrypoints.ledger.schemas import AccountResponse, TransferRequest, TransferResponse

SELECT_ACCOUNT = (
    "SELECT id, owner, currency, balance, version, created_at FROM ledger_accounts WHERE id = $1"
)
LOCK_ACCOUNT = (
    "SELECT id, currency, balance, entry_count, version FROM ledger_accounts "
    "WHERE id = $1 FOR UPDATE"
)
TRANSFER_COLUMNS = "id, source_id, target_id, amount, currency, reference, created_at"
SELECT_TRANSFER = f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = $1"
SELECT_TRANSFER_BY_REFERENCE = (
    f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE reference = $1 LIMIT 1"
)
INSERT_TRANSFER = (
    f"INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (message_id, stream, aggregate_key, type, occurred_at, payload) "
    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING pg_notify('keel_outbox', '')"
)
INSERT_ENTRY = (
    "INSERT INTO ledger_entries (id, account_id, sequence, kind, amount, balance_after, "
    "reference, transfer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
UPDATE_BALANCE = (
    "UPDATE ledger_accounts SET balance = $2, entry_count = $3, version = version + 1 "
    "WHERE id = $1 AND version = $4"
)


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` as the plain DSN asyncpg itself takes."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_app() -> FastAPI:
    settings = load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server_settings = {}
        if settings.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
        app.state.pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.database_url),
            min_size=1,
            max_size=settings.db_pool_size,
            server_settings=server_settings,
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="bench: raw asyncpg", lifespan=lifespan, exception_handlers=problem_handlers()
    )

    def pool_of(request: Request) -> Any:
        return request.app.state.pool

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/accounts/{account_id}")
    async def get_account(account_id: UUID, request: Request) -> AccountResponse:
        row = await pool_of(request).fetchrow(SELECT_ACCOUNT, account_id)
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return AccountResponse.model_validate(dict(row))

    @app.get("/transfers/{transfer_id}")
    async def get_transfer(transfer_id: UUID, request: Request) -> TransferResponse:
        row = await pool_of(request).fetchrow(SELECT_TRANSFER, transfer_id)
        if row is None:
            raise TransferNotFound(f"no transfer with id {transfer_id}")
        return TransferResponse.model_validate(dict(row))

    @app.post("/transfers", status_code=status.HTTP_201_CREATED)
    async def transfer(
        body: TransferRequest, request: Request, response: Response
    ) -> TransferResponse:
        source_id, target_id, amount, reference = (
            body.source_id,
            body.target_id,
            body.amount,
            body.reference,
        )
        check_transfer_request(source_id, target_id, amount=amount, reference=reference)
        async with pool_of(request).acquire() as connection, connection.transaction():
            locked = {}
            for account_id in sorted((source_id, target_id)):
                row = await connection.fetchrow(LOCK_ACCOUNT, account_id)
                if row is None:
                    raise AccountNotFound(f"no account with id {account_id}")
                locked[account_id] = row
            earlier = await connection.fetchrow(SELECT_TRANSFER_BY_REFERENCE, reference)
            if earlier is not None:
                if (earlier["source_id"], earlier["target_id"], earlier["amount"]) != (
                    source_id,
                    target_id,
                    amount,
                ):
                    raise ReferenceReused(
                        f"reference {reference!r} was already used for transfer {earlier['id']}"
                    )
                response.status_code = status.HTTP_200_OK
                return TransferResponse.model_validate(dict(earlier))
            source, target = locked[source_id], locked[target_id]
            if source["currency"] != target["currency"]:
                raise CurrencyMismatch(
                    f"account {source_id} holds {source['currency']} but account {target_id} "
                    f"holds {target['currency']}"
                )
            if source["balance"] < amount:
                raise InsufficientFunds(
                    f"account {source_id} holds {source['balance']} {source['currency']}; "
                    f"{amount} cannot be taken from it"
                )
            transfer_id, now = uuid4(), datetime.now(UTC)
            created = {
                "id": transfer_id,
                "source_id": source_id,
                "target_id": target_id,
                "amount": amount,
                "currency": source["currency"],
                "reference": reference,
                "created_at": now,
            }
            await connection.execute(INSERT_TRANSFER, *created.values())
            debit_balance = source["balance"] - amount
            credit_balance = target["balance"] + amount
            await connection.executemany(
                INSERT_ENTRY,
                [
                    (uuid4(), source_id, source["entry_count"] + 1, "transfer_out", amount,
                     debit_balance, reference, transfer_id, now),
                    (uuid4(), target_id, target["entry_count"] + 1, "transfer_in", amount,
                     credit_balance, reference, transfer_id, now),
                ],
            )  # fmt: skip
            # The same outbox row Keel writes for TransferCompleted.
            payload = {
                **{key: str(created[key]) for key in ("source_id", "target_id")},
                "transfer_id": str(transfer_id),
                "amount": amount,
                "currency": created["currency"],
                "reference": reference,
            }
            await connection.execute(
                INSERT_OUTBOX, uuid4(), "ledger.events", str(transfer_id),
                "TransferCompleted", now, json.dumps(payload),
            )  # fmt: skip
            for row, balance in ((source, debit_balance), (target, credit_balance)):
                updated = await connection.execute(
                    UPDATE_BALANCE, row["id"], balance, row["entry_count"] + 1, row["version"]
                )
                if updated != "UPDATE 1":
                    raise ConcurrencyError(f"account {row['id']} changed since it was locked")
        response.headers["Location"] = str(request.url_for("get_transfer", transfer_id=transfer_id))
        return TransferResponse.model_validate(created)

    return app
