"""Field types every context's request and response models share.

``SafeStr`` is the text type for anything a client sends that may be stored:
it refuses what :func:`domain.text.check_safe_text` refuses, with a 422 naming
the field, so no user string reaches the driver's NUL error as a 500. Use it
(with your own length bounds) instead of a plain ``str``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, StrictStr

from domain.text import check_safe_text


def _as_utc(moment: datetime) -> str:
    # SQLite hands back naive datetimes for what was written in UTC; say so explicitly.
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


SafeStr = Annotated[StrictStr, AfterValidator(check_safe_text)]
"""A string with no control, bidirectional-control or non-character code points."""

Timestamp = Annotated[datetime, PlainSerializer(_as_utc, return_type=str)]
"""A moment, always rendered in ISO 8601 with its UTC offset."""


class RequestModel(BaseModel):
    """Base of request bodies: a misspelt field ("ammount") is an error, not a missing value."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """Base of response bodies, read from the service layer's frozen views."""

    model_config = ConfigDict(from_attributes=True)
