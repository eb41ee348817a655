"""The ledger's routes, exactly as ``shared/contract/ledger-api.md`` lists them.

Each route parses its input, makes one call into the service layer and
shapes the answer: 201 with the new resource, or 200 with the first result
when the service reports a replay of the same ``reference``. A write is a
command handed to the message bus — the same command, handler and outbox as
when it arrives on ``ledger.commands`` — and a read calls a query function.
Errors are raised by the service layer and turned into problem documents by
the kernel's ``entrypoints/http/problems.py``, by the errors' kinds.

Every route takes its caller's principal (``ReaderDep``/``WriterDep``) and
hands it on: what it may see and move is the service layer's decision. A
``Location`` is relative (RFC 9110 allows it), so nothing a client sends in
``Host`` is ever echoed back.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from domain.ledger.commands import Deposit, OpenAccount, TransferFunds, Withdraw
from entrypoints.http.problems import problem_responses
from entrypoints.http.urls import location
from entrypoints.ledger.dependencies import (
    LedgerBusDep,
    LedgerReadDep,
    ReaderDep,
    WriterDep,
)
from entrypoints.ledger.schemas import (
    MAX_PAGE,
    AccountResponse,
    EntryPageResponse,
    EntryResponse,
    MovementRequest,
    OpenAccountRequest,
    TransferRequest,
    TransferResponse,
)
from service_layer.ledger import reads
from service_layer.ledger.views import AccountView, EntryView, Outcome, TransferView

router = APIRouter(tags=["ledger"])

REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "A replay of the same reference and body: the first result."}
}
AUTH = problem_responses(401, 403)
WRITE_AUTH = problem_responses(401, 403, 429)


def _status(created: bool) -> int:
    """201 for a new resource, 200 for a replay that answers with the first result."""
    return status.HTTP_201_CREATED if created else status.HTTP_200_OK


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_AUTH, **problem_responses(422)},
    summary="Open an account owned by the caller",
)
async def open_account(
    body: OpenAccountRequest,
    caller: WriterDep,
    bus: LedgerBusDep,
    request: Request,
    response: Response,
) -> AccountResponse:
    view: AccountView = await bus.handle(OpenAccount(principal=caller, currency=body.currency))
    response.headers["Location"] = location(request, "get_account", account_id=view.id)
    return AccountResponse.model_validate(view)


@router.get(
    "/accounts/{account_id}",
    responses={**AUTH, **problem_responses(404, 422)},
    summary="An account",
)
async def get_account(account_id: UUID, caller: ReaderDep, uow: LedgerReadDep) -> AccountResponse:
    return AccountResponse.model_validate(await reads.get_account(uow, account_id, caller))


@router.post(
    "/accounts/{account_id}/deposits",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAY, **WRITE_AUTH, **problem_responses(404, 409, 422)},
    summary="Deposit money",
)
async def deposit(
    account_id: UUID,
    body: MovementRequest,
    caller: WriterDep,
    bus: LedgerBusDep,
    response: Response,
) -> EntryResponse:
    command = Deposit(
        principal=caller, account_id=account_id, amount=body.amount, reference=body.reference
    )
    outcome: Outcome[EntryView] = await bus.handle(command)
    response.status_code = _status(outcome.created)
    return EntryResponse.model_validate(outcome.value)


@router.post(
    "/accounts/{account_id}/withdrawals",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAY, **WRITE_AUTH, **problem_responses(404, 409, 422)},
    summary="Withdraw money",
)
async def withdraw(
    account_id: UUID,
    body: MovementRequest,
    caller: WriterDep,
    bus: LedgerBusDep,
    response: Response,
) -> EntryResponse:
    command = Withdraw(
        principal=caller, account_id=account_id, amount=body.amount, reference=body.reference
    )
    outcome: Outcome[EntryView] = await bus.handle(command)
    response.status_code = _status(outcome.created)
    return EntryResponse.model_validate(outcome.value)


@router.get(
    "/accounts/{account_id}/entries",
    responses={**AUTH, **problem_responses(404, 422)},
    summary="An account's entries, oldest first, keyset-paginated",
)
async def list_entries(
    account_id: UUID,
    caller: ReaderDep,
    uow: LedgerReadDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    after: Annotated[
        str | None,
        Query(max_length=512, description="The `next` cursor of the previous page."),
    ] = None,
) -> EntryPageResponse:
    page = await reads.list_entries(uow, account_id, caller, limit=limit, after=after)
    return EntryPageResponse.model_validate(page)


@router.post(
    "/transfers",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAY, **WRITE_AUTH, **problem_responses(404, 409, 422)},
    summary="Move money between two accounts of one currency",
)
async def transfer(
    body: TransferRequest,
    caller: WriterDep,
    bus: LedgerBusDep,
    request: Request,
    response: Response,
) -> TransferResponse:
    command = TransferFunds(
        principal=caller,
        source_id=body.source_id,
        target_id=body.target_id,
        amount=body.amount,
        reference=body.reference,
    )
    outcome: Outcome[TransferView] = await bus.handle(command)
    response.status_code = _status(outcome.created)
    if outcome.created:
        response.headers["Location"] = location(
            request, "get_transfer", transfer_id=outcome.value.id
        )
    return TransferResponse.model_validate(outcome.value)


@router.get(
    "/transfers/{transfer_id}",
    responses={**AUTH, **problem_responses(404, 422)},
    summary="A transfer, to the owners of its two accounts",
)
async def get_transfer(
    transfer_id: UUID, caller: ReaderDep, uow: LedgerReadDep
) -> TransferResponse:
    return TransferResponse.model_validate(await reads.get_transfer(uow, transfer_id, caller))
