"""The JSON the HTTP API accepts and answers, as pydantic models.

Request models are strict where the contract is: money is an integer and
nothing else (no float, no numeric string, no bool), so a client bug that
sends ``10.5`` is refused instead of rounded. Text is checked for control
characters and lone surrogates too: both would otherwise get past validation
and fail later inside the database driver as a 500.

Response models mirror the service layer's views field for field; they exist
so that the OpenAPI document describes the bodies and so that timestamps are
always rendered the same way (ISO 8601, UTC offset), whichever database read
them back.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
)

MAX_AMOUNT = 10**12
MAX_PAGE = 500


def _no_control_characters(value: str) -> str:
    # Cc: control characters (NUL breaks PostgreSQL text); Cs: lone surrogates,
    # which JSON can smuggle in as "\ud800" and UTF-8 cannot encode.
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValueError("must not contain control characters")
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must contain printable characters only (no control or format characters)")
    return value


def _as_utc(moment: datetime) -> str:
    # SQLite hands back naive datetimes for what was written in UTC; say so explicitly.
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="Minor units (cents).")]
Currency = Annotated[
    StrictStr, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.", examples=["EUR"])
]
Owner = Annotated[
    StrictStr, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)
]
Reference = Annotated[
    StrictStr,
    Field(min_length=1, max_length=100, description="The client's idempotency key."),
    AfterValidator(_printable),
]
Timestamp = Annotated[datetime, PlainSerializer(_as_utc, return_type=str)]


class _Request(BaseModel):
    # A misspelt field ("ammount") is an error, not a silently missing value.
    model_config = ConfigDict(extra="forbid")


class OpenAccountRequest(_Request):
    owner: Owner = Field(examples=["Ada Lovelace"])
    currency: Currency


class MovementRequest(_Request):
    """A deposit or a withdrawal."""

    amount: Amount = Field(examples=[2500])
    reference: Reference = Field(examples=["invoice-2024-0042"])


class TransferRequest(_Request):
    source_id: UUID
    target_id: UUID
    amount: Amount = Field(examples=[1000])
    reference: Reference = Field(examples=["rent-2024-05"])


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AccountResponse(_Response):
    id: UUID
    owner: str
    currency: str
    balance: int
    version: int
    created_at: Timestamp


class EntryResponse(_Response):
    id: UUID
    account_id: UUID
    kind: Literal["deposit", "withdrawal", "transfer_in", "transfer_out"]
    amount: int
    balance_after: int
    reference: str
    transfer_id: UUID | None
    created_at: Timestamp


class TransferResponse(_Response):
    id: UUID
    source_id: UUID
    target_id: UUID
    amount: int
    currency: str
    reference: str
    created_at: Timestamp


class EntryPageResponse(_Response):
    items: list[EntryResponse]
    next: str | None = Field(description="Cursor for the next page, or null on the last one.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
