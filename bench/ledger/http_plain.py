"""The hand-written twin of the ledger's hot routes, on a plain ``AsyncSession``.

What a developer would write without Keel: one session per request from an
``async_sessionmaker``, the same mapped domain classes and domain rules, the
same statements in the same order — ``GET /accounts/{id}`` filters on the
caller as owner; ``POST /transfers`` locks both accounts ``FOR UPDATE`` in id
order, checks that the caller owns the source (someone else's answers 404 like
an unknown id, whatever the target), looks for an earlier transfer and an earlier
refusal under the same (source, reference), writes, commits — but no unit of
work, no repositories and no retry wrapper. Every request has its bearer JWT
verified and its scope checked, and every response carries Keel's security
headers (``http_guards``). The engine gets the settings' pool options and
``pool_pre_ping``, SQLAlchemy's documented way to survive a database
restart (Keel checks its connections without a round trip instead). Request and response models and
error documents are the ledger's own, for the same reason.

    DATABASE_URL=postgresql+asyncpg://... uvicorn --factory bench.ledger.http_plain:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, Request, Response, status
from sqlalchemy import Select, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from starlette.types import ASGIApp

from adapters.ledger.orm import start_mappers
from adapters.ledger.tables import accounts, transfers
from adapters.outbox import NOTIFY_CHANNEL, outbox_table
from adapters.settings import load_settings
from bench.ledger.http_guards import Reader, Writer, guarded
from domain.errors import DomainError
from domain.ledger.account import Account, EntryKind
from domain.ledger.errors import AccountNotFound, TransferNotFound
from domain.ledger.refusal import Refusal
from domain.ledger.transfer import Transfer, check_transfer_request
from entrypoints.http.problems import problem_handlers
from entrypoints.ledger.schemas import AccountResponse, TransferRequest, TransferResponse


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


# scope="function": the session closes before the response is sent, as Keel's does.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def owned_account(account_id: UUID, owner: str) -> Select[Any]:
    """The caller's account by id, as a row: Keel's ownership query."""
    return select(
        accounts.c.id,
        accounts.c.owner,
        accounts.c.currency,
        accounts.c.balance,
        accounts.c.version,
        accounts.c.created_at,
    ).where(accounts.c.id == account_id, accounts.c.owner_subject == owner)


def create_app() -> ASGIApp:
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
    async def get_account(account_id: UUID, caller: Reader, session: SessionDep) -> AccountResponse:
        row = (await session.execute(owned_account(account_id, caller))).one_or_none()
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return AccountResponse.model_validate(row._asdict())

    @app.get("/transfers/{transfer_id}")
    async def get_transfer(
        transfer_id: UUID, caller: Reader, session: SessionDep
    ) -> TransferResponse:
        owned = exists().where(
            accounts.c.owner_subject == caller,
            or_(accounts.c.id == transfers.c.source_id, accounts.c.id == transfers.c.target_id),
        )
        statement = select(transfers).where(transfers.c.id == transfer_id, owned)
        row = (await session.execute(statement)).one_or_none()
        if row is None:
            raise TransferNotFound(f"no transfer with id {transfer_id}")
        return TransferResponse.model_validate(row._asdict())

    @app.post("/transfers", status_code=status.HTTP_201_CREATED)
    async def transfer(
        body: TransferRequest,
        caller: Writer,
        session: SessionDep,
        request: Request,
        response: Response,
    ) -> TransferResponse:
        source_id, target_id = body.source_id, body.target_id
        amount, reference = body.amount, body.reference
        check_transfer_request(source_id, target_id, amount=amount, reference=reference)
        found: dict[UUID, Account | None] = {
            account_id: await session.get(
                Account, account_id, with_for_update=True, populate_existing=True
            )
            for account_id in sorted((source_id, target_id))
        }
        # Someone else's source answers exactly as an unknown one, whatever the target.
        owned, target = found[source_id], found[target_id]
        if owned is None or not owned.is_owned_by(caller):
            raise AccountNotFound(f"no account with id {source_id}")
        if target is None:
            raise AccountNotFound(f"no account with id {target_id}")
        locked = {source_id: owned, target_id: target}
        earlier = await session.scalar(
            select(Transfer).filter_by(source_id=source_id, reference=reference).limit(1)
        )
        if earlier is not None:
            earlier.check_replay(source_id=source_id, target_id=target_id, amount=amount)
            response.status_code = status.HTTP_200_OK
            return TransferResponse.model_validate(earlier)
        kind = str(EntryKind.TRANSFER_OUT)
        kept = await session.scalar(
            select(Refusal).filter_by(account_id=source_id, kind=kind, reference=reference).limit(1)
        )
        if kept is not None:
            raise kept.replay(amount=amount, target_id=target_id)
        try:
            posting = Transfer.between(
                locked[source_id], locked[target_id], amount=amount, reference=reference
            )
        except DomainError as refused:
            # Kept under the reference, so that a replay answers the same refusal.
            record = Refusal.of(
                refused,
                account_id=source_id,
                kind=kind,
                reference=reference,
                amount=amount,
                target_id=target_id,
            )
            if record is not None:
                session.add(record)
                await session.commit()
            raise
        session.add_all(posting)
        # The same outbox row Keel writes for TransferCompleted, so both do the same SQL.
        await session.flush()
        await session.execute(
            insert(outbox_table).returning(func.pg_notify(NOTIFY_CHANNEL, "")),
            [transfer_completed_row(posting.transfer)],
        )
        await session.commit()
        response.headers["Location"] = request.app.url_path_for(
            "get_transfer", transfer_id=posting.transfer.id
        )
        return TransferResponse.model_validate(posting.transfer)

    return guarded(app, settings)


def transfer_completed_row(transfer: Transfer) -> dict[str, object]:
    """The outbox row of a ``TransferCompleted`` event, as Keel's registry would write it.

    A request id stands for the correlation and causation ids Keel takes from
    ``X-Request-ID``.
    """
    request_id = uuid4().hex
    return {
        "message_id": uuid4(),
        "stream": "ledger.events",
        "aggregate_key": f"Account:{transfer.source_id}",
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
        "correlation_id": request_id,
        "causation_id": request_id,
        "trace_context": None,
    }
