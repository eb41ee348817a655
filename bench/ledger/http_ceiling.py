"""The ledger's two hot routes with nothing behind them: the HTTP stack's own ceiling.

Same paths, same request parsing (``TransferRequest``, the UUID in the path)
and the same response models (``AccountResponse``; ``TransferResponse`` with
201), but constant bodies: no database, no token, no middleware. Served by the
same uvicorn command line as the other variants, it shows how many requests a
second FastAPI and uvicorn manage on this machine at all, so that each
variant's figure can be read as a share of that limit.

    uvicorn --factory bench.ledger.http_ceiling:create_app
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from fastapi import FastAPI, status

from entrypoints.http.problems import problem_handlers
from entrypoints.ledger.schemas import AccountResponse, TransferRequest, TransferResponse


def create_app() -> FastAPI:
    now = datetime.now(UTC)
    account = AccountResponse(
        id=uuid4(), owner="bench", currency="EUR", balance=10**9, version=1, created_at=now
    )
    transferred = TransferResponse(
        id=uuid4(),
        source_id=uuid4(),
        target_id=uuid4(),
        amount=1,
        currency="EUR",
        reference="ceiling",
        created_at=now,
    )
    app = FastAPI(title="bench: HTTP ceiling", exception_handlers=problem_handlers())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/accounts/{account_id}")
    async def get_account(account_id: UUID) -> AccountResponse:
        return account

    @app.post("/transfers", status_code=status.HTTP_201_CREATED)
    async def transfer(body: TransferRequest) -> TransferResponse:
        return transferred

    return app
