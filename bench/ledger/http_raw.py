"""The ledger's hot routes on raw asyncpg: the floor that Keel is measured against.

Hand-written SQL, statement for statement what Keel sends for the same
request: ``GET /accounts/{id}`` reads ``WHERE id = $1 AND owner_subject = $2``;
``POST /transfers`` locks both accounts ``FOR UPDATE`` in id order, checks
that the caller owns the source (someone else's answers 404 exactly like an
unknown id, whatever the target), looks for an earlier transfer and an earlier
refusal under the same (source, reference), updates both balances under the
version check, inserts the transfer, its two entries and the outbox row, and
commits. Domain rules are written inline as a raw-SQL service would. Every
request has its bearer JWT verified and its scope checked, and every response
carries Keel's security headers (``http_guards``). Requests, responses and
error documents are the ledger's own models, so the HTTP layer costs the same
in every variant.

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
from starlette.types import ASGIApp

from adapters.settings import load_settings
from bench.ledger.http_guards import Reader, Writer, guarded
from domain.errors import ConcurrencyError, DomainError
from domain.ledger.errors import (
    AccountNotFound,
    CurrencyMismatch,
    InsufficientFunds,
    ReferenceReused,
    TransferNotFound,
)
from domain.ledger.refusal import Refusal
from domain.ledger.transfer import check_transfer_request
from entrypoints.http.problems import problem_handlers
from entrypoints.ledger.schemas import AccountResponse, TransferRequest, TransferResponse

OWNED_ACCOUNT = (
    "SELECT id, owner, currency, balance, version, created_at FROM ledger_accounts "
    "WHERE id = $1 AND owner_subject = $2"
)
LOCK_ACCOUNT = (
    "SELECT id, owner, owner_subject, currency, balance, entry_count, created_at, version "
    "FROM ledger_accounts WHERE id = $1 FOR UPDATE"
)
TRANSFER_COLUMNS = "id, source_id, target_id, amount, currency, reference, created_at"
SELECT_OWNED_TRANSFER = (
    f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = $1 AND EXISTS ("
    "SELECT 1 FROM ledger_accounts WHERE ledger_accounts.owner_subject = $2 AND "
    "(ledger_accounts.id = ledger_transfers.source_id "
    "OR ledger_accounts.id = ledger_transfers.target_id))"
)
EARLIER_TRANSFER = (
    f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers "
    "WHERE source_id = $1 AND reference = $2 LIMIT $3"
)
REFUSAL_COLUMNS = "id, account_id, kind, reference, amount, target_id, code, detail, created_at"
EARLIER_REFUSAL = (
    f"SELECT {REFUSAL_COLUMNS} FROM ledger_refusals "
    "WHERE account_id = $1 AND kind = $2 AND reference = $3 LIMIT $4"
)
INSERT_REFUSAL = (
    f"INSERT INTO ledger_refusals ({REFUSAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
UPDATE_BALANCE = (
    "UPDATE ledger_accounts SET balance = $1, entry_count = $2, version = $3 "
    "WHERE id = $4 AND version = $5"
)
INSERT_TRANSFER = (
    f"INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
INSERT_ENTRY = (
    "INSERT INTO ledger_entries (id, account_id, sequence, kind, amount, balance_after, "
    "reference, transfer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (message_id, stream, aggregate_key, type, occurred_at, payload, "
    "correlation_id, causation_id, trace_context) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "RETURNING pg_notify($10, $11)"
)
TRANSFER_OUT = "transfer_out"


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` as the plain DSN asyncpg itself takes."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_app() -> ASGIApp:
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
    async def get_account(account_id: UUID, caller: Reader, request: Request) -> AccountResponse:
        row = await pool_of(request).fetchrow(OWNED_ACCOUNT, account_id, caller)
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return AccountResponse.model_validate(dict(row))

    @app.get("/transfers/{transfer_id}")
    async def get_transfer(transfer_id: UUID, caller: Reader, request: Request) -> TransferResponse:
        row = await pool_of(request).fetchrow(SELECT_OWNED_TRANSFER, transfer_id, caller)
        if row is None:
            raise TransferNotFound(f"no transfer with id {transfer_id}")
        return TransferResponse.model_validate(dict(row))

    @app.post("/transfers", status_code=status.HTTP_201_CREATED)
    async def transfer(
        body: TransferRequest, caller: Writer, request: Request, response: Response
    ) -> TransferResponse:
        source_id, target_id, amount, reference = (
            body.source_id,
            body.target_id,
            body.amount,
            body.reference,
        )
        check_transfer_request(source_id, target_id, amount=amount, reference=reference)
        created: dict[str, Any] | None = None
        refused: DomainError | None = None
        async with pool_of(request).acquire() as connection, connection.transaction():
            locked = {
                account_id: await connection.fetchrow(LOCK_ACCOUNT, account_id)
                for account_id in sorted((source_id, target_id))
            }
            # Someone else's source answers exactly as an unknown one, whatever the target.
            owned = locked[source_id]
            if owned is None or owned["owner_subject"] != caller:
                raise AccountNotFound(f"no account with id {source_id}")
            if locked[target_id] is None:
                raise AccountNotFound(f"no account with id {target_id}")
            earlier = await connection.fetchrow(EARLIER_TRANSFER, source_id, reference, 1)
            if earlier is not None:
                if (earlier["target_id"], earlier["amount"]) != (target_id, amount):
                    # Names nothing of the earlier transfer: it may concern another party.
                    raise ReferenceReused(
                        f"reference {reference!r} was already used for another transfer out of "
                        "this account"
                    )
                response.status_code = status.HTTP_200_OK
                return TransferResponse.model_validate(dict(earlier))
            kept = await connection.fetchrow(EARLIER_REFUSAL, source_id, TRANSFER_OUT, reference, 1)
            if kept is not None:
                raise Refusal(**dict(kept)).replay(amount=amount, target_id=target_id)
            source, target = locked[source_id], locked[target_id]
            if source["currency"] != target["currency"]:
                raise CurrencyMismatch(
                    f"account {source_id} holds {source['currency']} but account {target_id} "
                    f"holds {target['currency']}"
                )
            if source["balance"] < amount:
                # Kept under the reference, so that a replay answers the same refusal.
                refused = InsufficientFunds(
                    f"account {source_id} holds {source['balance']} {source['currency']}; "
                    f"{amount} cannot be taken from it"
                )
                await connection.execute(
                    INSERT_REFUSAL, uuid4(), source_id, TRANSFER_OUT, reference, amount,
                    target_id, refused.code, refused.detail, datetime.now(UTC),
                )  # fmt: skip
            else:
                created = await _post(connection, source, target, amount, reference)
        if created is None:
            raise refused or RuntimeError("a transfer neither posted nor refused")
        response.headers["Location"] = request.app.url_path_for(
            "get_transfer", transfer_id=created["id"]
        )
        return TransferResponse.model_validate(created)

    return guarded(app, settings)


async def _post(
    connection: Any, source: Any, target: Any, amount: int, reference: str
) -> dict[str, Any]:
    """Move ``amount`` from ``source`` to ``target`` (both locked rows): Keel's statements."""
    transfer_id, now = uuid4(), datetime.now(UTC)
    debit_balance, credit_balance = source["balance"] - amount, target["balance"] + amount
    for row, balance in sorted(
        ((source, debit_balance), (target, credit_balance)), key=lambda pair: pair[0]["id"]
    ):
        updated = await connection.execute(
            UPDATE_BALANCE, balance, row["entry_count"] + 1, row["version"] + 1, row["id"],
            row["version"],
        )  # fmt: skip
        if updated != "UPDATE 1":
            raise ConcurrencyError(f"account {row['id']} changed since it was locked")
    created = {
        "id": transfer_id,
        "source_id": source["id"],
        "target_id": target["id"],
        "amount": amount,
        "currency": source["currency"],
        "reference": reference,
        "created_at": now,
    }
    await connection.execute(INSERT_TRANSFER, *created.values())
    await connection.executemany(
        INSERT_ENTRY,
        [
            (uuid4(), source["id"], source["entry_count"] + 1, "transfer_out", amount,
             debit_balance, reference, transfer_id, now),
            (uuid4(), target["id"], target["entry_count"] + 1, "transfer_in", amount,
             credit_balance, reference, transfer_id, now),
        ],
    )  # fmt: skip
    # The outbox row Keel writes for TransferCompleted; a request id stands for the
    # correlation and causation ids Keel takes from X-Request-ID.
    payload = {
        "transfer_id": str(transfer_id),
        "source_id": str(source["id"]),
        "target_id": str(target["id"]),
        "amount": amount,
        "currency": created["currency"],
        "reference": reference,
    }
    request_id = uuid4().hex
    await connection.fetchval(
        INSERT_OUTBOX, uuid4(), "ledger.events", f"Account:{source['id']}", "TransferCompleted",
        now, json.dumps(payload), request_id, request_id, "null", "keel_outbox", "",
    )  # fmt: skip
    return created
