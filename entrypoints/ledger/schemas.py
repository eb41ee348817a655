"""The JSON the ledger's HTTP API (and its command payloads) accept and answer.

Request models are strict where the contract is: money is an integer and
nothing else (no float, no numeric string, no bool), so a client bug that
sends ``10.5`` is refused instead of rounded. Text is the kernel's ``SafeStr``
(no control characters, lone surrogates, bidirectional controls), which
would otherwise get past validation and fail inside the driver as a 500.

Response models mirror the service layer's views field for field; they exist
so that the OpenAPI document describes the bodies and so that timestamps are
always rendered the same way (ISO 8601, UTC offset), whichever database read
them back.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from entrypoints.http.types import RequestModel, ResponseModel, Timestamp

MAX_AMOUNT = 10**12
MAX_PAGE = 500


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must contain printable characters only (no control or format characters)")
    return value


Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="Minor units (cents).")]
Currency = Annotated[
    StrictStr, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.", examples=["EUR"])
]
Reference = Annotated[
    StrictStr,
    Field(min_length=1, max_length=100, description="The client's idempotency key."),
    AfterValidator(_printable),
]


class OpenAccountRequest(RequestModel):
    """The owner is the caller (the token's ``sub``); a body ``owner`` is refused."""

    currency: Currency


class MovementRequest(RequestModel):
    """A deposit or a withdrawal."""

    amount: Amount = Field(examples=[2500])
    reference: Reference = Field(examples=["invoice-2024-0042"])


class TransferRequest(RequestModel):
    source_id: UUID
    target_id: UUID
    amount: Amount = Field(examples=[1000])
    reference: Reference = Field(examples=["rent-2024-05"])


class AccountResponse(ResponseModel):
    id: UUID
    owner: str
    currency: str
    balance: int
    version: int
    created_at: Timestamp


class EntryResponse(ResponseModel):
    id: UUID
    account_id: UUID
    kind: Literal["deposit", "withdrawal", "transfer_in", "transfer_out"]
    amount: int
    balance_after: int
    reference: str
    transfer_id: UUID | None
    created_at: Timestamp


class TransferResponse(ResponseModel):
    id: UUID
    source_id: UUID
    target_id: UUID
    amount: int
    currency: str
    reference: str
    created_at: Timestamp


class EntryPageResponse(ResponseModel):
    items: list[EntryResponse]
    next: str | None = Field(description="Cursor for the next page, or null on the last one.")
