"""The hand-written twin of the ledger's hot routes, on a plain ``AsyncSession``.

What a developer would write without Keel: one session per request from an
``async_sessionmaker``, the same mapped domain classes and domain rules, the
same statements in the same order (lock both accounts ``FOR UPDATE`` in id
order, look for the reference, write, commit) — but no unit of work, no
repositories and no retry wrapper. The engine gets the options Keel's would
(the settings' pool options plus ``pool_pre_ping``), so that the comparison
measures the kernel and not a pool setting. Request and response models and
error documents are the ledger's own, for the same reason.

    DATABASE_URL=postgresql+asyncpg://... uvicorn --factory bench.ledger.http_plain:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, Request, Response, status
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from adapters.ledger.orm import start_mappers
from adapters.ledger.tables import accounts, transfers
from adapters.outbox import NOTIFY_CHANNEL, outbox_table
from adapters.settings import load_settings
from domain.ledger.account import Account
from domain.ledger.errors import AccountNotFound, TransferNotFound
from domain.ledger.transfer import Transfer, check_transfer_request
from entrypoints.http.problems import problem_handlers
from entrypoints.ledger.schemas import AccountResponse, TransferRequest, TransferResponse


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


# scope="function": the session closes before the response is sent, as Keel's does.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def create_app() -> FastAPI:
    settings = load_settings()
    start_mappers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(
            settings.database_url,
            pool_pre_ping=True,
            pool_recycle=3600,
            **settings.engine_options(),
        )
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="bench: plain AsyncSession", lifespan=lifespan, exception_handlers=problem_handlers()
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/accounts/{account_id}")
    async def get_account(account_id: UUID, session: SessionDep) -> AccountResponse:
        statement = select(
            accounts.c.id,
            accounts.c.owner,
            accounts.c.currency,
            accounts.c.balance,
            accounts.c.version,
            accounts.c.created_at,
        ).where(accounts.c.id == account_id)
        row = (await session.execute(statement)).one_or_none()
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return AccountResponse.model_validate(row._asdict())

    @app.get("/transfers/{transfer_id}")
    async def get_transfer(transfer_id: UUID, session: SessionDep) -> TransferResponse:
        row = (
            await session.execute(select(transfers).where(transfers.c.id == transfer_id))
        ).one_or_none()
        if row is None:
            raise TransferNotFound(f"no transfer with id {transfer_id}")
        return TransferResponse.model_validate(row._asdict())

    @app.post("/transfers", status_code=status.HTTP_201_CREATED)
    async def transfer(
        body: TransferRequest, session: SessionDep, request: Request, response: Response
    ) -> TransferResponse:
        check_transfer_request(
            body.source_id, body.target_id, amount=body.amount, reference=body.reference
        )
        locked: dict[UUID, Account] = {}
        for account_id in sorted((body.source_id, body.target_id)):
            account = await session.get(
                Account, account_id, with_for_update=True, populate_existing=True
            )
            if account is None:
                raise AccountNotFound(f"no account with id {account_id}")
            locked[account_id] = account
        earlier = await session.scalar(
            select(Transfer).filter_by(reference=body.reference).limit(1)
        )
        if earlier is not None:
            earlier.check_replay(
                source_id=body.source_id, target_id=body.target_id, amount=body.amount
            )
            response.status_code = status.HTTP_200_OK
            return TransferResponse.model_validate(earlier)
        posting = Transfer.between(
            locked[body.source_id],
            locked[body.target_id],
            amount=body.amount,
            reference=body.reference,
        )
        session.add_all(posting)
        # The same outbox row Keel writes for TransferCompleted, so both do the same SQL.
        await session.flush()
        await session.execute(
            insert(outbox_table).returning(func.pg_notify(NOTIFY_CHANNEL, "")),
            [transfer_completed_row(posting.transfer)],
        )
        await session.commit()
        location = request.url_for("get_transfer", transfer_id=posting.transfer.id)
        response.headers["Location"] = str(location)
        return TransferResponse.model_validate(posting.transfer)

    return app


def transfer_completed_row(transfer: Transfer) -> dict[str, object]:
    """The outbox row of a ``TransferCompleted`` event, as Keel's registry would write it."""
    return {
        "message_id": uuid4(),
        "stream": "ledger.events",
        "aggregate_key": str(transfer.id),
        "type": "TransferCompleted",
        "occurred_at": datetime.now(UTC),
        "payload": {
            "transfer_id": str(transfer.id),
            "source_id": str(transfer.source_id),
            "target_id": str(transfer.target_id),
            "amount": transfer.amount,
            "currency": transfer.currency,
            "reference": transfer.reference,
        },
    }
